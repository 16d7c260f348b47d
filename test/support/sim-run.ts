/**
 * `linli sim ... --gateway-cmd "linli start ..."` as an integrator runs it, for the e2e tests that
 * judge a scenario against a real gateway: the simulator starts the gateway (its own process
 * group, stopped by the simulator), writes the JSON report and the gateway's log. Needs
 * `npm run build`.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import type { SimReport } from "../../sim/scenario/report.js";

export const CLI = (JSON.parse(readFileSync("package.json", "utf8")) as { bin: { linli: string } }).bin.linli;

export interface SimRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The gateway's log (JSON lines), "" if it wrote none. */
  gatewayLog: string;
  /** The simulator's report; read only when asked for (a failed run may have written none). */
  report(): SimReport;
  /** What a failed assertion should show: the simulator's output and the gateway log's tail. */
  explain(): string;
}

/**
 * Runs the simulator with `args` (site and scenario options) against a gateway it starts on
 * 127.0.0.1:`port`, with its data directory, log and report in `dir`.
 */
export function runSim(
  dir: string,
  port: number,
  args: readonly string[],
  timeoutMs: number,
): Promise<SimRun> {
  const json = join(dir, "report.json");
  const log = join(dir, "gateway.log");
  const gatewayCmd = `"${process.execPath}" "${CLI}" start --config {config} --data-dir "${join(dir, "data")}" --metrics-port 0 --log-format json`;
  const argv = [
    CLI,
    "sim",
    ...args,
    "--gateway",
    `mqtt://127.0.0.1:${port}`,
    "--gateway-cmd",
    gatewayCmd,
    "--gateway-log",
    log,
    "--json",
    json,
  ];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const raw = err ? ((err as { code?: number }).code ?? -1) : 0;
      const gatewayLog = existsSync(log) ? readFileSync(log, "utf8") : "";
      resolve({
        code: typeof raw === "number" ? raw : -1,
        stdout,
        stderr,
        gatewayLog,
        report: () => JSON.parse(readFileSync(json, "utf8")) as SimReport,
        explain: () => `${stdout}\n${stderr}\n${gatewayLog.slice(-3000)}`,
      });
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:`port` (the gateway left running?). */
export function listens(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** `linli sim` with `args` only (writing a site, a run against a gateway started by the test). */
export function simCli(
  args: readonly string[],
  timeoutMs = 40_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, "sim", ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? -1) : 0;
      resolve({ code: typeof code === "number" ? code : -1, stdout, stderr });
    });
  });
}

/** Resolves once 127.0.0.1:`port` accepts connections; throws after `ms`. */
export async function untilListening(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await listens(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} within ${ms} ms`);
}
