/**
 * How `linli reload` finds the running gateway: `linli start` writes
 * `<data-dir>/linli.pid` (JSON: pid, config file, start time) and removes it
 * on a clean stop; after each SIGHUP it writes the outcome to
 * `<data-dir>/linli.reload.json`, which `linli reload` waits for and prints.
 * Both are written to a temporary name and renamed, so a reader never sees
 * half a file.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { MovedWithAlerts } from "../gateway/index.js";

export { DEFAULT_DATA_DIR } from "../gateway/index.js";
export const PID_FILE = "linli.pid";
export const RELOAD_REPORT_FILE = "linli.reload.json";

export interface PidInfo {
  pid: number;
  /** Absolute path of the site file; null for the demo (nothing to reload). */
  config: string | null;
  startedAt: string;
}

/** What the gateway reports after a SIGHUP (no secrets: devices are named, not shown). */
export interface ReloadReport {
  pid: number;
  config: string | null;
  result: "applied" | "refused";
  /** Epoch ms when the reload was handled. */
  at: number;
  message?: string;
  changes?: unknown;
  restartNeeded?: string[];
  closedAlerts?: number;
  /** Of closedAlerts, those of devices replaced by another model (absent before 0.13.39). */
  replacedAlerts?: number;
  /** Devices moved to another household with open alerts (absent before 0.13.39). */
  moved?: MovedWithAlerts[];
  disconnected?: number;
  /** TLS listeners whose certificate files were re-read, and those that could not be. */
  certificates?: { reloaded: number; failed: string[] };
  /** Secret files (metrics.auth) re-read, and those that could not be (the current secret kept). */
  secrets?: { reloaded: number; failed: string[] };
}

function writeAtomically(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644 });
    renameSync(tmp, file);
  } catch (err) {
    // Disk full mid-write: no half file left behind for nobody to remove.
    rmSync(tmp, { force: true });
    throw err;
  }
}

function readJson<T>(file: string): T | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

export function writePidFile(dataDir: string, info: PidInfo): string {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, PID_FILE);
  writeAtomically(file, info);
  return file;
}

/** While the pid file cannot be written (disk full at start), how often it is tried again. */
export const PID_FILE_RETRY_MS = 5000;

/**
 * Writes the pid file, and if the disk refuses, tries again every retryMs until it is written:
 * otherwise it kept naming the previous, dead gateway and `linli reload` failed until the next
 * restart. Logged once when it fails and once when it is written at last. stop() ends the retries
 * (before the pid file is removed at shutdown).
 */
export function keepPidFile(
  dataDir: string,
  info: PidInfo,
  opts: { log: Logger; retryMs?: number },
): { stop(): void; readonly written: boolean } {
  let timer: NodeJS.Timeout | null = null;
  let written = false;
  let failedOnce = false;
  const attempt = (): void => {
    timer = null;
    try {
      writePidFile(dataDir, info);
      written = true;
      if (failedOnce) opts.log.info({ dataDir }, "pid file written at last: linli reload finds this gateway");
      return;
    } catch (err) {
      if (!failedOnce)
        opts.log.error(
          { err, dataDir, retryMs: opts.retryMs ?? PID_FILE_RETRY_MS },
          "cannot write the pid file; linli reload will not find this gateway until it is written (retrying)",
        );
      failedOnce = true;
    }
    timer = setTimeout(attempt, opts.retryMs ?? PID_FILE_RETRY_MS);
    timer.unref();
  };
  attempt();
  return {
    stop() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
    get written() {
      return written;
    },
  };
}

export function readPidFile(dataDir: string): PidInfo | null {
  const info = readJson<PidInfo>(join(dataDir, PID_FILE));
  return info && Number.isInteger(info.pid) && info.pid > 0 ? info : null;
}

/** Removes the pid file if it is still ours (another gateway may have started on the same directory since). */
export function removePidFile(dataDir: string, pid: number): void {
  if (readPidFile(dataDir)?.pid === pid) rmSync(join(dataDir, PID_FILE), { force: true });
}

export function writeReloadReport(dataDir: string, report: ReloadReport): void {
  writeAtomically(join(dataDir, RELOAD_REPORT_FILE), report);
}

export function readReloadReport(dataDir: string): ReloadReport | null {
  return readJson<ReloadReport>(join(dataDir, RELOAD_REPORT_FILE));
}

/** The clocks `linli reload` waits on; tests inject their own. */
export interface WaitClock {
  /** Wall-clock ms: what the gateway's report's `at` is on. */
  now(): number;
  /** Monotonic ms: what the wait's deadline runs on (a step of the wall clock does not move it). */
  monotonic(): number;
  sleep(ms: number): Promise<void>;
}

const systemClock: WaitClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** A wall clock that moved this much more or less than the monotonic one since the SIGHUP was stepped. */
const STEP_MS = 1_000;

/**
 * Waits up to `timeoutMs` (monotonic) for the report of the SIGHUP just sent to `pid`, `before`
 * being the report on disk before it: null when none came. A report is this SIGHUP's when it is
 * another than `before` and not written before the SIGHUP by the wall clock, unless that clock was
 * stepped since (NTP): then the gateway's `at`, on the stepped clock, says nothing about when. Both
 * ran on the wall clock before 2026-12-06: set back, the answer was missed and the wait ran on for
 * as long as the step; set forward, it gave up at once with "no report".
 */
export async function awaitReloadReport(
  dataDir: string,
  pid: number,
  before: ReloadReport | null,
  timeoutMs: number,
  clock: WaitClock = systemClock,
): Promise<ReloadReport | null> {
  const sentAt = clock.now();
  const sentMono = clock.monotonic();
  for (;;) {
    const r = readReloadReport(dataDir);
    if (r && r.pid === pid && r.at !== (before?.at ?? 0)) {
      const stepped = Math.abs(clock.now() - sentAt - (clock.monotonic() - sentMono)) > STEP_MS;
      if (r.at >= sentAt || stepped) return r;
    }
    if (clock.monotonic() - sentMono > timeoutMs) return null;
    await clock.sleep(50);
  }
}

/**
 * Whether `pid` is a running linli gateway. A pid file left by a power cut
 * may name a process that has nothing to do with us (SIGHUP would end most
 * daemons), so on Linux the command line must mention linli.
 */
export function isLinliProcess(pid: number): { ok: true } | { ok: false; reason: string } {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return { ok: false, reason: "not running" };
    // EPERM: it exists but belongs to another user; SIGHUP would fail the same way.
    return { ok: false, reason: `not signalable (${(err as NodeJS.ErrnoException).code})` };
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return { ok: true }; // no /proc (macOS): the liveness check is all we have
  }
  return /linli|gateway[/\\]cli\.js/.test(cmdline)
    ? { ok: true }
    : { ok: false, reason: `is not a linli gateway (${cmdline.trim().slice(0, 80)})` };
}
