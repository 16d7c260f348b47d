/**
 * The embedded MQTT broker (aedes), with Linli's access policy plugged into
 * its hooks. It is also a northbound sink: the gateway publishes from inside
 * the broker, so its messages pass no client ACL and cost no extra hop.
 */
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Aedes, type Client, type PublishPacket } from "aedes";
import type { Logger, RateLimitedLog } from "../log.js";
import type { NorthboundSink } from "../northbound/sink.js";
import type { Completion } from "../pipeline/lanes.js";
import type { DeviceEntry } from "../registry.js";
import type { Counters } from "../stats.js";
import type { AccessPolicy, Identity, OperatorAction } from "./access.js";
import { PubackQueue } from "./puback-queue.js";
import { type DurableMap, SessionPersistence, type SessionStats } from "./sessions.js";

export interface BrokerHandlers {
  uplink(device: DeviceEntry, payload: Buffer, contentType: string | undefined, done: Completion): void;
  /** An operator's action (ack, shelve, command, ...), already authorised by topic. */
  operator(
    operator: string,
    action: OperatorAction,
    target: string,
    command: string | null,
    payload: Buffer,
  ): void;
}

export interface ListenerConfig {
  host: string;
  port: number;
}

export interface SessionsConfig {
  /** Where operators' persistent sessions are kept (the gateway's journal); absent, in memory only. */
  store?: DurableMap;
  /** Messages queued per persistent session, in flight included (default 1,000, as mosquitto's max_queued_messages). */
  queueLimit?: number;
  /** Operators' persistent sessions kept (default 64); beyond it the one away longest is discarded. */
  maxSessions?: number;
  /**
   * A delivery to a connected console is written to the store only if still unacknowledged
   * after this long (default 500 ms); to a console that is away, at once. 0: every delivery at once
   * (nothing lost to a crash; measured 1.5x the broker's CPU per message, bench/sessions.ts).
   */
  writeAfterMs?: number;
}

/** Sessions in memory only: nothing is written, nothing restored. */
const NO_STORE: DurableMap = {
  *entries() {},
  put() {},
  delete() {},
};

class RefusedError extends Error {
  returnCode?: number;
}

const EMITTER_CONCURRENCY = 1000;

// MQTT 3.1.1 §3.2.2.3 CONNACK return codes.
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

export class EmbeddedBroker implements NorthboundSink {
  private readonly identities = new WeakMap<Client, Identity>();
  /** Devices' connections: their QoS 1 PUBACKs, written in order once committed. */
  private readonly pubackQueues = new WeakMap<Client, PubackQueue>();
  /** The will packets of connected clients: aedes hands the same object to authorizePublish when it falls due. */
  private readonly wills = new WeakSet<object>();
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly streams = new Set<Duplex>();
  private closing = false;

  private constructor(
    readonly aedes: Aedes,
    readonly policy: AccessPolicy,
    private readonly handlers: BrokerHandlers,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly rateLog: RateLimitedLog,
    private readonly urgentTopicPrefixes: readonly string[],
    private readonly sessions: SessionPersistence,
  ) {}

  static async start(opts: {
    listeners: readonly ListenerConfig[];
    /** Per listener; beyond it Node closes new connections at once. */
    maxConnections: number;
    policy: AccessPolicy;
    handlers: BrokerHandlers;
    counters: Counters;
    log: Logger;
    rateLog: RateLimitedLog;
    /** Deliveries on topics under these prefixes skip aedes' turn of the event loop (P1 alerts). */
    urgentTopicPrefixes?: readonly string[];
    /**
     * Persistent sessions (clean session 0). Always served by gateway/broker/sessions.ts: aedes'
     * own memory persistence loses track of every QoS 1 delivery once restampOnEmit has
     * re-stamped it ("no such packet") and disconnects the client. With a store, operators'
     * sessions survive a restart.
     */
    sessions?: SessionsConfig;
  }): Promise<EmbeddedBroker> {
    let self: EmbeddedBroker | null = null;
    const sessions = new SessionPersistence({
      store: opts.sessions?.store ?? NO_STORE,
      queueLimit: opts.sessions?.queueLimit ?? 1000,
      maxSessions: opts.sessions?.maxSessions ?? 64,
      writeAfterMs: opts.sessions?.writeAfterMs ?? 500,
      urgentTopicPrefixes: opts.urgentTopicPrefixes ?? [],
      owner: (client) => {
        const identity = self?.identities.get(client);
        return identity?.kind === "operator" ? identity.name : null;
      },
      onDrop: (clientId, reason, topic) => {
        const counted = reason === "queue-full" ? "session-queue-full" : "session-evicted";
        opts.counters.reject("operator", counted);
        opts.rateLog.warn(
          clientId,
          counted,
          { clientId, topic },
          reason === "queue-full"
            ? "persistent session queue full; oldest message dropped"
            : "persistent session discarded to make room",
        );
      },
      onStoreError: (err) => {
        opts.counters.reject("operator", "session-store-error");
        opts.rateLog.warn(
          "sessions",
          "store-error",
          { err: err.message },
          "persistent session not written to the store; kept in memory only",
        );
      },
    });
    const aedes = await Aedes.createBroker({
      persistence: sessions,
      heartbeatInterval: 60_000,
      connectTimeout: 10_000,
      // Deliveries in flight before aedes queues messages (default 100). A QoS 0 delivery holds its
      // slot until the next turn of the event loop, so at 20,000 msg/s bursts passed 100 and the
      // queue (an array shifted one by one) grew; `congested` tells the pipeline when it does.
      concurrency: EMITTER_CONCURRENCY,
    });
    const broker = new EmbeddedBroker(
      aedes,
      opts.policy,
      opts.handlers,
      opts.counters,
      opts.log,
      opts.rateLog,
      opts.urgentTopicPrefixes ?? [],
      sessions,
    );
    self = broker;
    broker.install();
    try {
      for (const l of opts.listeners) await broker.listen(l, opts.maxConnections);
    } catch (err) {
      await broker.close();
      throw err;
    }
    return broker;
  }

  /** Where the broker listens (ports resolved when configured as 0). */
  addresses(): AddressInfo[] {
    return this.servers.map((s) => s.address() as AddressInfo);
  }

  /**
   * True while aedes' emitter is queueing (every delivery slot busy): more
   * telemetry now would only wait in its unbounded queue ahead of alerts.
   */
  get congested(): boolean {
    return (this.aedes as unknown as { mq: { length: number } }).mq.length > 0;
  }

  /** Persistent sessions of operators, and what their queues dropped. */
  sessionStats(): SessionStats {
    return this.sessions.stats();
  }

  get listening(): boolean {
    return !this.closing && this.servers.length > 0 && this.servers.every((s) => s.listening);
  }

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    if (this.aedes.closed) return;
    this.aedes.publish(
      { cmd: "publish", topic, payload: Buffer.from(payload), qos, retain, dup: false } as PublishPacket,
      (err) => {
        if (err)
          this.rateLog.warn("northbound", "publish-failed", { topic, err: err.message }, "publish failed");
      },
    );
  }

  /**
   * Closes the connections of every client whose identity matches (a reload
   * removed it or changed its password); returns how many. A client still
   * between CONNACK and registration is caught at its first publish instead
   * (AccessPolicy refuses a removed identity, which closes the connection).
   */
  disconnect(match: (identity: Identity) => boolean): number {
    const clients = (this.aedes as unknown as { clients: Record<string, Client> }).clients;
    let n = 0;
    for (const client of Object.values(clients)) {
      const identity = this.identities.get(client);
      if (identity && match(identity)) {
        client.close();
        n++;
      }
    }
    return n;
  }

  /** Stops accepting, closes every client, then the broker. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Stop accepting first; server.close() resolves only once every socket has gone, so close the clients next.
    const serversClosed = Promise.all(
      this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    this.sessions.close();
    for (const s of this.sockets) s.destroy();
    for (const s of this.streams) s.destroy();
    await serversClosed;
  }

  /**
   * A connection that did not come through a TCP listener (the console's
   * MQTT over WebSocket): the same broker, authentication and rules.
   */
  attach(stream: Duplex): void {
    if (this.closing) {
      stream.destroy();
      return;
    }
    this.streams.add(stream);
    stream.once("close", () => this.streams.delete(stream));
    const client = this.aedes.handle(stream as unknown as Socket) as unknown as Client;
    if (this.urgentTopicPrefixes.length > 0) deliverUrgentAtOnce(client, this.urgentTopicPrefixes);
  }

  private async listen(l: ListenerConfig, maxConnections: number): Promise<void> {
    // TCP_NODELAY: with stock settings delayed ACKs add tens of ms to every hop on loopback.
    const server = createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      coalesceWrites(socket);
      socket.once("close", () => this.sockets.delete(socket));
      const client = this.aedes.handle(socket) as unknown as Client;
      if (this.urgentTopicPrefixes.length > 0) deliverUrgentAtOnce(client, this.urgentTopicPrefixes);
    });
    server.maxConnections = maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(l.port, l.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => this.log.error({ err }, "listener error"));
    this.servers.push(server);
  }

  private pubacks(client: Client): PubackQueue {
    let q = this.pubackQueues.get(client);
    if (!q) {
      const conn = (client as unknown as { conn: Socket }).conn;
      q = new PubackQueue(conn, (err) => {
        this.log.warn({ clientId: client.id, err: err.message }, "device connection closed unacknowledged");
        client.close();
      });
      this.pubackQueues.set(client, q);
    }
    return q;
  }

  /**
   * A device's uplink is consumed by the gateway in authorizePublish (ingest)
   * and nobody may subscribe to device topics (AccessPolicy), so aedes'
   * forwarding of it (QoS 1 offline-queue lookups, topic matching, retained
   * storage) is pure cost: about a third of the broker's work per message.
   * The PUBACK is still sent by aedes after authorizePublish calls back.
   */
  private skipUplinkForwarding(): void {
    const a = this.aedes as unknown as {
      publish(
        packet: PublishPacket,
        client: Client | null | ((err?: Error) => void),
        done?: (err?: Error) => void,
      ): void;
    };
    const publish = a.publish.bind(this.aedes);
    a.publish = (packet, client, done) => {
      if (client && typeof client !== "function" && this.identities.get(client)?.kind === "device") {
        done?.();
        return;
      }
      publish(packet, client, done);
    };
  }

  /**
   * A client id whose persistent session belongs to an operator is that
   * operator's alone (else another account would receive its queued alerts,
   * or wipe them with a clean session). A new persistent session beyond
   * maxSessions is refused while every kept one is connected.
   */
  private sessionRefusal(client: Client, identity: Identity): RefusedError | null {
    const sessions = this.sessions;
    const name = identity.kind === "operator" ? identity.name : identity.device.id;
    const owner = sessions.ownerOf(client.id);
    let reason: string;
    let code: number;
    if (owner !== undefined && !(identity.kind === "operator" && identity.name === owner)) {
      reason = "client-id-taken";
      code = IDENTIFIER_REJECTED;
    } else if (identity.kind === "operator" && client.clean === false && !sessions.admit(client.id)) {
      reason = "sessions-full";
      code = SERVER_UNAVAILABLE;
    } else {
      return null;
    }
    this.counters.reject(identity.kind === "operator" ? "operator" : identity.device.model, reason);
    this.rateLog.warn(name, reason, { who: name, clientId: client.id, reason }, "connection refused");
    const err = new RefusedError(`connection refused: ${reason}`);
    err.returnCode = code;
    return err;
  }

  private install(): void {
    const a = this.aedes;
    restampOnEmit(a);
    this.skipUplinkForwarding();
    a.authenticate = (client, username, password, done) => {
      const result = this.policy.authenticate(username, password);
      if (result.ok) {
        const refused = this.sessionRefusal(client, result.identity);
        if (refused !== null) return done(refused as RefusedError & { returnCode: 2 | 3 }, false);
        this.identities.set(client, result.identity);
        // aedes has put the CONNECT's will here before authenticating (lib/handlers/connect.js).
        const will = (client as unknown as { _will?: object | null })._will;
        if (will) this.wills.add(will);
        return done(null, true);
      }
      this.counters.reject(result.reason === "unknown-device" ? "unknown" : "auth", result.reason);
      this.rateLog.warn(
        username ?? "(anonymous)",
        result.reason,
        { username, clientId: client.id, reason: result.reason },
        "connection refused",
      );
      const err = new RefusedError(`connection refused: ${result.reason}`);
      err.returnCode = result.reason === "anonymous" ? NOT_AUTHORIZED : BAD_USERNAME_OR_PASSWORD;
      done(err as RefusedError & { returnCode: 4 | 5 }, false);
    };

    a.authorizePublish = (client, packet, callback) => {
      // client === null: a will aedes found in its persistence for a client of another broker instance
      // (never ours: the gateway's own publishes do not pass here). It cannot be attributed: refused.
      if (client === null) {
        this.counters.reject("unknown", "will-not-allowed");
        this.rateLog.warn("(unknown)", "will-not-allowed", { topic: packet.topic }, "orphan will refused");
        return callback(new Error(`will on ${packet.topic} of an unknown client refused`));
      }
      const identity = this.identities.get(client);
      const will = this.wills.has(packet);
      const decision = identity
        ? this.policy.authorizePublish(identity, packet.topic, { retain: packet.retain, will })
        : null;
      if (decision?.ok) {
        const kind = decision.kind;
        if (kind.kind === "uplink" && identity?.kind === "device") {
          // A device's will is its message, taken in like any other (docs/topics.md "Retained messages and wills").
          const contentType = (packet as { properties?: { contentType?: string } }).properties?.contentType;
          if (packet.qos !== 1 || will) {
            this.handlers.uplink(identity.device, packet.payload as Buffer, contentType, callback);
            return;
          }
          // QoS 1: the PUBACK is written by the connection's queue once the message is committed, in
          // order; aedes goes on reading at once (puback-queue.ts). As QoS 0 to aedes: no PUBACK of its own.
          const done = this.pubacks(client).enqueue(packet.messageId as number);
          if (done === null) return callback(new Error("connection closed: too many unacknowledged uplinks"));
          packet.qos = 0;
          this.handlers.uplink(identity.device, packet.payload as Buffer, contentType, done);
          callback(null);
          return;
        }
        if (kind.kind === "operator" && identity?.kind === "operator") {
          this.handlers.operator(
            identity.name,
            kind.action,
            kind.target,
            kind.command,
            packet.payload as Buffer,
          );
          callback(null);
          return;
        }
      }
      const reason = decision && !decision.ok ? decision.reason : "topic-not-allowed";
      const who = identity ? (identity.kind === "device" ? identity.device.id : identity.name) : client.id;
      this.counters.reject(identity?.kind === "device" ? identity.device.model : "operator", reason);
      this.rateLog.warn(
        who,
        reason,
        { who, topic: packet.topic, retain: packet.retain, will },
        will ? "will refused" : "publish refused; client disconnected",
      );
      // MQTT 3.1.1 §3.3.5: the server must either acknowledge or close the connection; closing tells the
      // client. §3.3.1.3 obliges a server that accepts a retained message to store it, so a refused
      // retain closes the connection too. A refused will is simply not published (aedes drops it).
      callback(
        new Error(`${will ? "will" : "publish"} to ${packet.topic} not allowed for ${who} (${reason})`),
      );
    };

    a.authorizeSubscribe = (client, sub, callback) => {
      const identity = this.identities.get(client);
      if (identity && this.policy.subscribe(identity, sub.topic)) return callback(null, sub);
      const who = identity ? (identity.kind === "device" ? identity.device.id : identity.name) : client.id;
      this.counters.reject(
        identity?.kind === "device" ? identity.device.model : "operator",
        "subscribe-not-allowed",
      );
      this.rateLog.warn(who, "subscribe-not-allowed", { who, filter: sub.topic }, "subscription refused");
      // A null subscription is refused in the SUBACK with 0x80 (§3.9.3) and the client stays connected.
      callback(null, null);
    };

    // aedes emits "error" when publishing stored wills fails (an orphan will refused above); unhandled,
    // an EventEmitter "error" would throw.
    (a as unknown as NodeJS.EventEmitter).on("error", (err: Error) =>
      this.log.warn({ err: err.message }, "broker error"),
    );
    a.on("clientError", (client, err) => {
      this.log.debug({ clientId: client?.id, err: err.message }, "client error");
    });
    a.on("connectionError", (client, err) => {
      this.log.debug({ clientId: client?.id, err: err.message }, "connection error");
    });
  }
}

/**
 * aedes drops a message to a client when its broker counter is not above the
 * last one that client received (per-client `dedupe`, meant for overlapping
 * subscriptions). Counters are taken when a packet is created, but QoS 1 and
 * retained publishes reach the emitter several promise hops later than QoS 0
 * ones, so a telemetry reading published after an alert overtakes it and the
 * alert is silently dropped (moscajs/aedes #994, #955, open). Re-stamping the
 * counter at emission makes counters rise in delivery order; an overlapping
 * subscription still sees the same packet twice and is still deduplicated.
 * Retained replays on subscribe carry no brokerId and skip dedupe, unaffected.
 */
function restampOnEmit(aedes: Aedes): void {
  const internals = aedes as unknown as {
    counter: number;
    mq: { emit(packet: { brokerCounter: number }, cb?: (err?: Error) => void): void };
  };
  const mq = internals.mq;
  const emit = mq.emit.bind(mq);
  mq.emit = (packet, cb) => {
    packet.brokerCounter = ++internals.counter;
    emit(packet, cb);
  };
}

/**
 * aedes delivers every message to a subscriber from a setImmediate callback
 * (to keep the stack short under load), so a P1 alert published while the
 * loop is reading sockets waits for the end of that poll phase and then
 * behind every delivery queued before it: at 10,000 msg/s 0.25 ms median and
 * 1 ms p99 between our publish and the write, and under overload thousands of
 * telemetry deliveries. For urgent topics the deliver step runs at once (the
 * write's own completion still goes through setImmediate, so a long emitter
 * queue cannot recurse). aedes looks setImmediate up on each call, which is
 * what the swap relies on; subscriptions capture `deliverQoS` when they are
 * made, so it is replaced right after the client is created.
 */
function deliverUrgentAtOnce(client: Client, prefixes: readonly string[]): void {
  type Deliver = (packet: { topic: string }, cb: () => void) => void;
  const c = client as unknown as { deliverQoS: Deliver; deliver0: Deliver };
  for (const name of ["deliverQoS", "deliver0"] as const) {
    const deliver = c[name];
    c[name] = (packet, cb) => {
      if (!isUrgent(packet.topic, prefixes)) return deliver(packet, cb);
      const deferred = globalThis.setImmediate;
      let first = true;
      globalThis.setImmediate = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => {
        if (!first) return deferred(fn, ...args);
        first = false;
        fn(...args);
        return undefined;
      }) as typeof setImmediate;
      try {
        deliver(packet, cb);
      } finally {
        globalThis.setImmediate = deferred;
      }
    };
  }
}

function isUrgent(topic: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) if (topic.startsWith(p)) return true;
  return false;
}

/**
 * aedes writes every packet (each PUBACK, each delivered message) in several
 * pieces. Corking on the first write and uncorking on the next tick turns what
 * one callback writes for a client (e.g. the PUBACKs of a whole socket read)
 * into one writev. Measured at 20,000 msg/s: writev was 16 % of the gateway's
 * CPU before. Uncorking later (setImmediate) batched more but held alert
 * deliveries, which aedes writes from setImmediate callbacks, a whole extra
 * loop turn: P1 p99 21 ms instead of 13-16 ms. end() uncorks by itself.
 */
function coalesceWrites(socket: Socket): void {
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    if (!socket.destroyed) socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket["write"]>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(flush);
    }
    return write.apply(this, args);
  } as Socket["write"];
}
