/**
 * Start-up's steps, which `Gateway.start` (gateway.ts) runs in order: opening the journal, the
 * embedded broker, the metrics and console servers, and, once the broker listens, republishing
 * what the journal restored and how long the gateway was down; last, the check that every device
 * is supervised. Each step is given what it needs
 * and returns what it made; the gateway keeps the order and what must be stopped.
 */

import type { Socket } from "node:net";
import path from "node:path";
import type { Clock } from "../core/index.js";
import type { AlertEngine } from "./alerts/engine.js";
import { AccessPolicy } from "./broker/access.js";
import { type BrokerHandlers, EmbeddedBroker, type SessionsConfig } from "./broker/embedded.js";
import type { Config } from "./config/schema.js";
import { ConsoleServer, type ConsoleServerOptions } from "./console/server.js";
import { consoleSiteInfo } from "./console/site-info.js";
import { escalationInfo } from "./content/alert-content.js";
import type { HttpRefusal } from "./http-guard.js";
import { JournalFormatError } from "./journal/format.js";
import { type FoundDamage, Journal, type JournalFs } from "./journal/journal.js";
import { JournalLockedError } from "./journal/lock.js";
import type { Logger, RateLimitedLog } from "./log.js";
import { MetricsCredentials } from "./metrics/auth.js";
import type { GatewayMetrics } from "./metrics/metrics.js";
import { MetricsServer } from "./metrics/server.js";
import type { Publisher } from "./northbound/publisher.js";
import type { NorthboundSink } from "./northbound/sink.js";
import { isHeldStateTopic, type UpstreamBridge } from "./northbound/upstream.js";
import type { Registry } from "./registry.js";
import type { ModbusSouthbound } from "./southbound/modbus.js";
import type { StateRecorder } from "./state/recorder.js";
import type { Recovered } from "./state/recovery.js";
import type { DurableStore } from "./state/store.js";
import type { Counters } from "./stats.js";
import type { Supervisor } from "./supervision.js";

export interface OpenedJournal {
  /** Null when it could not be opened (or `storage.enabled` is false). */
  journal: Journal | null;
  /** Why it could not be opened, for /readyz and STORAGE_DEGRADED; null when it was. */
  problem: string | null;
}

/** What the journal reports after open; both are called outside the journal's own call. */
export interface JournalEvents {
  healthChanged(problem: string | null): void;
  damageFound(damage: FoundDamage): void;
}

/**
 * Opens the journal in `dir`. A lock held by another gateway throws; any other failure keeps the
 * site running live, without a journal, and says so.
 */
export function openJournal(
  storage: Config["storage"],
  dir: string,
  opts: { writes: "auto" | "pool" | "loop"; fs: JournalFs | undefined; log: Logger; events: JournalEvents },
): OpenedJournal {
  const { log, events } = opts;
  try {
    const journal = Journal.open({
      dir,
      sync: storage.sync,
      syncIntervalMs: storage.syncInterval,
      segmentBytes: storage.segmentSize,
      compactAfterBytes: storage.compactAfter,
      quotaBytes: storage.quota,
      writes: opts.writes,
      // A read-only or unreadable directory: restored read-only, degraded, retried (docs/durability.md).
      whenUnwritable: "degrade",
      ...(opts.fs === undefined ? {} : { fs: opts.fs }),
      log: log.child({ module: "journal" }),
      // Reported from inside a put(), i.e. in the middle of another alert's change: handled after it.
      onHealthChange: (h) =>
        queueMicrotask(() => events.healthChanged(h.ok ? null : (h.reason ?? "unknown"))),
      // The delayed full open of a directory first opened read-only: its damage is alerted like
      // damage found at start (each damage once, however often the open is retried).
      onDamageFound: (damage) => queueMicrotask(() => events.damageFound(damage)),
    });
    return { journal, problem: null };
  } catch (err) {
    // Refusals, not disk trouble: another gateway holds the directory, or a newer version wrote it.
    if (err instanceof JournalLockedError || err instanceof JournalFormatError) throw err;
    // Unreadable and unwritable directories open degraded (whenUnwritable); this is anything
    // else: keep the site running live, and say loudly what is not kept.
    log.error(
      { err, dir },
      "journal cannot be opened: alerts are delivered live but NOT kept across a restart",
    );
    return { journal: null, problem: `cannot open ${path.resolve(dir)}: ${(err as Error).message}` };
  }
}

/** Starts the embedded broker on the configured listeners (the first one's port overridden by `--mqtt-port`). */
export function startBroker(p: {
  config: Config;
  mqttPort: number | undefined;
  sessions: SessionsConfig | undefined;
  store: DurableStore | null;
  registry: Registry;
  handlers: BrokerHandlers;
  counters: Counters;
  log: Logger;
  rateLog: RateLimitedLog;
}): Promise<EmbeddedBroker> {
  const { config } = p;
  const listeners = config.mqtt.listeners.map((l, i) =>
    i === 0 && p.mqttPort !== undefined ? { ...l, port: p.mqttPort } : l,
  );
  return EmbeddedBroker.start({
    listeners,
    maxConnections: config.mqtt.maxConnections,
    deviceListener: config.mqtt.deviceListener,
    policy: new AccessPolicy(config.site.id, p.registry),
    handlers: p.handlers,
    counters: p.counters,
    limits: config.limits,
    log: p.log,
    rateLog: p.rateLog,
    urgentTopicPrefixes: [`linli/${config.site.id}/alerts/p1/`, `linli/${config.site.id}/escalations/p1/`],
    // Operators' persistent sessions live in the same journal as the alerts.
    // A saved session of an operator no longer configured, or configured with other credentials,
    // is deleted, not handed to a namesake.
    sessions: {
      operatorSecret: (name) => p.registry.operators.get(name),
      // Queued copies of alerts may take a quarter of the journal's quota, never the alerts' room.
      storeBudgetBytes: Math.floor(config.storage.quota / 4),
      ...p.sessions,
      store: p.sessions?.store ?? p.store ?? undefined,
    },
  });
}

/** Serves /metrics, /healthz and /readyz. */
export function startMetricsServer(
  m: Config["metrics"],
  metrics: GatewayMetrics,
  notReadyReason: () => string | null,
  log: Logger,
  readyNote?: () => string | null,
  onUnauthorized?: (address: string) => void,
  onConnectionRefused?: (address: string, why: HttpRefusal) => void,
  admitConnection?: (socket: Socket) => boolean,
): Promise<MetricsServer> {
  const onError = (err: unknown) => log.error({ err }, "metrics collection failed");
  // Throws naming the secret's file (unreadable, empty, too short): no start with /metrics open by mistake.
  const auth = m.auth === undefined ? undefined : new MetricsCredentials(m.auth);
  return MetricsServer.start({
    host: m.host,
    port: m.port,
    tls: m.tls,
    auth,
    metrics,
    notReadyReason,
    readyNote,
    onError,
    onUnauthorized,
    onConnectionRefused,
    admitConnection,
  });
}

/** Serves the operators' console; its MQTT goes through the broker's operator login. */
export async function startConsoleServer(
  c: Config["console"],
  port: number,
  broker: EmbeddedBroker,
  config: () => Config,
  log: Logger,
  onConnectionRefused?: (address: string, why: HttpRefusal) => void,
  onWebSocketRefused?: ConsoleServerOptions["onWebSocketRefused"],
  connections?: ConsoleServerOptions["connections"],
): Promise<ConsoleServer> {
  const server = await ConsoleServer.start({
    host: c.host,
    port,
    authenticateOperator: (username, password, socket) => broker.operatorLogin(username, password, socket),
    loginPause: (socket) => broker.consoleLoginPause(socket),
    timeZone: () => config().site.timezone,
    siteInfo: (username) => consoleSiteInfo(config(), username),
    attachMqtt: (stream, socket, operatorLoggedIn) => broker.attach(stream, socket, operatorLoggedIn),
    log: log.child({ module: "console" }),
    tls: c.tls,
    onConnectionRefused,
    onWebSocketRefused,
    admitConnection: broker.admitHttpTcp,
    connections,
  });
  log.info({ url: server.url }, "operators' console listening");
  return server;
}

/**
 * How long the gateway was not running before this start: from the previous run's last
 * RunningRecord (a clean stop writes one; after a crash or a power cut it is at most a
 * checkpointInterval old, so the downtime is overstated by that much at most). 0 without one.
 */
export function downForMs(recovered: Recovered | null, now: number, log: Logger): number {
  const last = recovered?.lastRunning ?? null;
  if (last === null) return 0;
  const down = Math.max(0, now - last);
  if (down > 0)
    log.info(
      { downForMs: down, since: new Date(last).toISOString() },
      "gateway was not running for a while: device silence is counted from where it stood at the stop",
    );
  return down;
}

/**
 * After a restart the broker's retained store is empty: the open alerts go
 * out again as they were (same id, state and rev), with device status and
 * away mode; alerts of devices that left the configuration, or whose model
 * changed in it, are closed.
 * An alert whose state changed while it was held goes out with the next rev
 * (journaled first): `id` + `rev` name one state (docs/topics.md).
 *
 * Paced: after every REPUBLISH_CHUNK messages it waits for `p.settled` (the broker's settled():
 * everything published so far is through aedes). Published in one go, an aged start's tens of
 * thousands of messages each held aedes' packet, promise chain and payload copy at the same time,
 * ~2 KB each: the start's peak RSS (docs/performance.md, "Memory, eighth pass"). Same order.
 */
export async function republishRecovered(
  r: Recovered | null,
  p: {
    publisher: Publisher;
    registry: Registry;
    engine: AlertEngine;
    supervisor: Supervisor;
    recorder: StateRecorder | null;
    clock: Clock;
    /** Retained topics the upstream bridge's journaled mirror holds (none without a bridge). */
    upstreamRetained?: Iterable<string>;
    /** Resolves once what was published so far is through the broker; none: no pacing. */
    settled?: () => Promise<void>;
  },
): Promise<void> {
  if (!r) return;
  const { publisher, registry, engine } = p;
  let sinceSettled = 0;
  const pace = async (): Promise<void> => {
    if (p.settled === undefined || ++sinceSettled < REPUBLISH_CHUNK) return;
    sinceSettled = 0;
    await p.settled();
  };
  for (const a of r.alerts) {
    if (!a.announced || !a.isOpen) continue;
    if (a.unpublished) {
      a.rev++;
      a.unpublished = false;
      p.recorder?.alert(a);
    }
    publisher.alert(a, a.lastTransition, escalationInfo(a, a.lastTransition, p.clock));
    await pace();
  }
  // Before the device status: a device whose model changed has none of the old one's state.
  // A device id still configured is an orphan for another model under it (recovery.ts).
  for (const [id, reason] of r.orphans) engine.closeSubject(id, reason, registry.devices.get(id)?.model);
  forgetRetained(p.upstreamRetained ?? [], engine.site, registry, r.orphans, publisher);
  for (const d of registry.devices.values())
    if (d.link === "online" || d.link === "lost") {
      publisher.deviceStatus(d, d.link);
      await pace();
    }
  for (const s of engine.outOfServiceSubjects())
    if (registry.devices.has(s.subjectId)) publisher.deviceService(s.subjectId, s);
  for (const status of p.supervisor.awayStatuses()) publisher.householdMonitoring(status.household, status);
  for (const _ of engine.fireOverdueSteps()) await pace();
}

/** Messages republished at start between two waits for the broker (republishRecovered). */
export const REPUBLISH_CHUNK = 256;

/** Longest wait of one slice of republishRecovered; after one, the slices no longer wait. */
export const REPUBLISH_WAIT_MAX_MS = 2_000;

/**
 * republishRecovered's wait: until what was published so far is through the written-first hold (its
 * records written) and through aedes. A disk that stops answering would hold the start itself: a
 * wait longer than REPUBLISH_WAIT_MAX_MS ends the pacing (the rest goes out as before, unpaced).
 */
export function northboundSettled(
  writtenFirst: { drained(): Promise<void> } | null,
  broker: { settled(): Promise<void> },
): () => Promise<void> {
  let pacing = true;
  return async () => {
    if (!pacing) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), REPUBLISH_WAIT_MAX_MS);
    });
    const through = (async () => {
      await writtenFirst?.drained();
      await broker.settled();
      return true;
    })();
    pacing = await Promise.race([through, late]);
    clearTimeout(timer);
  };
}

/**
 * Longest the restored sessions' duplicate check waits for the start's republication to be through
 * (sessionRestoreEnd). Its cost meanwhile is a map of at most one entry per restored message; past
 * it (a disk stalled that long) the check ends and a copy let go later may be queued twice.
 */
export const SESSION_RESTORE_CHECK_MAX_MS = 60_000;

/**
 * Calls `end` once what the start republished is through: its records written (written-first
 * drained) and handed through aedes (settled), or after `maxMs` at most (`timedOut` true). Not
 * the pacing's wait (northboundSettled, 2 s): a disk stalled longer than that held the
 * republished states past it, and the restored sessions' duplicate check, ended on that timer,
 * queued them a second time when the write let them go.
 */
export function sessionRestoreEnd(
  writtenFirst: { drained(): Promise<void> } | null,
  broker: { settled(): Promise<void> },
  end: (timedOut: boolean) => void,
  maxMs = SESSION_RESTORE_CHECK_MAX_MS,
): void {
  let done = false;
  const finish = (timedOut: boolean) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    end(timedOut);
  };
  // Unref'd: a gateway stopped meanwhile is not kept alive by it.
  const timer = setTimeout(() => finish(true), maxMs);
  timer.unref();
  (async () => {
    await writtenFirst?.drained();
    await broker.settled();
  })().then(
    () => finish(false),
    () => finish(false),
  );
}

/**
 * A reload deletes a removed device's retained status and service and a removed household's
 * monitoring status. A start without them (a file edited while stopped, a crash before the reload's
 * deletions were written) does it for what the upstream mirror still holds: kept, the journaled mirror
 * sent them upstream again at every connect, a device shown online for good. A device whose model
 * changed starts with no status, as after a reload that replaced it.
 */
function forgetRetained(
  topics: Iterable<string>,
  site: string,
  registry: Registry,
  orphans: ReadonlyMap<string, string>,
  publisher: Publisher,
): void {
  const devices = new Set<string>();
  const households = new Set<string>();
  const prefix = `linli/${site}/`;
  for (const topic of topics) {
    if (!topic.startsWith(prefix)) continue;
    const [kind, id, leaf, more] = topic.slice(prefix.length).split("/");
    if (id === undefined || more !== undefined) continue;
    if (kind === "devices" && (leaf === "status" || leaf === "service")) {
      if (!registry.devices.has(id) || orphans.has(id)) devices.add(id);
    } else if (kind === "households" && leaf === "monitoring" && !registry.households.has(id))
      households.add(id);
  }
  for (const id of devices) publisher.deviceForgotten(id);
  for (const id of households) publisher.householdRemoved(id);
}

/**
 * Once the state is restored: copies of alert states and service marks that survived in the
 * upstream mirror or in operators' session queues, and that the gateway no longer holds, are
 * stale (a crash came between a close and their update: both are written after the records they
 * stand for). They are deleted as a close deletes them: an empty retained message.
 */
export function dropStaleCopies(p: {
  site: string;
  engine: AlertEngine;
  registry: Registry;
  upstream: UpstreamBridge | null;
  broker: EmbeddedBroker;
  /** The local broker's sink (queued for the sessions like any close). */
  local: NorthboundSink;
  log: Logger;
}): void {
  const held = new Set<string>();
  for (const a of p.engine.openAlerts()) if (a.announced) held.add(a.topic);
  for (const s of p.engine.outOfServiceSubjects())
    if (p.registry.devices.has(s.subjectId)) held.add(`linli/${p.site}/devices/${s.subjectId}/service`);
  const current = (topic: string) => held.has(topic);
  p.upstream?.dropStaleRestored(current);
  const prefix = `linli/${p.site}/`;
  let stale = 0;
  for (const topic of p.broker.restoredSessionStates()) {
    if (!isHeldStateTopic(prefix, topic) || current(topic)) continue;
    p.local.publish(topic, "", 1, true);
    stale++;
  }
  if (stale > 0)
    p.log.warn(
      { deleted: stale },
      "operators' sessions: states of alerts closed (or devices back in service) just before the last stop deleted",
    );
}

/** Devices that nothing would ever call lost: neither an MQTT heartbeat timer nor a poll on a bus. */
export function unsupervised(registry: Registry, modbus: Pick<ModbusSouthbound, "polls">): string[] {
  const out: string[] = [];
  for (const d of registry.devices.values())
    if (!d.supervisedByHeartbeat && !modbus.polls(d)) out.push(`${d.id} (${d.model})`);
  return out;
}
