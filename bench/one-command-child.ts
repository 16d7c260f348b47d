/**
 * A bench child that takes one command over IPC, answers it and exits (the start-up benches: a
 * fresh process per start, so that each one's memory and time are its own), and the parent's side.
 */
import type { ChildProcess } from "node:child_process";

/** The child's side: runs `run` on the first message, sends its result (or the error) back, exits. */
export function serveOneCommand<C, R>(self: string, parent: string, run: (cmd: C) => Promise<R>): void {
  const reply = (m: R | { error: string }): Promise<void> =>
    new Promise((resolve) => {
      if (!process.send) return resolve();
      process.send(m, () => resolve());
    });
  process.on("disconnect", () => process.exit(0));
  process.once("message", (cmd: C) => {
    run(cmd).then(
      async (r) => {
        await reply(r);
        process.exit(0);
      },
      async (err: unknown) => {
        await reply({ error: (err as Error).stack ?? String(err) });
        process.exit(1);
      },
    );
  });
  if (!process.send) {
    process.stderr.write(`${self} is started by ${parent} (it needs an IPC channel)\n`);
    process.exit(2);
  }
}

/**
 * The parent's side: sends `cmd`, resolves with the answer; killed after `timeoutMs` without one.
 * Once answered the child exits by itself (writing a --cpu-prof profile, if asked): waited for, 10 s
 * at most.
 */
export function askChild<C, R>(child: ChildProcess, cmd: C, timeoutMs: number): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`start-up child did not answer within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    child.once("message", (m: R | { error: string }) => {
      clearTimeout(timer);
      if (m !== null && typeof m === "object" && "error" in m) reject(new Error(m.error));
      else resolve(m as R);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`start-up child exited with ${code} before answering`));
    });
    child.send(cmd as object);
  }).finally(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });
}
