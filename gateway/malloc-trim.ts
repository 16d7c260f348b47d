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
 * So the trim follows a series of full GCs (2 s after its last): a burst of any kind is trimmed
 * after, and a steady gateway, whose full GCs are rare, trims rarely. A trim costs far less than
 * the full GCs before it (0.2-0.4 ms on a settled arena, 5-15 ms after an aged start's burst,
 * up to 50 ms on a machine loaded 5x over: docs/durability.md).
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
  /** From the last full GC of a series to the trim, ms; default 2 s. */
  delayMs?: number;
  /** From the first full GC of a series to the trim at the latest, ms; default 10 s. */
  maxDelayMs?: number;
  /** Called after each trim (the gateway logs them). */
  onTrim?: (ms: number, released: boolean) => void;
}

/**
 * Trims `delayMs` after the last of a series of full GCs (each one moves the trim later, up to
 * `maxDelayMs` after the first): once per series. `start()` arms it, `stop()` disarms it.
 */
export class MallocTrimmer {
  private readonly trim: MallocTrim | null;
  private readonly delayMs: number;
  private readonly maxDelayMs: number;
  private readonly onTrim: ((ms: number, released: boolean) => void) | undefined;
  private observer: PerformanceObserver | null = null;
  private pending: NodeJS.Timeout | null = null;
  private seriesStart = 0;
  private readonly s: MallocTrimStats;

  constructor(o: MallocTrimmerOptions) {
    this.trim = o.trim;
    this.delayMs = o.delayMs ?? 2_000;
    this.maxDelayMs = Math.max(this.delayMs, o.maxDelayMs ?? 10_000);
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
    const now = performance.now();
    if (this.pending === null) this.seriesStart = now;
    else clearTimeout(this.pending);
    // V8 runs full GCs in series (its memory reducer 2-3 within ~1.5 s): the trim follows the last.
    const at = Math.min(now + this.delayMs, this.seriesStart + this.maxDelayMs);
    this.pending = setTimeout(() => {
      this.pending = null;
      this.trimNow();
    }, at - now);
    this.pending.unref();
  }

  private trimNow(): void {
    const trim = this.trim;
    if (trim === null) return;
    const t0 = performance.now();
    const released = trim() === 1;
    const ms = performance.now() - t0;
    this.s.trims++;
    this.s.lastMs = ms;
    this.s.totalMs += ms;
    this.onTrim?.(ms, released);
  }
}
