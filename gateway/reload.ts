/**
 * Live reconfiguration (SIGHUP, `linli reload`; docs/reload.md): a changed
 * site file is applied to the running gateway without a restart.
 *
 *   planReload(running, next)   pure: what was added, removed, changed, and
 *                               which settings need a restart (kept as running)
 *   applyReload(target, plan)   registry, access (disconnects), alert engine,
 *                               supervision, Modbus buses, log level
 *
 * Untouched devices are not touched at all: their connections, runtime state
 * and open alerts stay. A changed device is updated in place (same entry), so
 * its open alerts stay too; a device whose model changed is a removal plus an
 * addition. A removed device's or household's open alerts are closed by the
 * gateway with the reason, its retained status topics deleted.
 */
import type { Level } from "pino";
import type { Clock } from "../core/index.js";
import { type Binding, profileFor } from "../devices/index.js";
import type { Alert } from "./alerts/alert.js";
import type { AlertEngine } from "./alerts/engine.js";
import type { EmbeddedBroker } from "./broker/embedded.js";
import type { DeviceRateLimiter } from "./broker/rate.js";
import { deviceProfile } from "./config/device-profiles.js";
import { ConfigError } from "./config/load.js";
import type { Config, DeviceConfig, HouseholdConfig } from "./config/schema.js";
import { escalationInfo } from "./content/alert-content.js";
import type { KeptDevices } from "./kept-devices.js";
import type { KeptHouseholds } from "./kept-households.js";
import type { Logger } from "./log.js";
import type { Publisher } from "./northbound/publisher.js";
import { DEFAULT_ROLE } from "./operator-roles.js";
import { type DeviceEntry, deviceSettings, type HouseholdEntry, type Registry } from "./registry.js";
import { lineBudgetProblems, type ModbusSouthbound, tcpBusKey } from "./southbound/modbus.js";
import type { PendingDownlinks } from "./southbound/pending-downlinks.js";
import { KEY } from "./state/keys.js";
import { modelChangedReason } from "./state/recovery.js";
import type { DurableStore } from "./state/store.js";
import type { Supervisor } from "./supervision.js";

export const REASON_DEVICE_REMOVED = "device removed from the configuration";
export const REASON_HOUSEHOLD_REMOVED = "household removed from the configuration";
/** A start that finds the model changed closes the old one's alerts with the same reason. */
export const reasonModelChanged = modelChangedReason;

/** Top-level sections a reload applies; every other one needs a restart (except the fields below). */
const LIVE_SECTIONS: ReadonlySet<string> = new Set([
  "operators",
  "households",
  "devices",
  "buses",
  "alerts",
  "site",
  "log",
]);
/** Fields of the live sections above that only a restart applies. */
const RESTART_FIELDS = ["site.id", "site.timezone", "log.format"] as const;

/** Device fields whose change alters how (or where) the device is polled, by binding. */
const POLL_FIELDS: Readonly<Record<Binding, readonly string[]>> = {
  mqtt: [],
  "modbus-serial": ["bus", "unit", "pollInterval"],
  "modbus-tcp": ["host", "port", "unit", "pollInterval", "timeout"],
};

export interface RestartItem {
  /** e.g. `mqtt.listeners`, `pipeline.p1LaneSize`, `site.id`. */
  path: string;
  running: unknown;
  requested: unknown;
}

export interface DeviceChange {
  id: string;
  config: DeviceConfig;
  /** The device's own fields that differ, e.g. ["holdOpenTime"]. */
  fields: string[];
  /** The password changed: its open connections are closed. */
  credentials: boolean;
  /** Modbus: polling changed (bus, unit, period, endpoint). */
  polling: boolean;
}

export interface ReloadPlan {
  devices: {
    added: DeviceConfig[];
    removed: string[];
    /** Same id, another model: removed (alerts closed) and added afresh. */
    replaced: DeviceConfig[];
    changed: DeviceChange[];
  };
  households: { added: HouseholdConfig[]; removed: string[]; changed: HouseholdConfig[] };
  /**
   * `changed`: the password (connections closed); `roles`: the role only (0.13.25), taken from
   * the next request on: the access policy and the router read it per request, so nobody is
   * disconnected for it.
   */
  operators: { added: string[]; removed: string[]; changed: string[]; roles: string[] };
  buses: { added: string[]; removed: string[]; changed: string[] };
  /** Site settings applied live that changed: `site.name`, `site.locale` (the rest need a restart). */
  site: string[];
  /** Alert settings that changed, e.g. ["alerts.escalation.p1"]. */
  alerts: string[];
  logLevel: Config["log"]["level"] | null;
  restartNeeded: RestartItem[];
  /** What the gateway runs after the reload: the new file, restart-only settings as running. */
  effective: Config;
}

/** Structural equality of plain config values (objects, arrays, scalars). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => sameValue(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!sameValue(ao[k], bo[k])) return false;
  return true;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Paths under `path` where a and b differ (objects are descended, arrays compared whole). */
function diffPaths(a: unknown, b: unknown, path: string): string[] {
  if (sameValue(a, b)) return [];
  if (!isRecord(a) || !isRecord(b)) return [path];
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    out.push(...diffPaths(a[k], b[k], `${path}.${k}`));
  return out;
}

function valueAt(root: unknown, path: string): unknown {
  let v: unknown = root;
  for (const k of path.split(".")) v = isRecord(v) ? v[k] : undefined;
  return v;
}

function diffById<T>(
  before: readonly T[],
  after: readonly T[],
  id: (x: T) => string,
): { added: T[]; removed: T[]; both: [T, T][] } {
  const old = new Map(before.map((x) => [id(x), x]));
  const now = new Map(after.map((x) => [id(x), x]));
  return {
    added: after.filter((x) => !old.has(id(x))),
    removed: before.filter((x) => !now.has(id(x))),
    both: after.flatMap((x) => {
      const o = old.get(id(x));
      return o === undefined ? [] : [[o, x] as [T, T]];
    }),
  };
}

/** Welfare settings as they take effect (a household without a period uses alerts.welfarePeriod). */
function effectiveHousehold(h: HouseholdConfig, c: Config) {
  return { ...h, welfare: { ...h.welfare, period: h.welfare.period ?? c.alerts.welfarePeriod } };
}

/** What a reload from `running` to `next` (both validated) changes. Pure. */
export function planReload(running: Config, next: Config): ReloadPlan {
  const restartNeeded: RestartItem[] = [];
  const effective = { ...next, site: { ...next.site }, log: { ...next.log } } as Config;
  const eff = effective as unknown as Record<string, unknown>;
  const run = running as unknown as Record<string, unknown>;
  const nxt = next as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(run), ...Object.keys(nxt)])) {
    if (LIVE_SECTIONS.has(key) || sameValue(run[key], nxt[key])) continue;
    for (const path of diffPaths(run[key], nxt[key], key))
      restartNeeded.push({ path, running: valueAt(running, path), requested: valueAt(next, path) });
    if (key in run) eff[key] = run[key];
    else delete eff[key];
  }
  for (const path of RESTART_FIELDS) {
    const [section, field] = path.split(".") as [string, string];
    const before = (run[section] as Record<string, unknown>)[field];
    const after = (nxt[section] as Record<string, unknown>)[field];
    if (sameValue(before, after)) continue;
    restartNeeded.push({ path, running: before, requested: after });
    (eff[section] as Record<string, unknown>)[field] = before;
  }

  const dev = diffById(running.devices, next.devices, (d) => d.id);
  const replaced: DeviceConfig[] = [];
  const changed: DeviceChange[] = [];
  for (const [o, n] of dev.both) {
    if (o.model !== n.model) {
      replaced.push(n);
      continue;
    }
    const fields = diffPaths(o, n, "").map((p) => p.slice(1));
    if (fields.length === 0) continue;
    const pollFields = POLL_FIELDS[deviceProfile(n, next).binding];
    changed.push({
      id: n.id,
      config: n,
      fields,
      credentials: fields.includes("password"),
      polling: fields.some((f) => pollFields.includes(f)),
    });
  }

  const hh = diffById(running.households, next.households, (h) => h.id);
  const ops = diffById(running.operators, next.operators, (o) => o.name);
  const buses = diffById(running.buses, next.buses, (b) => b.id);
  return {
    devices: {
      added: dev.added,
      removed: dev.removed.map((d) => d.id),
      replaced,
      changed,
    },
    households: {
      added: hh.added,
      removed: hh.removed.map((h) => h.id),
      changed: hh.both
        .filter(([o, n]) => !sameValue(effectiveHousehold(o, running), effectiveHousehold(n, effective)))
        .map(([, n]) => n),
    },
    operators: {
      added: ops.added.map((o) => o.name),
      removed: ops.removed.map((o) => o.name),
      changed: ops.both.filter(([o, n]) => o.password !== n.password).map(([, n]) => n.name),
      roles: ops.both
        .filter(([o, n]) => (o.role ?? DEFAULT_ROLE) !== (n.role ?? DEFAULT_ROLE))
        .map(([, n]) => n.name),
    },
    buses: {
      added: buses.added.map((b) => b.id),
      removed: buses.removed.map((b) => b.id),
      changed: buses.both.filter(([o, n]) => !sameValue(o, n)).map(([, n]) => n.id),
    },
    // Against the effective site: site.id and site.timezone are listed as needing a restart.
    site: diffPaths(running.site, effective.site, "site"),
    alerts: diffPaths(running.alerts, next.alerts, "alerts"),
    logLevel: running.log.level === next.log.level ? null : next.log.level,
    restartNeeded,
    effective,
  };
}

/** Nothing to apply (restart-only changes aside). */
export function planIsEmpty(p: ReloadPlan): boolean {
  const d = p.devices;
  const lists = [
    d.added,
    d.removed,
    d.replaced,
    d.changed,
    p.households.added,
    p.households.removed,
    p.households.changed,
    p.operators.added,
    p.operators.removed,
    p.operators.changed,
    p.operators.roles,
    p.buses.added,
    p.buses.removed,
    p.buses.changed,
    p.site,
    p.alerts,
  ];
  return lists.every((l) => l.length === 0) && p.logLevel === null;
}

/** The plan by id, for the log and `linli reload` (no secrets: fields are named, not shown). */
export function summarisePlan(p: ReloadPlan) {
  return {
    devices: {
      added: p.devices.added.map((d) => d.id),
      removed: p.devices.removed,
      replaced: p.devices.replaced.map((d) => d.id),
      changed: p.devices.changed.map((c) => ({ id: c.id, fields: c.fields })),
    },
    households: {
      added: p.households.added.map((h) => h.id),
      removed: p.households.removed,
      changed: p.households.changed.map((h) => h.id),
    },
    operators: p.operators,
    buses: p.buses,
    site: p.site,
    alerts: p.alerts,
    logLevel: p.logLevel,
  };
}

/** The parts of the gateway a reload changes (`Gateway` satisfies it). */
export interface ReloadTarget {
  readonly config: Config;
  readonly clock: Clock;
  readonly registry: Registry;
  readonly engine: AlertEngine;
  readonly supervisor: Supervisor;
  readonly publisher: Publisher;
  readonly modbus: ModbusSouthbound;
  readonly broker: EmbeddedBroker;
  readonly log: Logger;
  /** The journal: a retired device's record (last seen, recent seqs) is deleted with it. */
  readonly store: DurableStore | null;
  /** Names of the households open alerts keep, refreshed from the file (kept-households.ts). */
  readonly keptHouseholds?: KeptHouseholds;
  readonly keptDevices?: KeptDevices;
  /** Per-device message rates: a retired device's goes with it (not handed to the next one of its id). */
  readonly deviceRate: DeviceRateLimiter;
  /** Downlinks waiting for devices: a removed device's end (`device-removed`), one given another model's `device-changed`; the record goes. */
  readonly pendingDownlinks?: PendingDownlinks | null;
  /** The console's certificate, re-read like the listeners' (false without console TLS; throws naming the file). */
  reloadConsoleCertificates?(): boolean;
  /** The metrics server's certificate, the same way (false without metrics.tls). */
  reloadMetricsCertificates?(): boolean;
  /** `metrics.auth`'s secret file, re-read (false without metrics.auth; throws naming the file, keeping the current secret). */
  reloadMetricsCredentials?(): boolean;
}

export type ReloadResult =
  | {
      result: "applied";
      at: number;
      changes: ReturnType<typeof summarisePlan>;
      /** Settings that changed in the file but keep their running value until a restart. */
      restartNeeded: string[];
      /** Open alerts closed because their device or household was removed or the device replaced. */
      closedAlerts: number;
      /** Of them, those of devices replaced by another model (0.13.39: not said to be removed). */
      replacedAlerts: number;
      /** Devices moved to another household with open alerts, which keep the household they were raised in. */
      moved: MovedWithAlerts[];
      /** MQTT connections closed (removed devices and operators, changed passwords). */
      disconnected: number;
      /** TLS listeners whose certificate files were re-read, and the ones that could not be (kept as they were). */
      certificates: { reloaded: number; failed: string[] };
      /** Secret files re-read (metrics.auth), and the ones that could not be (the current secret kept). */
      secrets: { reloaded: number; failed: string[] };
      /** The configuration now running (holds secrets: not for reports). */
      effective: Config;
    }
  | { result: "refused"; at: number; message: string };

/** A device the reload moved to another household while it had open alerts. */
export interface MovedWithAlerts {
  id: string;
  from: string | null;
  to: string | null;
  /** How many of its alerts are open. */
  open: number;
  /** The households they keep (an alert raised before an earlier move keeps that one's). */
  keep: (string | null)[];
}

/**
 * `ec200-0102 moved from hh-0101 to hh-0203: its 1 open alert keeps hh-0101` (the log, SIGHUP's
 * included, and `linli reload`): an operator who reads the later escalations knows why they still
 * name the old household.
 */
export function describeMove(m: MovedWithAlerts): string {
  const hh = (h: string | null) => h ?? "no household";
  const alerts = m.open === 1 ? "alert keeps" : "alerts keep";
  return `${m.id} moved from ${hh(m.from)} to ${hh(m.to)}: its ${m.open} open ${alerts} ${m.keep.map(hh).join(", ")}`;
}

/**
 * The devices whose household changes with open alerts: an alert is the record of where it was
 * raised (alert.ts `household`), and only alerts raised after the reload take the new household.
 */
function movedWithAlerts(t: ReloadTarget, plan: ReloadPlan): MovedWithAlerts[] {
  const changed = plan.devices.changed.filter((c) => c.fields.includes("household"));
  if (changed.length === 0) return [];
  const open = new Map<string, Alert[]>();
  for (const a of t.engine.openAlerts()) {
    if (!a.isOpen || a.subject.model === "household" || a.subject.model === "gateway") continue;
    const list = open.get(a.subject.id);
    if (list) list.push(a);
    else open.set(a.subject.id, [a]);
  }
  const out: MovedWithAlerts[] = [];
  for (const c of changed) {
    const alerts = open.get(c.id);
    if (!alerts) continue;
    out.push({
      id: c.id,
      from: t.registry.devices.get(c.id)?.household ?? null,
      to: c.config.household ?? null,
      open: alerts.length,
      keep: [...new Set(alerts.map((a) => a.household))],
    });
  }
  return out;
}

/** Values of restart-only settings are logged, secrets excepted. */
const shown = (path: string, v: unknown) => (/password/i.test(path) ? "(hidden)" : v);

/** Devices of declared profiles that are not running as the new configuration describes them. */
export function staleProfiles(effective: Config, next: Config): string[] {
  const out: string[] = [];
  for (const d of next.devices) {
    if (profileFor(d.model) !== undefined) continue;
    const running = effective.deviceProfiles.find((p) => p.model === d.model);
    const wanted = next.deviceProfiles.find((p) => p.model === d.model);
    if (!running || !sameValue(running, wanted))
      out.push(`${d.id}: device profile "${d.model}" is new or changed: restart the gateway to use it`);
  }
  return out;
}

/**
 * Loads (if given a loader), checks, plans and applies. Never throws for a
 * bad configuration: it is refused, logged, and the running one kept.
 */
export async function reloadGateway(
  t: ReloadTarget,
  next: Config | (() => Config),
  now: number,
): Promise<ReloadResult> {
  const certificates = reloadCertificates(t);
  const secrets = reloadSecrets(t);
  let config: Config;
  try {
    config = typeof next === "function" ? next() : next;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return refuse(t, now, err.message);
  }
  const plan = planReload(t.config, config);
  // Device profiles are compiled at start: a device whose profile is new or changed needs a restart.
  const stale = staleProfiles(plan.effective, config);
  if (stale.length > 0) return refuse(t, now, `configuration refused:\n  ${stale.join("\n  ")}`);
  // The same rule as at start: a serial bus whose polls the line cannot carry is refused.
  const budget = lineBudgetProblems(plan.effective);
  if (budget.length > 0) return refuse(t, now, `configuration refused:\n  ${budget.join("\n  ")}`);
  for (const item of plan.restartNeeded)
    t.log.warn(
      {
        setting: item.path,
        running: shown(item.path, item.running),
        requested: shown(item.path, item.requested),
      },
      `${item.path} changed: needs a restart (running value kept)`,
    );
  const changes = summarisePlan(plan);
  if (planIsEmpty(plan)) {
    // Nothing changes, but the alerts that kept a household may have closed since.
    t.keptHouseholds?.refresh(t.engine.openAlerts(), (id) => t.registry.devices.get(id)?.household, [
      t.config.households,
    ]);
    t.keptDevices?.refresh(t.engine.openAlerts(), t.config.devices, [t.config.devices]);
    t.log.info({ restartNeeded: plan.restartNeeded.length }, "configuration reloaded: nothing to change");
    return applied(
      now,
      plan,
      changes,
      { closedAlerts: 0, replacedAlerts: 0, disconnected: 0 },
      [],
      certificates,
      secrets,
    );
  }
  // Before applying: the device's household is still the one it moves from.
  const moved = movedWithAlerts(t, plan);
  const before = t.config.households;
  const devicesBefore = t.config.devices;
  const counts = await applyReload(t, plan);
  // The households open alerts keep, as the file now names them, or as the file before did (one
  // this reload removed): read from here on while the file no longer has them.
  t.keptHouseholds?.refresh(t.engine.openAlerts(), (id) => t.registry.devices.get(id)?.household, [
    plan.effective.households,
    before,
  ]);
  // The name and location of a moved device's open alerts, as the file before had them there.
  t.keptDevices?.refresh(t.engine.openAlerts(), plan.effective.devices, [devicesBefore]);
  t.log.info(
    { ...changes, ...counts, ...(moved.length > 0 ? { moved } : {}) },
    moved.length > 0
      ? `configuration reloaded; ${moved.map(describeMove).join("; ")}`
      : "configuration reloaded",
  );
  return applied(now, plan, changes, counts, moved, certificates, secrets);
}

/**
 * TLS listeners re-read their certificate, key and CA on every reload, whatever
 * the file says (a renewed certificate keeps its path): new handshakes use them,
 * open connections stay. Paths themselves (mqtt.listeners) need a restart.
 */
function reloadCertificates(t: ReloadTarget): { reloaded: number; failed: string[] } {
  const r = t.broker.reloadCertificates();
  try {
    if (t.reloadConsoleCertificates?.()) r.reloaded++;
  } catch (err) {
    r.failed.push(`console: ${(err as Error).message}`);
  }
  try {
    if (t.reloadMetricsCertificates?.()) r.reloaded++;
  } catch (err) {
    r.failed.push(`metrics: ${(err as Error).message}`);
  }
  for (const problem of r.failed)
    t.log.error({ problem }, "TLS certificate not reloaded; the listener keeps its current one");
  if (r.reloaded > 0) t.log.info({ listeners: r.reloaded }, "TLS certificates reloaded");
  return r;
}

/** Secret files named in the configuration (metrics.auth) are re-read as certificates are: a rotated token keeps its path. */
function reloadSecrets(t: ReloadTarget): { reloaded: number; failed: string[] } {
  const r = { reloaded: 0, failed: [] as string[] };
  try {
    if (t.reloadMetricsCredentials?.()) r.reloaded++;
  } catch (err) {
    r.failed.push((err as Error).message);
  }
  for (const problem of r.failed)
    t.log.error({ problem }, "secret file not reloaded; the current secret is kept");
  if (r.reloaded > 0) t.log.info({ files: r.reloaded }, "secret files reloaded");
  return r;
}

function applied(
  at: number,
  plan: ReloadPlan,
  changes: ReturnType<typeof summarisePlan>,
  counts: { closedAlerts: number; replacedAlerts: number; disconnected: number },
  moved: MovedWithAlerts[],
  certificates: { reloaded: number; failed: string[] },
  secrets: { reloaded: number; failed: string[] },
): ReloadResult {
  return {
    result: "applied",
    at,
    changes,
    restartNeeded: plan.restartNeeded.map((r) => r.path),
    ...counts,
    moved,
    certificates,
    secrets,
    effective: plan.effective,
  };
}

function refuse(t: ReloadTarget, at: number, message: string): ReloadResult {
  t.log.error(
    { problems: message },
    `configuration reload refused; the running configuration is kept\n${message}`,
  );
  return { result: "refused", at, message };
}

/** Applies a plan to the running gateway. Order matters: households before the devices in them. */
export async function applyReload(
  t: ReloadTarget,
  plan: ReloadPlan,
): Promise<{ closedAlerts: number; replacedAlerts: number; disconnected: number }> {
  const cfg = plan.effective;
  const { registry, engine, supervisor, publisher, broker } = t;
  let closedAlerts = 0;
  let replacedAlerts = 0;
  let disconnected = 0;

  // Operators: a removed operator or a changed password ends the open sessions.
  registry.setOperators(cfg.operators);
  const revoked = new Set([...plan.operators.removed, ...plan.operators.changed]);
  if (revoked.size > 0)
    disconnected += broker.disconnect((i) => i.kind === "operator" && revoked.has(i.name));
  // Their saved sessions go too: kept, an operator added later under the same name was handed
  // them. A changed password cannot be told from another person given the account (nor, at a
  // start, from one removed and added again): the sessions are the old credentials' (sessions.ts).
  const forgotten = broker.forgetOperatorSessions(new Set(plan.operators.removed));
  const renewed = broker.forgetOperatorSessions(new Set(plan.operators.changed), "credentials-changed");
  if (forgotten + renewed > 0)
    t.log.info(
      { removed: plan.operators.removed, changed: plan.operators.changed, sessions: forgotten + renewed },
      "saved sessions of operators removed or given new credentials deleted",
    );

  for (const h of plan.households.added) registry.addHousehold(h, cfg);

  // What timers depend on, before anything changes (lost deadlines and welfare periods move by the difference).
  const graceChanged = cfg.alerts.lostGrace !== supervisor.lostGrace;
  const oldLost = new Map<DeviceEntry, number>();
  const lostAfter = (d: DeviceEntry) => d.lostAfterMs(supervisor.lostGrace);
  if (graceChanged) for (const d of registry.devices.values()) oldLost.set(d, lostAfter(d));
  const touched = new Map<HouseholdEntry, number>();
  const touch = (h: HouseholdEntry | null) => {
    if (h && !touched.has(h)) touched.set(h, h.welfarePeriodMs);
  };

  const removed: DeviceEntry[] = [];
  const retire = (id: string, reason: string, nowModel?: string) => {
    // While the registry still names it: its senders' results say which device it was. Another
    // model has another downlink topic and encoding: its commands end `device-changed`, to be sent
    // again to the device as it now is.
    const before = registry.devices.get(id);
    const why = nowModel === undefined ? "device-removed" : "device-changed";
    const ended = before ? (t.pendingDownlinks?.removed(before, why) ?? 0) : 0;
    if (ended > 0)
      t.log.warn(
        { deviceId: id, downlinks: ended, why, ...(nowModel === undefined ? {} : { model: nowModel }) },
        nowModel === undefined
          ? "downlinks waiting for a removed device dropped"
          : "downlinks waiting for a device given another model dropped: its downlink changed",
      );
    const entry = registry.removeDevice(id);
    if (!entry) return;
    touch(entry.householdEntry);
    supervisor.untrack(entry);
    closedAlerts += engine.closeSubject(id, reason, nowModel);
    publisher.deviceRemoved(entry);
    // Its seqs are not the next device's under this id (a model change): kept, they dropped that
    // one's first messages as re-sends after a restart.
    t.store?.delete(KEY.device(id));
    // Its rules' memory (a sensor fault) is not the next device's either.
    t.store?.delete(KEY.rule(id));
    t.deviceRate.forget(id);
    oldLost.delete(entry);
    removed.push(entry);
  };
  for (const id of plan.devices.removed) retire(id, REASON_DEVICE_REMOVED);
  const beforeReplaced = closedAlerts;
  for (const d of plan.devices.replaced) retire(d.id, reasonModelChanged(d.model), d.model);
  replacedAlerts = closedAlerts - beforeReplaced;

  const repoll: DeviceEntry[] = [];
  const restartBuses = new Set(plan.buses.changed);
  const newCredentials = new Set<DeviceEntry>();
  for (const c of plan.devices.changed) {
    const entry = registry.devices.get(c.id) as DeviceEntry;
    if (!oldLost.has(entry)) oldLost.set(entry, lostAfter(entry));
    touch(entry.householdEntry);
    const before = entry.config;
    registry.updateDevice(entry, c.config, cfg);
    touch(entry.householdEntry);
    if (c.credentials) newCredentials.add(entry);
    if (c.polling) {
      repoll.push(entry);
      // A Modbus TCP device's endpoint or timeout is its bus's: that bus restarts.
      if ("host" in before && "host" in c.config)
        restartBuses.add(tcpBusKey(before.host, before.port)).add(tcpBusKey(c.config.host, c.config.port));
    }
  }
  // A changed password takes effect at once: the device must reconnect with it (a demanding user expects that).
  if (removed.length > 0 || newCredentials.size > 0)
    disconnected += broker.disconnect(
      (i) => i.kind === "device" && (i.device.removed || newCredentials.has(i.device)),
    );

  const added: DeviceEntry[] = [];
  for (const d of [...plan.devices.added, ...plan.devices.replaced]) {
    const entry = registry.addDevice(d, cfg);
    supervisor.track(entry);
    touch(entry.householdEntry);
    added.push(entry);
  }

  for (const id of plan.households.removed) {
    const h = registry.removeHousehold(id);
    if (!h) continue;
    touched.delete(h);
    closedAlerts += engine.closeSubject(id, REASON_HOUSEHOLD_REMOVED);
    supervisor.householdRemoved(h);
    // The residents' last activity is not the next household's under this id.
    t.store?.delete(KEY.household(id));
  }

  if (plan.alerts.length > 0) {
    const a = cfg.alerts;
    const retimed = engine.setOptions({
      escalationP1Ms: a.escalation.p1,
      escalationP2Ms: a.escalation.p2,
      escalationFactor: a.escalation.factor,
      escalationMaxIntervalMs: a.escalation.maxInterval,
      shelveMaxMs: a.shelveMax,
    });
    // Journaled with their next rev (setOptions): the retained alert shows the new escalationNextAt.
    for (const al of retimed)
      publisher.alert(al, al.lastTransition, escalationInfo(al, al.lastTransition, t.clock));
    supervisor.setOptions({ lostGraceMs: a.lostGrace, awayExitGraceMs: a.awayExitGrace });
    for (const d of registry.devices.values())
      Object.assign(d.settings, deviceSettings(d.config, d.profile, a, registry.siteTime));
  }
  for (const [d, before] of oldLost) supervisor.retime(d, before);

  const quiet = new Map(cfg.households.map((h) => [h.id, h]));
  for (const h of plan.households.changed) {
    const entry = registry.households.get(h.id) as HouseholdEntry;
    touch(entry);
    registry.updateHousehold(entry, h, cfg);
  }
  for (const h of plan.households.added) touch(registry.households.get(h.id) ?? null);
  for (const [h, oldPeriod] of touched)
    supervisor.householdChanged(h, oldPeriod, quiet.get(h.id)?.welfare.quietHours);

  await t.modbus.reconfigure(cfg, { removed, added, repoll, restartBuses: [...restartBuses] });

  if (plan.logLevel !== null) t.log.level = plan.logLevel as Level | "silent";
  return { closedAlerts, replacedAlerts, disconnected };
}
