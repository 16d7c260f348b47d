/**
 * One device connection in the worker (worker.ts): its MQTT state machine, from the socket's
 * bytes (split into packets by frames.ts; a v3.1.1 PUBLISH on the device's own topic read in place
 * by fast-publish.ts, every other packet by mqtt-packet's parser) to the uplinks it hands to the
 * rings (uplink-writer.ts) and the messages it posts to the main thread (logins, subscriptions,
 * refusals).
 *
 *   AWAITING_CONNECT --CONNECT--> LOGGING_IN --accepted--> LIVE --DISCONNECT / error / timeout--> CLOSED
 *                                            --refused--> CLOSED (CONNACK with the return code)
 *
 * The worker has one set of connections: what they share (the settings, the uplink writer, the
 * models' classifiers) is given once, by startConnections.
 */
// First: mqtt-packet must find the quiet `debug` (gateway/broker/quiet-debug.ts).
import "../quiet-debug.js";
import type net from "node:net";
import type { TLSSocket } from "node:tls";
import mqttPacket from "mqtt-packet";
import { MAX_WAITING_DOWNLINKS, v5ConnackReason } from "../mqtt5-reasons.js";
import { InflightLimitError, PubackQueue } from "../puback-queue.js";
import { certificateNames } from "../tls-files.js";
import { type FastPublish, readFastPublish } from "./fast-publish.js";
import { type Framing, splitPackets } from "./frames.js";
import { type FromWorker, TAG_UPLINK, TAG_WILL, type ToWorker } from "./protocol.js";
import type { TelemetryPeek } from "./telemetry-peek.js";
import type { Held, UplinkWriter } from "./uplink-writer.js";

/** What the worker's connections share. */
export interface ConnectionEnv {
  /** Largest remaining length of a CONNECT. */
  maxConnectSize: number;
  /** QoS 1 uplinks a connection may have waiting for their PUBACK. */
  maxInflight: number;
  /** A TLS listener: a CONNECT carries its client certificate's names. */
  tls: boolean;
  post: (m: FromWorker) => void;
  uplinks: UplinkWriter;
  /** Per model, its telemetryWhen as a classifier (null: every uplink may be an alert). */
  peeks: ReadonlyMap<string, TelemetryPeek | null>;
  /** The open connections by id (a connection leaves it when it closes). */
  connections: Map<number, DeviceConnection>;
  /** Connections whose close handling is to throw once (tests only: the "failClose" message). */
  closeFaults: Set<number>;
}

// Module bindings rather than a field per connection: 10,000 connections share one set.
let maxConnectSize = 0;
let maxInflight = 0;
let tls = false;
let post: (m: FromWorker) => void = () => {};
let uplinks: UplinkWriter;
let peeks: ReadonlyMap<string, TelemetryPeek | null> = new Map();
let connections = new Map<number, DeviceConnection>();
let closeFaults = new Set<number>();

export function startConnections(env: ConnectionEnv): void {
  ({ maxConnectSize, maxInflight, tls, post, uplinks, peeks, connections, closeFaults } = env);
}

export const AWAITING_CONNECT = 0;
export const LOGGING_IN = 1;
export const LIVE = 2;
export const CLOSED = 3;

/** MQTT 3.1.1 §3.1.2.10: the server closes a connection silent for one and a half keepalives. */
const KEEPALIVE_FACTOR = 1.5;

const PINGRESP = Buffer.from([0xd0, 0x00]);
const QOS0_REFUSED = new Error("QoS 0 uplink not kept by the gateway: connection closed");
const TOPIC_REFUSED = new Error("publish on a topic not the device's own: connection closed");
const NOTHING = Buffer.alloc(0);
/** §3.14.2.1: "Disconnect with Will Message": the client wants its will published. */
const DISCONNECT_WITH_WILL = 0x04;

interface Will {
  topic: string;
  payload: Buffer;
  retain: boolean;
  contentType: string | undefined;
}

/**
 * One parser for every connection: it is handed whole packets only (frames.ts), so it keeps no
 * state from one call to the next, and `parsing` says whose packet it is. Its settings are the
 * connection's protocol version (MQTT 5 packets carry properties).
 */
let parser = newParser();
let parsing: DeviceConnection | null = null;
const SETTINGS_V4 = Object.freeze({ protocolVersion: 4 });
const SETTINGS_V5 = Object.freeze({ protocolVersion: 5 });

function newParser(): ReturnType<typeof mqttPacket.parser> {
  const p = mqttPacket.parser();
  p.on("packet", (packet) => parsing?.onPacket(packet));
  p.on("error", (err) => {
    const c = parsing;
    if (c === null) return;
    post({ t: "rejected", conn: c.id, role: c.role, reason: "malformed-packet", detail: err.message });
    c.socket.destroy();
  });
  return p;
}

function parseOne(c: DeviceConnection, packet: Buffer): void {
  parsing = c;
  (parser as unknown as { settings: object }).settings = c.protocolVersion === 5 ? SETTINGS_V5 : SETTINGS_V4;
  const left = parser.parse(packet);
  parsing = null;
  // A packet the parser did not take whole (it refused it): a fresh parser for the next one.
  if (left > 0 || (parser as unknown as { error: Error | null }).error !== null) parser = newParser();
}

const CONNECTION = Symbol("linli.deviceConnection");
type DeviceSocket = net.Socket & { [CONNECTION]: DeviceConnection };

/*
 * The socket handlers are shared by every connection (the connection hangs on the socket): with
 * 10,000 devices each on its own connection, a closure per handler per socket is memory.
 */
function onSocketData(this: DeviceSocket, chunk: Buffer): void {
  const c = this[CONNECTION];
  try {
    c.read(chunk);
  } catch (err) {
    framingConnection = null;
    framingBuffer = NOTHING;
    failedWithin(c, err);
  }
}
function onSocketError(this: net.Socket): void {
  this.destroy();
}
function onSocketClose(this: DeviceSocket): void {
  const c = this[CONNECTION];
  try {
    c.closed();
  } catch (err) {
    // closed() forgot the connection and told the main thread before this came out of it.
    failedWithin(c, err);
  }
}

/**
 * A bug met while handling one connection's packet or message (an exception out of mqtt-packet, or
 * ours): that connection is closed, counted and logged, and the worker, with every other device
 * on it, goes on. Uncaught, it would end the worker and the listener with it.
 */
export function failedWithin(c: DeviceConnection, err: unknown): void {
  if (parsing !== null) {
    // Thrown from within the parser's "packet" handler: its state is that packet's, half-read.
    parsing = null;
    parser = newParser();
  }
  try {
    uplinks.publish();
  } catch {
    // The rings are shared memory written in place: nothing here is expected to throw.
  }
  post({
    t: "rejected",
    conn: c.id,
    role: c.role,
    reason: "internal-error",
    detail: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  c.abort();
}

/** A PUBACK queue closed its connection: too many unacknowledged, or an uplink not kept. */
function pubacksFailed(err: Error, socket: net.Socket): void {
  const c = (socket as DeviceSocket)[CONNECTION];
  if (err instanceof InflightLimitError)
    post({ t: "rejected", conn: c.id, role: c.role, reason: "inflight-limit", detail: err.message });
  socket.destroy();
}

/** Bytes a connection may send before it is logged in: four packets of the largest CONNECT. */
const PRE_LOGIN_PACKETS = 4;
const framing: Framing = { end: 0, refusal: null, announced: 0 };
/** The connection and bytes being split (one at a time): onFrame is one function, not a closure per read. */
let framingConnection: DeviceConnection | null = null;
let framingBuffer: Buffer = NOTHING;
function onFrame(start: number, end: number): void {
  const c = framingConnection as DeviceConnection;
  if (c.state === CLOSED) return;
  // Most packets: a PUBLISH on the connection's own topic, read in place (fast-publish.ts).
  if (
    c.state === LIVE &&
    c.protocolVersion === 4 &&
    readFastPublish(framingBuffer, start, end, c.uplinkTopic, fastPublish)
  ) {
    const f = fastPublish;
    c.take(f.qos, f.messageId, f.retain, framingBuffer.subarray(f.payloadStart, end), undefined);
    return;
  }
  parseOne(c, framingBuffer.subarray(start, end));
}
const fastPublish: FastPublish = { qos: 0, retain: false, messageId: 0, payloadStart: 0 };

/**
 * Connections' times are kept in ticks (TICK_MS) since the worker started: a small integer, stored
 * in the object (a Date.now() is a 16-byte heap number per field). 2^30 ticks are 8.5 years.
 * Elapsed time, on the monotonic clock: on the wall clock, a step of it set forward past one and a
 * half keepalives closed every device's connection at the next sweep (`keepalive-timeout`), and one
 * set back kept dead connections open for as long.
 */
const startedMs = performance.now();
export const TICK_MS = 250;
export function tickNow(): number {
  return Math.floor((performance.now() - startedMs) / TICK_MS);
}

export class DeviceConnection {
  state = AWAITING_CONNECT;
  readonly openedAt = tickNow();
  lastRead = this.openedAt;
  /** Ticks of silence after which the connection is closed (1.5 keepalives, rounded up); 0: none. */
  keepaliveTicks = 0;
  uplinkTopic = "";
  protocolVersion = 4;
  /** The model once logged in (what refusals are counted under); null before. */
  role: string | null = null;
  /** Largest remaining length of a packet: the CONNECT's before login, the model's after. */
  limit = maxConnectSize;
  /** Bytes read before login (bounded: PRE_LOGIN_PACKETS CONNECTs' worth). */
  preLogin = 0;
  /** The start of a packet still arriving (a copy: a socket read is not kept for it). */
  partial: Buffer | null = null;
  will: Will | null = null;
  pubacks: PubackQueue | null = null;
  /** It sent a SUBSCRIBE: the main thread keeps its downlinks until their PUBACKs or this close. */
  private subscribed = false;
  /** Packets read while the login is decided, handled once it is (bounded by preLogin). */
  early: mqttPacket.Packet[] | null = null;
  nextMessageId = 1;
  /** MQTT 5: the client's Receive Maximum (§3.1.2.11.3, default 65,535); 3.1.1 has none. */
  receiveMax = Number.POSITIVE_INFINITY;
  /** Ids of QoS 1 downlinks sent and not yet acknowledged (MQTT 5 only; null until the first). */
  inflight: Set<number> | null = null;
  /** QoS 1 downlinks waiting for room under the Receive Maximum, oldest first (bounded). */
  waitingDown: { id: number; bytes: Buffer }[] | null = null;
  /** True once this side decided to close (DISCONNECT, refusal, timeout): no will. */
  graceful = false;
  /** Its CONNECT was posted to the main thread. */
  loginPosted = false;
  /** Its model's classifier, once logged in. */
  peek: TelemetryPeek | null = null;
  /** Its newest reading, waiting for room in the telemetry ring. */
  heldTelemetry: Held | null = null;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
  ) {
    (socket as DeviceSocket)[CONNECTION] = this;
    socket.on("data", onSocketData);
    socket.on("error", onSocketError);
    // A socket emits "close" once: `on`, as `once` costs a wrapper, its state and a bound function.
    socket.on("close", onSocketClose);
  }

  read(chunk: Buffer): void {
    if (this.state === CLOSED) return;
    this.lastRead = tickNow();
    if (this.state !== LIVE) {
      this.preLogin += chunk.length;
      if (this.preLogin > PRE_LOGIN_PACKETS * (maxConnectSize + 5)) {
        this.refuse("connect-too-large", this.preLogin);
        return;
      }
    }
    const buf = this.partial === null ? chunk : Buffer.concat([this.partial, chunk]);
    this.partial = null;
    framingConnection = this;
    framingBuffer = buf;
    const f = splitPackets(
      buf,
      this.limit,
      this.state === LIVE,
      this.state === AWAITING_CONNECT,
      onFrame,
      framing,
    );
    framingConnection = null;
    framingBuffer = NOTHING;
    uplinks.publish();
    if (f.refusal !== null) {
      this.refuse(f.refusal, f.announced);
      return;
    }
    if (f.end < buf.length && this.state !== CLOSED) this.partial = Buffer.from(buf.subarray(f.end));
    if (this.state !== CLOSED) uplinks.stallIfHeld(this);
  }

  private refuse(reason: string, announced: number): void {
    post({
      t: "rejected",
      conn: this.id,
      role: this.role,
      reason,
      detail: `${announced} bytes, limit ${this.limit}`,
    });
    this.socket.destroy();
  }

  onPacket(packet: mqttPacket.Packet): void {
    if (this.state === CLOSED) return;
    if (this.state === AWAITING_CONNECT) {
      // splitPackets let only a CONNECT through first.
      if (packet.cmd === "connect") this.connect(packet);
      return;
    }
    if (this.state === LOGGING_IN) {
      if (this.early === null) this.early = [];
      this.early.push(packet);
      return;
    }
    this.handle(packet);
  }

  private connect(packet: mqttPacket.IConnectPacket): void {
    this.state = LOGGING_IN;
    this.protocolVersion = packet.protocolVersion === 5 ? 5 : 4;
    if (this.protocolVersion === 5) this.receiveMax = packet.properties?.receiveMaximum ?? 65_535;
    this.keepaliveTicks = Math.ceil(((packet.keepalive ?? 0) * 1000 * KEEPALIVE_FACTOR) / TICK_MS);
    if (packet.will)
      this.will = {
        topic: packet.will.topic,
        payload: Buffer.from(packet.will.payload ?? ""),
        retain: packet.will.retain === true,
        contentType: packet.will.properties?.contentType,
      };
    const password = packet.password === undefined ? undefined : new Uint8Array(packet.password);
    this.loginPosted = true;
    post({
      t: "connect",
      conn: this.id,
      address: this.socket.remoteAddress ?? "unknown",
      clientId: packet.clientId,
      username: packet.username,
      password,
      certNames: tls ? certificateNames(this.socket as TLSSocket) : [],
      clean: packet.clean !== false,
      protocolVersion: this.protocolVersion,
    });
  }

  /** The main thread's verdict on the CONNECT. */
  loggedIn(m: Extract<ToWorker, { t: "login" }>): void {
    if (this.state !== LOGGING_IN) return;
    // §3.2.2.2: no session is kept for a device (it subscribes again on every connection).
    this.write(
      mqttPacket.generate(
        this.protocolVersion === 5
          ? {
              cmd: "connack",
              sessionPresent: false,
              reasonCode: v5ConnackReason(m.returnCode),
            }
          : { cmd: "connack", sessionPresent: false, returnCode: m.returnCode },
        { protocolVersion: this.protocolVersion },
      ),
    );
    if (m.returnCode !== 0) {
      this.graceful = true;
      this.state = CLOSED;
      this.socket.end();
      return;
    }
    this.state = LIVE;
    this.uplinkTopic = m.uplinkTopic;
    this.limit = m.maxPacket;
    this.role = m.role;
    this.peek = peeks.get(m.role) ?? null;
    this.pubacks = new PubackQueue(this.socket, pubacksFailed, maxInflight);
    const early = this.early;
    this.early = null;
    if (early !== null) for (const p of early) if (this.state === LIVE) this.handle(p);
    uplinks.publish();
  }

  private handle(packet: mqttPacket.Packet): void {
    switch (packet.cmd) {
      case "publish":
        this.publish(packet);
        return;
      case "pingreq":
        this.write(PINGRESP);
        return;
      case "subscribe":
        // §3.8.3-3: at least one topic filter; §2.3.1-1: a packet identifier other than 0.
        if (packet.subscriptions.length === 0 || !packet.messageId) {
          this.malformed(
            packet.subscriptions.length === 0
              ? "SUBSCRIBE without a topic filter"
              : "SUBSCRIBE with packet identifier 0",
          );
          return;
        }
        this.subscribed = true;
        post({
          t: "subscribe",
          conn: this.id,
          messageId: packet.messageId,
          filters: packet.subscriptions.map((s) => s.topic),
          qos: packet.subscriptions.map((s) => s.qos),
        });
        return;
      case "unsubscribe":
        // §3.10.3-2: at least one topic filter; §2.3.1-1: a packet identifier other than 0.
        if (packet.unsubscriptions.length === 0 || !packet.messageId) {
          this.malformed(
            packet.unsubscriptions.length === 0
              ? "UNSUBSCRIBE without a topic filter"
              : "UNSUBSCRIBE with packet identifier 0",
          );
          return;
        }
        post({ t: "unsubscribe", conn: this.id, filters: packet.unsubscriptions });
        this.write(
          mqttPacket.generate(
            {
              cmd: "unsuback",
              messageId: packet.messageId,
              granted: packet.unsubscriptions.map(() => 0),
            },
            { protocolVersion: this.protocolVersion },
          ),
        );
        return;
      case "puback":
        // A downlink's acknowledgement: downlinks are sent once (no session is kept); under an
        // MQTT 5 Receive Maximum it makes room for the next waiting one.
        this.downlinkAcknowledged(packet.messageId);
        // The main thread keeps each downlink until it is acknowledged (southbound/pending-downlinks.ts).
        post({ t: "downlinkAcked", conn: this.id });
        return;
      case "disconnect":
        // §3.14.2.1: reason 0x04 asks for the will to be published all the same.
        if (this.protocolVersion !== 5 || packet.reasonCode !== DISCONNECT_WITH_WILL) {
          this.graceful = true;
          this.will = null;
        }
        this.socket.end();
        return;
      default:
        // A second CONNECT (§3.1.0-2), or a packet a client never sends: a protocol violation.
        post({
          t: "rejected",
          conn: this.id,
          role: this.role,
          reason: "protocol-violation",
          detail: packet.cmd,
        });
        this.abort();
    }
  }

  /** A packet the parser took but the protocol forbids in form: closed as the parser's refusals are. */
  private malformed(detail: string): void {
    post({ t: "rejected", conn: this.id, role: this.role, reason: "malformed-packet", detail });
    this.abort();
  }

  private publish(packet: mqttPacket.IPublishPacket): void {
    if (packet.qos > 0 && !packet.messageId) {
      // §2.3.1-1 (fast-publish.ts leaves such a PUBLISH to this path).
      this.malformed("PUBLISH with packet identifier 0");
      return;
    }
    if (packet.topic !== this.uplinkTopic) {
      post({
        t: "rejected",
        conn: this.id,
        role: this.role,
        reason: "topic-not-allowed",
        detail: packet.topic,
      });
      // Closed once the QoS 1 uplinks before it are answered, those kept acknowledged first (as
      // on aedes' listeners): closing at once lost their PUBACKs, and the device sent them again.
      this.refuseAfterPending(TOPIC_REFUSED);
      return;
    }
    if (packet.qos === 2) {
      // Devices publish at QoS 1 (the datasheets); QoS 2's four-way handshake is not served here.
      post({
        t: "rejected",
        conn: this.id,
        role: this.role,
        reason: "qos-not-supported",
        detail: packet.topic,
      });
      this.abort();
      return;
    }
    this.take(
      packet.qos,
      packet.messageId ?? 0,
      packet.retain,
      typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload,
      packet.properties?.contentType,
    );
  }

  /** An uplink on the connection's own topic at QoS 0 or 1: into its ring, its PUBACK queued. */
  take(
    qos: 0 | 1,
    messageId: number,
    retain: boolean,
    payload: Buffer,
    contentType: string | undefined,
  ): void {
    let slot = -1;
    if (qos === 1) {
      slot = (this.pubacks as PubackQueue).enqueueSlot(messageId);
      if (slot < 0) return;
    } else if ((this.pubacks as PubackQueue).refusing) return; // closing: nothing more taken in
    // A retained uplink is the main thread's to judge (the publish rule), whatever it carries.
    if (!retain && this.peek?.isTelemetry(payload, contentType) === true)
      uplinks.offerTelemetry(this, slot, contentType, payload);
    else uplinks.offer(this, TAG_UPLINK, slot, retain, contentType, payload);
  }

  /** A downlink from the gateway (the device's own downlink topic). */
  deliver(topic: string, payload: Uint8Array, qos: 0 | 1): void {
    if (this.state !== LIVE) return;
    const messageId = qos === 1 ? this.nextMessageId : undefined;
    if (qos === 1) this.nextMessageId = this.nextMessageId === 0xffff ? 1 : this.nextMessageId + 1;
    const bytes = mqttPacket.generate(
      { cmd: "publish", topic, payload: Buffer.from(payload), qos, retain: false, dup: false, messageId },
      { protocolVersion: this.protocolVersion },
    );
    if (messageId === undefined || this.receiveMax === Number.POSITIVE_INFINITY) {
      this.write(bytes);
      return;
    }
    // MQTT-3.3.4-7: no more unacknowledged QoS 1 downlinks than the client's Receive Maximum.
    if (this.inflight === null) this.inflight = new Set();
    if (this.inflight.size < this.receiveMax) {
      this.inflight.add(messageId);
      this.write(bytes);
      return;
    }
    if (this.waitingDown === null) this.waitingDown = [];
    if (this.waitingDown.length >= MAX_WAITING_DOWNLINKS) {
      // Bounded: the oldest waiting downlink is dropped, counted; the device is not closed.
      this.waitingDown.shift();
      post({
        t: "rejected",
        conn: this.id,
        role: this.role,
        reason: "downlink-overflow",
        detail: "receive maximum",
      });
    }
    this.waitingDown.push({ id: messageId, bytes });
  }

  /** A PUBACK of a downlink in flight: the next waiting one (if any) goes. */
  private downlinkAcknowledged(messageId: number | undefined): void {
    if (this.inflight === null || messageId === undefined || !this.inflight.delete(messageId)) return;
    const waiting = this.waitingDown;
    while (waiting !== null && waiting.length > 0 && this.inflight.size < this.receiveMax) {
      const next = waiting.shift() as { id: number; bytes: Buffer };
      this.inflight.add(next.id);
      this.write(next.bytes);
    }
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /**
   * A QoS 0 uplink of it was not kept (the main thread says), or a PUBLISH was refused by the
   * publish rule: closed once the QoS 1 uplinks before it are answered, their PUBACKs out first,
   * taking nothing more in meanwhile (PubackQueue).
   */
  refuseAfterPending(err: Error = QOS0_REFUSED): void {
    if (this.pubacks === null) this.abort();
    else this.pubacks.refuseAfterPending(err);
  }

  /**
   * Closes without a DISCONNECT (a refusal, a takeover, a device the configuration no longer has):
   * the will falls due (§3.1.2.5) and is judged by the main thread like any uplink.
   */
  abort(): void {
    this.socket.destroy();
  }

  closed(): void {
    const wasLive = this.state === LIVE;
    this.state = CLOSED;
    connections.delete(this.id);
    uplinks.forget(this);
    try {
      this.dueAtClose(wasLive);
    } finally {
      // Whatever failed above (counted by the caller as internal-error), the main thread must
      // learn of the close: it would keep the connection (its client id, its downlink, the
      // connected devices' count) for ever.
      uplinks.offerClose(this, this.loginPosted);
      // After its PUBACKs, on their channel: what it did not acknowledge is sent again.
      if (this.subscribed) post({ t: "downlinkClosed", conn: this.id });
    }
  }

  /** What falls due when the connection closes: its waiting reading, its will. */
  private dueAtClose(wasLive: boolean): void {
    if (closeFaults.size > 0 && closeFaults.delete(this.id))
      throw new Error("close handling failed (a fault injected by a test)");
    uplinks.writeWaitingAtClose(this);
    if (wasLive && !this.graceful && this.will !== null && this.will.topic === this.uplinkTopic) {
      const w = this.will;
      uplinks.offer(this, TAG_WILL, -1, w.retain, w.contentType, w.payload);
    } else if (wasLive && !this.graceful && this.will !== null) {
      post({
        t: "rejected",
        conn: this.id,
        role: this.role,
        reason: "will-not-allowed",
        detail: this.will.topic,
      });
    }
  }
}
