/**
 * V8 heap settings for a small edge box (2 cores, little memory, months
 * unattended). Measured with `npm run bench` (docs/performance.md): with
 * Node's defaults the gateway with 10,000 devices grew from ~130 MB to
 * 160-280 MB RSS under load, and under 2x overload every few seconds a full
 * GC stopped it for 10-20 ms, which a P1 alert waited out.
 *
 * - `--max-semi-space-size=4` (MB): the young generation stays at 8 MB
 *   instead of growing to 32 MB; scavenges are more frequent but short
 *   (~0.5 ms). V8 reads it only at start-up, so it is on the CLI's shebang
 *   line, in `npm start` and in the bench's gateway process.
 * - `--no-allocation-site-pretenuring`: V8 otherwise learns, from a burst in
 *   which messages lived a little longer (a backlog), to allocate them
 *   directly in the old generation, where they then die by the thousand and
 *   force full GCs (with pretenuring 7 full GCs in a 10 s overload, without 0-2).
 * - `--heap-growing-percent=50`: after a full GC the old generation may grow
 *   by half its live size before the next one (V8 picks up to 4x on a fast
 *   machine), which is what bounds RSS under overload.
 *
 * The last two are read as the heap works, so `linli start` sets them before
 * it loads the configuration.
 *
 * Outside V8, glibc's malloc keeps an arena per thread that has allocated (the
 * event loop, libuv's pool, V8's helpers), each holding freed memory of its own.
 * `MALLOC_ARENA_MAX=1` puts them all in one: with 10,000 device connections and
 * the journal on, 149.5-152.0 MB RSS against 155.8-160.8 MB (3 runs each,
 * interleaved), and the same CPU per message at 10,000 msg/s (docs/performance.md
 * "Memory, fifth pass"). glibc reads it when the process starts, so it is in the
 * environment of every way the gateway is started: the CLI's `#!` line, `npm start`,
 * the systemd unit, the bench's gateway processes and those of the crash and hostile suites.
 */
import v8 from "node:v8";

/** Node flags that only take effect on the command line. */
export const STARTUP_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** Environment the gateway's process must start with (read by glibc at start-up). */
export const STARTUP_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_ARENA_MAX: "1" });

/** `process.env` with STARTUP_ENV on top: the environment for a gateway child process. */
export function startupEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, ...STARTUP_ENV };
}

/** V8 flags that take effect when set at run time. */
export const RUNTIME_V8_FLAGS: readonly string[] = [
  "--no-allocation-site-pretenuring",
  "--heap-growing-percent=50",
];

/** `--heap-growing-percent` outside a start: RUNTIME_V8_FLAGS' once applied, else 0 (V8 picks). */
let runningGrowingPercent = 0;
/** Gateway starts under way in this process (tests start several): the first sets, the last restores. */
let startsUnderWay = 0;
let currentGrowingPercent = 0;

function setGrowingPercent(percent: number): void {
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  currentGrowingPercent = percent;
}

/** Applies RUNTIME_V8_FLAGS to this process; call before the heap fills (before the config is loaded). */
export function applyEdgeHeapSettings(): void {
  for (const flag of RUNTIME_V8_FLAGS) {
    const m = /^--heap-growing-percent=(\d+)$/.exec(flag);
    if (m) {
      runningGrowingPercent = Number(m[1]);
      // A start under way keeps its own until it ends.
      if (startsUnderWay > 0) continue;
      currentGrowingPercent = runningGrowingPercent;
    }
    v8.setFlagsFromString(flag);
  }
}

/**
 * The old generation's growth per full GC while a start restores and republishes its state, %.
 * A start allocates its state (60-75 MB of heap after an aged one) in a burst, between the
 * republication's and the first timers' short-lived messages: growing by half the live heap at
 * each full GC (the running figure), V8 committed 85-92 MB at the start's peak for 60-65 MB live,
 * and malloc's arena grew with the Buffers those GCs freed late. By a tenth, the full GCs come
 * more often while the state is built and the peak is the state plus little (docs/durability.md,
 * "Start-up memory, fifth look"). V8 reads the flag each time it sets the next limit.
 */
export const START_HEAP_GROWING_PERCENT = 10;

/**
 * How long after `Gateway.start()` resolves the start's growth stays: the first wheel ticks after
 * an aged start raise their bursts (5,000 DEVICE_LOST, call windows ending) 1-6 s after it.
 */
export const START_HEAP_HOLD_MS = 15_000;

/**
 * A start that restored fewer alerts and devices than this ends the start's growth as soon as it
 * resolves: it has no restored state to republish and no silent devices to time out in a burst,
 * and the 10 % growth would only add full GCs to its first seconds of traffic (the bench's points,
 * a new site's first minutes).
 */
export const START_HEAP_MIN_RESTORED = 1_000;

/** Whether a start that restored `alerts` and `devices` keeps the start's growth for START_HEAP_HOLD_MS. */
export function holdsStartHeap(restored: { alerts: number; devices: number } | null): boolean {
  return restored !== null && restored.alerts + restored.devices >= START_HEAP_MIN_RESTORED;
}

/** The `--heap-growing-percent` this module last set (0: V8's own choice). */
export function heapGrowingPercent(): number {
  return currentGrowingPercent;
}

/**
 * Sets START_HEAP_GROWING_PERCENT for a start; the returned function ends it (once; later calls
 * do nothing), and the last start to end puts the running figure back.
 */
export function beginStartHeap(): () => void {
  if (startsUnderWay++ === 0) setGrowingPercent(START_HEAP_GROWING_PERCENT);
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    if (--startsUnderWay === 0) setGrowingPercent(runningGrowingPercent);
  };
}

/**
 * A worker thread's young generation, in MB of semi-space (its young generation is twice that).
 * V8 sizes every isolate's young generation from the process's `--max-semi-space-size`, which
 * wins over a Worker's `resourceLimits`, and reads it when the isolate is created. The device
 * listener's worker keeps little that lives (a connection's objects; a packet dies with its
 * turn): a 2 MB young generation instead of 8 MB is ~6 MB less RSS (bench/connections.ts).
 */
export const WORKER_SEMI_SPACE_MB = 1;

/** The process's own `--max-semi-space-size` (command line or NODE_OPTIONS), or 0: V8's default. */
function processSemiSpaceMb(): number {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
  let mb = 0;
  for (const a of args) {
    const m = /^--max-semi-space-size=(\d+)$/.exec(a);
    if (m) mb = Number(m[1]);
  }
  return mb;
}

/**
 * Creates a worker thread whose isolate gets WORKER_SEMI_SPACE_MB: the flag is lowered around
 * the creation and the process's value restored once `created` settles (the worker's first
 * message: its isolate exists before any of its code runs). The main isolate's own size was
 * fixed when it was created and does not change.
 */
export function withWorkerSemiSpace<T>(create: () => T, created: (worker: T) => Promise<unknown>): T {
  v8.setFlagsFromString(`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`);
  let worker: T;
  try {
    worker = create();
  } catch (err) {
    v8.setFlagsFromString(`--max-semi-space-size=${processSemiSpaceMb()}`);
    throw err;
  }
  const restore = () => v8.setFlagsFromString(`--max-semi-space-size=${processSemiSpaceMb()}`);
  created(worker).then(restore, restore);
  return worker;
}
