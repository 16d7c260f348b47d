/**
 * The device front end, main-thread side: a listener for devices only, whose sockets and MQTT
 * framing live in a worker thread (worker.ts) on the machine's second core. Operators, the
 * console and upstream bridges stay on aedes' listeners (embedded.ts); a device may use either.
 * Measured in `npm run bench:cores` (docs/performance.md "Both cores"): with the device sockets
 * in a worker the main thread spent 22-27 µs per message against 38-45 µs with everything on one
 * thread; relaying the sockets' bytes from the main thread instead kept most of that cost.
 *
 * What stays here, because it needs the gateway's state: logins (AccessPolicy: passwords, client
 * ids, bans of the LoginGuard), the publish rule at the moment an uplink is taken in (a reload may
 * have removed the device), subscriptions (a device may only subscribe to its own downlink),
 * every uplink (handed to the gateway exactly as aedes' path does: `BrokerHandlers.uplink`), and
 * the completions that release PUBACKs. Per message, nothing goes through postMessage: uplinks come
 * through two rings, completions go back through a third (protocol.ts).
 *
 * The data flow: the worker (worker-supervisor.ts spawns it, and restarts it when it dies) hands
 * uplinks over through its rings; the pump (uplink-pump.ts) takes them in, alerts first, and
 * sends their completions back (completion-writer.ts). Here: the connections as the gateway
 * knows them (logins through login-flow.ts, client ids, downlink subscriptions), the worker's
 * postMessage events, downlinks, reloads and closing.
 *
 * Priority across the thread boundary: the worker puts an uplink in the telemetry ring only when
 * its model's `telemetryWhen` says it is certainly telemetry, everything else in the alert ring.
 * Every turn of the event loop drains the alert ring first (up to ALERT_BATCH), then at most
 * UPLINK_BATCH readings: a P1 waits behind one batch of readings being handed over, never behind
 * the readings queued, and a full telemetry ring never holds an alert back (the worker conflates
 * readings then, and keeps reading the socket). Within each ring the order is the sockets' order;
 * the ingest then lanes each uplink as on aedes' path.
 *
 * In sustained overload (the pipeline's telemetry lane not empty for a second) the gateway takes
 * readings only as its lane makes room (`BrokerHandlers.readingRoom`): the backlog waits in the
 * telemetry ring, off the JS heap, and what is conflated is conflated before it is decoded. At
 * twice the gateway's ceiling this raised its output by 5-10 % and halved the readings conflated
 * (docs/performance.md "Readings held in the ring").
 *
 * Bounds (the sizes in worker-supervisor.ts): the alert ring (ALERT_RING_BYTES; full: the worker
 * holds the record and stops reading that socket), the telemetry ring (TELEMETRY_RING_BYTES;
 * full: one reading waits per connection, newer ones conflated), the completion ring
 * (COMPLETION_RING_BYTES; full: completions wait in completion-writer.ts, at most one per uplink
 * in flight, itself bounded per connection by limits.maxInflight), and the closes waiting for the
 * telemetry ring to be read up to them (one per closed connection).
 *
 * A worker that dies (a bug: the worker catches every connection's own failures) is replaced by a
 * fresh one with fresh rings on the same port, after a backoff that doubles while it keeps dying
 * (restart-backoff.ts); its connections are dropped here as closed, and their devices reconnect.
 */
import { createSecureContext, type SecureContextOptions } from "node:tls";
import type { TelemetryTest } from "../../../devices/threads.js";
import type { Logger, RateLimitedLog } from "../../log.js";
import type { Counters } from "../../stats.js";
import type { AccessPolicy, Identity } from "../access.js";
import { SERVER_UNAVAILABLE } from "../connack.js";
import { packetLimitOf, type SocketLimits } from "../connection-limits.js";
import type { BrokerHandlers } from "../handlers.js";
import { decideLogin, type LoginDecision } from "../login-flow.js";
import { readTlsFiles, TLS_HANDSHAKE, type TlsFiles, warnHandshakeFailed } from "../tls-files.js";
import {
  COUNTER_TELEMETRY_CONFLATED,
  type FromWorker,
  type FrontWorkerStats,
  type TlsContents,
  type ToWorker,
} from "./protocol.js";
import { UplinkPump } from "./uplink-pump.js";
import { type SupervisorEvents, WorkerSupervisor } from "./worker-supervisor.js";

interface DeviceListenerConfig {
  host: string;
  port: number;
  tls?: TlsFiles;
}

/** A device connection, as the main thread knows it. */
interface FrontConnection {
  readonly id: number;
  readonly clientId: string;
  identity: Identity | null;
  /** Its granted downlink subscription, or null. */
  downlink: string | null;
  /** Closed (the worker said so): a login still being verified is dropped. */
  gone: boolean;
  /** An uplink of it was not kept: the worker closes it, and nothing more of it is taken in (uplink-pump.ts). */
  uplinkRefused: boolean;
  /** Uplinks with a slot below it came before the refused one: taken in (uplink-pump.ts). */
  refusedFrom: number;
  /** Its last QoS 1 uplink's slot read from the alert ring (uplink-pump.ts). */
  alertSlot: number;
}

export class DeviceFrontEnd {
  private readonly byId = new Map<number, FrontConnection>();
  private readonly byClientId = new Map<string, FrontConnection>();
  private readonly downlinks = new Map<string, FrontConnection>();
  /**
   * Connections that subscribed to their downlink, until the worker's `downlinkClosed`: their
   * PUBACKs, posted before it, name the downlinks they acknowledge (pending-downlinks.ts).
   */
  private readonly downlinkConns = new Map<number, string>();
  /**
   * Connections whose close came through the ring before their CONNECT message (postMessage and
   * the ring are not ordered with each other). Bounded: each entry goes when that message comes.
   */
  private readonly closedBeforeLogin = new Set<number>();
  /** The worker thread, restarted when it dies. */
  private supervisor!: WorkerSupervisor;
  /** The counters of the worker in service. */
  private workerCounters!: BigInt64Array;
  /** Readings conflated by workers that died (their counters went with their rings). */
  private conflatedBefore = 0;
  /** The telemetryWhen each model's classifier in the worker was built from. */
  private readonly modelsSent = new Map<string, readonly TelemetryTest[] | null>();
  /** Uplinks from the worker's rings to the gateway. */
  private readonly pump: UplinkPump;
  private running = true;
  private stopped: Promise<void> | null = null;

  private readonly supervision: SupervisorEvents = {
    attach: (w) => {
      this.pump.attach(w.uplink, w.telemetry, w.completions);
      this.workerCounters = new BigInt64Array(w.counters);
    },
    message: (m) => this.onMessage(m),
    died: () => this.workerDied(),
    restarted: () => {
      for (const [model, telemetryWhen] of this.modelsSent) this.send({ t: "model", model, telemetryWhen });
      this.opts.limits.sendAcceptBans(this.sendBan);
    },
  };

  private constructor(private readonly opts: FrontEndOptions) {
    this.pump = new UplinkPump({
      policy: opts.policy,
      handlers: opts.handlers,
      counters: opts.counters,
      rateLog: opts.rateLog,
      log: opts.log,
      connections: this.byId,
      closed: (conn, loginPosted) => this.closed(conn, loginPosted),
      refuse: (conn) => this.send({ t: "refuse", conn }),
    });
  }

  static async start(opts: FrontEndOptions): Promise<DeviceFrontEnd> {
    const tls = opts.listener.tls ? tlsContents(readTlsFiles(opts.listener.tls)) : null;
    const front = new DeviceFrontEnd(opts);
    front.supervisor = await WorkerSupervisor.start(
      {
        host: opts.listener.host,
        port: opts.listener.port,
        maxConnections: opts.maxConnections,
        limits: opts.limits,
        log: opts.log,
      },
      tls,
      front.supervision,
    );
    front.pump.start();
    front.unwatchBans = opts.limits.watchAcceptBans(front.sendBan);
    return front;
  }

  /**
   * An address the worker closes at accept (banned in both login scopes), as aedes' listeners do:
   * bans are rare, so postMessage. One accepted before the worker learns of its ban is refused
   * at its CONNECT here (login).
   */
  private readonly sendBan = (address: string, ms: number): void => {
    this.send({ t: "ban", address, ms });
  };
  private unwatchBans: () => void = () => {};

  /** The worker died, and its connections with it: closed here as if each had closed (a login being verified is dropped). */
  private workerDied(): void {
    this.pump.workerDied();
    // Its counters go with its rings.
    this.conflatedBefore += Number(Atomics.load(this.workerCounters, COUNTER_TELEMETRY_CONFLATED));
    for (const c of this.byId.values()) c.gone = true;
    this.byId.clear();
    this.byClientId.clear();
    this.downlinks.clear();
    this.closedBeforeLogin.clear();
    // No close will come from the dead worker: what its connections did not acknowledge is due again.
    const conns = [...this.downlinkConns];
    this.downlinkConns.clear();
    for (const [conn, topic] of conns) this.opts.downlinkClosed?.(topic, conn);
  }

  /** The port listened on (the one asked for, or the one given for port 0). */
  get port(): number {
    return this.supervisor.port;
  }

  /** Why the worker is not in service (it died, a restart is due), or null. */
  get failed(): Error | null {
    return this.supervisor.failed;
  }

  /** Workers restarted after one died. */
  get restarts(): number {
    return this.supervisor.restarts;
  }

  get listening(): boolean {
    return this.running && this.failed === null;
  }

  /** Connected (logged-in) devices. */
  get connections(): number {
    let n = 0;
    for (const c of this.byId.values()) if (c.identity !== null) n++;
    return n;
  }

  /** Readings the worker conflated (the telemetry ring full) or dropped at their connection's close. */
  get telemetryConflated(): number {
    return this.conflatedBefore + Number(Atomics.load(this.workerCounters, COUNTER_TELEMETRY_CONFLATED));
  }

  /** The worker's figures: its heap (what the device connections cost there), sockets, held uplinks. */
  stats(snapshot?: string): Promise<FrontWorkerStats> {
    return new Promise((resolve, reject) => {
      if (this.failed !== null || !this.running) {
        reject(new Error("device listener not running"));
        return;
      }
      // This worker's answer, or its end: a restarted one was never asked.
      const worker = this.supervisor.worker;
      const settle = () => {
        worker.off("message", answered);
        worker.off("exit", exited);
      };
      const answered = (m: FromWorker) => {
        if (m.t !== "stats") return;
        settle();
        resolve(m.stats);
      };
      const exited = () => {
        settle();
        reject(new Error("device listener worker ended before answering"));
      };
      worker.on("message", answered);
      worker.on("exit", exited);
      this.send(snapshot === undefined ? { t: "stats" } : { t: "stats", snapshot });
    });
  }

  /** The connection a downlink to this topic goes to (its id), if any. */
  downlinkConnection(topic: string): number | undefined {
    return this.running ? this.downlinks.get(topic)?.id : undefined;
  }

  /** Whether a device connected here subscribes to this downlink topic. */
  hasDownlink(topic: string): boolean {
    return this.running && this.downlinks.has(topic);
  }

  /** A downlink for a device connected here (its subscribed downlink topic): true if sent. */
  deliver(topic: string, payload: Buffer, qos: 0 | 1): boolean {
    const c = this.downlinks.get(topic);
    if (c === undefined || !this.running) return false;
    this.send({ t: "deliver", conn: c.id, topic, payload: new Uint8Array(payload), qos });
    return true;
  }

  /**
   * Re-reads the listener's certificate, key and CA (reload, SIGHUP): new handshakes use them,
   * open connections keep theirs. Throws, naming the file, and keeps the old ones if a file cannot
   * be read or the pair does not match. False without TLS.
   */
  reloadCertificates(): boolean {
    if (!this.opts.listener.tls) return false;
    const options = readTlsFiles(this.opts.listener.tls);
    // Checked here, where the error can be reported: the worker would only fail on it.
    createSecureContext(options);
    const tls = tlsContents(options);
    this.supervisor.tls = tls;
    this.send({ t: "tls", tls });
    return true;
  }

  /**
   * A login with this client id on the other listener (aedes') takes over from a connection here
   * (MQTT 3.1.1 §3.1.4-2, docs/security.md): closed, and no downlink goes to it from now on.
   */
  takeOver(clientId: string): boolean {
    const c = this.byClientId.get(clientId);
    if (c === undefined) return false;
    this.byClientId.delete(clientId);
    this.dropDownlink(c);
    this.send({ t: "close", conn: c.id });
    return true;
  }

  /** Closes the connections whose identity matches (a reload removed the device); returns how many. */
  disconnect(match: (identity: Identity) => boolean): number {
    let n = 0;
    for (const c of this.byId.values())
      if (c.identity !== null && match(c.identity)) {
        this.send({ t: "close", conn: c.id });
        n++;
      }
    return n;
  }

  /** Closes the listener and every device connection, then the worker. */
  close(): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopped = (async () => {
      this.unwatchBans();
      await this.supervisor.stop(async () => {
        this.running = false;
        await this.pump.stop();
      });
    })();
    return this.stopped;
  }

  private send(m: ToWorker): void {
    this.supervisor.send(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case "connect":
        this.login(m).catch((err: unknown) => {
          // Never an unhandled rejection: the connection is refused as when authentication fails.
          this.opts.log.error({ err, clientId: m.clientId }, "device listener: login failed");
          this.send({
            t: "login",
            conn: m.conn,
            returnCode: SERVER_UNAVAILABLE,
            uplinkTopic: "",
            maxPacket: 0,
            role: "",
          });
        });
        return;
      case "subscribe":
        this.subscribe(m.conn, m.messageId, m.filters, m.qos);
        return;
      case "downlinkAcked": {
        const topic = this.downlinkConns.get(m.conn);
        if (topic !== undefined) this.opts.downlinkAcked?.(topic, m.conn);
        return;
      }
      case "downlinkClosed": {
        const topic = this.downlinkConns.get(m.conn);
        this.downlinkConns.delete(m.conn);
        if (topic !== undefined) this.opts.downlinkClosed?.(topic, m.conn);
        return;
      }
      case "unsubscribe": {
        const c = this.byId.get(m.conn);
        if (c?.downlink && m.filters.includes(c.downlink)) this.dropDownlink(c);
        return;
      }
      case "error":
        this.opts.log.error({ err: m.message, listener: "devices" }, "device listener error");
        return;
      case "rejected": {
        const c = m.conn === null ? undefined : this.byId.get(m.conn);
        const who = c?.identity ? whoOf(c.identity) : (c?.clientId ?? "(device listener)");
        this.opts.counters.reject(m.role ?? "connection", m.reason);
        if (m.reason === "internal-error") {
          // A bug in the worker, met on one connection (closed; the others go on): always worth a line.
          this.opts.rateLog.warn(
            who,
            m.reason,
            { who, reason: m.reason, err: m.detail, listener: "devices" },
            "device listener: internal error; that connection is closed",
          );
          return;
        }
        if (m.reason === TLS_HANDSHAKE) {
          warnHandshakeFailed(this.opts.rateLog, m.address ?? "unknown", m.detail, "devices");
          return;
        }
        // Before login, only at debug level, as on aedes' listeners: a flood must not flood the log.
        if (m.role === null) {
          this.opts.log.debug(
            { who, reason: m.reason, detail: m.detail, listener: "devices" },
            "device socket closed",
          );
          return;
        }
        this.opts.rateLog.warn(
          who,
          m.reason,
          { who, reason: m.reason, detail: m.detail, listener: "devices" },
          "device connection refused or closed",
        );
        return;
      }
      default:
        return;
    }
  }

  /** A CONNECT: the same rules as aedes' listeners (embedded.ts), and devices only. */
  private async login(m: Extract<FromWorker, { t: "connect" }>): Promise<void> {
    if (this.closedBeforeLogin.delete(m.conn)) return;
    const c: FrontConnection = {
      id: m.conn,
      clientId: m.clientId,
      identity: null,
      downlink: null,
      gone: false,
      uplinkRefused: false,
      refusedFrom: 0,
      alertSlot: -1,
    };
    this.byId.set(c.id, c);
    const { limits, policy, counters, rateLog } = this.opts;
    const refuse = (code: number, counted: [string, string] | null, reason: string) => {
      if (counted) counters.reject(counted[0], counted[1]);
      rateLog.warn(
        m.username ?? "(anonymous)",
        reason,
        { username: m.username, address: m.address, clientId: m.clientId, reason, listener: "devices" },
        "connection refused",
      );
      this.sendRefusal(c.id, code);
    };
    // The connection rate per address is taken here; a ban in both scopes closed the socket at
    // accept in the worker, unless it started after that.
    const admission = limits.login.admitConnection(m.address);
    if (admission !== "ok") {
      const reason = admission === "banned" ? "address-banned" : "address-rate-limited";
      refuse(SERVER_UNAVAILABLE, ["connection", reason], reason);
      return;
    }
    let decision: LoginDecision;
    try {
      decision = await decideLogin(
        { limits, policy, counters, rateLog },
        {
          address: m.address,
          username: m.username,
          password: m.password === undefined ? undefined : Buffer.from(m.password),
          certNames: m.certNames,
          clientId: m.clientId,
          gone: () => c.gone || !this.running,
          // Operators log in on the broker's own listeners (sessions, alerts, the console).
          only: { kind: "device", reason: "device-listener-only", recordSuccess: true },
          logFields: { listener: "devices" },
        },
      );
    } catch (err) {
      this.opts.log.error({ err, clientId: m.clientId }, "authentication failed");
      refuse(SERVER_UNAVAILABLE, null, "authentication-failed");
      return;
    }
    if (!decision.ok) {
      if (decision.reason !== "gone") this.sendRefusal(c.id, decision.returnCode);
      return;
    }
    const identity = decision.identity;
    if (identity.kind !== "device") return; // decideLogin's `only`
    // MQTT 3.1.1 §3.1.4-2: a second connection with the same client id takes over from the first.
    const previous = this.byClientId.get(m.clientId);
    if (previous !== undefined && previous !== c) {
      this.byClientId.delete(m.clientId);
      if (previous.downlink !== null) this.dropDownlink(previous);
      this.send({ t: "close", conn: previous.id });
    }
    // The same on the other listener (aedes'): a device moving between them is connected once.
    this.opts.takeOver?.(m.clientId);
    c.identity = identity;
    this.byClientId.set(m.clientId, c);
    const limit = packetLimitOf(identity, limits.config.operatorMaxPacket);
    const profile = identity.device.profile;
    const telemetryWhen = (profile.transport === "mqtt" ? profile.telemetryWhen : undefined) ?? null;
    if (this.modelsSent.get(limit.role) !== telemetryWhen || !this.modelsSent.has(limit.role)) {
      // Before the login: the worker builds the model's classifier once, and again if a reload changed it.
      this.modelsSent.set(limit.role, telemetryWhen);
      this.send({ t: "model", model: limit.role, telemetryWhen });
    }
    this.send({
      t: "login",
      conn: c.id,
      returnCode: 0,
      uplinkTopic: identity.device.uplinkTopic ?? "",
      maxPacket: limit.bytes,
      role: limit.role,
    });
  }

  private sendRefusal(conn: number, returnCode: number): void {
    this.send({ t: "login", conn, returnCode, uplinkTopic: "", maxPacket: 0, role: "" });
  }

  private subscribe(conn: number, messageId: number, filters: string[], qos: number[]): void {
    const c = this.byId.get(conn);
    if (c?.identity == null) return;
    const identity = c.identity;
    let ready: string | null = null;
    const granted = filters.map((filter, i) => {
      if (this.opts.policy.subscribe(identity, filter)) {
        if (c.downlink !== null && c.downlink !== filter) this.dropDownlink(c);
        c.downlink = filter;
        this.downlinks.set(filter, c);
        // Until the worker says the connection closed (after its last PUBACK: one channel).
        this.downlinkConns.set(c.id, filter);
        ready = filter;
        return Math.min(qos[i] ?? 0, 1);
      }
      const who = whoOf(identity);
      this.opts.counters.reject(
        identity.kind === "device" ? identity.device.model : "operator",
        "subscribe-not-allowed",
      );
      this.opts.rateLog.warn(who, "subscribe-not-allowed", { who, filter }, "subscription refused");
      // §3.9.3: 0x80 refuses this filter; the client stays connected.
      return 0x80;
    });
    this.send({ t: "suback", conn, messageId, granted });
    // After the SUBACK: what waited for this device follows it (southbound/pending-downlinks.ts).
    if (ready !== null) this.opts.downlinkReady?.(ready);
  }

  private dropDownlink(c: FrontConnection): void {
    if (c.downlink !== null && this.downlinks.get(c.downlink) === c) this.downlinks.delete(c.downlink);
    c.downlink = null;
  }

  private closed(conn: number, loginPosted: boolean): void {
    const c = this.byId.get(conn);
    if (c === undefined) {
      // Closed before its CONNECT message was read here: that login is dropped when it comes.
      if (loginPosted) this.closedBeforeLogin.add(conn);
      return;
    }
    c.gone = true;
    this.byId.delete(conn);
    if (this.byClientId.get(c.clientId) === c) this.byClientId.delete(c.clientId);
    this.dropDownlink(c);
  }
}

export interface FrontEndOptions {
  listener: DeviceListenerConfig;
  maxConnections: number;
  policy: AccessPolicy;
  handlers: BrokerHandlers;
  limits: SocketLimits;
  counters: Counters;
  log: Logger;
  rateLog: RateLimitedLog;
  /** A device logged in here: a connection with its client id on the other listener is closed. */
  takeOver?: (clientId: string) => void;
  /** A device subscribed to its downlink here (its topic): pending downlinks can go. */
  downlinkReady?: (topic: string) => void;
  /** A connection here that subscribed to its downlink closed (its id). */
  downlinkClosed?: (topic: string, conn: number) => void;
  /** The device acknowledged a downlink on that connection (its PUBACK; the worker sends them QoS 1). */
  downlinkAcked?: (topic: string, conn: number) => void;
}

/** A TLS listener's files as read (readTlsFiles), in the form the worker is sent. */
function tlsContents(o: SecureContextOptions): TlsContents {
  return {
    cert: o.cert as Buffer,
    key: o.key as Buffer,
    ...(o.ca === undefined ? {} : { ca: o.ca as Buffer }),
    minVersion: (o.minVersion ?? "TLSv1.2") as TlsContents["minVersion"],
  };
}

function whoOf(identity: Identity): string {
  return identity.kind === "device" ? identity.device.id : identity.name;
}
