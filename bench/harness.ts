/**
 * What every scenario shares: the server under test in a child process, the
 * open-loop load (sim/mqtt/load.ts), one subscriber, and the accounting that
 * matches every message that came out against the one that went in.
 *
 * Process layout on the 2-core machine: the child (broker or gateway) has a
 * core to itself; this process runs the load generator and the subscriber,
 * so send and receive times come from the same clock
 * (`performance.timeOrigin + performance.now()`).
 *
 * Message identity is (deviceId, seq):
 * - baseline: the subscriber sees the device payloads and reads `seq`;
 * - gateway telemetry carries `deviceTime` (the device's `ts`, epoch ms) but not
 *   `seq`. The generator stamps `ts = floor(send time)`, so each (deviceId, ts)
 *   names the few messages that one device sent within one millisecond; they are
 *   matched in seq order, a bucket receiving more than it was sent counts
 *   duplicates, fewer counts losses.
 * - gateway alerts: every press publishes the device's EMERGENCY_CALL alert
 *   with `count` + 1 (one open alert per device for the whole point, no operator
 *   acknowledges), so update `count = k` is the device's k-th press.
 * Latency is receive time minus the send time of the matched message, in
 * microseconds (hdr-histogram-js, 3 significant digits). Messages sent during
 * the warm-up are accounted for but left out of the histograms.
 */
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import hdr from "hdr-histogram-js";
import type { MqttClient } from "mqtt";
import { STARTUP_NODE_FLAGS } from "../gateway/heap.js";
import { createDeviceClient, endClient } from "../sim/mqtt/link.js";
import { type LoadDevice, LoadGenerator, type LoadReport, loadDevices } from "../sim/mqtt/load.js";
import type { CommonOptions } from "./options.js";
import type { ChildMessage, ParentMessage, ServerMode, ServerSample, StartCommand } from "./server.js";

export const SITE = "bench";
const OPERATOR = { name: "bench-operator", password: "bench-operator-pass" };

// ---------------------------------------------------------------- child process

const children = new Set<ChildProcess>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // Whatever happens to the runner, no child is left behind.
  process.on("exit", () => {
    for (const c of children) c.kill("SIGKILL");
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      for (const c of children) c.kill("SIGKILL");
      process.exit(130);
    });
  }
}

export interface ServerOptions {
  mode: ServerMode;
  devices: readonly LoadDevice[];
  registered: number;
  /** Directory for `node --cpu-prof` of the child, if profiling. */
  cpuProfDir?: string;
  logLevel?: StartCommand["logLevel"];
  /** Gateway mode: the journal on, in this directory. */
  dataDir?: string;
}

export class ServerProcess {
  private waiters: Array<{ ev: ChildMessage["ev"]; resolve: (m: ChildMessage) => void }> = [];
  private failure: Error | null = null;
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly registered: number,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  static async start(opts: ServerOptions): Promise<ServerProcess> {
    hookExit();
    const script = fileURLToPath(new URL("./server.js", import.meta.url));
    const execArgv = [
      // The gateway's own start-up flags (gateway/heap.ts), for the baseline broker too: same VM.
      ...STARTUP_NODE_FLAGS,
      ...(process.env.LINLI_BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? []),
      ...(opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
    ];
    const child = fork(script, [], { stdio: ["ignore", "ignore", "inherit", "ipc"], execArgv });
    children.add(child);
    child.once("exit", () => children.delete(child));
    const ready = await new Promise<{ port: number; registered: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("server did not start within 30 s")), 30_000);
      const onMessage = (m: ChildMessage) => {
        if (m.ev === "ready") {
          clearTimeout(timer);
          child.off("message", onMessage);
          resolve({ port: m.port, registered: m.registered });
        } else if (m.ev === "error") {
          clearTimeout(timer);
          reject(new Error(m.message));
        }
      };
      child.on("message", onMessage);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code} before it was ready`));
      });
      const start: StartCommand = {
        cmd: "start",
        mode: opts.mode,
        devices: opts.devices.map((d) => ({ id: d.id, model: d.model, password: d.password })),
        registered: opts.registered,
        site: SITE,
        operator: OPERATOR,
        logLevel: opts.logLevel ?? "info",
        ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
      };
      child.send(start);
    }).catch((err: unknown) => {
      child.kill("SIGKILL");
      throw err;
    });
    const sp = new ServerProcess(child, ready.port, ready.registered);
    child.on("message", (m: ChildMessage) => sp.onMessage(m));
    child.once("exit", (code) => {
      sp.failure ??= new Error(`server exited (${code})`);
      for (const w of sp.waiters.splice(0)) w.resolve({ ev: "error", message: sp.failure.message });
    });
    return sp;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  tell(msg: ParentMessage): void {
    if (this.child.connected) this.child.send(msg);
  }

  async sample(): Promise<ServerSample> {
    const m = await this.request({ cmd: "sample" }, "sample", 10_000);
    if (m.ev !== "sample") throw new Error(m.ev === "error" ? m.message : `unexpected ${m.ev}`);
    const { ev: _ev, ...sample } = m;
    return sample;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.connected) {
      this.child.send({ cmd: "stop" } satisfies ParentMessage);
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  private request(msg: ParentMessage, ev: ChildMessage["ev"], timeoutMs: number): Promise<ChildMessage> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<ChildMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${ev} from server in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        ev,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
      this.tell(msg);
    });
  }

  private onMessage(m: ChildMessage): void {
    if (m.ev === "error") {
      process.stderr.write(`bench server: ${m.message}\n`);
      return;
    }
    const i = this.waiters.findIndex((w) => w.ev === m.ev);
    if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(m);
  }
}

// ---------------------------------------------------------------- payload peeking

const JSON_SEQ = Buffer.from('"seq":');
const CBOR_SEQ = Buffer.from([0x63, 0x73, 0x65, 0x71]); // text(3) "seq"
const PRESS = Buffer.from("press");
const DEVICE_TIME = Buffer.from('"deviceTime":');

function digitsAt(b: Buffer, i: number): number {
  let v = 0;
  let any = false;
  for (; i < b.length; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
    any = true;
  }
  return any ? v : -1;
}

/** `seq` of a datasheet uplink, JSON or CBOR, without decoding the rest (the receive loop is hot). */
export function readSeq(p: Buffer): number {
  if (p[0] === 0x7b) {
    const i = p.indexOf(JSON_SEQ);
    return i < 0 ? -1 : digitsAt(p, i + JSON_SEQ.length);
  }
  const i = p.indexOf(CBOR_SEQ);
  if (i < 0) return -1;
  const j = i + CBOR_SEQ.length;
  const h = p[j];
  if (h === undefined || h >> 5 !== 0) return -1; // major type 0: unsigned integer (RFC 8949 §3.1)
  const ai = h & 0x1f;
  if (ai < 24) return ai;
  if (ai === 24) return p[j + 1] ?? -1;
  if (ai === 25) return p.length >= j + 3 ? p.readUInt16BE(j + 1) : -1;
  if (ai === 26) return p.length >= j + 5 ? p.readUInt32BE(j + 1) : -1;
  return -1;
}

/** `deviceTime` of a gateway telemetry message; -1 when null or absent. */
export function readDeviceTime(p: Buffer): number {
  const i = p.indexOf(DEVICE_TIME);
  return i < 0 ? -1 : digitsAt(p, i + DEVICE_TIME.length);
}

// ---------------------------------------------------------------- latency

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export class Latency {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /** Records one latency in ms, at microsecond resolution. */
  record(ms: number): void {
    this.h.recordValue(Math.min(600_000_000, Math.max(1, Math.round(ms * 1000))));
  }

  summary(): LatencySummary {
    const n = this.h.totalCount;
    const at = (p: number) => (n === 0 ? 0 : this.h.getValueAtPercentile(p) / 1000);
    return {
      count: n,
      p50Ms: at(50),
      p99Ms: at(99),
      p999Ms: at(99.9),
      maxMs: n === 0 ? 0 : this.h.maxValue / 1000,
    };
  }
}

// ---------------------------------------------------------------- receipts

/** Preallocated receipt log: (device index, key, receive time). Bounded; overflow is counted. */
class Receipts {
  readonly dev: Uint32Array;
  readonly key: Float64Array;
  readonly at: Float64Array;
  n = 0;
  overflow = 0;
  constructor(capacity: number) {
    this.dev = new Uint32Array(capacity);
    this.key = new Float64Array(capacity);
    this.at = new Float64Array(capacity);
  }
  push(dev: number, key: number, at: number): void {
    const i = this.n;
    if (i >= this.dev.length) {
      this.overflow++;
      return;
    }
    this.dev[i] = dev;
    this.key[i] = key;
    this.at[i] = at;
    this.n = i + 1;
  }
}

// ---------------------------------------------------------------- machine load

/** Busy and total CPU time of the whole machine, ms (Linux /proc/stat; zeros elsewhere). */
function machineCpu(): { busyMs: number; totalMs: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // without guest (already in user)
    const tick = 10; // USER_HZ = 100 on Linux
    return { busyMs: (total - idle) * tick, totalMs: total * tick };
  } catch {
    return { busyMs: 0, totalMs: 0 };
  }
}

/** CPU used by processes other than the bench, % of one core, over `ms`. */
export async function otherLoad(ms: number): Promise<number> {
  const a = machineCpu();
  const own0 = process.cpuUsage();
  const t = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineCpu();
  const own = process.cpuUsage(own0);
  const ownMs = (own.user + own.system) / 1000;
  const wall = performance.now() - t;
  return wall > 0 ? Math.max(0, ((b.busyMs - a.busyMs - ownMs) / wall) * 100) : 0;
}

/**
 * Other engineers' test runs share this 2-core machine: before a point, wait
 * (bounded) until the rest of the machine uses less than `maxPct` of a core.
 */
export async function waitForQuiet(
  maxPct: number,
  maxWaitMs: number,
): Promise<{ waitedMs: number; otherPct: number }> {
  const t = performance.now();
  let other = await otherLoad(500);
  while (other > maxPct && performance.now() - t < maxWaitMs) other = await otherLoad(500);
  return { waitedMs: performance.now() - t, otherPct: other };
}

// ---------------------------------------------------------------- one measured point

export interface PointOptions {
  scenario: "baseline" | "gateway" | "journal" | "overload";
  mode: ServerMode;
  rate: number;
  durationS: number;
  warmupS: number;
  connections: number;
  registered: number;
  alarmFraction: number;
  seed: number;
  cpuProfDir?: string;
  /** Wait before the point until other processes use less than this % of a core (bounded by quietWaitMs). */
  quietPct?: number;
  quietWaitMs?: number;
  /** Gateway mode: the journal on, in this directory (bench/journal.ts). */
  dataDir?: string;
}

/** A point of a scenario from the run's common options (the baseline registers no devices). */
export function pointOptions(
  scenario: PointOptions["scenario"],
  mode: ServerMode,
  rate: number,
  c: CommonOptions,
): PointOptions {
  return {
    scenario,
    mode,
    rate,
    durationS: c.durationS,
    warmupS: c.warmupS,
    connections: c.connections,
    registered: mode === "baseline" ? 0 : c.registered,
    alarmFraction: c.alarmFraction,
    seed: c.seed,
    quietPct: c.quietPct,
    // Profiles are of the gateway child only.
    ...(c.profileDir && mode === "gateway" ? { cpuProfDir: c.profileDir } : {}),
  };
}

export interface Accounting {
  /** Messages the generator handed to mqtt.js. */
  sent: number;
  /** Distinct messages that came out (matched to one sent). */
  delivered: number;
  lost: number;
  duplicated: number;
  /** Received but matching nothing sent (should be 0). */
  unexpected: number;
}

export interface PointResult {
  scenario: PointOptions["scenario"];
  mode: ServerMode;
  offeredRate: number;
  durationS: number;
  connections: number;
  /** Distinct messages delivered / (last receipt - first send). */
  achievedRate: number;
  generator: Pick<LoadReport, "offered" | "sent" | "late" | "maxLagMs" | "skippedDisconnected" | "errors"> & {
    sendRate: number;
  };
  /**
   * baseline: every device message through the broker.
   * gateway: telemetry publishes (one per accepted device message); `conflated`
   * comes from the gateway's own lane counters, `unexplained` = lost - conflated.
   */
  messages: Accounting & { conflated: number; unexplainedLoss: number };
  /** EC-200 presses: baseline = the press messages forwarded; gateway = P1 alert updates. */
  alerts: Accounting;
  latency: {
    /** baseline: all device messages; gateway: telemetry. */
    messages: LatencySummary;
    /** baseline: press messages; gateway: P1 EMERGENCY_CALL updates. */
    p1: LatencySummary;
  };
  server: ServerSample;
  receiptOverflow: number;
  /**
   * CPU of everything else on the machine during the load, % of one core
   * (machine busy time minus the bench runner and the server child). Above
   * ~20 % the figures of the point are disturbed.
   */
  otherCpuPct: number;
  /** This process (load generator + subscriber) during the load, % of one core. */
  runnerCpuPct: number;
  /** The wait for a quiet machine before the point, and the other load when it started. */
  quiet: { waitedMs: number; otherPct: number };
  /** Wall time the point took, s. */
  elapsedS: number;
}

const now = (): number => performance.timeOrigin + performance.now();

function nextPow2(n: number): number {
  let s = 1;
  while (s < n) s <<= 1;
  return s;
}

function lowerBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface TappedConn {
  device: LoadDevice;
  client: MqttClient;
}

/**
 * Records which seqs were presses, at the sender. LoadGenerator has no send
 * hook, so each connection's publish is wrapped (a cheap byte search; only the
 * 1 % presses are read further). See the final report: an `onSend` hook in
 * sim/mqtt/load.ts would make this unnecessary.
 */
function tapPresses(gen: LoadGenerator, devIndex: Map<string, number>, presses: number[][]): void {
  const conns = (gen as unknown as { conns: TappedConn[] }).conns;
  if (!Array.isArray(conns) || conns.length === 0)
    throw new Error("LoadGenerator internals changed: no conns");
  for (const c of conns) {
    const list = presses[devIndex.get(c.device.id) ?? -1];
    if (!list) throw new Error(`unknown load device ${c.device.id}`);
    const client = c.client as unknown as { publish: (...args: unknown[]) => unknown };
    const original = client.publish.bind(client);
    client.publish = (topic: unknown, payload: unknown, ...rest: unknown[]) => {
      if (Buffer.isBuffer(payload) && payload.indexOf(PRESS) !== -1) list.push(readSeq(payload));
      return original(topic, payload, ...rest);
    };
  }
}

async function connectSubscriber(url: string, mode: ServerMode): Promise<MqttClient> {
  const client = createDeviceClient(url, {
    // Client ids belong to their owner (docs/security.md): an operator's start with its name.
    clientId: `${mode === "gateway" ? OPERATOR.name : "bench"}-subscriber-${process.pid}`,
    username: mode === "gateway" ? OPERATOR.name : "bench-subscriber",
    password: mode === "gateway" ? OPERATOR.password : "x",
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  const filter = mode === "gateway" ? `linli/${SITE}/#` : "devices/+/+/up";
  await new Promise<void>((resolve, reject) => {
    client.subscribe(filter, { qos: 1 }, (err, granted) => {
      if (err) reject(err);
      else if (granted?.[0]?.qos === 128) reject(new Error(`subscription to ${filter} refused`));
      else resolve();
    });
  });
  return client;
}

/** Runs one point: fresh server child, connect, offer load, drain, account. */
export async function runPoint(o: PointOptions): Promise<PointResult> {
  const quiet = await waitForQuiet(o.quietPct ?? 25, o.quietWaitMs ?? 20_000);
  const started = performance.now();
  const durationMs = o.durationS * 1000;
  const perConn = Math.ceil((o.rate * o.durationS) / o.connections) + 16;
  const loadOpts = {
    connections: o.connections,
    rate: o.rate,
    alarmFraction: o.alarmFraction,
    seed: o.seed,
    // Every send time of the point stays in the ring: accounting happens after the run.
    sendTimeRingSize: nextPow2(perConn),
  };
  // The same table LoadGenerator builds, needed first: the gateway must know the devices.
  const devices = loadDevices({ brokerUrl: "", ...loadOpts });
  const server = await ServerProcess.start({
    mode: o.mode,
    devices,
    registered: o.mode === "gateway" ? o.registered : 0,
    ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}),
    ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }),
  });
  const gen = new LoadGenerator({ brokerUrl: server.url, ...loadOpts });
  let subscriber: MqttClient | undefined;
  try {
    const devIndex = new Map<string, number>();
    for (const [i, d] of devices.entries()) devIndex.set(d.id, i);
    const presses: number[][] = devices.map(() => []);

    const expected = Math.round(o.rate * o.durationS);
    const messages = new Receipts(Math.ceil(expected * 1.25) + 1024);
    const alerts = new Receipts(Math.ceil(expected * o.alarmFraction * 3) + 1024);
    let lastReceipt = 0;

    subscriber = await connectSubscriber(server.url, o.mode);
    const alertPrefix = `linli/${SITE}/alerts/p1/`;
    const telemetryPrefix = `linli/${SITE}/telemetry/`;
    subscriber.on("message", (topic, payload) => {
      const at = now();
      if (o.mode === "baseline") {
        // devices/<model>/<id>/up
        const a = topic.indexOf("/", 8);
        const dev = devIndex.get(topic.slice(a + 1, topic.length - 3));
        if (dev === undefined) return;
        messages.push(dev, readSeq(payload), at);
        lastReceipt = at;
        return;
      }
      if (topic.startsWith(telemetryPrefix)) {
        const dev = devIndex.get(topic.slice(topic.lastIndexOf("/") + 1));
        if (dev === undefined) return;
        messages.push(dev, readDeviceTime(payload), at);
        lastReceipt = at;
      } else if (topic.startsWith(alertPrefix)) {
        if (payload.length === 0) return; // retained copy removed
        const dev = devIndex.get(topic.slice(topic.lastIndexOf("/") + 1));
        const view = JSON.parse(payload.toString("utf8")) as {
          code: string;
          count: number;
          transition: string;
        };
        if (
          dev === undefined ||
          view.code !== "EMERGENCY_CALL" ||
          (view.transition !== "raised" &&
            view.transition !== "repeated" &&
            view.transition !== "reactivated")
        ) {
          return;
        }
        alerts.push(dev, view.count, at);
        lastReceipt = at;
      }
    });

    await gen.connect();
    tapPresses(gen, devIndex, presses);

    server.tell({ cmd: "cpu-start" });
    const m0 = machineCpu();
    const own0 = process.cpuUsage();
    const w0 = performance.now();
    const report = await gen.run(durationMs, 10_000);
    server.tell({ cmd: "cpu-end" });
    const loadWall = performance.now() - w0;
    const m1 = machineCpu();
    const ownUse = process.cpuUsage(own0);
    const runnerCpuPct = ((ownUse.user + ownUse.system) / 1000 / loadWall) * 100;

    // Let the tail arrive: until everything sent came out, or nothing came for 1 s (max 20 s).
    const pressCount = presses.reduce((a, l) => a + l.length, 0);
    const drainUntil = performance.now() + 20_000;
    let seen = -1;
    let quietSince = performance.now();
    while (performance.now() < drainUntil) {
      const total = messages.n + alerts.n;
      const wanted = report.sent + (o.mode === "gateway" ? pressCount : 0);
      if (total >= wanted) break;
      if (total !== seen) {
        seen = total;
        quietSince = performance.now();
      } else if (performance.now() - quietSince > 1_000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const sample = await server.sample();

    // ------------------------------------------------ accounting
    // Send times per device, by seq (1-based; the ring holds every send of the point).
    const walls: Float64Array[] = devices.map((d) => {
      const out: number[] = [];
      for (let seq = 1; ; seq++) {
        const t = gen.sendTime(d.id, seq);
        if (t === undefined) break;
        out.push(t);
      }
      return Float64Array.from(out);
    });
    let firstSend = Number.POSITIVE_INFINITY;
    for (const w of walls) if (w.length > 0 && (w[0] as number) < firstSend) firstSend = w[0] as number;
    const warmupEnd = firstSend + o.warmupS * 1000;
    const pressSets = presses.map((l) => new Set(l));

    const msgLat = new Latency();
    const p1Lat = new Latency();
    const msgAcc = { sent: report.sent, delivered: 0, lost: 0, duplicated: 0, unexpected: 0 };
    const alertAcc = { sent: pressCount, delivered: 0, lost: 0, duplicated: 0, unexpected: 0 };

    if (o.mode === "baseline") {
      const counts = walls.map((w) => new Uint16Array(w.length + 1));
      for (let i = 0; i < messages.n; i++) {
        const dev = messages.dev[i] as number;
        const seq = messages.key[i] as number;
        const c = counts[dev] as Uint16Array;
        if (seq < 1 || seq >= c.length) {
          msgAcc.unexpected++;
          continue;
        }
        if (c[seq]! > 0) {
          msgAcc.duplicated++;
          c[seq]!++;
          continue;
        }
        c[seq] = 1;
        msgAcc.delivered++;
        const sentAt = (walls[dev] as Float64Array)[seq - 1] as number;
        const isPress = (pressSets[dev] as Set<number>).has(seq);
        if (isPress) alertAcc.delivered++;
        if (sentAt < warmupEnd) continue;
        const ms = (messages.at[i] as number) - sentAt;
        msgLat.record(ms);
        if (isPress) p1Lat.record(ms);
      }
      msgAcc.lost = msgAcc.sent - msgAcc.delivered;
      alertAcc.lost = alertAcc.sent - alertAcc.delivered;
    } else {
      // Telemetry: buckets of (device, ts = floor(send time)), matched in seq order.
      const tsOf = walls.map((w) => w.map(Math.floor));
      const matched = walls.map((w) => new Uint16Array(w.length));
      for (let i = 0; i < messages.n; i++) {
        const dev = messages.dev[i] as number;
        const ts = messages.key[i] as number;
        const tsArr = tsOf[dev] as Float64Array;
        const lo = lowerBound(tsArr, ts);
        if (lo >= tsArr.length || tsArr[lo] !== ts) {
          msgAcc.unexpected++;
          continue;
        }
        const hi = lowerBound(tsArr, ts + 1);
        const m = matched[dev] as Uint16Array;
        const k = m[lo] as number;
        if (k >= hi - lo) {
          msgAcc.duplicated++;
          continue;
        }
        m[lo] = k + 1;
        msgAcc.delivered++;
        const sentAt = (walls[dev] as Float64Array)[lo + k] as number;
        if (sentAt >= warmupEnd) msgLat.record((messages.at[i] as number) - sentAt);
      }
      msgAcc.lost = msgAcc.sent - msgAcc.delivered;
      // Alerts: update count k <-> the device's k-th press.
      const seenCount = presses.map((l) => new Uint8Array(l.length + 1));
      for (let i = 0; i < alerts.n; i++) {
        const dev = alerts.dev[i] as number;
        const count = alerts.key[i] as number;
        const list = presses[dev] as number[];
        const seen = seenCount[dev] as Uint8Array;
        if (!Number.isInteger(count) || count < 1 || count > list.length) {
          alertAcc.unexpected++;
          continue;
        }
        if (seen[count] === 1) {
          alertAcc.duplicated++;
          continue;
        }
        seen[count] = 1;
        alertAcc.delivered++;
        const seq = list[count - 1] as number;
        const sentAt = (walls[dev] as Float64Array)[seq - 1] as number;
        if (sentAt >= warmupEnd) p1Lat.record((alerts.at[i] as number) - sentAt);
      }
      alertAcc.lost = alertAcc.sent - alertAcc.delivered;
    }

    const conflated = sample.gateway?.telemetry.conflated ?? 0;
    const spanS = lastReceipt > firstSend ? (lastReceipt - firstSend) / 1000 : 0;
    const lastSend = walls.reduce((a, w) => Math.max(a, w.length ? (w[w.length - 1] as number) : 0), 0);
    return {
      scenario: o.scenario,
      mode: o.mode,
      offeredRate: o.rate,
      durationS: o.durationS,
      connections: o.connections,
      achievedRate: spanS > 0 ? msgAcc.delivered / spanS : 0,
      generator: {
        offered: report.offered,
        sent: report.sent,
        late: report.late,
        maxLagMs: report.maxLagMs,
        skippedDisconnected: report.skippedDisconnected,
        errors: report.errors,
        sendRate: lastSend > firstSend ? report.sent / ((lastSend - firstSend) / 1000) : 0,
      },
      messages: { ...msgAcc, conflated, unexplainedLoss: Math.max(0, msgAcc.lost - conflated) },
      alerts: alertAcc,
      latency: { messages: msgLat.summary(), p1: p1Lat.summary() },
      server: sample,
      receiptOverflow: messages.overflow + alerts.overflow,
      otherCpuPct:
        m1.totalMs > m0.totalMs
          ? Math.max(0, ((m1.busyMs - m0.busyMs) / loadWall) * 100 - runnerCpuPct - sample.cpuPct)
          : 0,
      runnerCpuPct,
      quiet,
      elapsedS: (performance.now() - started) / 1000,
    };
  } finally {
    if (subscriber) await endClient(subscriber);
    await gen.stop().catch(() => undefined);
    await server.stop();
  }
}
