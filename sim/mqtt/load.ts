/**
 * Open-loop load generator for the benchmark (bench/, docs/performance.md).
 *
 * N device connections (EC-200 and DS-10 base stations, datasheet identities
 * and payloads) share one offered rate. Message k is due at
 * `t0 + k / rate`, computed from the start time, never from the last send;
 * connection `k mod N` sends it, so the rate is spread evenly. A timer tick
 * sends every message that has fallen due as one batch and never waits for a
 * PUBACK: a slow receiver shows up as latency and as backlog in its socket,
 * not as a lower offered rate (the coordinated-omission trap of closed loops).
 * When the generator itself cannot keep up, every message sent more than
 * `lateThresholdMs` after its due time is counted as `late`. A generator that is
 * behind catches up in batches of MAX_SENDS_PER_TURN, one per turn of the loop:
 * mqtt-packet corks a client's socket on each publish and uncorks it on the next
 * tick, so what one turn publishes is written only when the turn ends.
 *
 * Send time: `ts` carries epoch ms as the datasheet demands, which is too
 * coarse for loopback latency. Each connection keeps a bounded ring
 * (power of two, indexed by `seq & mask`, the seq is stored to detect
 * overwrites) of high-resolution send times, read with `sendTime(id, seq)`:
 * epoch milliseconds with microsecond resolution
 * (`performance.timeOrigin + performance.now()`), comparable with the same
 * expression in the receiving process on this machine. Each message is stamped
 * as it is handed to its socket, not at the start of its tick: a generator that
 * fell behind sends thousands of messages in one tick (tens of ms of work at
 * 60,000/s), and one stamp for all of them charged that work to the receiver.
 * On the raw link (the bench's) a press is also written as it is stamped, with
 * what its connection queued before it: a pendant's base station sends a press
 * at once, and at twice the gateway's ceiling the rest of the generator's turn
 * cost a press 2 ms at the median (docs/performance.md "A press leaves at once").
 */
import type { MqttClient } from "mqtt";
import { type Encoding, encodeUplink, type UplinkFields } from "./codec.js";
import { createDeviceClient, endClient } from "./link.js";
import { ds10Heartbeat, ds10State, ec200Event, ec200Heartbeat } from "./messages.js";
import { deriveSeed, type Random, seededRandom } from "./random.js";
import { RawLink } from "./raw-link.js";

export interface LoadOptions {
  brokerUrl: string;
  /** Connections, default 100. */
  connections?: number;
  /** Total offered rate, messages per second. */
  rate: number;
  /** Fraction of all messages that are EC-200 `press` events (alarms), default 0.01. */
  alarmFraction?: number;
  /** Fraction of connections that are DS-10 sensors, default 0.5. */
  ds10Fraction?: number;
  /** Fraction of DS-10 messages that are state changes (QoS 1), the rest heartbeats (QoS 0). Default 0.1. */
  stateFraction?: number;
  /** `mixed` (default) alternates JSON and CBOR firmware by connection. */
  encoding?: Encoding | "mixed";
  /** Device ids are `<idPrefix>-<model>-<nnnn>`, default `load`. */
  idPrefix?: string;
  /** Password per device id, default `demo-<id>` (the demo convention). */
  credentials?: (deviceId: string) => string;
  /** Scheduler tick, default 1 ms. */
  tickMs?: number;
  /** A message sent later than this after its due time counts as `late`, default 5 ms. */
  lateThresholdMs?: number;
  /** Send-time ring per connection (rounded up to a power of two), default 4096. */
  sendTimeRingSize?: number;
  seed?: number;
  /**
   * Send with the minimal hand-written MQTT client (raw-link.ts) instead of mqtt.js: the same
   * packets for a fraction of the CPU (the bench, where this process shares the machine with
   * the server it measures). Plain TCP only; no reconnect.
   */
  raw?: boolean;
}

export interface LoadDevice {
  id: string;
  model: "ec200" | "ds10";
  password: string;
  encoding: Encoding;
}

export interface LoadReport {
  connections: number;
  rate: number;
  elapsedS: number;
  /** Messages due by the schedule so far. */
  offered: number;
  /** Messages handed to mqtt.js. */
  sent: number;
  /** Due while the connection was down: not sent, not queued (open loop). */
  skippedDisconnected: number;
  alarms: number;
  acked: number;
  written: number;
  errors: number;
  /** Sent more than lateThresholdMs after the due time: the sender fell behind. */
  late: number;
  maxLagMs: number;
  /** Per second since start: offered by due time, sent by send time (the first 3600 s). */
  perSecond: Array<{ second: number; offered: number; sent: number }>;
}

interface Conn {
  device: LoadDevice;
  /** mqtt.js, or null with `raw`. */
  client: MqttClient | null;
  /** The raw link with `raw`, else null. */
  link: RawLink | null;
  topic: string;
  topicBytes: Buffer;
  seq: number;
  contact: "open" | "closed";
  ringSeq: Uint32Array;
  ringTime: Float64Array;
  ringValid: Uint8Array;
}

const MAX_SECONDS = 3600;
/**
 * Sends per turn of the event loop: a message's socket write waits at most for the rest of its
 * turn (the uncork, above), a few ms on the raw link, ~10 ms on mqtt.js. 256 held that to ~2.5 ms
 * but cut what mqtt.js could offer at 60,000/s to 47,000/s (more, smaller writes); 1,024: 55,000/s.
 */
const MAX_SENDS_PER_TURN = 1024;

/** The device table the gateway under test must be configured with. */
export function loadDevices(opts: LoadOptions): LoadDevice[] {
  const n = opts.connections ?? 100;
  const f = opts.ds10Fraction ?? 0.5;
  const prefix = opts.idPrefix ?? "load";
  const credentials = opts.credentials ?? ((id: string) => `demo-${id}`);
  const out: LoadDevice[] = [];
  for (let i = 0; i < n; i++) {
    // Evenly interleaved (Bresenham), so round-robin spreads both models over time.
    const model = Math.floor((i + 1) * f) > Math.floor(i * f) ? "ds10" : "ec200";
    const id = `${prefix}-${model}-${String(i + 1).padStart(4, "0")}`;
    const enc = opts.encoding ?? "mixed";
    out.push({
      id,
      model,
      password: credentials(id),
      encoding: enc === "mixed" ? (i % 2 ? "cbor" : "json") : enc,
    });
  }
  return out;
}

export class LoadGenerator {
  private readonly conns: Conn[] = [];
  private readonly byId = new Map<string, Conn>();
  private readonly rng: Random;
  private readonly pressProbability: number;
  private readonly mask: number;
  private t0 = 0;
  private next = 0;
  private limit = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  /** The next batch of a generator catching up (MAX_SENDS_PER_TURN). */
  private immediate: NodeJS.Immediate | undefined;
  private readonly stat = {
    sent: 0,
    skippedDisconnected: 0,
    alarms: 0,
    acked: 0,
    written: 0,
    errors: 0,
    late: 0,
    maxLagMs: 0,
  };
  private readonly offeredBySecond = new Uint32Array(MAX_SECONDS);
  private readonly sentBySecond = new Uint32Array(MAX_SECONDS);
  private pendingAcks = 0;
  private onDrained: (() => void) | undefined;
  private onFinished: (() => void) | undefined;
  readonly devices: LoadDevice[];

  constructor(private readonly opts: LoadOptions) {
    if (!(opts.rate > 0)) throw new RangeError("rate must be > 0");
    this.devices = loadDevices(opts);
    this.rng = seededRandom(deriveSeed(opts.seed ?? 1, "load"));
    const ec200Share = this.devices.filter((d) => d.model === "ec200").length / this.devices.length;
    // Alarms ride only on EC-200 connections; scale so the overall fraction holds.
    this.pressProbability = ec200Share > 0 ? Math.min(1, (opts.alarmFraction ?? 0.01) / ec200Share) : 0;
    let size = 1;
    while (size < (opts.sendTimeRingSize ?? 4096)) size <<= 1;
    this.mask = size - 1;
  }

  /** Connects every device; resolves when all are connected, rejects on the first refusal. */
  async connect(): Promise<void> {
    const size = this.mask + 1;
    const conn = (device: LoadDevice, client: MqttClient | null, link: RawLink | null): Conn => {
      const topic = `devices/${device.model}/${device.id}/up`;
      const c: Conn = {
        device,
        client,
        link,
        topic,
        topicBytes: Buffer.from(topic),
        seq: 1,
        contact: "closed",
        ringSeq: new Uint32Array(size),
        ringTime: new Float64Array(size),
        ringValid: new Uint8Array(size),
      };
      this.conns.push(c);
      this.byId.set(device.id, c);
      return c;
    };
    if (this.opts.raw) {
      await Promise.all(
        this.devices.map(async (device) => {
          const link = await RawLink.connect(this.opts.brokerUrl, {
            clientId: `${device.model}-${device.id}`,
            username: device.id,
            password: device.password,
          });
          link.onAck = this.acked;
          link.onClose = () => this.stat.errors++;
          conn(device, null, link);
        }),
      );
      return;
    }
    await Promise.all(
      this.devices.map(
        (device) =>
          new Promise<void>((resolve, reject) => {
            const client = createDeviceClient(this.opts.brokerUrl, {
              clientId: `${device.model}-${device.id}`,
              username: device.id,
              password: device.password,
              protocolVersion: 4,
              clean: true,
              reconnectPeriod: 1_000,
              connectTimeout: 10_000,
              queueQoSZero: false,
            });
            conn(device, client, null);
            client.once("connect", () => resolve());
            client.on("error", (err) => {
              this.stat.errors++;
              reject(err);
            });
          }),
      ),
    );
  }

  /** A raw link's PUBACK (they carry no callback of their own: only counted). */
  private readonly acked = (): void => {
    this.pendingAcks--;
    this.stat.acked++;
    if (this.pendingAcks === 0) this.onDrained?.();
  };

  /**
   * Offers `rate` msg/s for `durationMs` (exactly round(duration * rate) messages),
   * then waits up to `drainMs` for outstanding PUBACKs and returns the report.
   */
  async run(durationMs: number, drainMs = 5_000): Promise<LoadReport> {
    if (this.conns.length === 0) await this.connect();
    this.limit = Math.round((durationMs * this.opts.rate) / 1000);
    const finished = new Promise<void>((resolve) => {
      this.onFinished = resolve;
    });
    this.begin();
    await finished;
    await this.drain(drainMs);
    return this.report();
  }

  /** Starts offering load without an end (stop with `stop()`). */
  begin(): void {
    if (this.timer) return;
    this.t0 = performance.now();
    this.next = 0;
    this.tick();
  }

  /** High-resolution send time of (deviceId, seq), or undefined once overwritten in the ring. */
  sendTime(deviceId: string, seq: number): number | undefined {
    const c = this.byId.get(deviceId);
    if (!c) return undefined;
    const i = seq & this.mask;
    return c.ringValid[i] === 1 && c.ringSeq[i] === seq >>> 0 ? c.ringTime[i] : undefined;
  }

  report(): LoadReport {
    const elapsedMs = this.t0 === 0 ? 0 : performance.now() - this.t0;
    const seconds = Math.min(MAX_SECONDS, Math.ceil(elapsedMs / 1000));
    const perSecond: LoadReport["perSecond"] = [];
    for (let s = 0; s < seconds; s++) {
      perSecond.push({ second: s, offered: this.offeredBySecond[s] ?? 0, sent: this.sentBySecond[s] ?? 0 });
    }
    return {
      connections: this.conns.length,
      rate: this.opts.rate,
      elapsedS: elapsedMs / 1000,
      offered: this.next,
      ...this.stat,
      perSecond,
    };
  }

  async stop(): Promise<LoadReport> {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    const report = this.report();
    await Promise.all(
      this.conns.map((c) => (c.link ? c.link.end() : c.client ? endClient(c.client) : undefined)),
    );
    return report;
  }

  private tick = (): void => {
    const now = performance.now();
    const intervalMs = 1000 / this.opts.rate;
    const dueNow = Math.min(this.limit, Math.floor((now - this.t0) / intervalMs) + 1);
    const due = Math.min(dueNow, this.next + MAX_SENDS_PER_TURN);
    const lateMs = this.opts.lateThresholdMs ?? 5;
    const sentSecond = Math.floor((now - this.t0) / 1000);
    for (; this.next < due; this.next++) {
      const k = this.next;
      const lag = now - (this.t0 + k * intervalMs);
      if (lag > lateMs) this.stat.late++;
      if (lag > this.stat.maxLagMs) this.stat.maxLagMs = lag;
      const dueSecond = Math.floor((k * intervalMs) / 1000);
      if (dueSecond < MAX_SECONDS) this.offeredBySecond[dueSecond]!++;
      const c = this.conns[k % this.conns.length]!;
      if (!(c.link ?? c.client)?.connected) {
        this.stat.skippedDisconnected++;
        continue;
      }
      const wall = performance.timeOrigin + performance.now();
      this.send(c, Math.floor(wall), wall);
      if (sentSecond < MAX_SECONDS) this.sentBySecond[sentSecond]!++;
    }
    if (this.next >= this.limit) {
      this.timer = undefined;
      this.onFinished?.();
      return;
    }
    if (due < dueNow) this.immediate = setImmediate(this.tick);
    else this.timer = setTimeout(this.tick, this.opts.tickMs ?? 1);
  };

  private send(c: Conn, epochMs: number, wall: number): void {
    const seq = c.seq;
    c.seq = (c.seq + 1) >>> 0;
    let fields: UplinkFields;
    let qos: 0 | 1 = 1;
    let alarm = false;
    // The devices' own messages (messages.ts), as the emulators send them.
    if (c.device.model === "ec200") {
      alarm = this.rng() < this.pressProbability;
      if (alarm) this.stat.alarms++;
      const h = { seq, ts: epochMs, bat: 90 };
      fields = alarm ? ec200Event(h, "press", -70) : ec200Heartbeat(h, -70);
    } else if (this.rng() < (this.opts.stateFraction ?? 0.1)) {
      c.contact = c.contact === "open" ? "closed" : "open";
      fields = ds10State({ seq, ts: epochMs, bat: 80 }, c.contact, false);
    } else {
      qos = 0;
      fields = ds10Heartbeat({ seq, ts: epochMs, bat: 80 }, c.contact, false);
    }
    const i = seq & this.mask;
    c.ringSeq[i] = seq;
    c.ringTime[i] = wall;
    c.ringValid[i] = 1;
    this.stat.sent++;
    if (c.link) {
      if (qos === 1) this.pendingAcks++;
      else this.stat.written++;
      // A press leaves at once, as a pendant's base station sends it: it does not wait for the rest
      // of this generator's turn (up to MAX_SENDS_PER_TURN other devices' messages when behind).
      c.link.publish(c.topicBytes, encodeUplink(fields, c.device.encoding), qos, alarm);
      return;
    }
    this.pendingAcks++;
    c.client?.publish(c.topic, encodeUplink(fields, c.device.encoding), { qos }, (err) => {
      this.pendingAcks--;
      if (err) this.stat.errors++;
      else if (qos === 1) this.stat.acked++;
      else this.stat.written++;
      if (this.pendingAcks === 0) this.onDrained?.();
    });
  }

  private drain(timeoutMs: number): Promise<void> {
    if (this.pendingAcks === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.onDrained = done;
    });
  }
}
