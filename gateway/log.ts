/**
 * Logging: pino everywhere (JSON for machines, pretty for a human at a terminal),
 * plus a per-(key, reason) rate limiter so one babbling device cannot flood the log.
 */

import { createRequire } from "node:module";
import type { DestinationStream, Level, Logger as PinoLogger } from "pino";
import { pino } from "pino";
import { type Clock, systemClock } from "../core/index.js";

export type Logger = PinoLogger;
export type LogFormat = "json" | "pretty" | "auto";

export interface LoggerOptions {
  level?: Level | "silent";
  format?: LogFormat;
  /** Where lines go; default stdout. */
  destination?: DestinationStream | NodeJS.WritableStream;
}

/**
 * A resident's contact phone is personal data for the operator who calls: it
 * travels in alerts only. Should an object carrying it ever be logged (an
 * alert, a household's config), the value is replaced.
 */
export const REDACTED_PATHS = [
  "contactPhone",
  "*.contactPhone",
  "households[*].contactPhone",
  "*.households[*].contactPhone",
];
const redact = { paths: REDACTED_PATHS, censor: "[redacted]" };

/** pino-pretty (and its colour, date and JSON helpers) is loaded only for a pretty log: JSON logs never load it. */
const loadPretty = (): typeof import("pino-pretty") => createRequire(import.meta.url)("pino-pretty");

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "info";
  const format = opts.format ?? "auto";
  const dest = opts.destination;
  const tty = ((dest ?? process.stdout) as { isTTY?: boolean }).isTTY === true;
  const usePretty = format === "pretty" || (format === "auto" && tty);
  if (usePretty) {
    // In-process and synchronous (not a worker transport): works in any plain process,
    // and nothing is lost when the process exits right after logging.
    const stream = loadPretty()({
      sync: true,
      colorize: dest === undefined ? tty : false,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname",
      destination: dest ?? 1,
    });
    return pino({ level, redact }, stream);
  }
  if (dest !== undefined) return pino({ level, redact }, dest as DestinationStream);
  // Synchronous stdout, for the same flush-at-exit reason.
  return pino({ level, redact }, pino.destination({ dest: 1, sync: true }));
}

export interface RateLimitedLogOptions {
  /** Lines logged per (key, reason) per window; default 1. */
  perKeyPerWindow?: number;
  /** Default 60 s. */
  windowMs?: number;
  /** Bound on tracked (key, reason) pairs; default 10,000. */
  maxKeys?: number;
  clock?: Clock;
}

interface Entry {
  windowStart: number;
  logged: number;
  suppressed: number;
}

/**
 * Logs the first N lines per window for each (key, reason); the rest are counted and
 * reported as `suppressed: n` on the next line that gets through for that pair.
 *
 * Bounded: at most `maxKeys` pairs. Overflow policy: when full, the entry whose window
 * started longest ago is evicted (the Map is kept in window-start order by re-inserting
 * on every window reset, so this is O(1)); its pending suppressed count is lost and
 * added to `lostSuppressed`.
 */
export class RateLimitedLog {
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  /** Pairs evicted to respect maxKeys. */
  evictions = 0;
  /** Suppressed counts that were never reported because their pair was evicted. */
  lostSuppressed = 0;

  constructor(
    private readonly logger: Logger,
    opts: RateLimitedLogOptions = {},
  ) {
    this.perWindow = opts.perKeyPerWindow ?? 1;
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxKeys = Math.max(1, opts.maxKeys ?? 10_000);
    this.clock = opts.clock ?? systemClock;
  }

  /** Tracked (key, reason) pairs. */
  get size(): number {
    return this.entries.size;
  }

  /** Returns true if the line was written, false if suppressed. */
  warn(key: string, reason: string, obj: object, msg: string): boolean {
    return this.log("warn", key, reason, obj, msg);
  }

  info(key: string, reason: string, obj: object, msg: string): boolean {
    return this.log("info", key, reason, obj, msg);
  }

  /** Warn and info share one budget per (key, reason). */
  private log(level: "warn" | "info", key: string, reason: string, obj: object, msg: string): boolean {
    // Monotonic: a wall-clock step must not open or freeze a window.
    const now = this.clock.monotonic();
    const id = `${key}\u0000${reason}`;
    let e = this.entries.get(id);
    if (e === undefined) {
      if (this.entries.size >= this.maxKeys) this.evictOldest();
      e = { windowStart: now, logged: 0, suppressed: 0 };
      this.entries.set(id, e);
    } else if (now - e.windowStart >= this.windowMs) {
      e.windowStart = now;
      e.logged = 0;
      // Move to the back so the Map's first entry is always the oldest window.
      this.entries.delete(id);
      this.entries.set(id, e);
    }
    if (e.logged >= this.perWindow) {
      e.suppressed++;
      return false;
    }
    e.logged++;
    if (e.suppressed > 0) {
      const suppressed = e.suppressed;
      e.suppressed = 0;
      this.logger[level]({ ...obj, suppressed }, msg);
    } else {
      this.logger[level](obj, msg);
    }
    return true;
  }

  private evictOldest(): void {
    const first = this.entries.entries().next();
    if (first.done) return;
    const [id, e] = first.value;
    this.entries.delete(id);
    this.evictions++;
    this.lostSuppressed += e.suppressed;
  }
}
