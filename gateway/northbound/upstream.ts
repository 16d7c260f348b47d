/**
 * Upstream bridge: mirrors everything the gateway publishes northbound to an
 * upstream broker (mosquitto, EMQX) and takes operators' actions from it.
 *
 *   - The connection carries the gateway's will: `linli/<site>/gateway/status`
 *     = `offline`, retained, so a crash or a cut uplink shows upstream.
 *   - Retained state (open alerts, device and gateway status, flood, household
 *     monitoring) is mirrored in a map, one entry per topic, and republished on
 *     every (re)connect: upstream converges to the gateway's current state.
 *   - Other QoS 1 messages (events, escalations, results) published while the
 *     uplink is down wait in a bounded backlog (overflow: the oldest is dropped,
 *     counted). Telemetry (QoS 0) is not kept while down (counted).
 *   - Connected is not the same as keeping up: mqtt.js keeps unacknowledged
 *     QoS 1 messages without limit and Node buffers socket writes without
 *     limit, so a slow uplink or a half-open connection (undetected for up to
 *     1.5x keepalive) would grow memory at the full northbound rate. The link
 *     is congested while over MAX_BUFFERED_BYTES wait in the socket or
 *     MAX_INFLIGHT QoS 1 messages wait for their PUBACK. While congested,
 *     telemetry is dropped (counted, as while down); QoS 1 messages wait in the
 *     same bounded, journaled backlog and retained states in the mirror (the
 *     newest per topic: an alert state is never dropped); both are sent in the
 *     order they were published as the socket drains and PUBACKs come back.
 *   - P1 (`alerts/p1/`, `escalations/p1/`, the prefixes the embedded broker
 *     treats as urgent) waits behind nothing and is never dropped: its QoS 1
 *     messages and retained states have their own queues, sent first at
 *     connect and, while connected, at once even when congested; the backlog
 *     bound and its drops apply to the rest only. P1 states are never dropped
 *     (the mirror holds one per topic); P1 lines (escalations, events) are
 *     kept up to MAX_URGENT_BACKLOG, then the oldest goes (counted): an
 *     unacknowledged P1 escalates every 15 min at most for as long as the
 *     outage lasts.
 *     A topic is P1 or not, so the order per topic is kept, except on
 *     `alerts/events`: a P1 alert's line there comes with `urgent` (the
 *     publisher knows its priority) and takes the P1 queue, so it may
 *     overtake other alerts' lines; one alert's lines share a queue, in
 *     order (consumers order by `eventId`'s rev and `at`, docs/topics.md).
 *   - With a journal (`store`), every QoS 1 message and the retained mirror are
 *     written before they are sent and deleted when upstream acknowledges
 *     them, so a gateway killed during an outage sends them after its restart,
 *     in order. A message may then arrive twice, never with a new id: alerts
 *     carry `id` and `rev`, events `eventId` (docs/topics.md).
 *   - Ghosts: on every connect the retained alert states upstream are read back
 *     (bounded: RECONCILE_MAX messages, RECONCILE_MS) and each one on a topic
 *     where the gateway has no open alert is deleted (empty retained payload,
 *     MQTT 3.1.1 §3.3.1.3): after a restore from backup, alerts raised since the
 *     backup stayed retained upstream for good, and an ack for them answered
 *     unknown-alert.
 *   - mqtt.js reconnects at a fixed period and queues without bound while
 *     offline (DESIGN, library notes): we never publish through it while
 *     disconnected, and we grow its reconnect period ourselves (backoff).
 *   - mqtt.js re-sends its unacknowledged messages at a reconnect one at a time,
 *     each after the previous PUBACK, and says `connect` only then: 1,000 in
 *     flight over a 100 ms round trip held everything, P1 included, ~100 s. Its
 *     outgoing store (connection-store.ts) replays nothing; at a close the
 *     bridge re-queues its own in-flight messages (same journal key, same ids),
 *     so after the CONNACK P1 goes first, then the rest in publish order.
 *   - A message upstream refuses by closing the connection (over its maximum
 *     packet size, QoS above its max_qos) would come first at every connect and
 *     block the uplink for good: the oldest unacknowledged message at a close
 *     is sent alone from then on, and after MAX_REFUSALS closes with it alone
 *     in flight it is set aside (not sent again, journal entry deleted), counted
 *     (`refused`) and logged as an error with its topic, P1 or not (a P1 alert
 *     stays on the gateway's own broker and console; upstream gets its next state).
 *     A set-aside retained state leaves a journaled mark, its topic and a hash of its payload:
 *     the start republishes the gateway's state (an open alert's current state), and without the
 *     mark that same refused payload cost MAX_REFUSALS closes again, the uplink blocked meanwhile,
 *     at every restart. The same payload again is not sent; any other one (the alert's next rev,
 *     its close) is, and clears the mark.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import tls from "node:tls";
import type { IClientOptions, IPublishPacket, MqttClient } from "mqtt";
import type { Logger } from "../log.js";
import { type OperatorAction, operatorTopic, operatorTopicFilters } from "../operator-actions.js";
import type { DurableStore } from "../state/store.js";
import { ConnectionStore } from "./connection-store.js";
import type { NorthboundSink } from "./sink.js";
import { UpstreamSummary } from "./upstream-summary.js";

/**
 * `mqtt://user:password@host` is how mqtt.js and mosquitto's tools take credentials; the bridge
 * ignores them (its login is `username` and `password`), and they must not reach the log with
 * every reconnection's error.
 */
export function urlForLog(url: URL): string {
  if (url.username === "" && url.password === "") return url.href;
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

export interface UpstreamOptions {
  url: string;
  site: string;
  username?: string;
  password?: string;
  /** mqtts:// only. Files are read at every (re)connection, so renewed certificates need no restart. */
  tls?: { ca?: string; cert?: string; key?: string; servername?: string };
  clientId: string;
  /** Non-P1 QoS 1 messages kept while the uplink is down or congested (0: none; P1 always kept). */
  backlog: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  keepaliveS: number;
  /** The journal: the backlog and the retained mirror survive a restart. */
  store?: DurableStore | null;
  /** Congestion limits (tests); default MAX_BUFFERED_BYTES, MAX_INFLIGHT. */
  maxBufferedBytes?: number;
  maxInflight?: number;
  /** P1 lines kept while down (tests); default MAX_URGENT_BACKLOG. */
  urgentBacklog?: number;
}

/**
 * Bytes waiting in the uplink's socket beyond which the link counts as congested: a quarter of
 * what the embedded broker lets an operator's connection have waiting before it drops its
 * telemetry (docs/topics.md "Slow subscribers"); the kernel's socket buffers come on top.
 */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/**
 * QoS 1 messages handed to mqtt.js and not yet acknowledged beyond which the link counts as
 * congested. MQTT has 65,535 packet ids; a healthy broker acknowledges within a round trip, so
 * 1,000 waiting means it is not keeping up (or the connection is half-open).
 */
export const MAX_INFLIGHT = 1000;
/**
 * P1 QoS 1 lines (escalations, a P1 alert's events) kept while the uplink is down. An unacknowledged
 * P1 escalates at least every `alerts.escalation.maxInterval` (15 min) for as long as nobody
 * answers, so a long outage grows them without end: beyond this the oldest line is dropped
 * (counted, logged once per outage). Every P1 alert's current state is in the retained mirror,
 * one per topic, and is never dropped. About 10 MB of payloads at 1 KB each.
 */
export const MAX_URGENT_BACKLOG = 10_000;

/**
 * Connections closed with a message alone in flight, after which it is set aside. The oldest
 * unacknowledged message at a close is a suspect and is sent alone from then on (one round trip
 * to itself): a refusal (too big, QoS too high) closes each such connection at once, while after a
 * cut uplink the next connection acknowledges it.
 */
export const MAX_REFUSALS = 3;

/**
 * Journal keys: `up/<seq>` a QoS 1 message not yet acknowledged upstream, `upr/<topic>` the retained
 * mirror, `upa/<topic>` the hash of a retained state set aside (refused), not sent again.
 */
const UP = "up/";
const UP_RETAINED = "upr/";
const UP_ASIDE = "upa/";
/** A set-aside mark's payload hash (only computed for a topic that has a mark, or at a set-aside). */
const payloadHash = (payload: string): string => createHash("sha256").update(payload).digest("base64url");
const seqKey = (seq: number) => `${UP}${seq.toString().padStart(16, "0")}`;

/**
 * Retained alert states read back from upstream per connect, at most: a site's open alerts are
 * thousands at worst (bench: 10,000 after a flood); beyond the cap the rest waits for the next connect.
 */
export const RECONCILE_MAX = 20_000;
/** How long the retained burst after the subscription is read (loopback: a few ms for 10,000). */
export const RECONCILE_MS = 3000;

interface Reconcile {
  filters: string[];
  timer: NodeJS.Timeout | null;
  /** Topics seen in this burst (a resubscription by mqtt.js may send them twice). */
  seen: Set<string>;
  ghosts: Array<{ id: string | null; topic: string }>;
  capped: boolean;
}

export interface UpstreamStats {
  /** host:port of the upstream broker (the metrics' `broker` label; no credentials). */
  broker: string;
  connected: boolean;
  connects: number;
  published: number;
  retainedMirrored: number;
  backlog: number;
  /** Backlog overflow: oldest non-P1 QoS 1 messages dropped (P1 never is). */
  backlogDropped: number;
  /** Telemetry not sent because the uplink was down or congested. */
  telemetryDropped: number;
  /** QoS 1 messages handed to mqtt.js and not yet acknowledged. */
  inflight: number;
  /** Bytes waiting in the uplink's socket. */
  bufferedBytes: number;
  /** Operator actions received from upstream. */
  actionsReceived: number;
  /** Retained alert states upstream of alerts the gateway does not know as open, deleted (since start). */
  ghostsDeleted: number;
  /** Messages set aside after upstream closed the connection on them MAX_REFUSALS times (P1 too). */
  refused: number;
}

type ActionHandler = (
  action: OperatorAction,
  target: string,
  command: string | null,
  payload: Buffer,
) => void;

interface Held {
  seq: number;
  topic: string;
  payload: string;
  /** P1 by the publisher's word, not by its topic (a P1 alert's events line). */
  urgent?: boolean;
  /** Set: a suspect (the oldest unacknowledged at a close), sent alone; closes with it alone in flight. */
  refusals?: number;
}

/** A retained state in the mirror. */
interface Mirrored {
  seq: number;
  payload: string;
  refusals?: number;
}

/**
 * A QoS 1 message handed to mqtt.js on the current connection: a journaled line (`held`, re-queued
 * at a close), a retained state of the mirror (`seq`; the whole mirror goes again at connect) or a
 * ghost deletion (`seq` 0; the read-back runs again at connect).
 */
interface Flight {
  held: Held | null;
  seq: number;
  topic: string;
}

/** A queue taken from the head; the taken part is cut off once it is most of the array. */
interface Fifo<T> {
  items: T[];
  head: number;
}

const size = <T>(q: Fifo<T>): number => q.items.length - q.head;
const peek = <T>(q: Fifo<T>): T | null => (q.head < q.items.length ? (q.items[q.head] as T) : null);
const push = <T>(q: Fifo<T>, v: T): void => {
  q.items.push(v);
};
const shift = <T>(q: Fifo<T>): T | null => {
  const v = peek(q);
  if (v === null) return null;
  q.items[q.head++] = undefined as unknown as T;
  if (q.head === q.items.length) {
    q.items.length = 0;
    q.head = 0;
  } else if (q.head > 1024 && q.head * 2 > q.items.length) {
    q.items.splice(0, q.head);
    q.head = 0;
  }
  return v;
};

/**
 * A retained topic whose state the gateway alone holds, and holds completely: an alert state,
 * `linli/<site>/alerts/<priority>/<CODE>/<deviceId>` (not alerts/events, alerts/flood), or a
 * device's out-of-service mark, `linli/<site>/devices/<deviceId>/service`. One the gateway holds
 * no open alert or mark for is stale. `prefix` is `linli/<site>/`.
 */
export function isHeldStateTopic(prefix: string, topic: string): boolean {
  if (!topic.startsWith(prefix)) return false;
  const levels = topic.slice(prefix.length).split("/");
  return (
    (levels.length === 4 && levels[0] === "alerts") ||
    (levels.length === 3 && levels[0] === "devices" && levels[2] === "service")
  );
}

/**
 * mqtt.js is loaded only by a gateway that has an upstream broker. Alone it is small beside aedes
 * (they share mqtt-packet; ~2 MB of RSS in the gateway process, within the run-to-run spread of
 * bench:connections), but a site on the embedded broker has no use for it at all.
 */
const loadMqtt = (): typeof import("mqtt") => createRequire(import.meta.url)("mqtt");

export class UpstreamBridge implements NorthboundSink {
  private readonly client: MqttClient;
  /** Newest retained payload per topic, with the order it was published in (resent in that order). */
  private readonly retained = new Map<string, Mirrored>();
  /**
   * Retained states set aside, by topic: their payload's hash (journaled under `upa/`). At most one
   * per retained topic; cleared by the topic's next different state, or at start when the gateway
   * no longer holds its alert (dropStaleRestored).
   */
  private readonly aside = new Map<string, string>();
  /** The summary as upstream's states make it: set-aside alert states out (upstream-summary.ts). */
  private readonly upSummary: UpstreamSummary;
  private readonly summaryTopic: string;
  /** The gateway's last summary as published (before adjusting): sent again when a mark changes it. */
  private lastSummary: string | null = null;
  /** Non-P1 QoS 1 messages waiting, bounded by `opts.backlog` (the oldest dropped). */
  private readonly backlog: Fifo<Held> = { items: [], head: 0 };
  /** P1 QoS 1 messages waiting: never dropped, sent before everything else. */
  private readonly urgentBacklog: Fifo<Held> = { items: [], head: 0 };
  /**
   * Retained states to send while connected, in the order published (P1 ones apart); an entry whose
   * topic has a newer state since is skipped (the newer one has its own entry). Rebuilt from the
   * mirror at connect.
   */
  private retainedQueue: Fifo<{ seq: number; topic: string }> = { items: [], head: 0 };
  private urgentRetainedQueue: Fifo<{ seq: number; topic: string }> = { items: [], head: 0 };
  private readonly urgentPrefixes: readonly string[];
  private readonly maxUrgentBacklog: number;
  /** A P1 line was dropped since the last connect (logged once per outage). */
  private urgentDropLogged = false;
  /** QoS 1 messages handed to mqtt.js on this connection, oldest first, not yet acknowledged. */
  private readonly flights = new Map<number, Flight>();
  private nextFlight = 1;
  /** A suspect in flight alone (sendNext); `urgent`: it holds P1 too. */
  private isolating: { id: number; urgent: boolean } | null = null;
  /** mqtt.js's outgoing store: this connection's packets only, cleared at a close. */
  private readonly outgoing: ConnectionStore;
  private flushing = false;
  private readonly maxBufferedBytes: number;
  private readonly maxInflight: number;
  private readonly prefix: string;
  private stopping = false;
  private readonly broker: string;
  /** The url as logged: without a `user:password@` (the bridge logs in with `username`/`password` only). */
  private readonly logUrl: string;
  /**
   * Up and caught up: mqtt.js says `connected` before our connect handler has
   * sent the backlog, and a message published in that gap would overtake it.
   */
  private ready = false;
  private readonly store: DurableStore | null;
  private nextSeq = 1;
  /**
   * Mirror topics read from the journal and not published since: what the start's republication
   * did not confirm (dropStaleRestored()). Null once settled.
   */
  private restored: Set<string> | null = null;
  readonly counters = {
    connects: 0,
    published: 0,
    backlogDropped: 0,
    telemetryDropped: 0,
    actionsReceived: 0,
    ghostsDeleted: 0,
    refused: 0,
  };
  private reconciling: Reconcile | null = null;

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly log: Logger,
    private readonly onAction: ActionHandler,
  ) {
    this.prefix = `linli/${opts.site}/`;
    this.upSummary = new UpstreamSummary(this.prefix);
    this.summaryTopic = `${this.prefix}alerts/summary`;
    // As gateway.ts and startup.ts (the embedded broker's urgentTopicPrefixes).
    this.urgentPrefixes = [`${this.prefix}alerts/p1/`, `${this.prefix}escalations/p1/`];
    this.store = opts.store ?? null;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
    this.maxInflight = opts.maxInflight ?? MAX_INFLIGHT;
    this.maxUrgentBacklog = opts.urgentBacklog ?? MAX_URGENT_BACKLOG;
    this.recover();
    const url = new URL(opts.url);
    this.logUrl = urlForLog(url);
    const secure = url.protocol === "mqtts:" || url.protocol === "ssl:";
    if (!secure && url.protocol !== "mqtt:" && url.protocol !== "tcp:") {
      throw new RangeError(`northbound.upstream.url ${this.logUrl}: only mqtt:// and mqtts:// are supported`);
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = url.port ? Number(url.port) : secure ? 8883 : 1883;
    this.broker = `${url.hostname}:${port}`;
    const mqtt = loadMqtt();
    this.outgoing = new ConnectionStore(() => new mqtt.Store());
    const options: IClientOptions = {
      clientId: opts.clientId,
      username: opts.username,
      password: opts.password,
      clean: true,
      keepalive: opts.keepaliveS,
      reconnectPeriod: opts.reconnectInitialMs,
      connectTimeout: 10_000,
      queueQoSZero: false,
      resubscribe: true,
      outgoingStore: this.outgoing,
      will: { topic: `${this.prefix}gateway/status`, payload: Buffer.from("offline"), qos: 1, retain: true },
      // Connect when the gateway is ready (connect()), not on construction.
      manualConnect: true,
    };
    // TCP_NODELAY on the uplink too: delayed ACKs add tens of ms per hop otherwise.
    this.client = new mqtt.MqttClient(
      () => {
        if (secure) return this.connectTls(host, port);
        const socket = net.createConnection({ host, port });
        socket.setNoDelay(true);
        socket.on("drain", this.flush);
        return socket;
      },
      { ...options, host, port },
    );
    this.client.on("connect", this.onConnect);
    this.client.on("close", this.onClose);
    this.client.on("error", (err) =>
      this.log.warn({ err: err.message, url: this.logUrl }, "upstream broker error"),
    );
    this.client.on("message", this.onMessage);
  }

  /**
   * A TLS connection to the upstream broker: its certificate is verified
   * (against `tls.ca`, else the system's CAs) and must name the host (or
   * `tls.servername`); TLS 1.2 at least. Unreadable files fail this attempt
   * only (logged); the next reconnection reads them again.
   */
  private connectTls(host: string, port: number): net.Socket {
    const t = this.opts.tls ?? {};
    let files: { ca?: Buffer; cert?: Buffer; key?: Buffer };
    try {
      files = {
        ca: t.ca ? readFileSync(t.ca) : undefined,
        cert: t.cert ? readFileSync(t.cert) : undefined,
        key: t.key ? readFileSync(t.key) : undefined,
      };
    } catch (err) {
      const socket = new net.Socket();
      process.nextTick(() => socket.destroy(new Error(`upstream TLS files: ${(err as Error).message}`)));
      return socket;
    }
    const socket = tls.connect({
      host,
      port,
      servername: t.servername ?? (net.isIP(host) ? undefined : host),
      ...files,
      minVersion: "TLSv1.2",
      rejectUnauthorized: true,
    });
    socket.setNoDelay(true);
    socket.on("drain", this.flush);
    return socket;
  }

  /** Starts connecting (and reconnecting with backoff) in the background. */
  connect(): void {
    this.client.connect();
  }

  get connected(): boolean {
    return this.client.connected;
  }

  stats(): UpstreamStats {
    return {
      broker: this.broker,
      connected: this.client.connected,
      connects: this.counters.connects,
      published: this.counters.published,
      retainedMirrored: this.retained.size,
      backlog: size(this.backlog) + size(this.urgentBacklog),
      backlogDropped: this.counters.backlogDropped,
      telemetryDropped: this.counters.telemetryDropped,
      inflight: this.flights.size,
      bufferedBytes: this.bufferedBytes(),
      actionsReceived: this.counters.actionsReceived,
      ghostsDeleted: this.counters.ghostsDeleted,
      refused: this.counters.refused,
    };
  }

  /** Topics whose retained state the mirror holds (deletions waiting for upstream excepted). */
  *retainedTopics(): IterableIterator<string> {
    for (const [topic, r] of this.retained) if (r.payload !== "") yield topic;
  }

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean, urgent = false): void {
    if (retain) {
      // Current state: the newest per topic. An empty payload deletes it upstream (MQTT 3.1.1 §3.3.1.3):
      // it stays in the mirror until upstream has it, so a deletion is not lost to an outage.
      if (this.aside.size > 0 && this.keptAside(topic, payload)) return;
      if (topic === this.summaryTopic) {
        this.lastSummary = payload;
        payload = this.upSummary.adjust(payload);
      }
      const seq = this.nextSeq++;
      this.restored?.delete(topic);
      this.retained.set(topic, { seq, payload });
      this.store?.put(UP_RETAINED + topic, [seq, payload]);
      // While down, the whole mirror is queued again at connect.
      if (this.ready) {
        this.queueRetained(this.isUrgent(topic) ? this.urgentRetainedQueue : this.retainedQueue, seq, topic);
        this.flush();
      }
      return;
    }
    if (qos === 0) {
      // After a flush, anything still queued means congested: telemetry never overtakes it.
      if (this.ready && !this.congested()) this.send(topic, payload, 0, false);
      else this.counters.telemetryDropped++;
      return;
    }
    const seq = this.nextSeq++;
    // The flag is journaled (a third element older versions ignore): still P1 after a restart.
    this.store?.put(seqKey(seq), urgent ? [topic, payload, 1] : [topic, payload]);
    if (urgent || this.isUrgent(topic)) {
      // flush() sends it at once while connected, congested or not.
      this.holdUrgent({ seq, topic, payload, urgent });
    } else if (
      this.ready &&
      !this.flushing &&
      this.isolating === null &&
      !this.congested() &&
      !this.waiting()
    ) {
      // Keeping up: straight out, as before the congestion bound (the backlog is for when it is not).
      this.sendHeld({ seq, topic, payload });
      return;
    } else {
      this.hold({ seq, topic, payload });
    }
    this.flush();
  }

  /**
   * Whether this retained state is the one upstream refused (set aside, even before a restart): not
   * sent again. Another state of the topic clears the mark, and goes.
   */
  private keptAside(topic: string, payload: string): boolean {
    const mark = this.aside.get(topic);
    if (mark === undefined) return false;
    if (mark === payloadHash(payload)) {
      // Republished at a start: now known again for the summary sent upstream.
      if (this.upSummary.setAside(topic, payload)) this.resendSummary();
      return true;
    }
    this.aside.delete(topic);
    this.store?.delete(UP_ASIDE + topic);
    // The gateway's next summary (its set changed: a new rev, a close) is adjusted without it.
    this.upSummary.cleared(topic);
    return false;
  }

  /** The gateway's last summary again, adjusted anew: a set-aside mark changed what upstream has. */
  private resendSummary(): void {
    if (this.lastSummary !== null) this.publish(this.summaryTopic, this.lastSummary, 1, true);
  }

  private isUrgent(topic: string): boolean {
    for (const p of this.urgentPrefixes) if (topic.startsWith(p)) return true;
    return false;
  }

  /** Anything queued that a message published now must not overtake. */
  private waiting(): boolean {
    return (
      size(this.backlog) > 0 ||
      size(this.urgentBacklog) > 0 ||
      this.peekRetained(this.retainedQueue) !== null ||
      this.peekRetained(this.urgentRetainedQueue) !== null
    );
  }

  private bufferedBytes(): number {
    return (this.client.stream as { writableLength?: number } | undefined)?.writableLength ?? 0;
  }

  private congested(): boolean {
    return this.flights.size >= this.maxInflight || this.bufferedBytes() > this.maxBufferedBytes;
  }

  private queueRetained(q: Fifo<{ seq: number; topic: string }>, seq: number, topic: string): void {
    push(q, { seq, topic });
    // Entries a newer state of their topic replaced: at most one live entry per topic.
    if (size(q) > 2 * this.retained.size + 1024) {
      q.items = q.items.slice(q.head).filter((r) => this.retained.get(r.topic)?.seq === r.seq);
      q.head = 0;
    }
  }

  /** The oldest queued retained state still current, stale entries before it dropped. */
  private peekRetained(
    q: Fifo<{ seq: number; topic: string }>,
  ): { seq: number; topic: string; payload: string } | null {
    for (let r = peek(q); r !== null; r = peek(q)) {
      const current = this.retained.get(r.topic);
      if (current !== undefined && current.seq === r.seq) return { ...r, payload: current.payload };
      shift(q);
    }
    return null;
  }

  /**
   * Sends what waits, P1 first (its messages and retained states merged in publish order, congested
   * or not), then the rest (backlog and retained states merged in publish order) while connected
   * and not congested; runs again on the socket's `drain` and on every PUBACK.
   */
  private readonly flush = (): void => {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.ready) {
        // A suspect in flight alone (sendNext): a P1 one holds everything, another one all but P1.
        const iso = this.isolating;
        if (iso?.urgent) break;
        if (this.sendNext(this.urgentBacklog, this.urgentRetainedQueue, true)) continue;
        if (this.isolating !== null || this.congested()) break;
        if (!this.sendNext(this.backlog, this.retainedQueue, false)) break;
      }
    } finally {
      this.flushing = false;
    }
  };

  /**
   * Sends the older of the two queues' heads; false when both are empty, or when the head is a
   * suspect (refusals) and something is in flight: a suspect goes alone, so that a close with it
   * alone in flight is its own doing (a broker that closes on a packet may lose the PUBACKs it
   * had sent for the ones before it, which then look unacknowledged too).
   */
  private sendNext(
    held: Fifo<Held>,
    retained: Fifo<{ seq: number; topic: string }>,
    urgent: boolean,
  ): boolean {
    const r = this.peekRetained(retained);
    const m = peek(held);
    const takeHeld = m !== null && (r === null || m.seq < r.seq);
    if (!takeHeld && r === null) return false;
    const suspect = takeHeld
      ? m?.refusals !== undefined
      : this.retained.get(r?.topic ?? "")?.refusals !== undefined;
    if (suspect && this.flights.size > 0) return false;
    let id: number;
    if (takeHeld && m !== null) {
      shift(held);
      id = this.sendHeld(m);
    } else if (r !== null) {
      shift(retained);
      id = this.send(r.topic, r.payload, 1, true, r.seq);
    } else return false;
    if (suspect) this.isolating = { id, urgent };
    return true;
  }

  /**
   * A non-P1 QoS 1 message while the uplink is down or congested: bounded, the oldest dropped
   * (counted, journal key deleted) beyond `backlog`; with `backlog: 0`, the message itself.
   */
  private hold(m: Held): void {
    if (size(this.backlog) >= this.opts.backlog) {
      const dropped = size(this.backlog) > 0 ? (shift(this.backlog) as Held) : m;
      this.store?.delete(seqKey(dropped.seq));
      this.counters.backlogDropped++;
      if (dropped === m) return;
    }
    push(this.backlog, m);
  }

  /** A P1 line: kept, unless MAX_URGENT_BACKLOG of them already wait (then the oldest goes). */
  private holdUrgent(m: Held): void {
    if (size(this.urgentBacklog) >= this.maxUrgentBacklog) {
      const dropped = shift(this.urgentBacklog) as Held;
      this.store?.delete(seqKey(dropped.seq));
      this.counters.backlogDropped++;
      if (!this.urgentDropLogged) {
        this.urgentDropLogged = true;
        this.log.error(
          { kept: this.maxUrgentBacklog, topic: dropped.topic },
          "upstream outage: oldest P1 escalation and event lines dropped (alert states are kept)",
        );
      }
    }
    push(this.urgentBacklog, m);
  }

  /** What the journal kept from before the restart: the retained mirror and the unsent backlog, in order. */
  private recover(): void {
    const store = this.store;
    if (!store) return;
    let last = 0;
    for (const [key, v] of store.entries(UP_RETAINED)) {
      if (!Array.isArray(v) || typeof v[0] !== "number" || typeof v[1] !== "string") {
        store.delete(key);
        continue;
      }
      this.retained.set(key.slice(UP_RETAINED.length), { seq: v[0], payload: v[1] });
      last = Math.max(last, v[0]);
    }
    this.restored = new Set(this.retained.keys());
    for (const [key, v] of store.entries(UP_ASIDE)) {
      if (typeof v !== "string") store.delete(key);
      else this.aside.set(key.slice(UP_ASIDE.length), v);
    }
    if (this.aside.size > 0)
      this.log.warn(
        { topics: [...this.aside.keys()].slice(0, 20), count: this.aside.size },
        "upstream: retained states refused before the restart stay set aside until they change / 重启前被上游拒收的保留状态仍搁置，变更后再发送",
      );
    const held: Held[] = [];
    for (const [key, v] of store.entries(UP)) {
      const seq = Number(key.slice(UP.length));
      if (
        !Array.isArray(v) ||
        typeof v[0] !== "string" ||
        typeof v[1] !== "string" ||
        !Number.isSafeInteger(seq)
      ) {
        store.delete(key);
        continue;
      }
      held.push({ seq, topic: v[0], payload: v[1], urgent: v[2] === 1 });
    }
    held.sort((a, b) => a.seq - b.seq);
    for (const m of held) {
      if (m.urgent || this.isUrgent(m.topic)) this.holdUrgent(m);
      else this.hold(m);
    }
    this.nextSeq = Math.max(last, held.at(-1)?.seq ?? 0) + 1;
  }

  /**
   * Called once at start, when the state is restored: an alert state or out-of-service mark that
   * the journal's mirror held and that the gateway does not hold (`current`: its open, announced
   * alerts' topics and its out-of-service marks) is stale, and is deleted upstream (empty retained
   * payload, mirrored and journaled as any deletion). The mirror's copy is written after the
   * records it stands for, so a crash between an alert's close (its record deleted) and the
   * mirror's deletion kept the last `active` state here, and every later connect republished it:
   * upstream showed an alert open for good that the gateway had closed (and the ghost read-back
   * spares topics the mirror holds). Returns how many were deleted.
   */
  dropStaleRestored(current: (topic: string) => boolean): number {
    const restored = this.restored;
    this.restored = null;
    if (restored === null) return 0;
    let dropped = 0;
    // A mark for an alert (or mark) the gateway no longer holds has nothing left to stand for.
    for (const topic of [...this.aside.keys()])
      if (this.isReconciled(topic) && !current(topic)) {
        this.aside.delete(topic);
        this.store?.delete(UP_ASIDE + topic);
        this.upSummary.cleared(topic);
      }
    for (const topic of restored) {
      if (!this.isReconciled(topic) || current(topic) || this.retained.get(topic)?.payload === "") continue;
      this.publish(topic, "", 1, true);
      dropped++;
    }
    if (dropped > 0)
      this.log.warn(
        { deleted: dropped },
        "upstream mirror: states of alerts closed (or devices back in service) just before the last stop deleted",
      );
    return dropped;
  }

  /** Publishes `offline` (the clean-shutdown counterpart of the will) and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.endReconcile(false);
    if (this.client.connected) {
      await this.client
        .publishAsync(`${this.prefix}gateway/status`, "offline", { qos: 1, retain: true })
        .catch(() => {});
    }
    // No reconnect after this: mqtt.js ended before a CONNACK closes its stores at once, then sees
    // the socket's close and set up its reconnect timer there (a stopped bridge reconnected for
    // good under the gateway's client id, kicking off the next one; upstream-stop.test.ts).
    this.client.options.reconnectPeriod = 0;
    await this.client.endAsync(!this.client.connected).catch(() => {});
  }

  /** Telemetry (QoS 0) or a retained state of the mirror (QoS 1, its `seq`); the flight's id (QoS 1). */
  private send(topic: string, payload: string, qos: 0 | 1, retain: boolean, seq = 0): number {
    if (qos === 0) {
      this.counters.published++;
      this.client.publish(topic, payload, { qos, retain });
      return 0;
    }
    return this.sendQos1({ held: null, seq, topic }, payload, retain, () => {
      // Upstream has the deletion: nothing left to mirror for this topic.
      if (retain && payload.length === 0 && this.retained.get(topic)?.payload === "") {
        this.retained.delete(topic);
        this.store?.delete(UP_RETAINED + topic);
      }
    });
  }

  /** A journaled QoS 1 message, forgotten once upstream acknowledges it (re-queued at a close). */
  private sendHeld(m: Held): number {
    return this.sendQos1({ held: m, seq: m.seq, topic: m.topic }, m.payload, false, () =>
      this.store?.delete(seqKey(m.seq)),
    );
  }

  /**
   * Hands a QoS 1 message to mqtt.js, tracked in `flights` until its PUBACK. A callback of a
   * closed connection's message does nothing: onClose took it over (re-queued, or the mirror
   * and the read-back send it again at connect).
   */
  private sendQos1(f: Flight, payload: string, retain: boolean, acked: () => void): number {
    const id = this.nextFlight++;
    this.flights.set(id, f);
    this.counters.published++;
    this.client.publish(f.topic, payload, { qos: 1, retain }, (err) => {
      if (!this.flights.delete(id)) return;
      if (this.isolating?.id === id) this.isolating = null;
      // Room to send what waits.
      if (!this.stopping) this.flush();
      if (err) {
        if (!this.stopping) this.log.debug({ err: err.message, topic: f.topic }, "upstream publish failed");
        return;
      }
      acked();
    });
    return id;
  }

  /**
   * The connection closed: this connection's in-flight messages are ours to send again (mqtt.js
   * replays none, connection-store.ts). The oldest unacknowledged one may be what upstream
   * refused; the journaled lines go back to the head of their queues, in publish order.
   */
  private takeBackFlights(): void {
    const alone = this.flights.size === 1;
    this.isolating = null;
    let oldest: Flight | null = null;
    const again: Held[] = [];
    for (const f of this.flights.values()) {
      if (oldest === null && f.seq > 0) oldest = f;
      if (f.held !== null) again.push(f.held);
    }
    this.flights.clear();
    this.outgoing.clear();
    // Their callbacks: mqtt.js would call them only on a PUBACK of a session that is gone (clean).
    this.client.outgoing = {};
    const aside = oldest !== null && this.refusedOnce(oldest, alone) ? oldest.held : null;
    if (again.length === 0) return;
    const all = [...again, ...this.backlog.items.slice(this.backlog.head)];
    for (let i = this.urgentBacklog.head; i < this.urgentBacklog.items.length; i++)
      all.push(this.urgentBacklog.items[i] as Held);
    all.sort((a, b) => a.seq - b.seq);
    this.backlog.items = [];
    this.backlog.head = 0;
    this.urgentBacklog.items = [];
    this.urgentBacklog.head = 0;
    for (const m of all) {
      if (m === aside) continue;
      if (m.urgent || this.isUrgent(m.topic)) this.holdUrgent(m);
      else this.hold(m);
    }
  }

  /**
   * The oldest unacknowledged message at a close becomes a suspect (sent alone from now on); a
   * close with it alone in flight counts against it, and at MAX_REFUSALS it is set aside: journal
   * entry (or mirror state) deleted, counted, logged. True when set aside.
   */
  private refusedOnce(f: Flight, alone: boolean): boolean {
    const target: Held | Mirrored | undefined =
      f.held ?? (this.retained.get(f.topic)?.seq === f.seq ? this.retained.get(f.topic) : undefined);
    if (target === undefined) return false;
    target.refusals = (target.refusals ?? 0) + (alone ? 1 : 0);
    if (target.refusals < MAX_REFUSALS) return false;
    const urgent = f.held?.urgent === true || this.isUrgent(f.topic);
    if (f.held !== null) this.store?.delete(seqKey(f.seq));
    else {
      // Marked, so that the start's republication of the same state does not send it again.
      const mark = payloadHash(target.payload);
      this.aside.set(f.topic, mark);
      this.store?.put(UP_ASIDE + f.topic, mark);
      this.retained.delete(f.topic);
      this.store?.delete(UP_RETAINED + f.topic);
      // Upstream's clients are told the set upstream has, not one they could never match.
      if (this.upSummary.setAside(f.topic, target.payload)) this.resendSummary();
    }
    this.counters.refused++;
    this.log.error(
      { topic: f.topic, bytes: Buffer.byteLength(target.payload), p1: urgent, closes: MAX_REFUSALS },
      "upstream broker closed the connection on this message every time (too big? QoS above its max_qos?): set aside, not sent again / 上游代理每次收到此消息即断开连接（过大或 QoS 超限），已搁置，不再发送",
    );
    return true;
  }

  private readonly onConnect = (): void => {
    this.counters.connects++;
    this.urgentDropLogged = false;
    this.client.options.reconnectPeriod = this.opts.reconnectInitialMs;
    this.log.info({ url: this.logUrl, connects: this.counters.connects }, "upstream broker connected");
    const filters = operatorTopicFilters(this.prefix);
    this.client.subscribe(filters, { qos: 1 }, (err) => {
      if (err) this.log.warn({ err: err.message }, "upstream subscription failed");
    });
    // Before the republishing below: the retained burst is what upstream held before this connect.
    this.startReconcile();
    // Everything waiting, in the order it was first published: per device (and per topic) the
    // far side sees what it would have seen without the outage, minus retained states that a
    // newer one of the same topic replaced. The whole mirror goes again (upstream may have lost it).
    const mirror = [...this.retained]
      .map(([topic, r]) => ({ seq: r.seq, topic }))
      .sort((x, y) => x.seq - y.seq);
    this.urgentRetainedQueue = { items: mirror.filter((r) => this.isUrgent(r.topic)), head: 0 };
    this.retainedQueue = { items: mirror.filter((r) => !this.isUrgent(r.topic)), head: 0 };
    this.ready = true;
    this.flush();
  };

  /** Exponential backoff on top of mqtt.js's fixed reconnect period. */
  private readonly onClose = (): void => {
    this.ready = false;
    this.endReconcile(false);
    if (this.stopping) return;
    this.takeBackFlights();
    const next = Math.min(
      this.opts.reconnectMaxMs,
      Math.max(this.opts.reconnectInitialMs, (this.client.options.reconnectPeriod ?? 0) * 2),
    );
    this.client.options.reconnectPeriod = next;
  };

  private readonly onMessage = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
    if (!topic.startsWith(this.prefix)) return;
    if (packet.retain && this.reconciling !== null && this.isReconciled(topic)) {
      this.reconcileOne(this.reconciling, topic, payload);
      return;
    }
    // The upstream broker is the site's own: any non-empty segment is a target (access.ts is stricter).
    const op = operatorTopic(topic.slice(this.prefix.length).split("/"), (s) => !!s);
    if (op === null) return;
    this.counters.actionsReceived++;
    this.onAction(op.action, op.target, op.command, payload);
  };

  /**
   * The retained topics read back at connect: alert states, `linli/<site>/alerts/<priority>/<CODE>/
   * <deviceId>` (not alerts/events, alerts/flood), and devices' out-of-service marks,
   * `linli/<site>/devices/<deviceId>/service` (one left upstream by a device removed while the
   * gateway was stopped would say "out of service" there for good).
   */
  private isReconciled(topic: string): boolean {
    return isHeldStateTopic(this.prefix, topic);
  }

  /** Subscribes to the site's alert states for RECONCILE_MS: the retained ones arrive first. */
  private startReconcile(): void {
    this.endReconcile(false);
    const r: Reconcile = {
      filters: [`${this.prefix}alerts/+/+/+`, `${this.prefix}devices/+/service`],
      timer: null,
      seen: new Set(),
      ghosts: [],
      capped: false,
    };
    this.reconciling = r;
    r.timer = setTimeout(() => this.endReconcile(true), RECONCILE_MS);
    r.timer.unref();
    this.client.subscribe(r.filters, { qos: 1 }, (err) => {
      if (err && this.reconciling === r) {
        this.log.warn({ err: err.message }, "upstream: cannot read back retained alerts; ghosts not removed");
        this.endReconcile(false);
      }
    });
  }

  private reconcileOne(r: Reconcile, topic: string, payload: Buffer): void {
    if (r.seen.has(topic) || payload.length === 0) return;
    r.seen.add(topic);
    if (r.seen.size > RECONCILE_MAX) {
      r.capped = true;
      this.endReconcile(true);
      return;
    }
    // The gateway's own retained state for this topic stands (republished on this connect); an
    // empty one is a close the mirror deletes itself, not a ghost. Nor is an older state of an
    // alert whose current state was set aside (refused): the alert is open, and deleting what
    // upstream shows of it left an open emergency call shown nowhere upstream.
    if (this.aside.has(topic) && this.upSummary.seenUpstream(topic, payload.toString("utf8")))
      this.resendSummary();
    if (this.retained.has(topic) || this.aside.has(topic)) return;
    let id: string | null = null;
    try {
      const v = JSON.parse(payload.toString("utf8")) as { id?: unknown };
      if (typeof v.id === "string") id = v.id;
    } catch {
      // Not an alert of ours: a retained message on an alert topic the gateway has no alert for.
    }
    r.ghosts.push({ id, topic });
    this.counters.ghostsDeleted++;
    this.sendQos1({ held: null, seq: 0, topic }, "", true, () => {});
  }

  /** Ends the read-back (time up, cap, disconnect, stop); logs what was deleted when it ran its course. */
  private endReconcile(report: boolean): void {
    const r = this.reconciling;
    if (r === null) return;
    this.reconciling = null;
    if (r.timer !== null) clearTimeout(r.timer);
    // Our own alert states come back otherwise (mosquitto has no no-local in 3.1.1).
    if (this.client.connected) this.client.unsubscribe(r.filters, () => {});
    if (!report) return;
    if (r.ghosts.length > 0)
      this.log.info(
        {
          deleted: r.ghosts.length,
          ids: r.ghosts.slice(0, 100).map((g) => g.id ?? g.topic),
          read: r.seen.size,
        },
        "upstream: retained alerts the gateway does not know as open deleted (raised after the backup a restore came from)",
      );
    if (r.capped)
      this.log.warn(
        { read: RECONCILE_MAX },
        "upstream: more retained alerts than read back per connect; the rest is checked at the next connect",
      );
  }
}
