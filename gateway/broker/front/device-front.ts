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
 * Bounds: the alert ring (ALERT_RING_BYTES; full: the worker holds the record and stops reading
 * that socket), the telemetry ring (TELEMETRY_RING_BYTES; full: one reading waits per connection,
 * newer ones conflated), the completion ring (COMPLETION_RING_BYTES; full: completions wait here,
 * at most one per uplink in flight, itself bounded per connection by limits.maxInflight), and the
 * closes waiting for the telemetry ring to be read up to them (one per closed connection).
 *
 * A worker that dies (a bug: the worker catches every connection's own failures) is replaced by a
 * fresh one with fresh rings on the same port, after a backoff that doubles while it keeps dying
 * (RESTART_BACKOFF_*); its connections are dropped here as closed, and their devices reconnect.
 */
import { existsSync } from "node:fs";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Doorbell, SpscRing } from "../../../core/threads.js";
import type { TelemetryTest } from "../../../devices/threads.js";
import { withWorkerSemiSpace } from "../../heap.js";
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
  COUNTER_WORDS,
  type FromWorker,
  type FrontWorkerData,
  type FrontWorkerStats,
  type TlsContents,
  type ToWorker,
} from "./protocol.js";
import { UplinkPump } from "./uplink-pump.js";

/**
 * 256 KiB: about 2,500 uplinks of a pendant's size. Alerts are a few in a hundred uplinks, so this
 * is seconds of them at any rate the gateway sustains. Full: the worker stops reading the sockets
 * whose records wait until there is room (nothing dropped).
 */
const ALERT_RING_BYTES = 1 << 18;
/**
 * 2 MiB: about 20,000 readings of a pendant's size, half a second at 40,000 msg/s. The ring carries
 * readings across to the main thread, which drains it a batch per turn of its event loop; it holds
 * what that drain leaves behind in a slow stretch (a GC, a burst of alerts), and in sustained
 * overload the backlog the lane does not take, so that the worker conflates only when the main
 * thread really is behind (512 KiB conflated 562 readings at
 * 30,000 msg/s with the main thread 67 % busy). Full: the worker conflates (one waiting reading
 * per connection).
 */
const TELEMETRY_RING_BYTES = 1 << 21;
/** 64 KiB: 8,192 completions. */
const COMPLETION_RING_BYTES = 1 << 16;
/** How long close() waits for the worker to close its sockets before it is terminated. */
const STOP_TIMEOUT_MS = 5000;
/**
 * A worker that died (a bug) is replaced after this long, doubled at every death in a row up to
 * RESTART_BACKOFF_MAX_MS: devices reconnect within seconds, and a crash loop costs a restart
 * every half minute at most. A worker that served RESTART_BACKOFF_RESET_MS starts the count over.
 */
const RESTART_BACKOFF_MS = 500;
const RESTART_BACKOFF_MAX_MS = 30_000;
const RESTART_BACKOFF_RESET_MS = 60_000;

/** A worker listening, and the rings it was given. */
interface Spawned {
  worker: Worker;
  port: number;
  uplink: SpscRing;
  telemetry: SpscRing;
  counters: SharedArrayBuffer;
  completions: SpscRing;
  /** Resolves when the worker's thread has ended (its sockets closed with it). */
  exited: Promise<void>;
}

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
}

export class DeviceFrontEnd {
  private readonly byId = new Map<number, FrontConnection>();
  private readonly byClientId = new Map<string, FrontConnection>();
  private readonly downlinks = new Map<string, FrontConnection>();
  /**
   * Connections whose close came through the ring before their CONNECT message (postMessage and
   * the ring are not ordered with each other). Bounded: each entry goes when that message comes.
   */
  private readonly closedBeforeLogin = new Set<number>();
  /** The worker and its rings: replaced when a worker that died is restarted. */
  private worker!: Worker;
  private workerExited: Promise<void> = Promise.resolve();
  private workerCounters!: BigInt64Array;
  /** Readings conflated by workers that died (their counters went with their rings). */
  private conflatedBefore = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarting: Promise<void> | null = null;
  private backoffMs = RESTART_BACKOFF_MS;
  private upSince = Date.now();
  /** Workers restarted after one died. */
  restarts = 0;
  /** The telemetryWhen each model's classifier in the worker was built from. */
  private readonly modelsSent = new Map<string, readonly TelemetryTest[] | null>();
  /** Uplinks from the worker's rings to the gateway. */
  private readonly pump: UplinkPump;
  private running = true;
  private stopped: Promise<void> | null = null;
  port = 0;
  failed: Error | null = null;

  private constructor(
    private readonly opts: FrontEndOptions,
    /** The listener's TLS files as last read (start, reload): a restarted worker is given them. */
    private tls: TlsContents | null,
    spawned: Spawned,
  ) {
    this.pump = new UplinkPump({
      policy: opts.policy,
      handlers: opts.handlers,
      counters: opts.counters,
      rateLog: opts.rateLog,
      log: opts.log,
      connections: this.byId,
      closed: (conn, loginPosted) => this.closed(conn, loginPosted),
      close: (conn) => this.send({ t: "close", conn }),
    });
    this.attach(spawned);
  }

  static async start(opts: FrontEndOptions): Promise<DeviceFrontEnd> {
    const tls = opts.listener.tls ? tlsContents(readTlsFiles(opts.listener.tls)) : null;
    const front = new DeviceFrontEnd(opts, tls, await spawnWorker(opts, opts.listener.port, tls));
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

  /** Takes a listening worker and its rings into service. */
  private attach(w: Spawned): void {
    const worker = w.worker;
    this.worker = worker;
    this.workerExited = w.exited;
    this.port = w.port;
    this.pump.attach(w.uplink, w.telemetry, w.completions);
    this.workerCounters = new BigInt64Array(w.counters);
    worker.on("message", (m: FromWorker) => {
      if (worker === this.worker && this.failed === null) this.onMessage(m);
    });
    worker.on("error", (err) => this.workerDown(worker, err));
    // Ended without an error event (terminated, process.exit in the worker): as dead.
    worker.on("exit", (code) => this.workerDown(worker, new Error(`worker exited with code ${code}`)));
  }

  /**
   * The worker died (a bug: every connection's own failures are caught in it), and with it every
   * device connection on this listener. The devices reconnect; the listener is restarted for them
   * after a backoff. Not listening meanwhile: /readyz says so.
   */
  private workerDown(worker: Worker, err: Error): void {
    if (worker !== this.worker || this.failed !== null || this.stopped !== null) return;
    this.failed = err;
    this.pump.workerDied();
    this.conflatedBefore += Number(Atomics.load(this.workerCounters, COUNTER_TELEMETRY_CONFLATED));
    // Its connections are gone: closed here as if each had closed (a login being verified is dropped).
    for (const c of this.byId.values()) c.gone = true;
    this.byId.clear();
    this.byClientId.clear();
    this.downlinks.clear();
    this.closedBeforeLogin.clear();
    if (Date.now() - this.upSince >= RESTART_BACKOFF_RESET_MS) this.backoffMs = RESTART_BACKOFF_MS;
    this.opts.log.error(
      { err, listener: "devices", restartInMs: this.backoffMs },
      "device listener worker failed; devices on it are disconnected, the listener restarts / 设备监听线程故障，设备连接已断开，监听即将重启",
    );
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, RESTART_BACKOFF_MAX_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restarting = this.restart().finally(() => {
        this.restarting = null;
      });
    }, delay);
  }

  /** A fresh worker and rings on the same port, given the models' classifiers and the TLS files again. */
  private async restart(): Promise<void> {
    // Its thread ended, its listening socket with it: the port is free again.
    await this.workerExited;
    let spawned: Spawned;
    try {
      spawned = await spawnWorker(this.opts, this.port, this.tls);
    } catch (err) {
      if (this.stopped !== null) return;
      this.opts.log.error(
        { err, listener: "devices", restartInMs: this.backoffMs },
        "device listener could not be restarted; trying again / 设备监听重启失败，稍后重试",
      );
      this.scheduleRestart();
      return;
    }
    if (this.stopped !== null) {
      await spawned.worker.terminate();
      return;
    }
    this.attach(spawned);
    this.failed = null;
    this.upSince = Date.now();
    this.restarts++;
    for (const [model, telemetryWhen] of this.modelsSent) this.send({ t: "model", model, telemetryWhen });
    this.opts.limits.sendAcceptBans(this.sendBan);
    this.opts.log.warn(
      { listener: "devices", port: this.port, restarts: this.restarts },
      "device listener restarted; devices may reconnect / 设备监听已重启，设备可重新连接",
    );
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
      const worker = this.worker;
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
    this.tls = tlsContents(options);
    this.send({ t: "tls", tls: this.tls });
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
      if (this.restartTimer !== null) clearTimeout(this.restartTimer);
      this.restartTimer = null;
      await this.restarting;
      if (this.failed === null) {
        const worker = this.worker;
        let timer: NodeJS.Timeout | undefined;
        let done = () => {};
        const onMessage = (m: FromWorker) => m.t === "stopped" && done();
        await new Promise<void>((resolve) => {
          done = resolve;
          worker.on("message", onMessage);
          worker.once("exit", done);
          timer = setTimeout(done, STOP_TIMEOUT_MS).unref();
          this.send({ t: "stop" });
        });
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("exit", done);
      }
      this.running = false;
      await this.pump.stop();
      await this.worker.terminate();
    })();
    return this.stopped;
  }

  private send(m: ToWorker): void {
    if (this.failed === null) this.worker.postMessage(m);
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
    const granted = filters.map((filter, i) => {
      if (this.opts.policy.subscribe(identity, filter)) {
        if (c.downlink !== null && c.downlink !== filter) this.dropDownlink(c);
        c.downlink = filter;
        this.downlinks.set(filter, c);
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

/**
 * The worker's script: beside this module once built; run from the TypeScript sources (vitest),
 * the built one in dist/ (`npm test` builds first).
 */
function workerScript(): URL {
  const here = new URL("./worker.js", import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL("../../../dist/gateway/broker/front/worker.js", import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`device listener: ${fileURLToPath(built)} is missing (npm run build)`);
}

/** A worker listening on `port` with rings of its own; throws (the worker ended) if it cannot listen. */
async function spawnWorker(opts: FrontEndOptions, port: number, tls: TlsContents | null): Promise<Spawned> {
  // One doorbell for both uplink rings: the main thread sleeps only when both are empty.
  const bell = new Doorbell();
  const uplink = SpscRing.create(ALERT_RING_BYTES, { doorbell: bell });
  const telemetry = SpscRing.create(TELEMETRY_RING_BYTES, { doorbell: bell });
  const counters = new SharedArrayBuffer(COUNTER_WORDS * 8);
  const completions = SpscRing.create(COMPLETION_RING_BYTES, { doorbell: new Doorbell() });
  const limits = opts.limits.config;
  const data: FrontWorkerData = {
    host: opts.listener.host,
    port,
    tls,
    maxConnections: opts.maxConnections,
    connectTimeout: limits.connectTimeout,
    maxConnectSize: limits.maxConnectSize,
    maxInflight: limits.maxInflight,
    uplink: uplink.handle(),
    telemetry: telemetry.handle(),
    completions: completions.handle(),
    counters,
  };
  let ready: Promise<number> = Promise.resolve(0);
  const worker = withWorkerSemiSpace(
    () => new Worker(workerScript(), { workerData: data, name: "linli-device-front" }),
    (w) =>
      (ready = new Promise<number>((resolve, reject) => {
        const failed = (err: Error) => reject(err);
        w.once("error", failed);
        w.once("exit", (code) => reject(new Error(`worker exited with code ${code} before listening`)));
        w.on("message", function first(m: FromWorker) {
          if (m.t !== "ready") return;
          w.off("message", first);
          w.off("error", failed);
          resolve(m.port);
        });
      })),
  );
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  const listening = await ready.catch(async (err: Error) => {
    await worker.terminate();
    throw err;
  });
  return { worker, port: listening, uplink, telemetry, counters, completions, exited };
}
