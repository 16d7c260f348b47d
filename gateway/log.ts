/**
 * Logging: pino everywhere (JSON for machines, pretty for a human at a terminal),
 * plus a per-(key, reason) rate limiter so one babbling device cannot flood the log.
 */

import { createRequire } from "node:module";
import type { DestinationStream, Level, Logger as PinoLogger } from "pino";
import { pino } from "pino";
import { type Clock, systemClock } from "../core/index.js";
import { redactContactPhones } from "./log-redact.js";

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
 * alert, a household's config), the value is replaced (log-redact.ts: by hand,
 * not pino's `redact`, which measured as the main thread's largest allocation).
 * Child loggers' bindings go through the same.
 */
const formatters = { log: redactContactPhones, bindings: redactContactPhones };

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
    return pino({ level, formatters }, stream);
  }
  if (dest !== undefined) return pino({ level, formatters }, dest as DestinationStream);
  // Synchronous stdout, for the same flush-at-exit reason.
  return pino({ level, formatters }, pino.destination({ dest: 1, sync: true }));
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
  key: string;
  reason: string;
  windowStart: number;
  logged: number;
  suppressed: number;
}

/**
 * Logs the first N lines per window for each (key, reason); the rest are counted and
 * reported as `suppressed: n` on the next line that gets through for that pair.
 *
 * A caller whose line is costly to build (an object, a formatted detail) asks `allows`
 * first and builds it only on a yes: under a flood of bad input nearly every line is
 * suppressed, and a suppressed line then allocates nothing (the pair is looked up by key,
 * then reason: no joined string per call).
 *
 * Bounded: at most `maxKeys` pairs. Overflow policy: when full, the entry whose window
 * started longest ago is evicted (`order` is kept in window-start order by re-inserting
 * on every window reset, so this is O(1)); its pending suppressed count is lost and
 * added to `lostSuppressed`.
 */
export class RateLimitedLog {
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly clock: Clock;
  /** key -> reason -> entry. */
  private readonly entries = new Map<string, Map<string, Entry>>();
  /** Every entry, oldest window first. */
  private readonly order = new Set<Entry>();
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
    return this.order.size;
  }

  /**
   * Whether a line for (key, reason) would be written now. A no counts the line as
   * suppressed (reported on the next line that gets through), so a caller that asks
   * and then builds and logs only on a yes reports exactly what `warn` alone would.
   */
  allows(key: string, reason: string): boolean {
    const e = this.entryFor(key, reason);
    if (e.logged >= this.perWindow) {
      e.suppressed++;
      return false;
    }
    return true;
  }

  /** Returns true if the line was written, false if suppressed. */
  warn(key: string, reason: string, obj: object, msg: string): boolean {
    return this.log("warn", key, reason, obj, msg);
  }

  info(key: string, reason: string, obj: object, msg: string): boolean {
    return this.log("info", key, reason, obj, msg);
  }

  /** For what must not happen (a P1 message lost); the same budget per (key, reason). */
  error(key: string, reason: string, obj: object, msg: string): boolean {
    return this.log("error", key, reason, obj, msg);
  }

  /** Warn and info share one budget per (key, reason). */
  private log(
    level: "error" | "warn" | "info",
    key: string,
    reason: string,
    obj: object,
    msg: string,
  ): boolean {
    const e = this.entryFor(key, reason);
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

  /** The pair's entry, its window opened anew if the last one is over. */
  private entryFor(key: string, reason: string): Entry {
    // Monotonic: a wall-clock step must not open or freeze a window.
    const now = this.clock.monotonic();
    let reasons = this.entries.get(key);
    let e = reasons?.get(reason);
    if (e === undefined) {
      if (this.order.size >= this.maxKeys) {
        this.evictOldest();
        reasons = this.entries.get(key);
      }
      if (reasons === undefined) {
        reasons = new Map();
        this.entries.set(key, reasons);
      }
      e = { key, reason, windowStart: now, logged: 0, suppressed: 0 };
      reasons.set(reason, e);
      this.order.add(e);
    } else if (now - e.windowStart >= this.windowMs) {
      e.windowStart = now;
      e.logged = 0;
      // Move to the back so the first entry of `order` is always the oldest window.
      this.order.delete(e);
      this.order.add(e);
    }
    return e;
  }

  private evictOldest(): void {
    const first = this.order.values().next();
    if (first.done) return;
    const e = first.value;
    this.order.delete(e);
    const reasons = this.entries.get(e.key);
    reasons?.delete(e.reason);
    if (reasons?.size === 0) this.entries.delete(e.key);
    this.evictions++;
    this.lostSuppressed += e.suppressed;
  }
}
