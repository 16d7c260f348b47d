import { type ChildProcess, spawn, spawnSync } from "node:child_process";

/** Why serial tests cannot run here, or undefined when socat is available. */
export function socatMissingReason(): string | undefined {
  const r = spawnSync("socat", ["-V"], { stdio: "ignore" });
  if (r.error) return `socat not found on PATH (${r.error.message}); install it with apt-get install socat`;
  return undefined;
}

export interface PtyPair {
  /** One end, e.g. /dev/pts/5 */
  a: string;
  /** The other end */
  b: string;
  process: ChildProcess;
  /** Kills socat: both ptys vanish (an unplugged cable). */
  kill(): Promise<void>;
}

/**
 * A real pseudo-terminal pair joined by socat, as a null-modem cable: the
 * simulator opens one end, the gateway (or mbpoll) the other. Used by the sim
 * CLI (--socat) and the interop tests.
 */
export function openPtyPair(timeoutMs = 5000): Promise<PtyPair> {
  return new Promise((resolve, reject) => {
    const child = spawn("socat", ["-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const paths: string[] = [];
    let log = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`socat did not report two ptys within ${timeoutMs} ms: ${log}`));
    }, timeoutMs);
    const exited = new Promise<void>((res) => child.once("exit", () => res()));
    // socat does not die with its parent: a simulator that exits without stopping it (a second
    // Ctrl-C, process.exit, an uncaught error) would leave it running, holding both ptys.
    const orphanGuard = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    process.once("exit", orphanGuard);
    child.once("exit", () => process.off("exit", orphanGuard));
    child.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // "spawn socat ENOENT" says nothing of what to do.
      reject(err.code === "ENOENT" ? new Error(socatMissingReason() ?? err.message) : err);
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      log += text;
      for (const m of text.matchAll(/PTY is (\S+)/g)) if (m[1]) paths.push(m[1]);
      // socat logs "starting data transfer loop" once both ends exist.
      if (paths.length >= 2 && /starting data transfer loop/.test(log)) {
        clearTimeout(timer);
        const [a, b] = paths as [string, string];
        resolve({
          a,
          b,
          process: child,
          kill: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            // socat normally exits at once; on a loaded machine it has been seen to linger, so a
            // severed cable does not depend on it: SIGKILL after 2 s.
            const force = setTimeout(() => {
              if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
            }, 2000);
            await exited;
            clearTimeout(force);
          },
        });
      }
    });
  });
}
