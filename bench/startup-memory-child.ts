/**
 * One gateway start for bench/startup-memory.ts, alone in a fresh process started with the
 * gateway's own flags (STARTUP_NODE_FLAGS, MALLOC_ARENA_MAX=1, the run-time V8 flags): RSS right
 * after Gateway.start(), then once a second for `seconds` with no GC forced (what a site has),
 * then once settled (full GCs forced, `--expose-gc`: the figure a loaded machine reaches late).
 *
 * IPC, parent -> child: StartupMemoryCommand. child -> parent: StartupMemoryResult or { error }.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { Gateway } from "../gateway/gateway.js";
import { applyEdgeHeapSettings } from "../gateway/heap.js";
import { loadMallocTrim } from "../gateway/malloc-trim.js";
import { serveOneCommand } from "./one-command-child.js";
import { startupConfig } from "./startup-data.js";

export interface StartupMemoryCommand {
  dir: string;
  devices: number;
  seconds: number;
  /** false: the gateway never trims malloc (what it did before malloc-trim.ts). */
  trim: boolean;
}

export interface StartupMemoryResult {
  startMs: number;
  /** Right after the start, and at the end (DEVICE_LOST raised at start may come a little later). */
  openAlerts: number;
  openAlertsEnd: number;
  /** RSS, MB: right after Gateway.start() resolved, the most in `seconds`, and at the end. */
  rssAfterStart: number;
  rssPeak: number;
  rssEnd: number;
  /** RSS once a second after the start, MB (index 0: 1 s after). */
  rssEachSecond: number[];
  /**
   * RSS once settled, MB: after `seconds`, a full GC (what V8's memory reducer does some seconds
   * after a burst, later on a loaded machine), 5 s, a second full GC and 3 s (the trim after it).
   */
  rssSettled: number;
  /** Once settled (or at the end without --expose-gc), MB. */
  heapUsed: number;
  heapTotal: number;
  arrayBuffers: number;
  /**
   * The `[heap]` mapping's RSS in /proc/self/smaps, MB; NaN off Linux: malloc's main arena while
   * glibc grows it with brk (when brk cannot, the arena goes on in mmap: mallinfo2 tells then).
   */
  arena: number;
  /** Seconds after the start at which V8 ran a full GC. */
  fullGcsAt: number[];
  trim: ReturnType<Gateway["mallocTrimStats"]>;
  /** Each trim: seconds after the start, malloc's arena (RSS of `[heap]`) before and after, MB. */
  trims: { at: number; arenaBefore: number; arenaAfter: number; ms: number }[];
  /** glibc's mallinfo2() at the end, MB: the main arena's size, in use and free; null off glibc. */
  malloc: { arena: number; inUse: number; free: number; mmapped: number } | null;
}

/** mallinfo2() through koffi (glibc 2.33+), null elsewhere: the arena's use, without gdb. */
function mallinfo(): StartupMemoryResult["malloc"] {
  try {
    const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
    const fields = [
      "arena",
      "ordblks",
      "smblks",
      "hblks",
      "hblkhd",
      "usmblks",
      "fsmblks",
      "uordblks",
      "fordblks",
      "keepcost",
    ];
    const info = koffi.struct("mallinfo2_linli_bench", Object.fromEntries(fields.map((f) => [f, "size_t"])));
    const fn = koffi.load("libc.so.6").func("mallinfo2", info, []) as () => Record<string, number>;
    const m = fn();
    const v = (k: string) => mb(Number(m[k]));
    return { arena: v("arena"), inUse: v("uordblks"), free: v("fordblks"), mmapped: v("hblkhd") };
  } catch {
    return null;
  }
}

const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;

function arenaMb(): number {
  try {
    const smaps = readFileSync("/proc/self/smaps", "utf8");
    const at = smaps.indexOf("[heap]");
    if (at < 0) return 0;
    const m = /\nRss:\s+(\d+) kB/.exec(smaps.slice(at));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function run(cmd: StartupMemoryCommand): Promise<StartupMemoryResult> {
  const config = startupConfig(cmd.devices);
  const native = loadMallocTrim().trim;
  const trims: StartupMemoryResult["trims"] = [];
  let started = Number.NaN;
  const t0 = performance.now();
  const gw = await Gateway.start({
    config,
    dataDir: cmd.dir,
    // The gateway's own trim, with what it released around it (smaps is read outside its timing).
    mallocTrim:
      cmd.trim && native !== null
        ? () => {
            const at = Math.round((performance.now() - started) / 100) / 10;
            const arenaBefore = arenaMb();
            const t = performance.now();
            const released = native();
            const ms = Math.round((performance.now() - t) * 10) / 10;
            trims.push({ at, arenaBefore, arenaAfter: arenaMb(), ms });
            return released;
          }
        : null,
  });
  started = performance.now();
  const rssAfterStart = mb(process.memoryUsage().rss);
  const openAlerts = gw.engine.openCount;
  const fullGcsAt: number[] = [];
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
        fullGcsAt.push(Math.round((e.startTime - started) / 100) / 10);
  });
  gcs.observe({ entryTypes: ["gc"] });
  const rssEachSecond: number[] = [];
  for (let s = 0; s < cmd.seconds; s++) {
    await new Promise((r) => setTimeout(r, 1000));
    rssEachSecond.push(mb(process.memoryUsage().rss));
  }
  const rssEnd = mb(process.memoryUsage().rss);
  // Settled: the bench child runs with --expose-gc for this only (never during the seconds above).
  const gc = (globalThis as { gc?: () => void }).gc;
  let rssSettled = Number.NaN;
  if (gc) {
    gc();
    await new Promise((r) => setTimeout(r, 5_000));
    gc();
    await new Promise((r) => setTimeout(r, 3_000));
    rssSettled = mb(process.memoryUsage().rss);
  }
  gcs.disconnect();
  const m = process.memoryUsage();
  const result: StartupMemoryResult = {
    startMs: started - t0,
    openAlerts,
    openAlertsEnd: gw.engine.openCount,
    rssAfterStart,
    rssPeak: Math.max(rssAfterStart, ...rssEachSecond),
    rssEnd,
    rssSettled,
    rssEachSecond,
    heapUsed: mb(m.heapUsed),
    heapTotal: mb(m.heapTotal),
    arrayBuffers: mb(m.arrayBuffers),
    arena: arenaMb(),
    fullGcsAt,
    trim: gw.mallocTrimStats(),
    trims,
    malloc: mallinfo(),
  };
  await gw.stop();
  return result;
}

applyEdgeHeapSettings();
serveOneCommand("bench/startup-memory-child.js", "bench/startup-memory.js", run);
