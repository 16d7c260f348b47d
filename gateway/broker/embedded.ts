/**
 * The embedded MQTT broker (aedes), with Linli's access policy plugged into
 * its hooks. It is also a northbound sink: the gateway publishes from inside
 * the broker, so its messages pass no client ACL and cost no extra hop.
 */
// First: mqtt-packet (loaded by aedes) must find the quiet `debug` (quiet-debug.ts).
import "./quiet-debug.js";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Aedes, type Client, type PublishPacket } from "aedes";
import mqttPacket from "mqtt-packet";
import type { Logger, RateLimitedLog } from "../log.js";
import type { NorthboundSink } from "../northbound/sink.js";
import type { Counters } from "../stats.js";
import type { AccessPolicy, Identity } from "./access.js";
import { type HookContext, installHooks } from "./aedes-hooks.js";
import { slimParser } from "./aedes-patches.js";
import { compactClient, shareClientListeners } from "./client-memory.js";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS, SocketLimits } from "./connection-limits.js";
import { DirectFanout } from "./direct-fanout.js";
import { DownlinkPresence } from "./downlink-presence.js";
import { DeviceFrontEnd } from "./front/device-front.js";
import type { FrontWorkerStats } from "./front/protocol.js";
import type { BrokerHandlers } from "./handlers.js";
import { decideLogin, type LoginDeps } from "./login-flow.js";
import { SlowSubscribers } from "./operator-delivery.js";
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
  /** P1 alert messages (each the last of its alert) queued per session besides queueLimit (default 10 x queueLimit). */
  urgentQueueLimit?: number;
  /** Bytes all sessions' queued messages may take in the store; beyond, kept in memory only (default: no bound). */
  storeBudgetBytes?: number;
  /** Operators' persistent sessions kept (default 64); beyond it the one away longest is discarded. */
  maxSessions?: number;
  /**
   * A delivery to a connected console is written to the store only if still unacknowledged
   * after this long (default 500 ms); to a console that is away, at once. 0: every delivery at once
   * (nothing lost to a crash; measured 1.5x the broker's CPU per message, bench/sessions.ts).
   */
  writeAfterMs?: number;
  /**
   * The operator's password as configured (null: none), undefined when the configuration does not
   * name it: a saved session of an operator removed, or whose credentials changed, while the
   * gateway was stopped is deleted at start (docs/durability.md "Operators' sessions"). Absent:
   * every one is kept.
   */
  operatorSecret?: (name: string) => string | null | undefined;
}

/** Sessions in memory only: nothing is written, nothing restored. */
const NO_STORE: DurableMap = {
  *entries() {},
  put() {},
  delete() {},
};

const EMITTER_CONCURRENCY = 1000;

// mqtt-packet writes 16-bit numbers (lengths, packet ids) from a cache of 65,536 two-byte Buffers, built
// on the first packet written: ~6.5 MB of heap (a Buffer object is ~100 B), a twentieth of an edge box's
// budget, to save one 2-byte pool allocation per number written. Process-wide; aedes shares the module.
mqttPacket.writeToStream.cacheNumbers = false;

/**
 * One Buffer per short retained payload (a device's status: "online", "lost", ""), shared by every
 * publish of it: its delivery allocates nothing (the retained store keeps its own copy, shared too).
 * Payloads are never written to once published (aedes and mqtt-packet only read them). Bounded: at
 * most SHARED_PAYLOADS_MAX payloads of at most SHARED_PAYLOAD_CHARS characters.
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
 * A QoS 1 payload, which may be kept for long (queued for an operator's offline session), gets
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
  /** Messages handed to aedes whose publish has not called back yet (settled()). */
  private inFlight = 0;
  /** The most messages ever inside aedes' publish at once (a start's burst shows here). */
  inFlightPeak = 0;
  private settledWaiters: Array<() => void> = [];
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
    this.presence = new DownlinkPresence(aedes, this.identities);
    this.presence.onReady = (topic) => this.downlinkReady(topic);
    this.presence.onClosed = (topic, client) => this.downlinkClosed(topic, client);
    this.presence.onAcked = (topic, client) => this.downlinkAcked(topic, client);
  }

  /** Devices' downlink subscriptions live on aedes' listeners. */
  private readonly presence: DownlinkPresence;
  /** A device's downlink subscription became live, on either listener (its topic). */
  downlinkReady: (topic: string) => void = () => {};
  /** A device's connection closed (either listener; `conn` as downlinkConnection() named it). */
  downlinkClosed: (topic: string, conn: unknown) => void = () => {};
  /** The device acknowledged a downlink (its PUBACK) on that connection (either listener). */
  downlinkAcked: (topic: string, conn: unknown) => void = () => {};

  /** The device of this downlink topic is connected, to either listener, and subscribed to it. */
  downlinkLive(topic: string): boolean {
    return this.presence.has(topic) || (this.front?.hasDownlink(topic) ?? false);
  }

  /** The connection a downlink to the device goes to now: aedes' client, or the device listener's id. */
  downlinkConnection(topic: string): unknown {
    return this.presence.client(topic) ?? this.front?.downlinkConnection(topic) ?? null;
  }

  /**
   * A downlink written to the device now will be acknowledged: a QoS 1 subscription on aedes, or
   * the device listener (its worker writes downlinks QoS 1 whatever was granted).
   */
  downlinkAcks(topic: string): boolean {
    return this.presence.has(topic) ? this.presence.acks(topic) : (this.front?.hasDownlink(topic) ?? false);
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
      ...(opts.sessions?.storeBudgetBytes === undefined
        ? {}
        : { storeBudgetBytes: opts.sessions.storeBudgetBytes }),
      onOverBudget: (clientId, topic) => {
        opts.counters.reject("operator", "session-store-budget");
        opts.rateLog.warn(
          clientId,
          "session-store-budget",
          { clientId, topic },
          "persistent session queue over its share of the journal: message kept in memory only (lost to a restart)",
        );
      },
      ...(opts.sessions?.urgentQueueLimit === undefined
        ? {}
        : { urgentQueueLimit: opts.sessions.urgentQueueLimit }),
      maxSessions: opts.sessions?.maxSessions ?? 64,
      writeAfterMs: opts.sessions?.writeAfterMs ?? 500,
      ...(opts.sessions?.operatorSecret === undefined ? {} : { ownerSecret: opts.sessions.operatorSecret }),
      onOwnerGone: (clientId, owner, why, at) => {
        opts.counters.reject(
          "operator",
          why === "removed" ? "session-owner-removed" : "session-owner-changed",
        );
        // A reload logs its deletions in one line of its own (gateway/reload.ts).
        if (at === "reload") return;
        opts.log.warn(
          { clientId, operator: owner, why },
          why === "removed"
            ? "saved persistent session of an operator no longer configured deleted"
            : "saved persistent session deleted: its operator's credentials changed while the gateway was stopped",
        );
      },
      site: opts.policy.site,
      owner: (client) => {
        const identity = self?.identities.get(client);
        return identity?.kind === "operator" ? identity.name : null;
      },
      onDrop: (clientId, reason, topic, kind) => {
        if (reason === "session-evicted") {
          opts.counters.reject("operator", "session-evicted");
          opts.rateLog.warn(
            clientId,
            "session-evicted",
            { clientId },
            "persistent session discarded to make room",
          );
          return;
        }
        // A copy (a newer message of the same alert or status is queued) loses nothing: counted apart.
        const counted = kind === "copy" ? "session-queue-superseded" : "session-queue-full";
        opts.counters.reject("operator", counted);
        if (kind === "p1") {
          opts.counters.reject("operator", "session-queue-full-p1");
          opts.rateLog.error(
            clientId,
            "session-queue-full-p1",
            { clientId, topic, kind },
            "persistent session queue full of P1 messages; its oldest P1 message dropped",
          );
        } else if (kind !== "copy")
          opts.rateLog.warn(
            clientId,
            counted,
            { clientId, topic, kind },
            `persistent session queue full; oldest message of the lowest rank dropped (${kind})`,
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
      // A backstop only: the connection limits close (and count, `login-timeout`) a socket not
      // logged in within connectTimeout. aedes' timer, started from the event loop's cached time,
      // could fire first under load and close it uncounted (seen in a full test run).
      connectTimeout: limitsConfig.connectTimeout + 1_000,
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
    installHooks(broker.hookContext());
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
          downlinkReady: (topic) => broker.downlinkReady(topic),
          downlinkClosed: (topic, conn) => broker.downlinkClosed(topic, conn),
          downlinkAcked: (topic, conn) => broker.downlinkAcked(topic, conn),
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

  /** Once, after the start: topics whose last message restored into a session's queue has a payload. */
  restoredSessionStates(): string[] {
    return this.sessions.takeRestoredStates();
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
    // A retained message's payload is copied by the retained store (retained-store.ts): this one is
    // the delivery's, kept only while queued.
    const bytes =
      (retain ? sharedPayload(payload) : undefined) ??
      (qos === 1 ? keptPayload(payload) : Buffer.from(payload));
    // A downlink to a device on the device listener. The same device may also be connected to
    // aedes (moving from one listener to the other): the message is published there too.
    this.front?.deliver(topic, bytes, qos);
    if (++this.inFlight > this.inFlightPeak) this.inFlightPeak = this.inFlight;
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
        if (--this.inFlight === 0) this.wakeSettled();
        if (err)
          this.rateLog.warn("northbound", "publish-failed", { topic, err: err.message }, "publish failed");
      },
    );
  }

  /**
   * Resolves once every message published so far has been through aedes (retained, queued for the
   * sessions, delivered to the connections' streams). A start republishing thousands of alerts
   * waits on it every few hundred (startup.ts republishRecovered), so that aedes' per-message state
   * (packet, promise chain, payload copy) is never alive for all of them at once.
   */
  settled(): Promise<void> {
    if (this.inFlight === 0 || this.aedes.closed) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  private wakeSettled(): void {
    if (this.settledWaiters.length === 0) return;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const w of waiters) w();
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

  /**
   * Deletes the saved persistent sessions of operators a reload removed (close their connections
   * first: disconnect()); returns how many.
   */
  forgetOperatorSessions(
    names: ReadonlySet<string>,
    why: "removed" | "credentials-changed" = "removed",
  ): number {
    return names.size === 0 ? 0 : this.sessions.forgetOwners(names, why);
  }

  /**
   * The start's republication is through: restored sessions stop leaving out repeats of the
   * messages they restored (sessions.ts).
   */
  endSessionRestore(): void {
    this.sessions.endRestore();
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
    this.wakeSettled();
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
      this.limits.admitTcp,
    );
    this.listeners.push(listener);
  }

  /**
   * For the console's and the metrics port's TLS sockets at accept: the address's connection rate
   * only, before a handshake costs anything (false: refused, closed and counted). Their login bans
   * are not applied there: the console answers them at login, where the page can say why, and the
   * metrics port checks no account the bans guard (connection-limits.ts admitTcpRateOnly).
   */
  readonly admitHttpTcp = (socket: Socket): boolean => this.limits.admitTcpRateOnly(socket);

  /**
   * What is left (ms) of the login ban on the console's operator logins from `socket`'s address,
   * or null: for the page to say so before anyone types a password. Not counted (no login).
   */
  consoleLoginPause(socket: Socket): number | null {
    return (
      this.limits.login.admitLogin(this.limits.addressOfConnection(socket), undefined, "operator")?.ms ?? null
    );
  }

  /**
   * A connection that did not come through one of our listeners (the console's
   * MQTT over WebSocket, gateway/console/server.ts): the same limits, login and rules.
   * `operatorLoggedIn`: called once it has logged in as an operator (the console's slots).
   */
  attach(stream: Duplex, socket: Socket, operatorLoggedIn?: () => void): void {
    if (this.closing) {
      stream.destroy();
      return;
    }
    this.attached.add(stream);
    stream.once("close", () => this.attached.delete(stream));
    this.accept({ stream, socket, transport: "ws", certNames: [] }, operatorLoggedIn, true);
  }

  /**
   * Banned or too-frequent source addresses are closed at once; the others reach aedes at their
   * first byte, and are closed if not logged in within limits.connectTimeout (connection-limits.ts).
   * `bansAtLogin` (the console's streams): the rate only; a login ban refuses the CONNECT.
   */
  private accept(c: Connection, operatorLoggedIn?: () => void, bansAtLogin = false): void {
    if (operatorLoggedIn) this.limits.onOperatorLogin(c.stream as Socket, operatorLoggedIn);
    const handOver = () => {
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
    };
    const stream = c.stream as Socket;
    if (c.transport === "ws" || c.transport === "wss")
      this.limits.acceptStream(stream, handOver, c.socket, bansAtLogin);
    else this.limits.accept(stream, handOver, c.socket);
  }

  /** What aedes' hooks read and keep (aedes-hooks.ts). */
  private hookContext(): HookContext {
    return {
      aedes: this.aedes,
      policy: this.policy,
      handlers: this.handlers,
      counters: this.counters,
      log: this.log,
      rateLog: this.rateLog,
      limits: this.limits,
      sessions: this.sessions,
      loginDeps: this.loginDeps,
      identities: this.identities,
      wills: this.wills,
      transports: this.transports,
      fanout: this.fanout,
      slowSubscribers: this.slowSubscribers,
      urgentTopicPrefixes: this.urgentTopicPrefixes,
      takeover: this.takeover,
      front: () => this.front,
      pubacks: (client) => this.pubacks(client),
      pubackQueue: (client) => this.pubackQueues.get(client),
      uplinksRefused: (client) => this.pubackQueues.get(client)?.refusing === true,
    };
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
   * An operator's login on the console's HTTP API (gateway/console/server.ts): the MQTT login's
   * rules, bans, counting and log lines, in the operator scope whatever the username (only
   * operators log in there, so a guess there is a guess at an operator account). `bannedForMs`
   * (what is left of the ban) when a login ban refused it before the password was looked at.
   */
  async operatorLogin(
    username: string,
    password: Buffer,
    socket: Socket,
  ): Promise<{ ok: true } | { ok: false; bannedForMs: number | null; busy?: boolean }> {
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
    if (decision.bannedForMs !== null) return { ok: false, bannedForMs: decision.bannedForMs };
    return { ok: false, bannedForMs: null, busy: decision.reason === "auth-busy" };
  }
}
