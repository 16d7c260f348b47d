/**
 * The system under test, alone in its own process (forked by bench/harness.ts),
 * so that its CPU and RSS are its own and the load generator never shares its
 * event loop.
 *
 *   node dist/bench/server.js        (IPC only; the parent sends `start`)
 *
 * Modes:
 *   baseline  a plain embedded aedes broker, the same TCP_NODELAY listener
 *             settings as the gateway, no authentication hooks, no gateway logic
 *   gateway   Gateway.start() with the load devices plus idle filler devices
 *             up to `registered` (the 10,000 registered devices); the
 *             journal off, or on (sync "batch" unless told) in `dataDir` when one is given
 *   floor     the least a server can do for a gateway point (bench/floor.ts, a
 *             measurement harness): one thread, MQTT read by hand, each
 *             uplink forwarded at once in the gateway's topic shapes
 *   inline, worker-pipeline, worker-io
 *             the designs of `npm run bench:cores` (bench/split/servers.ts, a
 *             measurement harness): a stand-in pipeline in one thread, or split
 *             over two threads with SharedArrayBuffer rings
 *
 * IPC, parent -> child: start, cpu-start, cpu-end, sample, stop.
 * child -> parent: ready {port}, sample {...}, stopped, error {message}.
 * The child exits when the parent goes away (IPC disconnect), so a crashed
 * runner never leaves a broker listening.
 */
// First: mqtt-packet must find the quiet `debug` (gateway/broker/quiet-debug.ts).
import "../gateway/broker/quiet-debug.js";
import { readdirSync, readFileSync } from "node:fs";
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from "node:perf_hooks";
import { Aedes } from "aedes";
import { validateConfig } from "../gateway/config/load.js";
import { configSchema } from "../gateway/config/schema.js";
import { Gateway } from "../gateway/gateway.js";
import { applyEdgeHeapSettings } from "../gateway/heap.js";
import { LATENCY_BUCKETS_SECONDS } from "../gateway/metrics/latency.js";
import { LANE_NAMES } from "../gateway/metrics/metrics.js";
import { startFloor } from "./floor.js";
import { listen, type SplitMode, type SplitRunning, startSplit } from "./split/servers.js";
import { threadCpuMs } from "./split/stand-in.js";

export type ServerMode = "baseline" | "gateway" | "floor" | SplitMode;

export interface ServerDevice {
  id: string;
  model: "ec200" | "ds10";
  password: string;
}

export interface StartCommand {
  cmd: "start";
  mode: ServerMode;
  devices: ServerDevice[];
  /** Devices registered in the gateway config (load devices + idle fillers). */
  registered: number;
  site: string;
  operator: { name: string; password: string };
  logLevel: "info" | "warn" | "error" | "silent";
  /** Gateway mode: the journal on, in this (fresh, empty) directory; absent: `storage.enabled: false`. */
  dataDir?: string;
  /** With dataDir: where the journal's write(2) runs (the earlier design: "loop"). */
  journalWrites?: "auto" | "pool" | "loop";
  /** With dataDir: storage.sync (default "batch", the gateway's default). */
  journalSync?: "batch" | "interval" | "always";
  /** Gateway mode: devices on the device listener (a worker thread), the subscriber on the main listener. */
  deviceListener?: boolean;
}

export type ParentMessage =
  | StartCommand
  | { cmd: "cpu-start" }
  | { cmd: "cpu-end" }
  | { cmd: "sample" }
  | { cmd: "stop" };

export interface LaneFigures {
  processed: number;
  conflated: number;
  refused: number;
  highWater: number;
  capacity: number;
}

export interface ServerSample {
  /** Set by the runner when the server died during the point (its figures are then zeros). */
  crashed?: string;
  /** CPU between cpu-start and cpu-end, % of one core. */
  cpuPct: number;
  cpuWindowMs: number;
  rssMb: number;
  /** RSS once started (gateway: 10,000 devices registered), before any load. */
  readyRssMb: number;
  /** Peak RSS of the process's life (getrusage maxrss). */
  maxRssMb: number;
  heapUsedMb: number;
  /**
   * Involuntary context switches of the event-loop thread over the CPU window, per second
   * (Linux, /proc; null elsewhere): how often another thread took its core while it was running.
   * Each can hold a P1 for up to a scheduler slice (ms), which decides a p99 of a few hundred alerts.
   */
  loopPreemptedPerS: number | null;
  /**
   * Time runnable but waiting for a core, % of the CPU window (Linux schedstat; null elsewhere):
   * of the event-loop thread, and of the process's other thread that ran the most (the device
   * listener's worker in the gateway). A P1 crossing a thread waits this way at each hop.
   */
  runqueueWaitPct: { main: number; busiestOther: number } | null;
  /** Event-loop delay over the CPU window, ms. */
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /**
   * Longest queue in aedes' mqemitter (sampled every 20 ms over the CPU window): messages
   * emitted but not yet delivered, beyond its concurrency of 100. A FIFO shared by every
   * topic, so a P1 alert waits behind all telemetry queued before it.
   */
  emitterQueueMax: number;
  /**
   * Garbage collections over the CPU window: scavenges, full (mark-compact) GCs, longest pause, and
   * the scavenges' pauses added up (a message that arrives during one waits for its end).
   */
  gc: { minor: number; major: number; maxPauseMs: number; minorPauseMs: number };
  /** heapTotal and external (Buffers) when RSS peaked during the CPU window, MB. */
  peakHeapTotalMb: number;
  peakExternalMb: number;
  /**
   * Split designs only: CPU of the main thread, of the worker thread, and of the process's
   * other threads (GC helpers, libuv pool), % of one core over the CPU window (10 ms ticks);
   * records that waited for ring space.
   */
  threads?: { mainPct: number; workerPct: number | null; otherPct: number; held: number };
  /** Gateway mode only. */
  gateway?: {
    registered: number;
    /**
     * The gateway's own P1 lane histogram over the CPU window (`linli_processing_latency_seconds`,
     * main thread: a press taken in, to its alert handled): how many, and how many within 5 / 10 ms.
     * What the bench measures beyond that is the device listener's worker, the kernel and the runner.
     */
    p1Handled: { count: number; within5Ms: number; within10Ms: number };
    p1: LaneFigures;
    alert: LaneFigures;
    telemetry: LaneFigures;
    parked: number;
    consumerErrors: number;
    rejections: Record<string, Record<string, number>>;
    openAlerts: number;
    /** The journal's counters since open; null when it is off. */
    journal: {
      records: number;
      syncs: number;
      lastSyncMs: number;
      /** Writes on the libuv pool, and a P1's writes on the event loop: all, 1 ms or more, longest. */
      poolWrites: number;
      idleLoopWrites: number;
      urgentWrites: number;
      urgentWritesSlow: number;
      urgentWriteMaxMs: number;
      bytesOnDisk: number;
      segments: number;
      compactions: number;
      writeErrors: number;
      degraded: boolean;
    } | null;
  };
}

export type ChildMessage =
  | { ev: "ready"; port: number; northPort?: number; registered: number; rssMb: number }
  | ({ ev: "sample" } & ServerSample)
  | { ev: "stopped" }
  | { ev: "error"; message: string };

function send(msg: ChildMessage): void {
  process.send?.(msg);
}

interface Running {
  stop(): Promise<void>;
  /** aedes' internal emitter (mqemitter), whose FIFO queue is sampled; null: no broker (the floor). */
  aedes: Aedes | null;
  gateway: Gateway | null;
  registered: number;
  split?: SplitRunning;
  /** Where the subscriber connects when it is not the devices' port. */
  northPort?: number;
}

async function startBaseline(): Promise<Running & { port: number }> {
  // Same broker options and listener settings as gateway/broker/embedded.ts, nothing else.
  const aedes = await Aedes.createBroker({ heartbeatInterval: 60_000, connectTimeout: 10_000 });
  const { server, sockets, port } = await listen(aedes);
  return {
    port,
    aedes,
    gateway: null,
    registered: 0,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

async function startSplitMode(mode: SplitMode, site: string): Promise<Running & { port: number }> {
  const split = await startSplit(mode, site);
  return {
    port: split.port,
    aedes: split.aedes,
    gateway: null,
    registered: 0,
    split,
    stop: () => split.stop(),
  };
}

async function startFloorMode(site: string): Promise<Running & { port: number }> {
  const floor = await startFloor(site);
  return { port: floor.port, aedes: null, gateway: null, registered: 0, stop: () => floor.stop() };
}

function fillerDevices(load: readonly ServerDevice[], registered: number): ServerDevice[] {
  const out: ServerDevice[] = [];
  for (let i = 0; out.length + load.length < registered; i++) {
    const model = i % 2 === 0 ? "ec200" : "ds10";
    const id = `idle-${model}-${String(i + 1).padStart(5, "0")}`;
    out.push({ id, model, password: `idle-${i}` });
  }
  return out;
}

async function startGateway(cmd: StartCommand): Promise<Running & { port: number }> {
  const devices = [...cmd.devices, ...fillerDevices(cmd.devices, cmd.registered)];
  const config = validateConfig(
    {
      site: { id: cmd.site },
      mqtt: {
        listeners: [{ host: "127.0.0.1", port: 0 }],
        ...(cmd.deviceListener ? { deviceListener: { host: "127.0.0.1", port: 0 } } : {}),
      },
      operators: [cmd.operator],
      devices: devices.map((d) => ({ id: d.id, model: d.model, password: d.password })),
      log: { level: cmd.logLevel, format: "json" },
      storage:
        cmd.dataDir === undefined ? { enabled: false } : { enabled: true, sync: cmd.journalSync ?? "batch" },
      // The metrics endpoint stays on (its hot-path cost is part of the gateway), on a free port.
      ...("metrics" in configSchema.shape ? { metrics: { host: "127.0.0.1", port: 0 } } : {}),
      // The generator sends each device's messages far faster than its datasheet rate (the bench
      // measures throughput, not one device's allowance): the per-device rate limit is off.
      ...("limits" in configSchema.shape ? { limits: { deviceRate: { enabled: false } } } : {}),
    },
    "<bench>",
  );
  const gw = await Gateway.start({
    config,
    ...(cmd.dataDir === undefined ? {} : { dataDir: cmd.dataDir }),
    ...(cmd.journalWrites === undefined ? {} : { journalWrites: cmd.journalWrites }),
  });
  return {
    port: gw.broker.deviceListenerPort ?? gw.mqttPort,
    ...(gw.broker.deviceListenerPort === null ? {} : { northPort: gw.mqttPort }),
    aedes: gw.broker.aedes,
    gateway: gw,
    registered: devices.length,
    stop: () => gw.stop(),
  };
}

function lane(l: {
  processed: number;
  conflated: number;
  refused: number;
  highWater: number;
  capacity: number;
}): LaneFigures {
  return {
    processed: l.processed,
    conflated: l.conflated,
    refused: l.refused,
    highWater: l.highWater,
    capacity: l.capacity,
  };
}

let running: Running | null = null;
let readyRssMb = 0;
let emitterQueueMax = 0;
const gc = { minor: 0, major: 0, maxPauseMs: 0, minorPauseMs: 0 };
const memPeak = { rss: 0, heapTotal: 0, external: 0 };
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    else if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
      gc.minor++;
      gc.minorPauseMs += e.duration;
    }
    gc.maxPauseMs = Math.max(gc.maxPauseMs, e.duration);
  }
});
let queueTimer: NodeJS.Timeout | undefined;
function emitterQueue(): number {
  return (running?.aedes as unknown as { mq?: { length?: number } } | undefined)?.mq?.length ?? 0;
}
const eld = monitorEventLoopDelay({ resolution: 1 });
interface CpuMark {
  cpu: NodeJS.CpuUsage;
  wall: number;
  /** Split designs: main and worker thread CPU, ms. */
  main: number;
  /** Involuntary context switches of the main thread so far (null: not Linux). */
  preempted: number | null;
  worker: number;
  /** The gateway's P1 lane so far: handled, within 5 ms, within 10 ms. */
  p1Handled: [number, number, number];
  /** Per thread id: [ns on a core, ns runnable waiting for one] (null: no schedstat). */
  sched: Map<number, [number, number]> | null;
}
let cpuStart: CpuMark | null = null;
let cpuEnd: CpuMark | null = null;
function cpuMark(): CpuMark {
  const t = running?.split?.threads;
  return {
    cpu: process.cpuUsage(),
    wall: performance.now(),
    // The gateway's main thread is the process's first (tid = pid): with the device listener, the
    // worker's CPU is the rest.
    main: t ? threadCpuMs(t.main) : running?.gateway ? threadCpuMs(process.pid) : 0,
    worker: t?.worker ? threadCpuMs(t.worker) : 0,
    preempted: mainThreadPreemptions(),
    p1Handled: p1HandledSoFar(),
    sched: schedStats(),
  };
}

/** /proc/self/task/<tid>/schedstat of every thread: time on a core and time waiting for one (ns). */
function schedStats(): Map<number, [number, number]> | null {
  try {
    const out = new Map<number, [number, number]>();
    for (const tid of readdirSync("/proc/self/task")) {
      try {
        const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ");
        out.set(Number(tid), [Number(run), Number(wait)]);
      } catch {
        // The thread ended meanwhile, or the kernel keeps no schedstat.
      }
    }
    return out.size > 0 ? out : null;
  } catch {
    return null;
  }
}

function runqueueWaitPct(start: CpuMark, end: CpuMark, wallMs: number): ServerSample["runqueueWaitPct"] {
  if (start.sched === null || end.sched === null || wallMs <= 0) return null;
  const pct = (ns: number) => ns / 1e4 / wallMs;
  let main = 0;
  let busiestRun = -1;
  let busiestWait = 0;
  for (const [tid, [run, wait]] of end.sched) {
    const [run0, wait0] = start.sched.get(tid) ?? [0, 0];
    if (tid === process.pid) main = wait - wait0;
    else if (run - run0 > busiestRun) {
      busiestRun = run - run0;
      busiestWait = wait - wait0;
    }
  }
  return { main: pct(main), busiestOther: pct(busiestWait) };
}

const WITHIN_5_MS = LATENCY_BUCKETS_SECONDS.indexOf(0.005);
const WITHIN_10_MS = LATENCY_BUCKETS_SECONDS.indexOf(0.01);
function p1HandledSoFar(): [number, number, number] {
  const gw = running?.gateway;
  if (!gw) return [0, 0, 0];
  const l = gw.metrics.latency.lane(LANE_NAMES.indexOf("p1"));
  return [l.count, l.cumulative[WITHIN_5_MS] as number, l.cumulative[WITHIN_10_MS] as number];
}

/** The main thread's nonvoluntary_ctxt_switches (its tid is the pid), or null off Linux. */
function mainThreadPreemptions(): number | null {
  try {
    const status = readFileSync(`/proc/self/task/${process.pid}/status`, "utf8");
    const m = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function sample(): ServerSample {
  const end = cpuEnd ?? cpuMark();
  const start = cpuStart ?? end;
  const cpuUs = end.cpu.user - start.cpu.user + (end.cpu.system - start.cpu.system);
  const wallMs = end.wall - start.wall;
  const mem = process.memoryUsage();
  const out: ServerSample = {
    cpuPct: wallMs > 0 ? cpuUs / 10 / wallMs : 0,
    cpuWindowMs: wallMs,
    rssMb: mem.rss / 1048576,
    readyRssMb,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    heapUsedMb: mem.heapUsed / 1048576,
    loopPreemptedPerS:
      end.preempted !== null && start.preempted !== null && wallMs > 0
        ? ((end.preempted - start.preempted) * 1000) / wallMs
        : null,
    runqueueWaitPct: runqueueWaitPct(start, end, wallMs),
    eventLoopP99Ms: eld.count > 0 ? eld.percentile(99) / 1e6 : 0,
    eventLoopMaxMs: eld.count > 0 ? eld.max / 1e6 : 0,
    emitterQueueMax,
    gc: { ...gc },
    peakHeapTotalMb: memPeak.heapTotal / 1048576,
    peakExternalMb: memPeak.external / 1048576,
  };
  const split = running?.split;
  if (split && wallMs > 0) {
    const mainPct = ((end.main - start.main) / wallMs) * 100;
    const workerPct = split.threads.worker ? ((end.worker - start.worker) / wallMs) * 100 : null;
    out.threads = {
      mainPct,
      workerPct,
      otherPct: Math.max(0, out.cpuPct - mainPct - (workerPct ?? 0)),
      held: split.held(),
    };
  } else if (running?.gateway && wallMs > 0) {
    const mainPct = ((end.main - start.main) / wallMs) * 100;
    out.threads = { mainPct, workerPct: null, otherPct: Math.max(0, out.cpuPct - mainPct), held: 0 };
  }
  const gw = running?.gateway;
  if (gw) {
    const s = gw.stats();
    const j = gw.journalStats();
    out.gateway = {
      registered: running?.registered ?? 0,
      p1Handled: {
        count: end.p1Handled[0] - start.p1Handled[0],
        within5Ms: end.p1Handled[1] - start.p1Handled[1],
        within10Ms: end.p1Handled[2] - start.p1Handled[2],
      },
      p1: lane(s.pipeline.p1),
      alert: lane(s.pipeline.alert),
      // The device listener's worker conflates too, before the lanes (its telemetry ring full).
      telemetry: lane({
        ...s.pipeline.telemetry,
        // Readings the gateway reports as not delivered: conflated in its lanes or its device
        // listener's worker, or dropped for the subscriber that fell too far behind.
        conflated:
          s.pipeline.telemetry.conflated +
          (s.deviceListener?.telemetryConflated ?? 0) +
          s.slowSubscribers.dropped,
      }),
      parked: s.parked,
      consumerErrors: s.pipeline.consumerErrors,
      rejections: s.counters.rejections,
      openAlerts: s.openAlerts,
      journal: j && {
        records: j.records,
        syncs: j.syncs,
        lastSyncMs: j.lastSyncMs,
        poolWrites: j.poolWrites,
        idleLoopWrites: j.idleLoopWrites,
        urgentWrites: j.urgentWrites,
        urgentWritesSlow: j.urgentWritesSlow,
        urgentWriteMaxMs: j.urgentWriteMaxMs,
        bytesOnDisk: j.bytesOnDisk,
        segments: j.segments,
        compactions: j.compactions,
        writeErrors: j.writeErrors,
        degraded: j.degraded,
      },
    };
  }
  return out;
}

async function stopAndExit(code: number): Promise<never> {
  const r = running;
  running = null;
  clearInterval(queueTimer);
  // A gateway that cannot stop within 5 s must not keep the bench hanging.
  const guard = setTimeout(() => process.exit(code || 1), 5_000);
  try {
    await r?.stop();
  } catch (err) {
    send({ ev: "error", message: `stop failed: ${(err as Error).message}` });
  }
  clearTimeout(guard);
  send({ ev: "stopped" });
  // process.exit() still writes a --cpu-prof profile.
  process.exit(code);
}

// As `linli start` runs (gateway/heap.ts); the baseline broker too, so both sides share one VM setup.
applyEdgeHeapSettings();
process.on("disconnect", () => void stopAndExit(0));
process.on("message", (raw: ParentMessage) => {
  switch (raw.cmd) {
    case "start":
      void (
        raw.mode === "baseline"
          ? startBaseline()
          : raw.mode === "gateway"
            ? startGateway(raw)
            : raw.mode === "floor"
              ? startFloorMode(raw.site)
              : startSplitMode(raw.mode, raw.site)
      ).then(
        (r) => {
          running = r;
          readyRssMb = process.memoryUsage().rss / 1048576;
          send({
            ev: "ready",
            port: r.port,
            ...(r.split ? { northPort: r.split.northPort } : r.northPort ? { northPort: r.northPort } : {}),
            registered: r.registered,
            rssMb: readyRssMb,
          });
        },
        (err: unknown) => {
          send({ ev: "error", message: `start failed: ${(err as Error).stack ?? String(err)}` });
          process.exit(1);
        },
      );
      break;
    case "cpu-start":
      eld.reset();
      eld.enable();
      cpuStart = cpuMark();
      cpuEnd = null;
      emitterQueueMax = 0;
      Object.assign(gc, { minor: 0, major: 0, maxPauseMs: 0, minorPauseMs: 0 });
      Object.assign(memPeak, { rss: 0, heapTotal: 0, external: 0 });
      gcObserver.observe({ entryTypes: ["gc"] });
      clearInterval(queueTimer);
      queueTimer = setInterval(() => {
        emitterQueueMax = Math.max(emitterQueueMax, emitterQueue());
        // RSS alone is cheap; the whole memoryUsage() walks the heap's spaces (0.9 % of the
        // measured process's main thread at 30,000 msg/s, every 20 ms): only at a new peak.
        if (process.memoryUsage.rss() > memPeak.rss) {
          const m = process.memoryUsage();
          Object.assign(memPeak, { rss: m.rss, heapTotal: m.heapTotal, external: m.external });
        }
      }, 20);
      break;
    case "cpu-end":
      cpuEnd = cpuMark();
      eld.disable();
      gcObserver.disconnect();
      clearInterval(queueTimer);
      break;
    case "sample":
      send({ ev: "sample", ...sample() });
      break;
    case "stop":
      void stopAndExit(0);
      break;
  }
});

if (!process.send) {
  process.stderr.write("bench/server.js is started by bench/run.js (it needs an IPC channel)\n");
  process.exit(2);
}
