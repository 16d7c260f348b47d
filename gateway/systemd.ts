/**
 * systemd service notifications (deploy/linli.service, Type=notify): READY=1
 * once the gateway serves, WATCHDOG=1 every WATCHDOG_USEC/2 while the event
 * loop is healthy, STOPPING=1 when shutdown begins. Nothing happens unless
 * systemd started us (NOTIFY_SOCKET set).
 *
 * How the datagram gets out: Node has no AF_UNIX datagram sockets, so each
 * message is sent by systemd's own `systemd-notify` (package systemd, present
 * wherever NOTIFY_SOCKET is set), run as a child:
 *  - the sender is a child, not the main PID: the unit needs NotifyAccess=all;
 *  - the old race (the child exits before the manager reads the datagram, the
 *    manager can no longer tell which unit sent it and drops it) is closed
 *    since systemd 246: systemd-notify waits on BARRIER=1 until the manager has
 *    processed the message. Debian 12 ships 252, Debian 11 247.
 * Rejected: the npm `sd-notify` addon (a node-gyp build needing a compiler,
 * libsystemd-dev and a download of Node's headers); a resident socat or
 * python helper (neither is on a minimal Debian box).
 *
 * Health: a watchdog that fires from a timer proves only that timers still
 * run. A probe timer beats every 20 ms and keeps the longest gap between
 * beats; each ping takes the worst of that, the gap still open (a stall that
 * just ended, whose beat has not run yet: timers of one phase run in any
 * order, so perf_hooks' monitorEventLoopDelay, read at the ping, missed it in
 * testing) and the ping's own lateness. Beyond the bound the ping is
 * withheld: a loop that keeps stalling stops the pings and systemd restarts
 * the gateway after WatchdogSec; a single stall costs one ping.
 */
import { execFile } from "node:child_process";
import type { Logger } from "./log.js";

export interface SystemdNotifierOptions {
  log: Logger;
  /** Default process.env: NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID. */
  env?: NodeJS.ProcessEnv;
  /** Default "systemd-notify" (on PATH). */
  command?: string;
  /**
   * A ping is withheld when the event loop was blocked longer than this since
   * the previous one. Default: a quarter of the watchdog timeout, at most 2 s
   * (an alert waits behind a blocked loop; GC pauses are tens of ms).
   */
  maxLoopDelayMs?: number;
  /** systemd-notify is killed after this (a manager that never answers the barrier). Default 10 s. */
  sendTimeoutMs?: number;
}

export interface SystemdStats {
  sent: number;
  failed: number;
  /** Pings withheld because the loop had stalled beyond the bound. */
  withheldStalled: number;
  /** Pings skipped because the previous one was still being delivered (one at a time). */
  skippedBusy: number;
  /** Worst loop delay seen at the last ping, ms. */
  lastLoopDelayMs: number;
}

/** Monotonic times (performance.now) of the last pings sent, newest last; at most this many. */
const PING_LOG = 64;
/** Loop probe period, ms: stalls are measured to about this (50 wake-ups a second). */
const PROBE_MS = 20;

export class SystemdNotifier {
  readonly watchdogIntervalMs: number | null;
  readonly maxLoopDelayMs: number;
  /** performance.now() of the recent WATCHDOG=1 sends (bounded, PING_LOG). */
  readonly pings: number[] = [];
  private readonly counters: SystemdStats = {
    sent: 0,
    failed: 0,
    withheldStalled: 0,
    skippedBusy: 0,
    lastLoopDelayMs: 0,
  };
  private timer: NodeJS.Timeout | null = null;
  private probe: NodeJS.Timeout | null = null;
  private lastBeat = 0;
  /** Longest gap between probe beats beyond their period since the last ping, ms. */
  private worstGap = 0;
  private lastTick = 0;
  private pingInFlight = false;
  private missingReported = false;
  private readonly log: Logger;
  private readonly command: string;
  private readonly sendTimeoutMs: number;
  private readonly childEnv: NodeJS.ProcessEnv;

  private constructor(socket: string, watchdogUsec: number | null, opts: SystemdNotifierOptions) {
    this.log = opts.log;
    this.command = opts.command ?? "systemd-notify";
    this.sendTimeoutMs = opts.sendTimeoutMs ?? 10_000;
    this.childEnv = { ...process.env, NOTIFY_SOCKET: socket };
    this.watchdogIntervalMs = watchdogUsec === null ? null : Math.max(1, Math.floor(watchdogUsec / 2000));
    const timeoutMs = watchdogUsec === null ? 8000 : watchdogUsec / 1000;
    this.maxLoopDelayMs = opts.maxLoopDelayMs ?? Math.min(2000, timeoutMs / 4);
  }

  /** A notifier when systemd started this process (NOTIFY_SOCKET), else null. */
  static fromEnv(opts: SystemdNotifierOptions): SystemdNotifier | null {
    const env = opts.env ?? process.env;
    const socket = env.NOTIFY_SOCKET;
    if (!socket) return null;
    let watchdogUsec: number | null = null;
    const usec = Number(env.WATCHDOG_USEC);
    // WATCHDOG_PID names the process the watchdog is for; a child that inherited it is not.
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    if (env.WATCHDOG_USEC !== undefined && Number.isFinite(usec) && usec > 0 && forUs) watchdogUsec = usec;
    return new SystemdNotifier(socket, watchdogUsec, opts);
  }

  stats(): SystemdStats {
    return { ...this.counters };
  }

  /** READY=1 (start-up complete) and starts the watchdog pings when systemd asked for them. */
  async ready(status?: string): Promise<boolean> {
    const ok = await this.send(["READY=1", ...(status ? [`STATUS=${status}`] : [])]);
    this.startWatchdog();
    return ok;
  }

  /** STOPPING=1; the watchdog keeps running while the gateway drains (systemd still enforces it). */
  stopping(status = "shutting down"): Promise<boolean> {
    return this.send(["STOPPING=1", `STATUS=${status}`]);
  }

  /** Stops the pings (the process is about to exit, or a test is done). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
  }

  private startWatchdog(): void {
    if (this.watchdogIntervalMs === null || this.timer) return;
    this.lastTick = this.lastBeat = performance.now();
    this.probe = setInterval(this.beat, PROBE_MS);
    this.probe.unref();
    this.timer = setInterval(this.tick, this.watchdogIntervalMs);
    this.timer.unref();
  }

  private readonly beat = (): void => {
    const now = performance.now();
    this.worstGap = Math.max(this.worstGap, now - this.lastBeat - PROBE_MS);
    this.lastBeat = now;
  };

  private readonly tick = (): void => {
    const now = performance.now();
    const interval = this.watchdogIntervalMs as number;
    const late = now - this.lastTick - interval;
    const open = now - this.lastBeat - PROBE_MS;
    const worst = Math.max(late, open, this.worstGap);
    this.lastTick = now;
    // The open gap is counted here: the next beat measures from now, not again from before it.
    this.lastBeat = now;
    this.worstGap = 0;
    this.counters.lastLoopDelayMs = Math.round(worst);
    if (worst > this.maxLoopDelayMs) {
      this.counters.withheldStalled++;
      this.log.warn(
        { loopDelayMs: Math.round(worst), boundMs: this.maxLoopDelayMs },
        "event loop stalled: systemd watchdog ping withheld",
      );
      return;
    }
    if (this.pingInFlight) {
      this.counters.skippedBusy++;
      return;
    }
    this.pingInFlight = true;
    this.pings.push(now);
    if (this.pings.length > PING_LOG) this.pings.shift();
    void this.send(["WATCHDOG=1"]).finally(() => {
      this.pingInFlight = false;
    });
  };

  /** Runs systemd-notify with the assignments; never rejects (failures are logged and counted). */
  private send(assignments: string[]): Promise<boolean> {
    return new Promise((resolve) => {
      execFile(
        this.command,
        assignments,
        { env: this.childEnv, timeout: this.sendTimeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 },
        (err, _stdout, stderr) => {
          if (!err) {
            this.counters.sent++;
            resolve(true);
            return;
          }
          this.counters.failed++;
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ENOENT") {
            if (!this.missingReported)
              this.log.error(
                { command: this.command },
                "systemd-notify not found: systemd will not see READY/WATCHDOG (install the systemd package)",
              );
            this.missingReported = true;
          } else {
            this.log.warn(
              { message: assignments[0], err: err.message, stderr: stderr.trim() },
              "systemd notify failed",
            );
          }
          resolve(false);
        },
      );
    });
  }
}
