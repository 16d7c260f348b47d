/**
 * A local gateway the simulator starts and may restart (`--gateway-cmd`):
 * the command runs under `sh -c` in a process group of its own, so stopping
 * it reaches the shell and everything under it, and only those. Ready means
 * its MQTT port accepts a TCP connection.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import net from "node:net";

export interface GatewayProcessOptions {
  command: string;
  host: string;
  port: number;
  /** Where the gateway's output goes (a file), else discarded. */
  logFile?: string;
  readyTimeoutMs?: number;
}

export class GatewayProcess {
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  restarts = 0;

  constructor(private readonly opts: GatewayProcessOptions) {}

  async start(): Promise<void> {
    if (this.opts.logFile && !this.log) this.log = createWriteStream(this.opts.logFile, { flags: "a" });
    const child = spawn("sh", ["-c", this.opts.command], {
      detached: true,
      stdio: ["ignore", this.log ? "pipe" : "ignore", this.log ? "pipe" : "ignore"],
    });
    if (this.log) {
      child.stdout?.pipe(this.log, { end: false });
      child.stderr?.pipe(this.log, { end: false });
    }
    this.child = child;
    // If the simulator dies (an uncaught error), the gateway it started goes with it.
    if (child.pid !== undefined) {
      const pid = child.pid;
      const onExit = () => signalGroup(pid, "SIGKILL");
      process.once("exit", onExit);
      child.once("exit", () => process.off("exit", onExit));
    }
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code, signal) =>
        reject(
          new Error(
            `gateway command exited (${signal ?? `code ${code}`}) before listening: ${this.opts.command}`,
          ),
        ),
      ),
    );
    exited.catch(() => {});
    await Promise.race([this.waitForPort(this.opts.readyTimeoutMs ?? 30_000), exited]);
  }

  /** SIGTERM to the group (the gateway shuts down cleanly), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child?.pid) return;
    if (child.exitCode !== null || child.signalCode !== null) return;
    // "close": the process is gone and its output is flushed into the log.
    const exited = new Promise<void>((r) => child.once("close", () => r()));
    signalGroup(child.pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(child.pid as number, "SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
    // Whatever the shell left behind in its group.
    signalGroup(child.pid, "SIGKILL");
  }

  async restart(): Promise<void> {
    await this.stop();
    this.restarts++;
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    this.log?.end();
  }

  private async waitForPort(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.createConnection({ host: this.opts.host, port: this.opts.port });
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `the gateway did not listen on ${this.opts.host}:${this.opts.port} within ${timeoutMs} ms`,
    );
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}
