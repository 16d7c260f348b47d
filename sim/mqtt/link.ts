/**
 * What every emulated MQTT device shares: one mqtt.js client, the datasheet's
 * identity (client id `<model>-<id>`, username `<id>`), a per-device `seq`, a
 * device clock that may be skewed or reset, a slowly draining battery, a
 * bounded uplink backlog for when the base station loses its uplink, and a
 * heartbeat timer on the injectable clock.
 *
 * Promises returned by sends never reject: they resolve with a `SendResult`
 * once the message has left the device's hands (PUBACK for QoS 1, socket write
 * for QoS 0), was dropped or refused by the backlog policy, or was abandoned
 * by `stop()`. Only `start()` rejects (first connection refused), so a
 * scenario can `void device.press()` without risking an unhandled rejection.
 */
import { EventEmitter } from "node:events";
import net from "node:net";
import tls from "node:tls";
import { type IClientOptions, MqttClient, connect as mqttConnect } from "mqtt";
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import { Backlog, type BacklogItem, type BacklogStats, type UplinkKind } from "./backlog.js";
import { CONTENT_TYPE, type Encoding, encodeUplink, type UplinkFields } from "./codec.js";
import type { Random } from "./random.js";

export type Model = "ec200" | "ds10" | "gd2";

/**
 * acked: PUBACK received (QoS 1). written: handed to the socket (QoS 0).
 * dropped: a heartbeat evicted or refused by the backlog policy.
 * refused: an event refused because the backlog is full of events.
 * abandoned: the device was stopped first. unknown-seq: `resend` of a seq no longer in history.
 */
export type SendStatus = "acked" | "written" | "dropped" | "refused" | "abandoned" | "unknown-seq";

export interface SendResult {
  seq: number;
  status: SendStatus;
  /** True when this transmission repeats a seq already sent (backlog after a lost PUBACK, `resend`). */
  resent: boolean;
  /** The fields as encoded (for logs and tests); absent when nothing was built. */
  fields?: UplinkFields;
}

export interface Uplink {
  readonly kind: UplinkKind;
  readonly seq: number;
  readonly ts: number;
  readonly qos: 0 | 1;
  readonly fields: UplinkFields;
  readonly payload: Buffer;
}

interface Pending extends BacklogItem {
  readonly uplink: Uplink;
  resent: boolean;
  settle(result: SendResult): void;
}

export interface DeviceLinkOptions {
  deviceId: string;
  /** `mqtt://`, `tcp://`, `mqtts://`, `ssl://`, `ws://` or `wss://` host:port. */
  brokerUrl: string;
  /** TLS settings for `mqtts://` and `wss://` (CA, client certificate, server name). */
  tls?: DeviceTlsOptions;
  password: string;
  /** `json` (firmware 1.x) or `cbor` (firmware 2.x). Default json. */
  encoding?: Encoding;
  clock?: Clock;
  /** Device clock minus wall clock, ms. Default 0. */
  clockSkewMs?: number;
  /** First seq sent. Default 1. */
  initialSeq?: number;
  /** Starting battery %, default 100. */
  battery?: number;
  /** Battery % drained per uplink, default 0.01 ("drains slowly"). */
  drainPerUplink?: number;
  /** Fixed rssi, or a source of rssi per message. Default: -70 +/- 6 from `random`. */
  rssi?: number | (() => number);
  /** Heartbeat period, ms; 0 disables the timer. Default: the datasheet's. */
  heartbeatIntervalMs?: number;
  /** Delay of the first heartbeat, so a fleet does not fire in step. Default: one interval. */
  heartbeatPhaseMs?: number;
  /** Backlog bound while offline, default 256 (policy in backlog.ts). */
  backlogCapacity?: number;
  /** Sent uplinks remembered for `resend`, default 64. */
  historySize?: number;
  /** 4 = MQTT 3.1.1 (default; aedes speaks only 3.1.1), 5 = MQTT 5 with content-type. */
  protocolVersion?: 4 | 5;
  connectTimeoutMs?: number;
  reconnectPeriodMs?: number;
  keepaliveS?: number;
  random?: Random;
}

export interface LinkEvents {
  /** Connected (CONNACK, and SUBACK where the device subscribes). */
  online: [];
  /** The link went down (forced or not). */
  offline: [{ forced: boolean }];
  /** Connection-level errors (refused CONNACK, socket errors); the client keeps retrying. */
  "link-error": [Error];
  /** A message was handed to mqtt.js (first send or re-send). */
  uplink: [{ seq: number; kind: UplinkKind; resent: boolean; fields: UplinkFields }];
  /** Backlog policy dropped or refused something. */
  overflow: [{ seq: number; kind: UplinkKind; status: "dropped" | "refused" }];
  /** EC-200 only: `{"cmd":"ack_call"}` arrived on the downlink (the pendant beeps twice). */
  ack_call: [{ alertId: string }];
  /** EC-200 only: `{"cmd":"locate"}` arrived (the pendant beeps for 10 s). */
  locate: [];
  /** GD-2 only: a downlink command arrived (its reply follows). */
  command: [{ cmd: string; id: string }];
  /** A downlink the device does not understand (kept for tests and logs). */
  "bad-downlink": [{ topic: string; payload: Buffer }];
}

/** What mqtt.js passes to `tls.connect` (a subset of node:tls ConnectionOptions). */
export interface DeviceTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
  /** Default true; false only for a test gateway with a self-signed certificate. */
  rejectUnauthorized?: boolean;
}

const FAR_PAST_MS = Date.UTC(2000, 0, 1);

/** How a battery change leaves the device clock: at 0, at 2000-01-01, or at a given epoch ms. */
export type ClockReset = "zero" | "far-past" | number;

export abstract class DeviceLink extends EventEmitter<LinkEvents> {
  readonly deviceId: string;
  readonly encoding: Encoding;
  readonly clientId: string;
  readonly uplinkTopic: string;
  protected readonly clock: Clock;
  protected readonly opts: DeviceLinkOptions;
  protected client: MqttClient | undefined;
  private generation = 0;
  private seqNext: number;
  private batteryLevel: number;
  private readonly drain: number;
  private skewMs: number;
  private clockReset: { base: number; at: number } | undefined;
  private readonly backlog: Backlog<Pending>;
  private readonly inflight = new Set<Pending>();
  private readonly history: Uplink[] = [];
  private lastAcked: Uplink | undefined;
  private hbTimer: ClockTimer | undefined;
  private started = false;
  private forcedOffline = false;
  private stopped = false;
  private readonly rssiSource: () => number;
  private waiters = new Set<{ resolve: () => void; reject?: (e: Error) => void }>();

  protected abstract readonly model: Model;
  /** JSON fields written with a fixed number of decimals (codec.ts). */
  protected readonly decimals: Readonly<Record<string, number>> = {};
  protected abstract readonly defaultHeartbeatMs: number;
  /** Sends the model's heartbeat. */
  abstract heartbeat(): Promise<SendResult>;

  constructor(model: Model, opts: DeviceLinkOptions) {
    super();
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(opts.deviceId)) {
      throw new RangeError(`deviceId must be 1-32 of [A-Za-z0-9_-] (datasheet): ${opts.deviceId}`);
    }
    this.opts = opts;
    this.deviceId = opts.deviceId;
    this.encoding = opts.encoding ?? "json";
    this.clientId = `${model}-${opts.deviceId}`;
    this.uplinkTopic = `devices/${model}/${opts.deviceId}/up`;
    this.clock = opts.clock ?? systemClock;
    this.skewMs = opts.clockSkewMs ?? 0;
    this.seqNext = (opts.initialSeq ?? 1) >>> 0;
    this.batteryLevel = Math.min(100, Math.max(0, opts.battery ?? 100));
    this.drain = opts.drainPerUplink ?? 0.01;
    this.backlog = new Backlog<Pending>(opts.backlogCapacity ?? 256);
    const rnd = opts.random ?? Math.random;
    const rssi = opts.rssi;
    this.rssiSource =
      typeof rssi === "number" ? () => rssi : (rssi ?? (() => -70 + Math.round((rnd() - 0.5) * 12)));
  }

  get online(): boolean {
    return !this.forcedOffline && this.client?.connected === true;
  }

  get battery(): number {
    return Math.max(0, Math.min(100, Math.round(this.batteryLevel)));
  }

  /** The seq the next new uplink will carry. */
  get nextSeq(): number {
    return this.seqNext;
  }

  backlogStats(): BacklogStats {
    return this.backlog.stats();
  }

  /**
   * Connects and arms the heartbeat timer. Resolves on the first successful
   * connection; rejects on the first connection error (refused password,
   * nothing listening) while the client keeps retrying until `stop()`.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error(`${this.clientId} is stopped`));
    if (this.started) return this.whenOnline();
    this.started = true;
    const ready = this.nextConnect(true);
    this.connect();
    const interval = this.heartbeatIntervalMs;
    if (interval > 0) this.armHeartbeat(this.opts.heartbeatPhaseMs ?? interval);
    return ready;
  }

  get heartbeatIntervalMs(): number {
    return this.opts.heartbeatIntervalMs ?? this.defaultHeartbeatMs;
  }

  /** Resolves once online (or stopped); never rejects. */
  whenOnline(): Promise<void> {
    if (this.online || this.stopped) return Promise.resolve();
    return this.nextConnect(false) as Promise<void>;
  }

  /**
   * The base station loses its uplink: the connection is cut and new uplinks
   * queue in the bounded backlog. Messages in flight (no PUBACK yet) go back to
   * the backlog with their seq and ts. With `lostAck`, the last acknowledged
   * message is queued again too, as if its PUBACK never arrived: a duplicate seq.
   */
  async goOffline(opts: { lostAck?: boolean } = {}): Promise<void> {
    if (this.forcedOffline || this.stopped || !this.started) return;
    this.forcedOffline = true;
    this.generation++;
    const back = [...this.inflight];
    this.inflight.clear();
    for (const p of back) p.resent = true;
    const last = this.lastAcked;
    if (opts.lostAck && last && !back.some((p) => p.uplink.seq === last.seq)) {
      back.unshift({ kind: last.kind, uplink: last, resent: true, settle: () => {} });
    }
    this.backlog.requeue(back);
    const client = this.client;
    this.client = undefined;
    if (client) await endClient(client);
    this.emit("offline", { forced: true });
  }

  /** The uplink is back: reconnect, then the backlog is re-sent in order with its original seq and ts. */
  goOnline(): Promise<void> {
    if (!this.forcedOffline || this.stopped) return this.whenOnline();
    this.forcedOffline = false;
    const ready = this.nextConnect(false) as Promise<void>;
    this.connect();
    return ready;
  }

  /**
   * Battery change: battery back to 100 % and the device clock restarts from
   * `reset` (0 or far in the past) until `resync()`. Sends a heartbeat, as a
   * freshly powered device does.
   */
  batteryChange(reset: ClockReset = "zero"): Promise<SendResult> {
    const base = reset === "zero" ? 0 : reset === "far-past" ? FAR_PAST_MS : reset;
    this.clockReset = { base, at: this.clock.now() };
    this.batteryLevel = 100;
    return this.heartbeat();
  }

  /** The device clock is set again (network time); `skewMs` optionally changes the skew. */
  resync(skewMs?: number): void {
    this.clockReset = undefined;
    if (skewMs !== undefined) this.skewMs = skewMs;
  }

  /** The device's own clock, epoch ms. */
  deviceNow(): number {
    const now = Math.floor(this.clock.now());
    if (this.clockReset) return Math.max(0, this.clockReset.base + (now - this.clockReset.at));
    return Math.max(0, now + this.skewMs);
  }

  /** Sets the battery level (for low-battery scenarios). */
  setBattery(percent: number): void {
    this.batteryLevel = Math.max(0, Math.min(100, percent));
  }

  /**
   * Re-sends an uplink byte for byte with its original seq and ts (the
   * base station "re-sends the same seq until it gets a PUBACK"). Default: the last one sent.
   */
  resend(seq?: number): Promise<SendResult> {
    const up =
      seq === undefined ? this.history[this.history.length - 1] : this.history.find((u) => u.seq === seq);
    if (!up) return Promise.resolve({ seq: seq ?? -1, status: "unknown-seq", resent: true });
    return this.dispatch(up, true);
  }

  /** Stops timers and the client; anything still queued resolves as `abandoned`. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.generation++;
    if (this.hbTimer) this.clock.clearTimeout(this.hbTimer);
    this.hbTimer = undefined;
    const pending = [...this.inflight, ...this.backlog.drain()];
    this.inflight.clear();
    for (const p of pending) p.settle(this.result(p, "abandoned"));
    const client = this.client;
    this.client = undefined;
    if (client) await endClient(client);
    this.emit("offline", { forced: true });
    this.wake(undefined);
  }

  /**
   * Publishes bytes that are not a datasheet message on the uplink topic (a
   * malformed-payload scenario): no seq consumed, nothing queued while offline.
   * Resolves true once handed over (QoS 0), false when offline.
   */
  publishRaw(payload: Buffer): Promise<boolean> {
    const client = this.client;
    if (!this.online || !client) return Promise.resolve(false);
    return new Promise((resolve) =>
      client.publish(this.uplinkTopic, payload, { qos: 0 }, (err) => resolve(!err)),
    );
  }

  /** Builds, encodes and sends a new uplink. Fields are built in the datasheet's order by the caller. */
  protected send(
    kind: UplinkKind,
    qos: 0 | 1,
    build: (h: { seq: number; ts: number; bat: number; rssi: () => number }) => UplinkFields,
  ): Promise<SendResult> {
    if (this.stopped) return Promise.resolve({ seq: -1, status: "abandoned", resent: false });
    const seq = this.seqNext;
    this.seqNext = (this.seqNext + 1) >>> 0; // uint32, wraps at 2^32
    const fields = build({ seq, ts: this.deviceNow(), bat: this.battery, rssi: this.rssiSource });
    this.batteryLevel = Math.max(0, this.batteryLevel - this.drain);
    const uplink: Uplink = {
      kind,
      seq,
      ts: Number(fields.ts),
      qos,
      fields,
      payload: encodeUplink(fields, this.encoding, this.decimals),
    };
    this.history.push(uplink);
    if (this.history.length > (this.opts.historySize ?? 64)) this.history.shift();
    return this.dispatch(uplink, false);
  }

  /** Hook for subclasses: called on every successful connection, before the backlog is flushed. */
  protected onConnected(_client: MqttClient): Promise<void> {
    return Promise.resolve();
  }

  /** Hook for subclasses: downlink messages. */
  protected onMessage(_topic: string, _payload: Buffer): void {}

  private dispatch(uplink: Uplink, resent: boolean): Promise<SendResult> {
    return new Promise<SendResult>((resolve) => {
      const p: Pending = { kind: uplink.kind, uplink, resent, settle: resolve };
      if (this.stopped) p.settle(this.result(p, "abandoned"));
      else if (this.online && this.client) this.transmit(this.client, p);
      else this.enqueue(p);
    });
  }

  private result(p: Pending, status: SendStatus): SendResult {
    return { seq: p.uplink.seq, status, resent: p.resent, fields: p.uplink.fields };
  }

  private enqueue(p: Pending): void {
    const out = this.backlog.push(p);
    if (!out.accepted) {
      const status = p.kind === "heartbeat" ? "dropped" : "refused";
      this.emit("overflow", { seq: p.uplink.seq, kind: p.kind, status });
      p.settle(this.result(p, status));
      return;
    }
    if (out.evicted) {
      const e = out.evicted;
      this.emit("overflow", { seq: e.uplink.seq, kind: e.kind, status: "dropped" });
      e.settle(this.result(e, "dropped"));
    }
  }

  private transmit(client: MqttClient, p: Pending): void {
    const gen = this.generation;
    const { uplink } = p;
    this.inflight.add(p);
    this.emit("uplink", { seq: uplink.seq, kind: uplink.kind, resent: p.resent, fields: uplink.fields });
    const properties =
      this.opts.protocolVersion === 5 ? { contentType: CONTENT_TYPE[this.encoding] } : undefined;
    client.publish(
      this.uplinkTopic,
      uplink.payload,
      properties ? { qos: uplink.qos, properties } : { qos: uplink.qos },
      (err) => {
        // A callback from a client we already cut off: the message was requeued by goOffline/stop.
        if (gen !== this.generation || !this.inflight.delete(p)) return;
        if (!err) {
          if (uplink.qos === 1) this.lastAcked = uplink;
          p.settle(this.result(p, uplink.qos === 1 ? "acked" : "written"));
        } else if (this.stopped) {
          p.settle(this.result(p, "abandoned"));
        } else {
          p.resent = true;
          this.enqueue(p);
        }
      },
    );
  }

  private connect(): void {
    const gen = this.generation;
    const client = createDeviceClient(this.opts.brokerUrl, {
      ...this.opts.tls,
      clientId: this.clientId,
      username: this.deviceId,
      password: this.opts.password,
      protocolVersion: this.opts.protocolVersion ?? 4,
      clean: true,
      keepalive: this.opts.keepaliveS ?? 60,
      connectTimeout: this.opts.connectTimeoutMs ?? 5_000,
      // Fixed period, no backoff in mqtt.js (DESIGN): 1 s is gentle enough on loopback.
      reconnectPeriod: this.opts.reconnectPeriodMs ?? 1_000,
      // Our bounded backlog replaces mqtt.js's unbounded offline queue (DESIGN).
      queueQoSZero: false,
      // We subscribe on every connect ourselves; mqtt.js resubscribe would double it.
      resubscribe: false,
    });
    this.client = client;
    client.on("connect", () => {
      if (gen !== this.generation) return;
      void this.onConnected(client)
        .catch((e: unknown) => this.emit("link-error", e instanceof Error ? e : new Error(String(e))))
        .then(() => {
          if (gen !== this.generation || !client.connected) return;
          for (const p of this.backlog.drain()) this.transmit(client, p);
          this.emit("online");
          this.wake(undefined);
        });
    });
    client.on("close", () => {
      if (gen === this.generation) this.emit("offline", { forced: false });
    });
    client.on("error", (err) => {
      if (gen !== this.generation) return;
      this.emit("link-error", err);
      this.wake(err);
    });
    client.on("message", (topic, payload) => {
      if (gen === this.generation) this.onMessage(topic, payload);
    });
  }

  /** A promise for the next successful connection (or stop); `rejectOnError` makes the next error reject it. */
  private nextConnect(rejectOnError: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.add(rejectOnError ? { resolve, reject } : { resolve });
    });
  }

  /** Settles waiters: `undefined` = connected or stopped (all resolve), an error rejects those that asked. */
  private wake(err: Error | undefined): void {
    for (const w of this.waiters) {
      if (err === undefined) w.resolve();
      else if (w.reject) w.reject(err);
      else continue;
      this.waiters.delete(w);
    }
  }

  private armHeartbeat(delayMs: number): void {
    this.hbTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      void this.heartbeat();
      this.armHeartbeat(this.heartbeatIntervalMs);
    }, delayMs);
  }
}

/**
 * An mqtt.js client whose TCP socket has TCP_NODELAY set: with delayed ACKs
 * every loopback hop costs 10-50 ms otherwise (DESIGN, measured). mqtt.js's
 * own tcp builder passes only host and port to net.createConnection, so we
 * hand MqttClient our own stream builder (TLS likewise, with the caller's
 * `ca`/`cert`/`key`/`servername`/`rejectUnauthorized`). WebSocket URLs go to
 * mqtt.js's own ws transport, which takes the same TLS fields for `wss://`.
 */
export function createDeviceClient(brokerUrl: string, opts: IClientOptions): MqttClient {
  const url = new URL(brokerUrl);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  switch (url.protocol) {
    case "mqtt:":
    case "tcp:": {
      const port = url.port ? Number(url.port) : 1883;
      const builder = () => {
        const socket = net.createConnection({ host, port });
        socket.setNoDelay(true);
        return socket;
      };
      return new MqttClient(builder, { ...opts, host, port });
    }
    case "mqtts:":
    case "ssl:": {
      const port = url.port ? Number(url.port) : 8883;
      const builder = () => {
        const socket = tls.connect({
          host,
          port,
          servername: opts.servername ?? (net.isIP(host) ? undefined : host),
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          rejectUnauthorized: opts.rejectUnauthorized ?? true,
        });
        socket.setNoDelay(true);
        return socket;
      };
      return new MqttClient(builder, { ...opts, host, port });
    }
    case "ws:":
    case "wss:":
      return mqttConnect(brokerUrl, opts);
    default:
      throw new RangeError(`unsupported broker URL ${brokerUrl}: mqtt://, mqtts://, ws:// or wss://`);
  }
}

/** Force-closes a client. mqtt.js does not call pending publish callbacks then (reconnectPeriod > 0), hence generations above. */
export function endClient(client: MqttClient): Promise<void> {
  return new Promise<void>((resolve) => {
    client.end(true, {}, () => resolve());
  });
}
