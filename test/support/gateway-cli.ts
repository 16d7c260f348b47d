/**
 * The built CLI's gateway (`linli start … --log-format json`) as a child process, its JSON log
 * lines collected: what e2e tests that restart, reload or kill a real gateway process read.
 */
import { type ChildProcess, spawn } from "node:child_process";

export const CLI = "dist/cli/linli.js";

export interface GatewayCli {
  proc: ChildProcess;
  /** Every stdout line so far (JSON log lines). */
  lines: string[];
  /** The first log line whose `msg` starts with `msg`, parsed; throws if the gateway exits or `timeoutMs` passes first. */
  logged(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** `linli start --config FILE --data-dir DIR --log-format json` (and `extra` arguments). */
export function startGatewayCli(file: string, dataDir: string, extra: readonly string[] = []): GatewayCli {
  const proc = spawn(
    process.execPath,
    [CLI, "start", "--config", file, "--data-dir", dataDir, "--log-format", "json", ...extra],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const lines: string[] = [];
  let buffered = "";
  proc.stdout?.on("data", (b: Buffer) => {
    buffered += b.toString("utf8");
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
  });
  proc.stderr?.resume();
  const logged = async (msg: string, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = lines.find((l) => l.includes(`"msg":"${msg}`));
      if (line) return JSON.parse(line) as Record<string, unknown>;
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`gateway exited (${proc.exitCode ?? proc.signalCode}): ${lines.join("\n")}`);
      if (Date.now() > deadline) throw new Error(`no "${msg}" in the log:\n${lines.join("\n")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { proc, lines, logged };
}

/** The MQTT port of the first listener a "gateway started" log line names. */
export function mqttPortOf(started: Record<string, unknown>): number {
  return Number(
    String((started.listeners as string[])[0])
      .split(":")
      .pop(),
  );
}
