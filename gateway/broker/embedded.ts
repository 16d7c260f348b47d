/**
 * The embedded MQTT broker (aedes), with Linli's access policy plugged into
 * its hooks. It is also a northbound sink: the gateway publishes from inside
 * the broker, so its messages pass no client ACL and cost no extra hop.
 */
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from "aedes";
import mqttPacket from "mqtt-packet";
import type { Logger, RateLimitedLog } from "../log.js";
import type { NorthboundSink } from "../northbound/sink.js";
import type { Counters } from "../stats.js";
import type { AccessPolicy, Identity } from "./access.js";
import { forgetConnectPacket, restampOnEmit, skipUplinkForwarding, slimParser } from "./aedes-patches.js";
import { compactClient, compactClientEvents, shareClientListeners } from "./client-memory.js";
import { IDENTIFIER_REJECTED, SERVER_UNAVAILABLE } from "./connack.js";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS, SocketLimits } from "./connection-limits.js";
import { DirectFanout } from "./direct-fanout.js";
import { DeviceFrontEnd } from "./front/device-front.js";
import type { FrontWorkerStats } from "./front/protocol.js";
import type { BrokerHandlers } from "./handlers.js";
import { decideLogin, type LoginDecision, type LoginDeps } from "./login-flow.js";
import { deliverToOperator, SlowSubscribers } from "./operator-delivery.js";
import { InflightLimitError, PubackQueue } from "./puback-queue.js";
import { type DurableMap, SessionPersistence, type SessionStats } from "./sessions.js";
import { coalesceWrites } from "./socket-writes.js";
import { AedesTakeover } from "./takeover.js";
import { TLS_HANDSHAKE, type TlsFiles, warnHandshakeFailed } from "./tls-files.js";
import {
  type Connection,
  describeListener,
  Listener,
  type ListenerConfig,
  type TransportName,
} from "./transports.js";

export type { BrokerHandlers } from "./handlers.js";
export type { ListenerConfig } from "./transports.js";

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

/** CONNACK 1 (MQTT 3.1.1 §3.2.2.3): aedes' answer to a CONNECT of a level it does not speak (MQTT 5). */
const UNACCEPTABLE_PROTOCOL_VERSION = 1;
/**
 * aedes' own protocol checks, by their messages (lib/handlers, lib/utils.js validateTopic): a
 * second CONNECT or a packet a client never sends ("Invalid protocol"), a wildcard or empty
 * topic in a PUBLISH, a malformed filter in a SUBSCRIBE or UNSUBSCRIBE.
 */
const PROTOCOL_VIOLATION =
  /^(Invalid protocol$|impossible to (UN)?SUBSCRIBE to an empty topic|[#+] is (not|only) allowed in |topic has too many levels|empty topic not allowed in PUBLISH)/;

/**
 * mqtt-packet's refusal to write a SUBACK without return codes: the answer to a SUBSCRIBE without
 * a topic filter (§3.8.3-3), which its parser lets through. The frame guard closes such a packet
 * before aedes reads it (limits.ts), on every listener: this is the check behind it.
 */
const UNWRITABLE_SUBACK = "Invalid qos vector";

class RefusedError extends Error {
  returnCode?: number;
}

const EMITTER_CONCURRENCY = 1000;

// mqtt-packet writes 16-bit numbers (lengths, packet ids) from a cache of 65,536 two-byte Buffers, built
// on the first packet written: ~6.5 MB of heap (a Buffer object is ~100 B), a twentieth of an edge box's
// budget, to save one 2-byte pool allocation per number written. Process-wide; aedes shares the module.
mqttPacket.writeToStream.cacheNumbers = false;

/**
 * One Buffer per short retained payload (a device's status: "online", "lost", ""), shared by every
 * topic that retains it. Buffer.from() takes a slice of an 8 KB pool slab, and a retained message
 * keeps its slab alive: 10,000 retained statuses held ~3.4 MB of slabs (~340 B per device) for
 * 6-byte payloads. Payloads are never written to once published (aedes and mqtt-packet only read
 * them). Bounded: at most SHARED_PAYLOADS_MAX payloads of at most SHARED_PAYLOAD_CHARS characters.
 */
const SHARED_PAYLOAD_CHARS = 16;
const SHARED_PAYLOADS_MAX = 64;
const sharedPayloads = new Map<string, Buffer>();
function sharedPayload(payload: string): Buffer | undefined {
  if (payload.length > SHARED_PAYLOAD_CHARS) return undefined;
  let b = sharedPayloads.get(payload);
  if (b === undefined && sharedPayloads.size < SHARED_PAYLOADS_MAX) {
    b = Buffer.from(payload);
    sharedPayloads.set(payload, b);
  }
  return b;
}
/**
 * A payload that may be kept for long (retained, or queued for an operator's offline session) gets
 * memory of its own. Buffer.from() takes a slice of an 8 KB pool slab that short-lived buffers share,
 * and a kept slice keeps its whole slab alive: after a start with 10,000 open alerts, their retained
 * payloads of ~1.1 KB held 33 MB of slabs, three times their size (heap snapshot).
 */
function keptPayload(payload: string): Buffer {
  const b = Buffer.allocUnsafeSlow(Buffer.byteLength(payload));
  b.write(payload);
  return b;
}
/** A connection without a client certificate: one shared record per transport, not one per connection. */
const NO_NAMES: readonly string[] = Object.freeze([]);
const PLAIN_TRANSPORT: Readonly<Record<TransportName, Pick<Connection, "transport" | "certNames">>> = {
  tcp: Object.freeze({ transport: "tcp", certNames: NO_NAMES }),
  tls: Object.freeze({ transport: "tls", certNames: NO_NAMES }),
  ws: Object.freeze({ transport: "ws", certNames: NO_NAMES }),
  wss: Object.freeze({ transport: "wss", certNames: NO_NAMES }),
};

export class EmbeddedBroker implements NorthboundSink {
  private readonly identities = new WeakMap<Client, Identity>();
  /** Devices' connections: their QoS 1 PUBACKs, written in order once committed. */
  private readonly pubackQueues = new WeakMap<Client, PubackQueue>();
  /** The will packets of connected clients: aedes hands the same object to authorizePublish when it falls due. */
  private readonly wills = new WeakSet<object>();
  private readonly listeners: Listener[] = [];
  /** What each client's transport knows: tcp/tls/ws/wss and a verified client certificate's names. */
  private readonly transports = new WeakMap<Client, Pick<Connection, "transport" | "certNames">>();
  /** Connections handed over by another server (the console's MQTT over WebSocket), closed with the broker. */
  private readonly attached = new Set<Duplex>();
  private closing = false;
  /** Operators' connections too far behind: QoS 0 dropped, or closed (operator-delivery.ts). */
  readonly slowSubscribers = new SlowSubscribers(
    (clientId, backlogBytes) =>
      this.rateLog.warn(
        clientId,
        "slow-subscriber",
        { clientId, backlogBytes },
        "subscriber too far behind: QoS 0 messages (telemetry) to it are dropped until it catches up",
      ),
    (clientId, backlogBytes) =>
      this.log.warn(
        { clientId, backlogBytes },
        "subscriber too far behind even for QoS 1: connection closed (a persistent session resumes on reconnect)",
      ),
  );
  /** Logins on the device listener take over from aedes' connections (takeover.ts). */
  private readonly takeover: AedesTakeover;
  /** The device listener's front end (a worker thread), when configured. */
  private front: DeviceFrontEnd | null = null;
  /** Telemetry straight to operators' connections, past aedes (direct-fanout.ts). */
  private readonly fanout = new DirectFanout(this.slowSubscribers);
  private readonly telemetryPrefix: string;
  /** What a login's decision needs (login-flow.ts). */
  private readonly loginDeps: LoginDeps;

  private constructor(
    readonly aedes: Aedes,
    readonly policy: AccessPolicy,
    private readonly handlers: BrokerHandlers,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly rateLog: RateLimitedLog,
    private readonly urgentTopicPrefixes: readonly string[],
    private readonly sessions: SessionPersistence,
    readonly limits: SocketLimits,
  ) {
    this.telemetryPrefix = `linli/${policy.site}/telemetry/`;
    this.loginDeps = { limits, policy, counters, rateLog };
    this.takeover = new AedesTakeover(aedes);
  }

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
    /** What a connection may cost before and after login (docs/security.md "Limits"). */
    limits?: ConnectionLimits;
    /**
     * A listener for devices only, served by a worker thread on the second core
     * (front/device-front.ts); absent, devices connect to `listeners` like everyone else.
     */
    deviceListener?: { host: string; port: number; tls?: TlsFiles };
  }): Promise<EmbeddedBroker> {
    const limitsConfig = opts.limits ?? DEFAULT_CONNECTION_LIMITS;
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
      // A socket that has not sent its CONNECT by then is closed (an idle socket costs a descriptor).
      connectTimeout: limitsConfig.connectTimeout,
      // Inbound QoS 2 messages awaiting PUBREL per client (device QoS 1 is bounded by its PubackQueue).
      maxInflightInbound: limitsConfig.maxInflight,
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
      new SocketLimits(limitsConfig, opts.counters, opts.log, opts.rateLog),
    );
    self = broker;
    broker.install();
    try {
      for (const [i, l] of opts.listeners.entries())
        await broker.listen(l, opts.maxConnections).catch((err: NodeJS.ErrnoException) => {
          // A certificate that cannot be read or used: name the listener (EADDRINUSE and such keep their code).
          if (err.code === undefined || err.code.startsWith("ERR_"))
            err.message = `mqtt.listeners[${i}] (${describeListener(l)}): ${err.message}`;
          throw err;
        });
      if (opts.deviceListener)
        broker.front = await DeviceFrontEnd.start({
          listener: opts.deviceListener,
          maxConnections: opts.maxConnections,
          policy: opts.policy,
          handlers: opts.handlers,
          limits: broker.limits,
          counters: opts.counters,
          log: opts.log,
          rateLog: opts.rateLog,
          takeOver: (clientId) => broker.takeover.takeOver(clientId),
        }).catch((err: NodeJS.ErrnoException) => {
          err.message = `mqtt.deviceListener (${opts.deviceListener?.host}:${opts.deviceListener?.port}): ${err.message}`;
          throw err;
        });
    } catch (err) {
      await broker.close();
      throw err;
    }
    return broker;
  }

  /** Where the broker listens (ports resolved when configured as 0). */
  addresses(): AddressInfo[] {
    return this.listeners.map((l) => l.address());
  }

  /** The device listener's port (resolved when configured as 0), or null without one. */
  get deviceListenerPort(): number | null {
    return this.front?.port ?? null;
  }

  /** The device listener worker's figures (and a heap snapshot of it into `snapshot`), or null without one. */
  deviceListenerStats(snapshot?: string): Promise<FrontWorkerStats> | null {
    return this.front?.stats(snapshot) ?? null;
  }

  /** Readings the device listener's worker conflated (its telemetry ring full). */
  get deviceListenerConflated(): number {
    return this.front?.telemetryConflated ?? 0;
  }

  /** Times the device listener's worker died and was restarted. */
  get deviceListenerRestarts(): number {
    return this.front?.restarts ?? 0;
  }

  /** Devices logged in on the device listener. */
  get deviceListenerConnections(): number {
    return this.front?.connections ?? 0;
  }

  /**
   * True while aedes' emitter is queueing (every delivery slot busy): alert
   * states, events and statuses wait there, and the pipeline holds readings
   * back meanwhile so that they do not take the loop from them. (Readings
   * themselves no longer pass through that queue: direct-fanout.ts.)
   */
  get congested(): boolean {
    return (this.aedes as unknown as { mq: { length: number } }).mq.length > 0;
  }

  /** Persistent sessions of operators, and what their queues dropped. */
  sessionStats(): SessionStats {
    return this.sessions.stats();
  }

  get listening(): boolean {
    return (
      !this.closing &&
      this.listeners.length > 0 &&
      this.listeners.every((l) => l.listening) &&
      (this.front === null || this.front.listening)
    );
  }

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    if (this.aedes.closed) return;
    // Readings: only operators may subscribe to them, and they are never retained or queued.
    if (qos === 0 && !retain && topic.startsWith(this.telemetryPrefix)) {
      this.fanout.publish(topic, payload);
      return;
    }
    const bytes = retain
      ? (sharedPayload(payload) ?? keptPayload(payload))
      : qos === 1
        ? keptPayload(payload)
        : Buffer.from(payload);
    // A downlink to a device on the device listener. The same device may also be connected to
    // aedes (moving from one listener to the other): the message is published there too.
    this.front?.deliver(topic, bytes, qos);
    this.aedes.publish(
      {
        cmd: "publish",
        topic,
        payload: bytes,
        qos,
        retain,
        dup: false,
      } as PublishPacket,
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
    return n + (this.front?.disconnect(match) ?? 0);
  }

  /** Stops accepting, closes every client, then the broker. */
  async close(): Promise<void> {
    this.takeover.clear();
    if (this.closing) return;
    this.closing = true;
    // Stop accepting first; server.close() resolves only once every socket has gone, so close the clients next.
    const serversClosed = Promise.all(this.listeners.map((l) => l.close()));
    const frontClosed = this.front?.close();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    this.sessions.close();
    this.limits.close();
    for (const l of this.listeners) l.destroyConnections();
    for (const s of this.attached) s.destroy();
    await serversClosed;
    await frontClosed;
  }

  /**
   * Re-reads every TLS listener's certificate, key and CA (reload, SIGHUP):
   * new handshakes use them, open connections stay. A listener whose files
   * cannot be read keeps its current ones; the problem is returned.
   */
  reloadCertificates(): { reloaded: number; failed: string[] } {
    let reloaded = 0;
    const failed: string[] = [];
    for (const l of this.listeners) {
      try {
        if (l.reloadCertificates()) reloaded++;
      } catch (err) {
        failed.push(`${describeListener(l.config)}: ${(err as Error).message}`);
      }
    }
    try {
      if (this.front?.reloadCertificates()) reloaded++;
    } catch (err) {
      failed.push(`mqtt.deviceListener: ${(err as Error).message}`);
    }
    return { reloaded, failed };
  }

  private async listen(l: ListenerConfig, maxConnections: number): Promise<void> {
    const listener = await Listener.open(
      l,
      maxConnections,
      (c) => this.accept(c),
      (err) => this.log.error({ err, listener: describeListener(l) }, "listener error"),
      (code, address) => {
        this.counters.reject("connection", TLS_HANDSHAKE);
        warnHandshakeFailed(this.rateLog, address, code, describeListener(l));
      },
    );
    this.listeners.push(listener);
  }

  /**
   * A connection that did not come through one of our listeners (the console's
   * MQTT over WebSocket, gateway/console/server.ts): the same limits, login and rules.
   */
  attach(stream: Duplex, socket: Socket): void {
    if (this.closing) {
      stream.destroy();
      return;
    }
    this.attached.add(stream);
    stream.once("close", () => this.attached.delete(stream));
    this.accept({ stream, socket, transport: "ws", certNames: [] });
  }

  private accept(c: Connection): void {
    // Banned or too-frequent source addresses are closed at once; the others reach aedes at their
    // first byte, and are closed if not logged in within limits.connectTimeout (connection-limits.ts).
    const admit = c.transport === "ws" || c.transport === "wss" ? "acceptStream" : "accept";
    this.limits[admit](
      c.stream as Socket,
      () => {
        if (this.closing) {
          c.stream.destroy();
          return;
        }
        // Plain sockets only: TLS and WebSocket streams frame their writes themselves.
        if (c.transport === "tcp") coalesceWrites(c.socket);
        const client = this.aedes.handle(c.stream as Socket) as unknown as Client;
        slimParser(client);
        shareClientListeners(client);
        compactClient(client);
        this.transports.set(
          client,
          c.certNames.length === 0
            ? PLAIN_TRANSPORT[c.transport]
            : { transport: c.transport, certNames: c.certNames },
        );
      },
      c.socket,
    );
  }

  /**
   * A connection aedes closed for a malformed packet (mqtt-packet's parser refused it) or a
   * protocol violation (aedes' own checks): counted and logged as the device listener does. Other
   * errors are not: refused logins, publishes and limits are counted where they are decided, and
   * a socket's own errors (a reset) are no one's violation.
   */
  private countProtocolError(client: Client | null | undefined, err: Error): void {
    if (!client) return;
    const parser = (client as unknown as { _parser?: { error: Error | null } })._parser;
    const reason =
      parser?.error === err || err.message === UNWRITABLE_SUBACK
        ? "malformed-packet"
        : (err as { errorCode?: number }).errorCode === UNACCEPTABLE_PROTOCOL_VERSION ||
            PROTOCOL_VIOLATION.test(err.message)
          ? "protocol-violation"
          : null;
    if (reason === null) return;
    const identity = this.identities.get(client);
    // As on the device listener: `connection` before login, the identity's model after.
    const model =
      identity === undefined ? "connection" : identity.kind === "device" ? identity.device.model : "operator";
    this.counters.reject(model, reason);
    const address = (client as unknown as { conn?: Socket }).conn?.remoteAddress ?? "unknown";
    const who =
      identity === undefined ? address : identity.kind === "device" ? identity.device.id : identity.name;
    this.rateLog.warn(
      who,
      reason,
      { who, clientId: client.id, reason, detail: err.message, transport: this.transportOf(client) },
      "connection closed: malformed packet or protocol violation",
    );
  }

  private transportOf(client: Client): TransportName | undefined {
    return this.transports.get(client)?.transport;
  }

  private pubacks(client: Client): PubackQueue {
    let q = this.pubackQueues.get(client);
    if (!q) {
      const conn = (client as unknown as { conn: Socket }).conn;
      q = new PubackQueue(
        conn,
        (err) => {
          if (err instanceof InflightLimitError) {
            const identity = this.identities.get(client);
            this.counters.reject(
              identity?.kind === "device" ? identity.device.model : "operator",
              "inflight-limit",
            );
          }
          this.log.warn({ clientId: client.id, err: err.message }, "device connection closed unacknowledged");
          client.close();
        },
        this.limits.config.maxInflight,
      );
      this.pubackQueues.set(client, q);
    }
    return q;
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

  /** A login decided (login-flow.ts): the refusal answered, or the identity kept. */
  private authenticated(
    client: Client,
    decision: LoginDecision,
    done: (err: AuthenticateError | null, ok: boolean) => void,
  ): void {
    if (!decision.ok) {
      // Closed while it waited for verification: nobody to answer.
      const err = new RefusedError(
        decision.reason === "gone"
          ? "connection closed during authentication"
          : `connection refused: ${decision.reason}`,
      );
      if (decision.reason !== "gone") err.returnCode = decision.returnCode;
      done(err as AuthenticateError, false);
      return;
    }
    const identity = decision.identity;
    this.limits.loggedIn((client as unknown as { conn: Socket }).conn, identity);
    const refused = this.sessionRefusal(client, identity);
    if (refused !== null) {
      done(refused as AuthenticateError, false);
      return;
    }
    this.identities.set(client, identity);
    // MQTT 3.1.1 §3.1.4-2 across listeners: aedes takes over within its own, this from the device listener's.
    if (this.front !== null) {
      this.front.takeOver(client.id);
      this.takeover.admitted(client);
    }
    forgetConnectPacket(client);
    // Deliveries to operators: P1 at once, and a slow reader holds nobody up (operator-delivery.ts).
    // Alerts and telemetry are for operators only (AccessPolicy): devices, the bulk of the
    // connections, keep aedes' own deliver functions (two closures fewer each). Set here, before
    // any SUBSCRIBE is read, because subscriptions capture the deliver function.
    if (identity.kind === "operator") {
      deliverToOperator(client, this.urgentTopicPrefixes, this.slowSubscribers);
      this.fanout.add(client);
      client.conn.once("close", () => this.fanout.remove(client));
    }
    // aedes has put the CONNECT's will here before authenticating (lib/handlers/connect.js).
    const will = (client as unknown as { _will?: object | null })._will;
    if (will) this.wills.add(will);
    done(null, true);
  }

  /**
   * An operator's login on the console's HTTP API (gateway/console/server.ts): the MQTT login's
   * rules, bans, counting and log lines, in the operator scope whatever the username (only
   * operators log in there, so a guess there is a guess at an operator account). `bannedUntil`
   * when a login ban refused it before the password was looked at.
   */
  async operatorLogin(
    username: string,
    password: Buffer,
    socket: Socket,
  ): Promise<{ ok: true } | { ok: false; bannedUntil: number | null; busy?: boolean }> {
    const decision = await decideLogin(this.loginDeps, {
      address: this.limits.addressOfConnection(socket),
      username,
      password,
      certNames: [],
      clientId: null,
      gone: () => socket.destroyed,
      scope: "operator",
      // A device's own credentials: right, but not an operator's; not a guess either.
      only: { kind: "operator", reason: "console-operators-only", recordSuccess: false },
      logFields: { transport: "console" },
      logMessage: "console login refused",
    });
    if (decision.ok) return { ok: true };
    if (decision.bannedUntil !== null) return { ok: false, bannedUntil: decision.bannedUntil };
    return { ok: false, bannedUntil: null, busy: decision.reason === "auth-busy" };
  }

  private install(): void {
    const a = this.aedes;
    restampOnEmit(a);
    skipUplinkForwarding(a, (client) => this.identities.get(client)?.kind === "device");
    a.authenticate = (client, username, password, done) => {
      const conn = (client as unknown as { conn: Socket }).conn;
      const transport = this.transports.get(client);
      decideLogin(this.loginDeps, {
        address: this.limits.addressOfConnection(conn),
        username,
        password,
        certNames: transport?.certNames ?? [],
        clientId: client.id,
        gone: () => (client as unknown as { closed: boolean }).closed,
        logFields: { transport: transport?.transport },
      }).then(
        (decision) => this.authenticated(client, decision, done),
        (err: Error) => {
          this.log.error({ err, clientId: client.id }, "authentication failed");
          const e = new RefusedError("connection refused: authentication failed");
          e.returnCode = SERVER_UNAVAILABLE;
          done(e as RefusedError & { returnCode: 3 }, false);
        },
      );
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
      if (identity && this.policy.subscribe(identity, sub.topic)) {
        if (this.limits.subscribe(client, sub.topic)) return callback(null, sub);
        const who = identity.kind === "device" ? identity.device.id : identity.name;
        this.counters.reject(
          identity.kind === "device" ? identity.device.model : "operator",
          "subscriptions-limit",
        );
        this.rateLog.warn(
          who,
          "subscriptions-limit",
          { who, filter: sub.topic },
          "subscription refused: too many",
        );
        return callback(null, null);
      }
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
    a.on("unsubscribe", (topics, client) => {
      this.limits.unsubscribe(client, topics);
      this.fanout.changed(client);
    });
    a.on("subscribe", (_subscriptions, client) => this.fanout.changed(client));
    // aedes emits "clientReady" just before the client's "connected", whose once-listener's removal
    // turns the client's events back into a dictionary: compacted on the next tick (client-memory.ts).
    a.on("clientReady", (client) => {
      this.takeover.ready(client);
      // A persistent session's subscriptions are restored without a "subscribe" event.
      this.fanout.changed(client);
      process.nextTick(compactClientEvents, client);
    });
    a.on("clientError", (client, err) => {
      this.log.debug({ clientId: client?.id, err: err.message }, "client error");
      this.countProtocolError(client, err);
    });
    a.on("connectionError", (client, err) => {
      this.log.debug({ clientId: client?.id, err: err.message }, "connection error");
      this.countProtocolError(client, err);
    });
  }
}
