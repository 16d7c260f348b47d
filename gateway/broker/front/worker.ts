/**
 * The device front end's worker thread: it owns the sockets of the device listener and speaks
 * MQTT with the devices (a v3.1.1 PUBLISH on the device's own topic read in place by
 * fast-publish.ts, every other packet by mqtt-packet's parser; mqtt-packet's generator), so that
 * the socket reads, the parsing and the PUBACK writes run on the machine's second core. What
 * needs the gateway's state stays in the main thread (device-front.ts): logins (passwords, bans,
 * client ids; the addresses banned in both login scopes are sent here, closed at accept),
 * subscriptions, and every uplink, which is handed over through two rings (alerts,
 * readings) without postMessage.
 *
 * A connection's life (an explicit state machine):
 *
 *   AWAITING_CONNECT --CONNECT--> LOGGING_IN --accepted--> LIVE --DISCONNECT / error / timeout--> CLOSED
 *                                            --refused--> CLOSED (CONNACK with the return code)
 *
 * Bounds and overflow policies:
 * - connections: maxConnections on the listener (beyond it Node closes new sockets at once);
 * - before login: connectTimeout, maxConnectSize per packet and four CONNECTs' worth of bytes
 *   (frames.ts, the rule of the operators' port: gateway/broker/limits.ts FrameGuard); the
 *   packets read while LOGGING_IN wait within those bytes;
 * - a packet still arriving: at most the connection's packet limit (the CONNECT's before login,
 *   the model's after), copied out of the socket read;
 * - QoS 1 uplinks waiting for their PUBACK: maxInflight per connection, beyond it the connection
 *   is closed unacknowledged (PubackQueue; the device re-sends, nothing is lost);
 * - the alert ring (every uplink not certainly telemetry, wills, closes): when it is full the
 *   record is held and the connection's socket is not read again until the ring has room (the
 *   kernel's socket buffer, then TCP, hold the device back): at most one socket read's packets
 *   are held per connection, and nothing is dropped;
 * - the telemetry ring (uplinks the model's `telemetryWhen` calls certainly telemetry, so that
 *   a device's readings never stand in front of its alerts): when it is full a connection's
 *   newest reading waits, one per connection, and a newer one replaces it (conflated: counted,
 *   and a QoS 1 one acknowledged, as the gateway acknowledges telemetry on arrival); the socket
 *   is read on, so an alert behind the readings still reaches its ring. A reading still waiting
 *   when its connection closes is dropped and counted the same way.
 */
import net from "node:net";
import type { SecureContextOptions, TLSSocket, Server as TlsServer } from "node:tls";
import v8 from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import mqttPacket from "mqtt-packet";
import { type Doorbell, SpscRing } from "../../../core/threads.js";
import type { TelemetryTest } from "../../../devices/threads.js";
import { InflightLimitError, PubackQueue } from "../puback-queue.js";
import {
  certificateNames,
  LISTEN_BACKLOG,
  onHandshakeFailure,
  TLS_HANDSHAKE,
  tlsServerOptionsOf,
} from "../tls-files.js";
import { type FastPublish, readFastPublish } from "./fast-publish.js";
import { type Framing, splitPackets } from "./frames.js";
import {
  type FromWorker,
  type FrontWorkerData,
  TAG_COMMITTED,
  TAG_UPLINK,
  TAG_WILL,
  type TlsContents,
  type ToWorker,
} from "./protocol.js";
import { TelemetryPeek } from "./telemetry-peek.js";
import { type Held, UplinkWriter } from "./uplink-writer.js";

const AWAITING_CONNECT = 0;
const LOGGING_IN = 1;
const LIVE = 2;
const CLOSED = 3;

/** MQTT 3.1.1 §3.1.2.10: the server closes a connection silent for one and a half keepalives. */
const KEEPALIVE_FACTOR = 1.5;

const PINGRESP = Buffer.from([0xd0, 0x00]);
const NOTHING = Buffer.alloc(0);

interface Will {
  topic: string;
  payload: Buffer;
  retain: boolean;
  contentType: string | undefined;
}

// As in the main thread (embedded.ts): mqtt-packet's cache of 65,536 two-byte Buffers for the numbers
// it writes is ~6.5 MB of this thread's heap, built on the first packet generated.
mqttPacket.writeToStream.cacheNumbers = false;

const data = workerData as FrontWorkerData;
/** node:tls, loaded only for a TLS listener (half a megabyte of this thread's heap otherwise). */
const tls = data.tls === null ? null : await import("node:tls");
const port = parentPort;
if (!port) throw new Error("gateway/broker/front/worker.ts runs as a worker thread");
const uplinks = new UplinkWriter(
  SpscRing.attach(data.uplink),
  SpscRing.attach(data.telemetry),
  new BigInt64Array(data.counters),
  post,
);
/** Per model, its telemetryWhen as a classifier (null: every uplink may be an alert). */
const peeks = new Map<string, TelemetryPeek | null>();
const completionRing = SpscRing.attach(data.completions);
const completionBytes = Buffer.from(
  completionRing.bytes.buffer,
  completionRing.bytes.byteOffset,
  completionRing.bytes.length,
);

const connections = new Map<number, DeviceConnection>();
/** Connections whose close handling is to throw once (tests only: the "failClose" message). */
const closeFaults = new Set<number>();
/**
 * Addresses banned in both login scopes, closed at accept before a byte is read, as aedes'
 * listeners close them (the bans are the main thread's: it sends each as it starts), and when the
 * ban ends (Date.now() ms). Bounded: an entry is dropped when found expired, and expired ones at
 * the front are dropped when one is added; the main thread's ban tables are bounded and it says
 * when it drops a ban early.
 */
const acceptBans = new Map<string, number>();
let nextConnectionId = 1;
let stopping = false;

function post(m: FromWorker): void {
  port?.postMessage(m);
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
function failedWithin(c: DeviceConnection, err: unknown): void {
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
 */
const startedMs = Date.now();
const TICK_MS = 250;
function tickNow(): number {
  return Math.floor((Date.now() - startedMs) / TICK_MS);
}

class DeviceConnection {
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
  limit = data.maxConnectSize;
  /** Bytes read before login (bounded: PRE_LOGIN_PACKETS CONNECTs' worth). */
  preLogin = 0;
  /** The start of a packet still arriving (a copy: a socket read is not kept for it). */
  partial: Buffer | null = null;
  will: Will | null = null;
  pubacks: PubackQueue | null = null;
  /** Packets read while the login is decided, handled once it is (bounded by preLogin). */
  early: mqttPacket.Packet[] | null = null;
  nextMessageId = 1;
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
    socket.once("close", onSocketClose);
  }

  read(chunk: Buffer): void {
    if (this.state === CLOSED) return;
    this.lastRead = tickNow();
    if (this.state !== LIVE) {
      this.preLogin += chunk.length;
      if (this.preLogin > PRE_LOGIN_PACKETS * (data.maxConnectSize + 5)) {
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
      certNames: tls === null ? [] : certificateNames(this.socket as TLSSocket),
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
              reasonCode: m.returnCode === 0 ? 0 : v5Reason(m.returnCode),
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
    this.pubacks = new PubackQueue(this.socket, pubacksFailed, data.maxInflight);
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
        // A downlink's acknowledgement: downlinks are sent once (no session is kept), nothing to do.
        return;
      case "disconnect":
        this.graceful = true;
        this.will = null;
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
      this.abort();
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
    }
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
    this.write(
      mqttPacket.generate(
        { cmd: "publish", topic, payload: Buffer.from(payload), qos, retain: false, dup: false, messageId },
        { protocolVersion: this.protocolVersion },
      ),
    );
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
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

/** MQTT 5 CONNACK reason codes for the 3.1.1 return codes the gateway gives. */
function v5Reason(returnCode: number): number {
  switch (returnCode) {
    case 2:
      return 0x85; // client identifier not valid
    case 3:
      return 0x88; // server unavailable
    case 4:
      return 0x86; // bad user name or password
    default:
      return 0x87; // not authorized
  }
}

/** PUBACKs: the main thread's completions, applied in each connection's order by its PubackQueue. */
function drainCompletions(): number {
  const n = completionRing.drain(Number.POSITIVE_INFINITY, onCompletion);
  uplinks.awaitingCompletions -= n;
  return n;
}

function onCompletion(tag: number, _bytes: Uint8Array, at: number): void {
  const conn = connections.get(completionBytes.readUInt32LE(at));
  if (conn === undefined) return;
  try {
    conn.pubacks?.complete(completionBytes.readUInt32LE(at + 4), tag === TAG_COMMITTED ? null : REFUSED);
  } catch (err) {
    failedWithin(conn, err);
  }
}

const REFUSED = new Error("uplink not kept by the gateway: closed unacknowledged for the device to re-send");

/**
 * Completions are looked for every millisecond while some are due, and the doorbell is slept on
 * only when none is: waking a sleeping thread (Atomics.notify, a futex syscall) for every batch
 * of completions was 3 % of the main thread at 30,000 msg/s (CPU profile), and a PUBACK a
 * millisecond later costs a device nothing.
 */
async function completionLoop(): Promise<void> {
  const bell = completionRing.doorbell as Doorbell;
  const isEmpty = () => completionRing.isEmpty();
  while (!stopping) {
    if (drainCompletions() > 0) await new Promise((r) => setImmediate(r));
    else if (uplinks.awaitingCompletions > 0) await new Promise((r) => setTimeout(r, 1));
    else await bell.sleep(isEmpty, 100);
  }
}

/**
 * Login deadlines and keepalives, for every connection in one pass. Times are whole ticks, so a
 * connection is closed one tick after its deadline at the earliest: never before it.
 */
const connectTimeoutTicks = Math.ceil(data.connectTimeout / TICK_MS);
const sweep = setInterval(() => {
  const now = tickNow();
  for (const c of connections.values()) {
    try {
      sweepOne(c, now);
    } catch (err) {
      failedWithin(c, err);
    }
  }
}, TICK_MS);

function sweepOne(c: DeviceConnection, now: number): void {
  if (c.state === LIVE) {
    if (c.keepaliveTicks > 0 && now - c.lastRead > c.keepaliveTicks + 1) {
      post({
        t: "rejected",
        conn: c.id,
        role: c.role,
        reason: "keepalive-timeout",
        detail: `${(c.keepaliveTicks * TICK_MS) / 1000} s of silence`,
      });
      c.abort();
    }
  } else if (c.state !== CLOSED && now - c.openedAt > connectTimeoutTicks + 1) {
    post({
      t: "rejected",
      conn: c.id,
      role: null,
      reason: "login-timeout",
      detail: `${data.connectTimeout} ms`,
    });
    c.graceful = true;
    c.socket.destroy();
  }
}

function closedAtAccept(socket: net.Socket): boolean {
  if (acceptBans.size === 0) return false;
  const address = socket.remoteAddress ?? "unknown";
  const until = acceptBans.get(address);
  if (until === undefined) return false;
  if (Date.now() >= until) {
    acceptBans.delete(address);
    return false;
  }
  // Counted as aedes' listeners count it (connection-limits.ts accept).
  post({ t: "rejected", conn: null, role: null, reason: "address-banned", detail: address });
  socket.destroy();
  return true;
}

function banned(address: string, ms: number): void {
  acceptBans.delete(address);
  if (ms <= 0) return;
  const now = Date.now();
  for (const [a, until] of acceptBans) {
    if (until > now) break;
    acceptBans.delete(a);
  }
  acceptBans.set(address, now + ms);
}

function accept(socket: net.Socket): void {
  if (stopping) {
    socket.destroy();
    return;
  }
  // After a TLS handshake, as on aedes' TLS listeners (transports.ts).
  if (closedAtAccept(socket)) return;
  const id = nextConnectionId;
  nextConnectionId = nextConnectionId === 0xffffffff ? 1 : nextConnectionId + 1;
  connections.set(id, new DeviceConnection(id, socket));
}

function secureContextOf(t: TlsContents): SecureContextOptions {
  return {
    cert: Buffer.from(t.cert),
    key: Buffer.from(t.key),
    ...(t.ca === undefined ? {} : { ca: Buffer.from(t.ca) }),
    minVersion: t.minVersion,
  };
}

let server: net.Server;
if (data.tls !== null) {
  const secure = (tls as NonNullable<typeof tls>).createServer({
    ...tlsServerOptionsOf(secureContextOf(data.tls)),
    noDelay: true,
  });
  secure.on("secureConnection", accept);
  // A failed handshake concerns that socket only: counted and logged by the main thread.
  onHandshakeFailure(secure, (code, address) =>
    post({ t: "rejected", conn: null, role: null, reason: TLS_HANDSHAKE, detail: code, address }),
  );
  server = secure;
} else {
  server = net.createServer({ noDelay: true }, accept);
}
server.maxConnections = data.maxConnections;

port.on("message", (m: ToWorker) => {
  try {
    onMainMessage(m);
  } catch (err) {
    // A message about one connection fails that connection only; any other is reported.
    const c = "conn" in m ? connections.get(m.conn) : undefined;
    if (c !== undefined) failedWithin(c, err);
    else post({ t: "error", message: `${m.t}: ${err instanceof Error ? err.message : String(err)}` });
  }
});

function onMainMessage(m: ToWorker): void {
  switch (m.t) {
    case "model":
      peeks.set(
        m.model,
        m.telemetryWhen === null ? null : new TelemetryPeek(m.telemetryWhen as TelemetryTest[]),
      );
      return;
    case "login":
      connections.get(m.conn)?.loggedIn(m);
      return;
    case "suback": {
      const c = connections.get(m.conn);
      c?.write(
        mqttPacket.generate(
          { cmd: "suback", messageId: m.messageId, granted: m.granted },
          { protocolVersion: c.protocolVersion },
        ),
      );
      return;
    }
    case "deliver":
      connections.get(m.conn)?.deliver(m.topic, m.payload, m.qos);
      return;
    case "close":
      connections.get(m.conn)?.abort();
      return;
    case "ban":
      banned(m.address, m.ms);
      return;
    case "failClose":
      if (connections.has(m.conn)) closeFaults.add(m.conn);
      return;
    case "tls":
      (server as TlsServer).setSecureContext(secureContextOf(m.tls));
      return;
    case "stop":
      stop();
      return;
    case "stats": {
      (globalThis as { gc?: () => void }).gc?.();
      if (m.snapshot !== undefined) v8.writeHeapSnapshot(m.snapshot);
      const h = v8.getHeapStatistics();
      post({
        t: "stats",
        stats: {
          heapUsed: h.used_heap_size,
          heapTotal: h.total_heap_size,
          sockets: connections.size,
          heldTotal: uplinks.heldTotal,
        },
      });
      return;
    }
  }
}

function stop(): void {
  stopping = true;
  clearInterval(sweep);
  uplinks.stop();
  server.close(() => {
    post({ t: "stopped" });
    port?.close();
  });
  for (const c of connections.values()) {
    c.graceful = true;
    c.socket.destroy();
  }
}

// Not listening (a port in use): the worker fails, and DeviceFrontEnd.start() with it.
const failToListen = (err: Error) => {
  throw err;
};
server.once("error", failToListen);
server.listen({ port: data.port, host: data.host, backlog: LISTEN_BACKLOG }, () => {
  server.off("error", failToListen);
  server.on("error", (err) => post({ t: "error", message: err.message }));
  post({ t: "ready", port: (server.address() as net.AddressInfo).port });
  void completionLoop();
});
