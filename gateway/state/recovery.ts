/**
 * Start-up from the journal: the state an operator relies on is put back
 * before the broker accepts anyone, so the first thing a console sees after
 * a restart is what it saw before (docs/durability.md, "Recovery").
 *
 * Order matters: device and household times first (supervision resumes from
 * them), then out of service and shelving (a restored alert takes its holds
 * from them), flood, and the alerts last.
 */

import type { AlertCode } from "../../core/index.js";
import type { Alert, AlertSubject } from "../alerts/alert.js";
import type { AlertEngine, FloodRecord, ShelveRecord } from "../alerts/engine.js";
import { moveFloodRecord } from "../alerts/flood.js";
import type { Logger } from "../log.js";
import { moveRecord } from "../moved-times.js";
import type { Registry } from "../registry.js";
import type { AwayRecord, Supervisor } from "../supervision.js";
import {
  type AlertRecord,
  alertFromRecord,
  alertRecord,
  packAlertRecord,
  packedAlertRecord,
  readAlertRecord,
} from "./alert-record.js";
import { KEY, PREFIX } from "./keys.js";
import {
  type HoldRecord,
  type HouseholdRecord,
  REV_UNSYNCED_MAX,
  type RunningRecord,
  readDeviceRecord,
} from "./recorder.js";
import type { DurableStore } from "./store.js";

/** The gateway's own alerts (STORAGE_DEGRADED) are about this subject. */
export const GATEWAY_SUBJECT: AlertSubject = { id: "gateway", model: "gateway", household: null };

export interface RecoveryReport {
  alerts: number;
  /** Alerts of devices no longer in the configuration: closed with a reason after start. */
  orphanAlerts: number;
  shelves: number;
  outOfService: number;
  away: number;
  devices: number;
  /** Devices whose rules' durable state (rule/<device>) was put back. */
  rules: number;
  /** On-delays under way at the stop, kept (hold/<device>/<CODE>). */
  holds: number;
  households: number;
  /** Records that did not have the expected shape: skipped and deleted. */
  skipped: number;
  /**
   * The previous run did not stop cleanly (a crash or a power cut), or the journal was damaged:
   * every restored alert's rev skipped REV_UNSYNCED_MAX.
   */
  unclean: boolean;
}

export interface Recovered {
  report: RecoveryReport;
  /** Restored open alerts, to republish as they were. */
  alerts: Alert[];
  /**
   * Subjects whose alerts must be closed, with the reason: they left the configuration, or the
   * configuration names another model for the id (another device: what a reload does, closing
   * them with that reason, a start does too).
   */
  orphans: Map<string, string>;
  /** When the previous run was last known to be running (wall clock, ms); null if never recorded. */
  lastRunning: number | null;
}

/** Interner's bounds: distinct strings kept, and the longest string interned (characters). */
const INTERN_MAX = 4096;
const INTERN_MAX_LENGTH = 64;

/**
 * One string per distinct value of the restored state's short fields. The journal's decoder makes
 * a new string per record for what is one of a handful of values per site (a state, a code, a
 * cause, an operator's name, a device's link): an aged start of 15,000 open alerts kept 10,002
 * copies of "online" and 5,001 of "active-acknowledged" (~1.3 MB of heap, heap snapshot). Bounded
 * (INTERN_MAX strings, then the rest are kept as decoded); the table is dropped with recovery.
 */
export class Interner {
  private readonly table = new Map<string, string>();

  intern<T>(s: T): T {
    if (typeof s !== "string" || s.length > INTERN_MAX_LENGTH) return s;
    const known = this.table.get(s);
    if (known !== undefined) return known as T;
    if (this.table.size < INTERN_MAX) this.table.set(s, s);
    return s;
  }

  /** The record's repeated string fields, in place (a record just decoded, owned by the caller). */
  alertRecord(r: AlertRecord): void {
    r.code = this.intern(r.code);
    r.model = this.intern(r.model);
    r.household = this.intern(r.household);
    r.state = this.intern(r.state);
    for (let i = 0; i < r.causes.length; i++) r.causes[i] = this.intern(r.causes[i]) as string;
    r.ackedBy = this.intern(r.ackedBy);
    r.ackedByAccount = this.intern(r.ackedByAccount);
    r.ackNote = this.intern(r.ackNote);
    r.suppressedFor = this.intern(r.suppressedFor);
    r.shelvedBy = this.intern(r.shelvedBy);
    r.shelvedByAccount = this.intern(r.shelvedByAccount);
    r.shelveReason = this.intern(r.shelveReason);
    r.outOfServiceBy = this.intern(r.outOfServiceBy);
    r.outOfServiceByAccount = this.intern(r.outOfServiceByAccount);
    r.lastIsa = this.intern(r.lastIsa);
    r.lastTransition = this.intern(r.lastTransition);
  }
}

export const ORPHAN_REASON = "device no longer in the configuration";
/** A household's (WELFARE_CHECK): a reload says "household removed from the configuration". */
export const HOUSEHOLD_ORPHAN_REASON = "household no longer in the configuration";
/** A reload's reason too (reload.ts reasonModelChanged). */
export const modelChangedReason = (model: string) =>
  `device model changed in the configuration (now ${model})`;

/**
 * `now`: the wall clock at this start. When it reads earlier than the previous run was last known
 * to run (`running`), the clock was set back across the restart (a box without a real-time clock,
 * or with a flat RTC battery, back from a power cut; a clock set by hand): every time that a step
 * while running moves (escalation, call window, shelving's and away mode's end and start, last
 * activity, last seen, the flood window: gateway/moved-times.ts, the one list both use) is moved
 * back by that much and journaled so, so it runs on from where it stood at the stop. As written, an
 * unacknowledged P1 did not escalate again until the clock had caught up (a day set back: a day
 * late). Times already past (raised, acknowledged ...) are history: kept.
 */
export function recoverState(
  store: DurableStore,
  site: string,
  registry: Registry,
  engine: AlertEngine,
  supervisor: Supervisor,
  log: Logger,
  now: number,
  /** The journal found damage at open: records may be missing whatever the clean-stop marker says. */
  damaged = false,
): Recovered {
  const report: RecoveryReport = {
    alerts: 0,
    orphanAlerts: 0,
    shelves: 0,
    outOfService: 0,
    away: 0,
    devices: 0,
    rules: 0,
    holds: 0,
    households: 0,
    skipped: 0,
    unclean: false,
  };
  const skip = (key: string): void => {
    report.skipped++;
    store.delete(key);
    log.warn({ key }, "journal record of an unexpected shape skipped");
  };
  const running = store.get(KEY.running) as Partial<RunningRecord> | undefined;
  const lastRunning = typeof running?.at === "number" && Number.isFinite(running.at) ? running.at : null;
  // Only a clean stop's marker says nothing published was lost; a fresh directory has no alerts.
  report.unclean = running?.clean !== true || damaged;
  // The marker is this run's no longer: cleared before anything is published (the caller syncs it).
  if (running !== undefined) store.put(KEY.running, { at: lastRunning ?? now } satisfies RunningRecord);
  // Under a tick of the timer wheel (1 s: an NTP step of a few ms) nothing is moved.
  const back = lastRunning !== null && lastRunning - now >= 1000 ? lastRunning - now : 0;
  if (back > 0)
    log.warn(
      { setBackMs: back, lastRunning: new Date(lastRunning as number).toISOString() },
      "the wall clock reads earlier than the gateway last ran at: escalations, shelving, away mode and welfare " +
        "periods run on from where they stood at the stop (moved back by as much)",
    );
  const orphans = new Map<string, string>();
  const strings = new Interner();
  /** `model` as the record names it (absent in older service records: not compared). */
  const subjectOf = (
    id: string,
    model: AlertSubject["model"] | undefined,
    household: string | null,
  ): AlertSubject => {
    if (model === "gateway") return GATEWAY_SUBJECT;
    const known = model === "household" ? registry.households.get(id) : registry.devices.get(id);
    if (known && (model === undefined || known.model === model) && !orphans.has(id)) return known;
    if (!orphans.has(id))
      orphans.set(
        id,
        known
          ? modelChangedReason(known.model)
          : model === "household"
            ? HOUSEHOLD_ORPHAN_REASON
            : ORPHAN_REASON,
      );
    return { id, model: model ?? "ec200", household };
  };

  for (const [key, v] of store.entries(PREFIX.device)) {
    const d = registry.devices.get(key.slice(PREFIX.device.length));
    const r = readDeviceRecord(v);
    if (!d) {
      store.delete(key);
      continue;
    }
    if (typeof r?.model === "string" && r.model !== d.model) {
      // Another device under the same id: its seqs would drop the new one's messages as re-sends.
      orphans.set(d.id, modelChangedReason(d.model));
      store.delete(key);
      continue;
    }
    if (typeof r?.seen !== "number" || !Array.isArray(r.seqs)) {
      skip(key);
      continue;
    }
    // Moved too, as a step while running moves it: silence counts from where it stood at the stop,
    // and a DEVICE_LOST's silence is not a day short.
    const seen = moveRecord("device", r, -back).seen as number;
    if (back > 0) store.put(key, { ...r, seen });
    d.lastSeen = d.journaledSeen = seen;
    // A polled device is online again only when a poll answers; a lost one stays lost until then.
    d.link = d.supervisedByHeartbeat || r.link === "lost" ? strings.intern(r.link ?? "unknown") : "unknown";
    d.journaledLink = d.link;
    d.alertSeqs = r.seqs.filter((s): s is number => typeof s === "number");
    for (const seq of d.alertSeqs) d.dedup.checkAndRecord(seq);
    report.devices++;
  }
  // The rules' durable state (`profile.durable`; absent in journals before it existed: fresh).
  for (const [key, v] of store.entries(PREFIX.rule)) {
    const d = registry.devices.get(key.slice(PREFIX.rule.length));
    const durable = d?.profile.durable;
    if (!d || durable === undefined || !Array.isArray(v) || v[1] !== d.model || orphans.has(d.id)) {
      // Another device, a model without it, or one removed: its memory is not this one's.
      store.delete(key);
      continue;
    }
    // An older layout restores what it holds (the model reads it by its number); a newer one nothing.
    const version = v[0];
    if (
      typeof version !== "number" ||
      !Number.isInteger(version) ||
      version < 1 ||
      version > durable.version
    ) {
      skip(key);
      continue;
    }
    const values = v.slice(2);
    durable.restore(d.ruleState, values, now, version);
    d.journaledRule = durable.save(d.ruleState);
    report.rules++;
  }
  for (const [key, v] of store.entries(PREFIX.household)) {
    const h = registry.households.get(key.slice(PREFIX.household.length));
    const r = v as Partial<HouseholdRecord>;
    if (!h) {
      store.delete(key);
      continue;
    }
    if (typeof r?.activity !== "number") {
      skip(key);
      continue;
    }
    const moved = moveRecord("household", r, -back);
    h.lastActivity = h.journaledActivity = moved.activity as number;
    if (typeof moved.from === "number") h.welfareFrom = moved.from;
    if (back > 0) store.put(key, moved);
    report.households++;
  }
  for (const [key, v] of store.entries(PREFIX.away)) {
    const h = registry.households.get(key.slice(PREFIX.away.length));
    const r = v as Partial<AwayRecord>;
    if (!h) {
      store.delete(key);
      continue;
    }
    if (typeof r?.by !== "string" || typeof r.since !== "number") {
      skip(key);
      continue;
    }
    const away = moveRecord<"away", AwayRecord>(
      "away",
      {
        by: r.by,
        account: typeof r.account === "string" ? r.account : null,
        since: r.since,
        until: typeof r.until === "number" ? r.until : null,
      },
      -back,
    );
    if (back > 0) store.put(key, away);
    supervisor.restoreAway(h, away);
    report.away++;
  }
  for (const [key, v] of store.entries(PREFIX.service)) {
    const id = key.slice(PREFIX.service.length);
    const r = v as {
      by?: unknown;
      account?: unknown;
      at?: unknown;
      model?: AlertSubject["model"];
      household?: string | null;
    };
    if (typeof r?.by !== "string" || typeof r.at !== "number") {
      skip(key);
      continue;
    }
    // `account` is absent in records written before it existed.
    const account = typeof r.account === "string" ? r.account : null;
    engine.restoreService(subjectOf(id, r.model, r.household ?? null), r.by, r.at, account);
    report.outOfService++;
  }
  for (const [key, v] of store.entries(PREFIX.shelve)) {
    const [subjectId, code] = key.slice(PREFIX.shelve.length).split("/");
    const r = v as Partial<ShelveRecord>;
    const subject = subjectId
      ? (registry.devices.get(subjectId) ?? registry.households.get(subjectId))
      : undefined;
    if (!subject || !code) {
      store.delete(key);
      continue;
    }
    if (typeof r?.id !== "string" || typeof r.until !== "number" || typeof r.by !== "string") {
      skip(key);
      continue;
    }
    const shelve = moveRecord<"shelve", ShelveRecord>(
      "shelve",
      {
        id: r.id,
        by: r.by,
        account: typeof r.account === "string" ? r.account : null,
        at: r.at ?? 0,
        until: r.until,
        reason: r.reason ?? null,
      },
      -back,
    );
    if (back > 0) store.put(key, shelve);
    engine.restoreShelve(subject, code as AlertCode, shelve);
    report.shelves++;
  }
  const flood = store.get(KEY.flood) as Partial<FloodRecord> | undefined;
  if (flood && typeof flood.flooding === "boolean" && Array.isArray(flood.buckets)) {
    const moved = moveFloodRecord(flood as FloodRecord, -back);
    if (back > 0) store.put(KEY.flood, moved);
    engine.restoreFlood(moved);
  }

  const alerts: Alert[] = [];
  for (const [key, value] of store.entries(PREFIX.alert)) {
    const v = readAlertRecord(value);
    if (v === null) {
      skip(key);
      continue;
    }
    strings.alertRecord(v);
    // Kept positional in memory (~420 bytes less than the map: DurableStore.put's `kept`).
    if (!Array.isArray(value)) store.keepAs(key, packAlertRecord(v));
    const subject = subjectOf(v.subject, v.model, v.household);
    const alert = alertFromRecord(moveRecord("alert", v, -back), site, subject);
    if (report.unclean) {
      // A crash or a power cut may have lost up to REV_UNSYNCED_MAX published revs of it (states
      // published before their sync): the next rev goes past them, and the state restored, maybe
      // older than the last one published, goes out again under a new rev, never an old one.
      alert.rev += REV_UNSYNCED_MAX;
      if (alert.announced) alert.unpublished = true;
    }
    if (back > 0 || report.unclean) {
      // Moved times are a new state of an announced alert: the next rev when it is republished.
      if (alert.announced) alert.unpublished = true;
      store.put(key, alertRecord(alert), packedAlertRecord(alert));
    }
    const nextAt = alert.escalationNextAt;
    engine.restoreAlert(alert);
    if (alert.escalationNextAt !== nextAt) {
      // Its first escalation timed by this start's settings (another file): a new state, next rev.
      if (alert.announced) alert.unpublished = true;
      store.put(key, alertRecord(alert), packedAlertRecord(alert));
    }
    alerts.push(alert);
    report.alerts++;
    if (orphans.has(subject.id)) report.orphanAlerts++;
    // A device whose loss is an open, active alert is still lost until it is heard from.
    if (v.code === "DEVICE_LOST" && alert.conditionActive && !orphans.has(subject.id)) {
      const d = registry.devices.get(subject.id);
      if (d) d.link = d.journaledLink = "lost";
    }
  }
  // On-delays under way at the stop (absent in journals before they were kept: they start again).
  // After the alerts: one whose alert is active (raised before the hold's end reached the journal)
  // keeps nothing.
  for (const [key, v] of store.entries(PREFIX.hold)) {
    const [subjectId, code] = key.slice(PREFIX.hold.length).split("/");
    const d = subjectId ? registry.devices.get(subjectId) : undefined;
    const r = v as Partial<HoldRecord>;
    if (!d || !code || orphans.has(d.id) || !Object.hasOwn(d.profile.alerts, code)) {
      // A device removed or replaced, a code its (edited) profile no longer has.
      store.delete(key);
      continue;
    }
    if (typeof r?.since !== "number" || !Number.isFinite(r.since) || r.since <= 0) {
      skip(key);
      continue;
    }
    const moved = moveRecord<"hold", HoldRecord>("hold", { since: r.since }, -back);
    if (!engine.restoreHold(d, code as AlertCode, moved.since)) {
      store.delete(key);
      continue;
    }
    if (back > 0) store.put(key, moved);
    report.holds++;
  }
  return { report, alerts, orphans, lastRunning };
}
