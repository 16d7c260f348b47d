/**
 * A local gateway the simulator starts and may restart (`--gateway-cmd`):
 * the command runs under `sh -c` in a process group of its own, so stopping
 * it reaches the shell and everything under it, and only those. Ready means
 * its MQTT port accepts a TCP connection.
 *
 * Stopped means the whole group is gone, not just the shell: dash does not
 * exec the command it runs, and `npx` runs node under itself, so the shell (or
 * npx) dies at SIGTERM while the gateway is still shutting down. Taking the
 * shell's exit for the gateway's would SIGKILL the gateway in the middle of
 * its clean stop and start the next one while the old still holds the data
 * directory and the port (measured: restart-during-storm without
 * --gateway-log, the second gateway refused the journal lock, every alert
 * after the restart missing).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from "node:fs";
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
  private onExit: (() => void) | undefined;
  private log: WriteStream | undefined;
  restarts = 0;

  constructor(private readonly opts: GatewayProcessOptions) {}

  /**
   * The process the command runs as (its group's id): the gateway itself when the command `exec`s
   * it, else the shell above it. Undefined when not started.
   */
  get pid(): number | undefined {
    return this.child?.pid;
  }

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
      // Until its whole group is gone (stop()), not only the shell: the gateway may outlive it.
      const onExit = () => signalGroup(pid, "SIGKILL");
      process.once("exit", onExit);
      this.onExit = onExit;
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

  /**
   * SIGTERM to the group (the gateway shuts down cleanly) and wait until every
   * process of the group has exited; SIGKILL to what is left after `graceMs`.
   */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child?.pid) return;
    const pgid = child.pid;
    // "close": the shell is gone and the output it shared with the gateway is flushed into the log.
    const closed =
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((r) => child.once("close", () => r()));
    signalGroup(pgid, "SIGTERM");
    if (!(await groupGone(pgid, graceMs))) {
      signalGroup(pgid, "SIGKILL");
      await groupGone(pgid, 5_000);
    }
    await closed;
    if (this.onExit) process.off("exit", this.onExit);
    this.onExit = undefined;
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
          // A TCP connection to a local port nobody listens on can connect to itself when the
          // kernel picks that same port as its source (a port in the ephemeral range): not ready.
          const self = s.localPort === s.remotePort && s.localAddress === s.remoteAddress;
          s.destroy();
          resolve(!self);
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

/**
 * Whether a process group still has a running member. From /proc on Linux,
 * where a zombie (exited, not yet reaped by whoever inherited it) is not
 * running, unless other threads of it still run: a multi-threaded process's
 * main thread shows "Z" while its other threads are still exiting, and its
 * files (the gateway's listening socket) close only with the last of them.
 * Seen: a restart whose readiness check connected to the old gateway's port
 * after its main thread was a zombie. Elsewhere, whether the group can still
 * be signalled.
 */
export function groupRunning(pgid: number): boolean {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const fields = statFields(stat);
    if (Number(fields[2]) !== pgid) continue;
    if (!exited(fields[0]) || threadRunning(pid)) return true;
  }
  return false;
}

/** "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so after the last ")". */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function exited(state: string | undefined): boolean {
  return state === "Z" || state === "X";
}

/** Whether a thread of process `pid` other than an exited one is still there. */
function threadRunning(pid: string): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false; // reaped meanwhile
  }
  for (const tid of tasks) {
    try {
      if (!exited(statFields(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"))[0])) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/** Resolves true once no member of the group is running, false after `timeoutMs`. */
async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (groupRunning(pgid)) {
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}
