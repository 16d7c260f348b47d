/**
 * Gives the memory glibc's malloc holds free back to the system after a full GC.
 *
 * Why: a burst of Buffers (the start's republish, escalations and DEVICE_LOST queued in aedes at
 * once: ~58,000 allocations of ~1 KB) grows malloc's arena; once they are freed, glibc returns
 * only the top of its heap, and a long-lived allocation above the freed space (a retained
 * payload made during the burst) keeps the rest. After an aged start 27 MB of a 55 MB arena sat
 * free 20 s later, and the edge budget (150 MB RSS) was missed by that (docs/durability.md,
 * "Start-up memory, fourth look"). `malloc_trim(0)` releases the free pages anywhere in the arena.
 *
 * When: a Buffer's memory goes back to malloc when V8 collects its object, which for the
 * survivors of a burst is a full GC (V8's memory reducer runs one some seconds after a burst).
 * So the trim follows a full GC (2 s after: V8 runs them in short series), at most once per
 * `minIntervalMs`: a burst of any kind is trimmed after, and a steady gateway, whose full GCs
 * are rare, trims rarely.
 *
 * Where: glibc on Linux, through koffi (an FFI package with prebuilt binaries; nothing is
 * compiled or downloaded at install). Elsewhere (musl, macOS, Windows, koffi absent) there is
 * nothing to trim this way and the trimmer does nothing.
 */
import { createRequire } from "node:module";
import { constants, PerformanceObserver } from "node:perf_hooks";

/** Returns malloc's free memory to the system; 1 if some was released, 0 if none. */
export type MallocTrim = () => number;

export interface MallocTrimStats {
  /** Whether this process can trim (glibc and koffi found). */
  supported: boolean;
  trims: number;
  /** Time spent in malloc_trim, ms: the last one and all of them. */
  lastMs: number;
  totalMs: number;
}

type Koffi = typeof import("koffi");

let loaded: { trim: MallocTrim | null; reason: string | null } | undefined;

/**
 * glibc's `malloc_trim(0)`, bound once; null where this process has none (the reason says why).
 */
export function loadMallocTrim(): { trim: MallocTrim | null; reason: string | null } {
  loaded ??= bind();
  return loaded;
}

function bind(): { trim: MallocTrim | null; reason: string | null } {
  if (process.platform !== "linux") return { trim: null, reason: `not Linux (${process.platform})` };
  try {
    const koffi = createRequire(import.meta.url)("koffi") as Koffi;
    // glibc's soname; musl has no libc.so.6 (and no malloc_trim): load() throws there.
    const libc = koffi.load("libc.so.6");
    const fn = libc.func("int malloc_trim(size_t pad)") as (pad: number) => number;
    return { trim: () => fn(0), reason: null };
  } catch (err) {
    return { trim: null, reason: (err as Error).message };
  }
}

export interface MallocTrimmerOptions {
  /** The trim (loadMallocTrim's, or a test's); null: nothing to do. */
  trim: MallocTrim | null;
  /** Fewest ms between two trims; default 10 s. */
  minIntervalMs?: number;
  /** From the first full GC of a series to the trim, ms; default 2 s. */
  delayMs?: number;
  /** Called after each trim (the gateway logs the first and counts all). */
  onTrim?: (ms: number, released: boolean) => void;
}

/** Trims `delayMs` after a full GC, at most every `minIntervalMs`; `start()` arms it, `stop()` disarms it. */
export class MallocTrimmer {
  private readonly trim: MallocTrim | null;
  private readonly minIntervalMs: number;
  private readonly delayMs: number;
  private readonly onTrim: ((ms: number, released: boolean) => void) | undefined;
  private observer: PerformanceObserver | null = null;
  private last = Number.NEGATIVE_INFINITY;
  private pending: NodeJS.Timeout | null = null;
  private readonly s: MallocTrimStats;

  constructor(o: MallocTrimmerOptions) {
    this.trim = o.trim;
    this.minIntervalMs = o.minIntervalMs ?? 10_000;
    this.delayMs = o.delayMs ?? 2_000;
    this.onTrim = o.onTrim;
    this.s = { supported: o.trim !== null, trims: 0, lastMs: 0, totalMs: 0 };
  }

  start(): void {
    if (this.trim === null || this.observer !== null) return;
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
          this.afterFullGc();
          return;
        }
    });
    this.observer.observe({ entryTypes: ["gc"] });
  }

  stop(): void {
    this.observer?.disconnect();
    this.observer = null;
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
  }

  stats(): MallocTrimStats {
    return { ...this.s };
  }

  private afterFullGc(): void {
    if (this.pending !== null || performance.now() - this.last < this.minIntervalMs) return;
    // V8's memory reducer runs its full GCs in a series (2-3 within ~1.5 s): trim after the last.
    this.pending = setTimeout(() => {
      this.pending = null;
      this.trimNow();
    }, this.delayMs);
    this.pending.unref();
  }

  private trimNow(): void {
    const trim = this.trim;
    if (trim === null) return;
    const t0 = performance.now();
    const released = trim() === 1;
    const ms = performance.now() - t0;
    this.last = performance.now();
    this.s.trims++;
    this.s.lastMs = ms;
    this.s.totalMs += ms;
    this.onTrim?.(ms, released);
  }
}
