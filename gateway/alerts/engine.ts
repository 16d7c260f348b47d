/**
 * The alert engine: turns what device rules report (an event occurred, a
 * condition is active or gone) into alerts with an ISA-18.2 lifecycle, and
 * tells its listener about every change it publishes (docs/topics.md).
 *
 * One open alert per (subject, code). Around it, per (subject, code), a
 * KeyState keeps what outlives one alert id: the pending on/off delay, the
 * chattering history and shelving (ISA-18.2 shelves the alarm, not one
 * occurrence of it). Per subject: out of service. Per site: flood.
 *
 * Holding: while an alert is chattering, part of a flood (P3/P4), shelved or
 * out of service, its device-driven changes are tracked but not published;
 * releasing the hold publishes its current state. Operator actions and the
 * gateway's own transitions (shelve expired, escalated ...) are always
 * published. P1 alerts are never held (life safety).
 *
 * Bounds (policy: forget as soon as nothing is left to remember):
 * - subjects: those with an open alert, a pending delay, shelving, recent
 *   activations (at most one chatter window old) or out of service;
 * - keys per subject: at most the alert codes (a fixed set);
 * - per key: CHATTER_COUNT activation times in a fixed array;
 * - flood: FLOOD_BUCKETS counters; closed alerts are forgotten at once.
 */
import { randomBytes } from "node:crypto";
import type { AlertCode, AlertState, Clock, Priority } from "../../core/index.js";
import type { AlertOptions, ConditionOptions, RuleContext } from "../../devices/index.js";
import { type TimerWheel, WheelTimer } from "../time/timer-wheel.js";
import {
  Alert,
  type AlertSubject,
  HOLD_CHATTER,
  HOLD_FLOOD,
  HOLD_OUT_OF_SERVICE,
  HOLD_SHELVED,
  type IsaState,
  type SuppressReason,
  type Transition,
} from "./alert.js";

/** ISA-18.2: a chattering alarm raises and clears 3 or more times in a minute. */
export const CHATTER_COUNT = 3;
export const CHATTER_WINDOW_MS = 60_000;
/** A chattering alert is held until it has been quiet (no raise, no clear) this long. */
export const CHATTER_QUIET_MS = 60_000;
/** ISA-18.2: a flood is more than 10 new alarms in 10 minutes; it ends under 5. */
export const FLOOD_ENTER_ABOVE = 10;
export const FLOOD_EXIT_BELOW = 5;
export const FLOOD_WINDOW_MS = 600_000;
/** The flood window is counted in buckets: the count is exact to one bucket (10 s). */
const FLOOD_BUCKET_MS = 10_000;
const FLOOD_BUCKETS = FLOOD_WINDOW_MS / FLOOD_BUCKET_MS;

/** Who did it, in events, when not an operator. */
export const BY_DEVICE = "device";
export const BY_GATEWAY = "gateway";

const PENDING_NONE = 0;
const PENDING_ON = 1;
const PENDING_OFF = 2;

/**
 * One transition, as published on `linli/<site>/alerts/events`. A single
 * instance is refilled for every event (listeners serialise it synchronously).
 */
export class AlertEvent {
  /** `<alertId>:<rev>`: unique per published change, stable across re-sends. */
  eventId = "";
  alertId = "";
  code: AlertCode = "TAMPER";
  priority: Priority = 4;
  deviceId = "";
  household: string | null = null;
  from: IsaState = "normal";
  to: IsaState = "normal";
  /** The lifecycle state after the transition (issue-2 vocabulary). */
  state: AlertState = "active-unacknowledged";
  transition: Transition = "raised";
  by = "";
  reason = "";
  at = 0;
}

export interface FloodStatus {
  state: "flood" | "normal";
  since: number;
  newAlerts10m: number;
}

export interface AlertListener {
  /** A published change: the alert's state topic and the event. */
  alertChanged(alert: Alert, transition: Transition, event: AlertEvent): void;
  /** An unacknowledged P1/P2 passed its escalation time (again). */
  escalated?(alert: Alert, level: number, unacknowledgedForMs: number): void;
  floodChanged?(status: FloodStatus): void;
}

/** Shelving of a (subject, code), as kept across a restart. */
export interface ShelveRecord {
  id: string;
  by: string;
  at: number;
  until: number;
  reason: string | null;
}

/** The flood detector's state, as kept across a restart (the 10-minute window included). */
export interface FloodRecord {
  flooding: boolean;
  since: number;
  bucket: number;
  buckets: number[];
}

/**
 * Where the engine's durable state goes (gateway/state): called after every
 * change and before it is published, so nothing is announced that a restart
 * could forget.
 */
export interface EngineRecorder {
  /** An open alert changed (store it), or closed (forget it). */
  alert(alert: Alert): void;
  shelve(subjectId: string, code: AlertCode, shelve: ShelveRecord | null): void;
  service(subject: AlertSubject, by: string | null, at: number): void;
  flood(flood: FloodRecord): void;
}

export interface EngineOptions {
  /** First escalation of an unacknowledged P1 / P2 after this; 0 disables. */
  escalationP1Ms?: number;
  escalationP2Ms?: number;
  /** Each further escalation waits this factor longer ... */
  escalationFactor?: number;
  /** ... but never longer than this. */
  escalationMaxIntervalMs?: number;
  /** Longest shelving an operator may ask for (ISA-18.2: shelving is always time-limited). */
  shelveMaxMs?: number;
  /** The durable journal's side of the engine (absent: state lives in memory only). */
  recorder?: EngineRecorder;
}

export type AckOutcome =
  | { ok: true; alert: Alert; transition: Transition }
  | { ok: false; reason: "unknown-alert" | "already-acknowledged" };

export type ShelveOutcome =
  | { ok: true; alert: Alert }
  | { ok: false; reason: "unknown-alert" | "p1-not-shelvable" | "shelve-too-long" };

export type UnshelveOutcome = { ok: true; alert: Alert | null } | { ok: false; reason: "not-shelved" };

export type ServiceOutcome =
  | { ok: true; alerts: number }
  | { ok: false; reason: "already-out-of-service" | "already-in-service" };

class SubjectState {
  readonly keys = new Map<AlertCode, KeyState>();
  outOfServiceBy: string | null = null;
  outOfServiceAt = 0;
  constructor(public subject: AlertSubject) {}
}

class KeyState {
  alert: Alert | null = null;
  /** On-delay before raising, or off-delay before clearing. */
  readonly pendingTimer: WheelTimer;
  pendingKind = PENDING_NONE;
  pendingOpts: ConditionOptions = { priority: 4 };
  pendingSuppressed: SuppressReason | null = null;
  /** Times of the last CHATTER_COUNT activations (ring; 0 = none). */
  readonly activations = new Float64Array(CHATTER_COUNT);
  activationNext = 0;
  chattering = false;
  lastChange = 0;
  /** Armed one chatter window after the last change: ends chattering, forgets the key. */
  readonly quietTimer: WheelTimer;
  shelveId: string | null = null;
  shelvedBy: string | null = null;
  shelvedAt = 0;
  shelvedUntil: number | null = null;
  shelveReason: string | null = null;
  shelveTimer: WheelTimer | null = null;

  constructor(
    readonly owner: SubjectState,
    readonly code: AlertCode,
    onPending: (t: WheelTimer) => void,
    onQuiet: (t: WheelTimer) => void,
  ) {
    this.pendingTimer = new WheelTimer(onPending, this);
    this.quietTimer = new WheelTimer(onQuiet, this);
  }
}

export function alertTopic(site: string, priority: Priority, code: AlertCode, subjectId: string): string {
  return `linli/${site}/alerts/p${priority}/${code}/${subjectId}`;
}

export class AlertEngine {
  private readonly subjects = new Map<string, SubjectState>();
  private readonly byId = new Map<string, Alert>();
  /** Shelved keys by the alert id they were shelved with (the alert may have closed since). */
  private readonly shelvedById = new Map<string, KeyState>();
  private openN = 0;
  private readonly idPrefix = randomBytes(3).toString("hex");
  private idCounter = 0;
  /** The one rule context, re-pointed at each subject: rules run synchronously, so no per-sample allocation. */
  private readonly ctx: EngineContext;
  private readonly event = new AlertEvent();
  // Not readonly: a live reload changes them (setOptions).
  private escalationP1Ms: number;
  private escalationP2Ms: number;
  private escalationFactor: number;
  private escalationMaxMs: number;
  shelveMaxMs: number;
  // flood
  private readonly floodBuckets = new Int32Array(FLOOD_BUCKETS);
  private floodBucket = 0;
  private floodTotal = 0;
  private flooding = false;
  private floodSince: number;
  private readonly floodTimer: WheelTimer;
  private readonly recorder: EngineRecorder | null;

  constructor(
    readonly site: string,
    private readonly clock: Clock,
    private readonly wheel: TimerWheel,
    private readonly listener: AlertListener,
    opts: EngineOptions = {},
  ) {
    this.ctx = new EngineContext(this, clock);
    this.escalationP1Ms = opts.escalationP1Ms ?? 60_000;
    this.escalationP2Ms = opts.escalationP2Ms ?? 300_000;
    this.escalationFactor = Math.max(1, opts.escalationFactor ?? 2);
    this.escalationMaxMs = opts.escalationMaxIntervalMs ?? 900_000;
    this.shelveMaxMs = opts.shelveMaxMs ?? 8 * 3_600_000;
    this.floodSince = clock.now();
    this.floodBucket = Math.floor(this.floodSince / FLOOD_BUCKET_MS);
    this.floodTimer = new WheelTimer(this.floodTick, this);
    this.recorder = opts.recorder ?? null;
  }

  /**
   * The rule context for one subject, valid until the next call. `suppressed`:
   * the device is in test mode (true) or names why it is suppressed by design.
   */
  contextFor(subject: AlertSubject, suppressed: boolean | SuppressReason = false): RuleContext {
    this.ctx.subject = subject;
    this.ctx.suppressed = suppressed === true ? "test" : suppressed === false ? null : suppressed;
    return this.ctx;
  }

  get openCount(): number {
    return this.openN;
  }

  /** On- and off-delays waiting to fire. */
  get pendingCount(): number {
    let n = 0;
    for (const s of this.subjects.values()) for (const k of s.keys.values()) if (k.pendingTimer.armed) n++;
    return n;
  }

  /** Subjects and keys currently remembered (for bound checks). */
  get trackedKeys(): number {
    let n = 0;
    for (const s of this.subjects.values()) n += s.keys.size;
    return n;
  }

  openAlerts(): Alert[] {
    return [...this.byId.values()];
  }

  find(subjectId: string, code: AlertCode): Alert | undefined {
    return this.subjects.get(subjectId)?.keys.get(code)?.alert ?? undefined;
  }

  byAlertId(id: string): Alert | undefined {
    return this.byId.get(id);
  }

  isOutOfService(subjectId: string): boolean {
    const s = this.subjects.get(subjectId);
    return s !== undefined && s.outOfServiceBy !== null;
  }

  get flood(): FloodStatus {
    this.advanceFlood(this.clock.now());
    return {
      state: this.flooding ? "flood" : "normal",
      since: this.floodSince,
      newAlerts10m: this.floodTotal,
    };
  }

  /** Tells the listener the current flood state (at start: consoles get a retained `normal`). */
  announceFlood(): void {
    this.listener.floodChanged?.(this.flood);
  }

  // --- operator actions -------------------------------------------------------

  acknowledge(alertId: string, by: string, note: string | null): AckOutcome {
    const alert = this.byId.get(alertId);
    if (!alert) return { ok: false, reason: "unknown-alert" };
    const t = alert.acknowledge(this.clock.now(), by, note);
    if (t === null) return { ok: false, reason: "already-acknowledged" };
    this.emit(alert, t, by, note ?? "acknowledged", true);
    return { ok: true, alert, transition: t };
  }

  /**
   * Shelves the alert's (device, code) for `durationMs`: this alert and any
   * new one of the same code from the same device are not annunciated until
   * the time is up or an operator unshelves. P1 is never shelvable: a life-
   * safety alarm must not be silenced from a console (ISA-18.2 lets the
   * alarm philosophy exclude alarms from shelving; ours excludes P1).
   */
  shelve(alertId: string, by: string, durationMs: number, reason: string | null): ShelveOutcome {
    const alert = this.byId.get(alertId);
    if (!alert) return { ok: false, reason: "unknown-alert" };
    if (alert.priority === 1) return { ok: false, reason: "p1-not-shelvable" };
    if (durationMs > this.shelveMaxMs) return { ok: false, reason: "shelve-too-long" };
    const ks = this.keyOf(alert)!;
    const now = this.clock.now();
    if (ks.shelveId !== null) this.shelvedById.delete(ks.shelveId);
    ks.shelveId = alert.id;
    ks.shelvedBy = by;
    ks.shelvedAt = now;
    ks.shelvedUntil = now + durationMs;
    ks.shelveReason = reason;
    this.shelvedById.set(alert.id, ks);
    ks.shelveTimer ??= new WheelTimer(this.shelveExpired, ks);
    this.wheel.arm(ks.shelveTimer, ks.shelvedUntil);
    this.recorder?.shelve(ks.owner.subject.id, ks.code, {
      id: alert.id,
      by,
      at: now,
      until: ks.shelvedUntil,
      reason,
    });
    this.applyShelve(ks, alert);
    this.emit(alert, "shelved", by, reason ?? "shelved", true);
    return { ok: true, alert };
  }

  /** Ends shelving early; `id` is the open alert's id or the id it was shelved with. */
  unshelve(id: string, by: string, reason: string | null): UnshelveOutcome {
    const open = this.byId.get(id);
    const ks = open ? this.keyOf(open) : this.shelvedById.get(id);
    if (!ks || ks.shelvedUntil === null) return { ok: false, reason: "not-shelved" };
    const alert = ks.alert;
    this.endShelve(ks, "unshelved", by, reason ?? "unshelved");
    return { ok: true, alert };
  }

  /**
   * An operator takes a device out of service (ISA-18.2 "out of service"):
   * its open alerts are published once as out-of-service, then held; new
   * ones are tracked but not published (P1 excepted) and never escalated.
   * Back in service publishes whatever is open, as it is now.
   */
  setOutOfService(
    subject: AlertSubject,
    outOfService: boolean,
    by: string,
    reason: string | null,
  ): ServiceOutcome {
    const now = this.clock.now();
    let ss = this.subjects.get(subject.id);
    if (outOfService) {
      if (ss?.outOfServiceBy != null) return { ok: false, reason: "already-out-of-service" };
      ss ??= this.subjectState(subject);
      ss.outOfServiceBy = by;
      ss.outOfServiceAt = now;
      this.recorder?.service(subject, by, now);
      let n = 0;
      for (const ks of ss.keys.values()) {
        const a = ks.alert;
        if (!a) continue;
        a.outOfServiceBy = by;
        a.holds |= HOLD_OUT_OF_SERVICE;
        a.updatedAt = now;
        this.emit(a, "out-of-service", by, reason ?? "out of service", true);
        n++;
      }
      return { ok: true, alerts: n };
    }
    if (!ss || ss.outOfServiceBy === null) return { ok: false, reason: "already-in-service" };
    ss.outOfServiceBy = null;
    this.recorder?.service(subject, null, now);
    let n = 0;
    for (const ks of [...ss.keys.values()]) {
      const a = ks.alert;
      if (!a) continue;
      a.outOfServiceBy = null;
      a.holds &= ~HOLD_OUT_OF_SERVICE;
      // Escalation counts from now: while out of service nobody was meant to act.
      if (a.unacknowledged) a.unackSince = now;
      a.updatedAt = now;
      this.emit(a, "in-service", by, reason ?? "back in service", true);
      n++;
    }
    this.forgetSubjectIfIdle(ss);
    return { ok: true, alerts: n };
  }

  // --- live reconfiguration (gateway/reload.ts) ----------------------------------

  /**
   * New escalation and shelving limits. An alert not yet escalated is re-timed
   * from when it became unacknowledged; an escalated one keeps its next time
   * and uses the new figures from then on.
   */
  setOptions(opts: EngineOptions): void {
    this.escalationP1Ms = opts.escalationP1Ms ?? this.escalationP1Ms;
    this.escalationP2Ms = opts.escalationP2Ms ?? this.escalationP2Ms;
    this.escalationFactor = Math.max(1, opts.escalationFactor ?? this.escalationFactor);
    this.escalationMaxMs = opts.escalationMaxIntervalMs ?? this.escalationMaxMs;
    this.shelveMaxMs = opts.shelveMaxMs ?? this.shelveMaxMs;
    for (const a of this.byId.values()) {
      if (a.escalationLevel === 0) a.escalationNextAt = null;
      this.syncEscalation(a);
    }
  }

  /**
   * The subject left the configuration: its open alerts are closed by the
   * gateway with `reason` (published like any closure, so retained copies go)
   * and everything kept for it (delays, chatter, shelving, out of service) is
   * forgotten. Returns how many alerts were closed.
   */
  closeSubject(subjectId: string, reason: string): number {
    const ss = this.subjects.get(subjectId);
    if (!ss) return 0;
    const now = this.clock.now();
    let n = 0;
    for (const ks of [...ss.keys.values()]) {
      this.cancelPending(ks);
      this.wheel.disarm(ks.quietTimer);
      ks.chattering = false;
      if (ks.shelveId !== null) this.shelvedById.delete(ks.shelveId);
      if (ks.shelveTimer) this.wheel.disarm(ks.shelveTimer);
      if (ks.shelvedUntil !== null) this.recorder?.shelve(subjectId, ks.code, null);
      ks.shelveId = null;
      ks.shelvedUntil = null;
      const a = ks.alert;
      if (a) {
        a.state = "closed";
        a.updatedAt = now;
        a.clearedAt ??= now;
        this.emit(a, "closed", BY_GATEWAY, reason, false);
        n++;
      }
      ss.keys.delete(ks.code);
    }
    if (ss.outOfServiceBy !== null) this.recorder?.service(ss.subject, null, now);
    this.subjects.delete(subjectId);
    return n;
  }

  /** Stops every timer (shutdown); open alerts keep their last published state. */
  stop(): void {
    for (const s of this.subjects.values()) {
      for (const k of s.keys.values()) {
        this.wheel.disarm(k.pendingTimer);
        this.wheel.disarm(k.quietTimer);
        if (k.shelveTimer) this.wheel.disarm(k.shelveTimer);
        const a = k.alert;
        if (a?.timer) this.wheel.disarm(a.timer);
        if (a?.escalationTimer) this.wheel.disarm(a.escalationTimer);
      }
    }
    this.wheel.disarm(this.floodTimer);
  }

  // --- restart (gateway/state) ------------------------------------------------------

  /** The flood detector's state for the journal. */
  floodRecord(): FloodRecord {
    return {
      flooding: this.flooding,
      since: this.floodSince,
      bucket: this.floodBucket,
      buckets: Array.from(this.floodBuckets),
    };
  }

  restoreFlood(rec: FloodRecord): void {
    if (rec.buckets.length === FLOOD_BUCKETS) {
      this.floodBuckets.set(rec.buckets);
      this.floodBucket = rec.bucket;
      this.floodTotal = rec.buckets.reduce((a, b) => a + b, 0);
      this.advanceFlood(this.clock.now());
    }
    this.flooding = rec.flooding;
    this.floodSince = rec.since;
    if (this.flooding) this.wheel.arm(this.floodTimer, (this.floodBucket + 1) * FLOOD_BUCKET_MS);
  }

  restoreService(subject: AlertSubject, by: string, at: number): void {
    const ss = this.subjectState(subject);
    ss.outOfServiceBy = by;
    ss.outOfServiceAt = at;
  }

  /** Shelving that was running before the restart; one already over ends now, as it would have. */
  restoreShelve(subject: AlertSubject, code: AlertCode, rec: ShelveRecord): void {
    const ks = this.key(subject, code);
    ks.shelveId = rec.id;
    ks.shelvedBy = rec.by;
    ks.shelvedAt = rec.at;
    ks.shelvedUntil = rec.until;
    ks.shelveReason = rec.reason;
    this.shelvedById.set(rec.id, ks);
    ks.shelveTimer ??= new WheelTimer(this.shelveExpired, ks);
    this.wheel.arm(ks.shelveTimer, rec.until);
  }

  /**
   * After a restart, once the restored alerts have been republished: the
   * escalations and shelvings that fell due while the gateway was down happen
   * now, not at the wheel's next tick (up to a second later).
   */
  fireOverdue(): number {
    const now = this.clock.now();
    let n = 0;
    for (const a of [...this.byId.values()]) {
      const t = a.escalationTimer;
      if (t?.armed && a.escalationNextAt !== null && a.escalationNextAt <= now) {
        this.wheel.disarm(t);
        this.escalate(t);
        n++;
      }
    }
    for (const ks of [...this.shelvedById.values()]) {
      const t = ks.shelveTimer;
      if (t?.armed && ks.shelvedUntil !== null && ks.shelvedUntil <= now) {
        this.wheel.disarm(t);
        this.shelveExpired(t);
        n++;
      }
    }
    return n;
  }

  /**
   * An open alert read back from the journal (its fields already set): it
   * takes its place again, its call window and escalation are re-armed at
   * the times they had (a time that passed while the gateway was down fires
   * at once), and it is not published here: the caller republishes every
   * restored alert as it was.
   */
  restoreAlert(alert: Alert): void {
    const ks = this.key(alert.subject, alert.code);
    // Holds follow from the restored shelving, service and flood state, not from the record: a
    // crash between an end of flood (or a return to service) and the rewrite of each alert must
    // not leave an alert held for good.
    let holds = alert.holds & HOLD_CHATTER;
    if (alert.chattering && alert.priority !== 1) holds |= HOLD_CHATTER;
    if (ks.shelvedUntil !== null) holds |= HOLD_SHELVED;
    if (ks.owner.outOfServiceBy !== null) holds |= HOLD_OUT_OF_SERVICE;
    if (this.flooding && alert.priority >= 3 && (alert.holds & HOLD_FLOOD) !== 0) holds |= HOLD_FLOOD;
    alert.holds = holds;
    alert.outOfServiceBy = ks.owner.outOfServiceBy;
    if (ks.alert !== null) this.byId.delete(ks.alert.id);
    else this.openN++;
    ks.alert = alert;
    this.byId.set(alert.id, alert);
    if (ks.shelvedUntil !== null && ks.shelveId !== null) this.shelvedById.set(ks.shelveId, ks);
    if (alert.chattering) {
      ks.chattering = true;
      this.noteChange(ks, this.clock.now());
    }
    if (alert.windowUntil > 0 && alert.conditionActive) this.armWindow(alert);
    this.syncEscalation(alert);
  }

  // --- used by EngineContext ----------------------------------------------------

  raise(
    subject: AlertSubject,
    code: AlertCode,
    opts: AlertOptions & { windowMs: number },
    suppressed: SuppressReason | null,
  ): void {
    const now = this.clock.now();
    const ks = this.key(subject, code);
    const existing = ks.alert;
    const cause = opts.causes?.[0] ?? code;
    // Same call: an open alert (within its window, or not yet closed by an operator).
    if (existing) {
      if (opts.urgent) existing.urgent = true;
      existing.windowUntil = now + opts.windowMs;
      this.armWindow(existing);
      const t = existing.occur(now, opts.causes ?? []);
      if (t === "reactivated" && this.noteActivation(ks, existing, now)) return;
      this.emit(existing, t, BY_DEVICE, cause, false);
      return;
    }
    const alert = this.create(ks, opts, suppressed, now);
    alert.windowUntil = now + opts.windowMs;
    this.armWindow(alert);
    if (this.noteActivation(ks, alert, now)) return;
    this.emit(alert, "raised", BY_DEVICE, cause, false);
  }

  condition(
    subject: AlertSubject,
    code: AlertCode,
    active: boolean,
    opts: ConditionOptions,
    suppressed: SuppressReason | null,
  ): void {
    const now = this.clock.now();
    if (!active) {
      const ks = this.subjects.get(subject.id)?.keys.get(code);
      if (!ks) return;
      if (ks.pendingKind === PENDING_ON) this.cancelPending(ks);
      const a = ks.alert;
      if (a?.conditionActive) {
        const off = opts.offDelayMs ?? 0;
        if (off > 0) {
          // Counted from the first normal reading: later normal readings must not postpone the clear.
          if (ks.pendingKind === PENDING_OFF) return;
          const due = (opts.since ?? now) + off;
          if (due > now) {
            ks.pendingKind = PENDING_OFF;
            this.wheel.arm(ks.pendingTimer, due);
            return;
          }
        }
        this.clearAlert(ks, a, now, BY_DEVICE, "condition cleared");
        return;
      }
      this.forgetKeyIfIdle(ks);
      return;
    }
    const open = this.subjects.get(subject.id)?.keys.get(code)?.alert;
    // A condition whose priority follows its live causes (MFS-8 FAULT, docs/topics.md): the alert
    // under the old priority's topic closes and a new one is raised under the new one.
    if (open && open.priority !== opts.priority) this.supersede(open, opts.priority, now);
    const ks = this.key(subject, code);
    // Back to abnormal within the off-delay: no clear, nothing to publish.
    if (ks.pendingKind === PENDING_OFF) this.cancelPending(ks);
    const existing = ks.alert;
    if (existing?.conditionActive) {
      // Causes and detail describe the live condition, not every cause it ever had.
      if (existing.describe(opts.causes, opts.detail)) {
        existing.updatedAt = now;
        this.emit(existing, "repeated", BY_DEVICE, opts.causes?.[0] ?? code, false);
      }
      return;
    }
    const onDelay = opts.onDelayMs ?? 0;
    const due = (opts.since ?? now) + onDelay;
    if (due > now) {
      // A polled value reports "active" every poll: the delay runs from the first report, unless
      // the rule says when the condition started (`since`).
      if (ks.pendingKind !== PENDING_ON || (opts.since !== undefined && ks.pendingTimer.deadline !== due)) {
        ks.pendingKind = PENDING_ON;
        this.wheel.arm(ks.pendingTimer, due);
      }
      ks.pendingOpts = opts;
      ks.pendingSuppressed = suppressed;
      return;
    }
    if (ks.pendingKind === PENDING_ON) this.cancelPending(ks);
    this.activate(ks, opts, suppressed, now);
  }

  markCancelled(subject: AlertSubject, codes: readonly AlertCode[]): number {
    const now = this.clock.now();
    const ss = this.subjects.get(subject.id);
    if (!ss) return 0;
    let n = 0;
    for (const code of codes) {
      const a = ss.keys.get(code)?.alert;
      if (a?.markCancelled(now)) {
        n++;
        this.emit(a, "cancelled-by-resident", BY_DEVICE, "resident cancelled", false);
      }
    }
    return n;
  }

  confirmDelivered(subject: AlertSubject, alertId: string): void {
    const a = this.byId.get(alertId);
    if (!a || a.subject.id !== subject.id || a.detail.residentNotified === true) return;
    a.detail.residentNotified = true;
    a.updatedAt = this.clock.now();
    this.emit(a, "delivered", BY_DEVICE, "pendant confirmed the ack", false);
  }

  // --- internals ------------------------------------------------------------------

  private subjectState(subject: AlertSubject): SubjectState {
    let ss = this.subjects.get(subject.id);
    if (!ss) {
      ss = new SubjectState(subject);
      this.subjects.set(subject.id, ss);
    }
    return ss;
  }

  private key(subject: AlertSubject, code: AlertCode): KeyState {
    const ss = this.subjectState(subject);
    let ks = ss.keys.get(code);
    if (!ks) {
      ks = new KeyState(ss, code, this.firePending, this.quietEnded);
      ss.keys.set(code, ks);
    }
    return ks;
  }

  private keyOf(alert: Alert): KeyState | undefined {
    return this.subjects.get(alert.subject.id)?.keys.get(alert.code);
  }

  private cancelPending(ks: KeyState): void {
    this.wheel.disarm(ks.pendingTimer);
    ks.pendingKind = PENDING_NONE;
  }

  private activate(
    ks: KeyState,
    opts: ConditionOptions,
    suppressed: SuppressReason | null,
    now: number,
  ): void {
    const cause = opts.causes?.[0] ?? ks.code;
    const existing = ks.alert;
    if (existing) {
      // Cleared but not yet acknowledged, and active again: the same alert, counted, as it is now.
      const t = existing.occur(now, []);
      existing.describe(opts.causes, opts.detail);
      if (this.noteActivation(ks, existing, now)) return;
      this.emit(existing, t, BY_DEVICE, cause, false);
      return;
    }
    const alert = this.create(ks, opts, suppressed, now);
    if (this.noteActivation(ks, alert, now)) return;
    this.emit(alert, "raised", BY_DEVICE, cause, false);
  }

  /** Closes an open alert whose condition now has another priority (published, then forgotten). */
  private supersede(a: Alert, priority: Priority, now: number): void {
    const ks = this.keyOf(a);
    if (ks) this.cancelPending(ks);
    a.state = "closed";
    a.updatedAt = now;
    a.clearedAt ??= now;
    a.holds = 0;
    this.emit(a, "closed", BY_GATEWAY, `priority now P${priority}`, true);
  }

  private clearAlert(ks: KeyState, a: Alert, now: number, by: string, reason: string): void {
    const t = a.clear(now);
    if (t === null) return;
    if (a.priority !== 1) this.noteChange(ks, now);
    this.emit(a, t, by, reason, false);
  }

  private readonly firePending = (timer: WheelTimer): void => {
    const ks = timer.owner as KeyState;
    const kind = ks.pendingKind;
    ks.pendingKind = PENDING_NONE;
    const now = this.clock.now();
    if (kind === PENDING_ON) this.activate(ks, ks.pendingOpts, ks.pendingSuppressed, now);
    else if (kind === PENDING_OFF && ks.alert?.conditionActive)
      this.clearAlert(ks, ks.alert, now, BY_DEVICE, "condition cleared (off-delay elapsed)");
  };

  private create(ks: KeyState, opts: AlertOptions, suppressed: SuppressReason | null, now: number): Alert {
    const ss = ks.owner;
    const subject = ss.subject;
    const id = `${now.toString(36)}-${this.idPrefix}${(this.idCounter++).toString(36)}`;
    const suppressedFor = opts.suppressedFor ?? suppressed ?? (opts.test ? "test" : null);
    const alert = new Alert(
      id,
      ks.code,
      opts.priority,
      this.site,
      subject,
      now,
      alertTopic(this.site, opts.priority, ks.code, subject.id),
      opts.causes ?? [],
      opts.urgent ?? false,
      // `test` keeps its issue-2 meaning for old consumers: "nobody should be paged".
      suppressedFor !== null,
      opts.detail ?? {},
      suppressedFor,
    );
    alert.escalateAs = opts.escalateAs ?? null;
    ks.alert = alert;
    this.byId.set(id, alert);
    this.openN++;
    if (ss.outOfServiceBy !== null) {
      alert.outOfServiceBy = ss.outOfServiceBy;
      alert.holds |= HOLD_OUT_OF_SERVICE;
    }
    if (ks.shelvedUntil !== null) this.applyShelve(ks, alert);
    if (ks.chattering && alert.priority !== 1) {
      alert.chattering = true;
      alert.holds |= HOLD_CHATTER;
    }
    // Flood rate counts alerts meant for an operator (not suppressed, not out of service).
    if (suppressedFor === null && ss.outOfServiceBy === null) this.countNewAlert(now);
    // ISA-18.2 flood handling: lower-priority alerts wait until the flood is over.
    if (this.flooding && alert.priority >= 3) alert.holds |= HOLD_FLOOD;
    return alert;
  }

  private applyShelve(ks: KeyState, alert: Alert): void {
    alert.shelvedBy = ks.shelvedBy;
    alert.shelvedAt = ks.shelvedAt;
    alert.shelvedUntil = ks.shelvedUntil;
    alert.shelveReason = ks.shelveReason;
    alert.holds |= HOLD_SHELVED;
  }

  private readonly shelveExpired = (timer: WheelTimer): void => {
    this.endShelve(timer.owner as KeyState, "shelve-expired", BY_GATEWAY, "shelving time is up");
  };

  private endShelve(ks: KeyState, t: Transition, by: string, reason: string): void {
    if (ks.shelveId !== null) this.shelvedById.delete(ks.shelveId);
    if (ks.shelveTimer) this.wheel.disarm(ks.shelveTimer);
    ks.shelveId = ks.shelvedBy = ks.shelveReason = null;
    ks.shelvedUntil = null;
    this.recorder?.shelve(ks.owner.subject.id, ks.code, null);
    const a = ks.alert;
    if (a) {
      a.shelvedBy = a.shelveReason = null;
      a.shelvedAt = a.shelvedUntil = null;
      a.holds &= ~HOLD_SHELVED;
      a.reannunciate(this.clock.now());
      this.emit(a, t, by, reason, true);
    }
    this.forgetKeyIfIdle(ks);
  }

  /**
   * Counts an activation (raise, or active again after a clear) of a non-P1
   * key; returns true when this one made it chattering, in which case the
   * alert has been published with `transition: "chattering"` and is now held.
   */
  private noteActivation(ks: KeyState, alert: Alert, now: number): boolean {
    if (alert.priority === 1) return false;
    const acts = ks.activations;
    acts[ks.activationNext] = now;
    ks.activationNext = (ks.activationNext + 1) % CHATTER_COUNT;
    this.noteChange(ks, now);
    if (ks.chattering) return false;
    // The ring's oldest entry is the one about to be overwritten next.
    const oldest = acts[ks.activationNext]!;
    if (oldest === 0 || now - oldest > CHATTER_WINDOW_MS) return false;
    ks.chattering = true;
    alert.chattering = true;
    // Not forced: a shelved or out-of-service alert stays silent even when it starts chattering.
    this.emit(alert, "chattering", BY_GATEWAY, `${CHATTER_COUNT} activations within 60 s`, false);
    alert.holds |= HOLD_CHATTER;
    return true;
  }

  /** Any raise or clear of a non-P1 key: restarts the quiet period. */
  private noteChange(ks: KeyState, now: number): void {
    ks.lastChange = now;
    this.wheel.arm(ks.quietTimer, now + (ks.chattering ? CHATTER_QUIET_MS : CHATTER_WINDOW_MS));
  }

  private readonly quietEnded = (timer: WheelTimer): void => {
    const ks = timer.owner as KeyState;
    if (ks.chattering) {
      ks.chattering = false;
      ks.activations.fill(0);
      const a = ks.alert;
      if (a) {
        a.chattering = false;
        a.holds &= ~HOLD_CHATTER;
        if (a.holds === 0) this.emit(a, "chattering-ended", BY_GATEWAY, "quiet for 60 s", true);
        else this.recorder?.alert(a);
      }
    }
    this.forgetKeyIfIdle(ks);
  };

  private forgetKeyIfIdle(ks: KeyState): void {
    if (
      ks.alert !== null ||
      ks.pendingTimer.armed ||
      ks.quietTimer.armed ||
      ks.chattering ||
      ks.shelvedUntil !== null
    )
      return;
    const ss = ks.owner;
    if (ss.keys.get(ks.code) === ks) ss.keys.delete(ks.code);
    this.forgetSubjectIfIdle(ss);
  }

  private forgetSubjectIfIdle(ss: SubjectState): void {
    if (ss.keys.size === 0 && ss.outOfServiceBy === null && this.subjects.get(ss.subject.id) === ss)
      this.subjects.delete(ss.subject.id);
  }

  private armWindow(alert: Alert): void {
    if (!alert.timer) alert.timer = new WheelTimer(this.windowExpired, alert);
    this.wheel.arm(alert.timer, alert.windowUntil);
  }

  /** A momentary alert's window ended: the event is over, the alert still waits for its ack. */
  private readonly windowExpired = (timer: WheelTimer): void => {
    const alert = timer.owner as Alert;
    if (!alert.conditionActive) return;
    const ks = this.keyOf(alert);
    if (ks && ks.alert === alert)
      this.clearAlert(ks, alert, this.clock.now(), BY_GATEWAY, "call window ended");
  };

  // --- flood --------------------------------------------------------------------------

  private advanceFlood(now: number): void {
    const b = Math.floor(now / FLOOD_BUCKET_MS);
    if (b <= this.floodBucket) return;
    const steps = Math.min(b - this.floodBucket, FLOOD_BUCKETS);
    for (let i = 1; i <= steps; i++) {
      const idx = (this.floodBucket + i) % FLOOD_BUCKETS;
      this.floodTotal -= this.floodBuckets[idx]!;
      this.floodBuckets[idx] = 0;
    }
    this.floodBucket = b;
  }

  private countNewAlert(now: number): void {
    this.advanceFlood(now);
    this.floodBuckets[this.floodBucket % FLOOD_BUCKETS]!++;
    this.floodTotal++;
    if (!this.flooding && this.floodTotal > FLOOD_ENTER_ABOVE) {
      this.flooding = true;
      this.floodSince = now;
      this.wheel.arm(this.floodTimer, (this.floodBucket + 1) * FLOOD_BUCKET_MS);
      this.recorder?.flood(this.floodRecord());
      this.listener.floodChanged?.(this.flood);
    }
  }

  /** While in flood: every bucket, check whether the rate fell under the exit mark. */
  private readonly floodTick = (): void => {
    const now = this.clock.now();
    this.advanceFlood(now);
    if (this.floodTotal >= FLOOD_EXIT_BELOW) {
      this.wheel.arm(this.floodTimer, (this.floodBucket + 1) * FLOOD_BUCKET_MS);
      return;
    }
    this.flooding = false;
    this.floodSince = now;
    this.recorder?.flood(this.floodRecord());
    this.listener.floodChanged?.(this.flood);
    for (const a of [...this.byId.values()]) {
      if ((a.holds & HOLD_FLOOD) === 0) continue;
      a.holds &= ~HOLD_FLOOD;
      if (a.holds === 0) this.emit(a, "flood-released", BY_GATEWAY, "flood ended", true);
      else this.recorder?.alert(a);
    }
  };

  // --- escalation -----------------------------------------------------------------------

  /** The alert's escalation schedule: its priority's, or P1's for an alert that escalates like a P1. */
  private firstEscalationMs(alert: Alert): number {
    const priority = alert.escalateAs ?? alert.priority;
    return priority === 1 ? this.escalationP1Ms : priority === 2 ? this.escalationP2Ms : 0;
  }

  /**
   * Escalation runs while an announced P1/P2 waits for an acknowledgement,
   * and never for alerts suppressed by design (test mode), shelved or out of
   * service. Its state is the alert's plain fields (level, nextAt).
   */
  private syncEscalation(alert: Alert): void {
    const first = this.firstEscalationMs(alert);
    const eligible =
      first > 0 &&
      alert.isOpen &&
      alert.unacknowledged &&
      alert.announced &&
      alert.suppressedFor === null &&
      (alert.holds & (HOLD_SHELVED | HOLD_OUT_OF_SERVICE)) === 0;
    if (!eligible) {
      if (alert.escalationTimer) this.wheel.disarm(alert.escalationTimer);
      alert.escalationLevel = 0;
      alert.escalationNextAt = null;
      return;
    }
    if (alert.escalationNextAt === null) alert.escalationNextAt = alert.unackSince + first;
    alert.escalationTimer ??= new WheelTimer(this.escalate, alert);
    if (!alert.escalationTimer.armed || alert.escalationTimer.deadline !== alert.escalationNextAt)
      this.wheel.arm(alert.escalationTimer, alert.escalationNextAt);
  }

  private readonly escalate = (timer: WheelTimer): void => {
    const alert = timer.owner as Alert;
    if (!alert.isOpen || !alert.unacknowledged) return;
    const now = this.clock.now();
    const first = this.firstEscalationMs(alert);
    alert.escalationLevel++;
    const interval = Math.min(first * this.escalationFactor ** alert.escalationLevel, this.escalationMaxMs);
    alert.escalationNextAt = now + Math.max(interval, 1000);
    const unackFor = now - alert.unackSince;
    // Journaled before it is announced, like every other change.
    this.recorder?.alert(alert);
    this.listener.escalated?.(alert, alert.escalationLevel, unackFor);
    this.emit(alert, "escalated", BY_GATEWAY, `unacknowledged for ${Math.round(unackFor / 1000)} s`, true);
  };

  // --- publication ---------------------------------------------------------------------

  /**
   * Publishes a change unless the alert is held (device-driven changes of a
   * held, non-P1 alert are tracked only). A closure is always published if
   * the alert was ever announced, so no stale retained copy stays behind.
   */
  private emit(alert: Alert, t: Transition, by: string, reason: string, force: boolean): void {
    const closed = alert.state === "closed";
    if (closed) {
      const ks = this.keyOf(alert);
      if (ks && ks.alert === alert) ks.alert = null;
      if (this.byId.delete(alert.id)) this.openN--;
      if (alert.timer) this.wheel.disarm(alert.timer);
    }
    const held = !force && alert.holds !== 0 && alert.priority !== 1 && !(closed && alert.announced);
    if (!held) {
      const ev = this.event;
      ev.alertId = alert.id;
      ev.code = alert.code;
      ev.priority = alert.priority;
      ev.deviceId = alert.subject.id;
      ev.household = alert.subject.household;
      ev.from = alert.lastIsa;
      ev.to = alert.isaState;
      ev.state = alert.state;
      ev.transition = t;
      ev.by = by;
      ev.reason = reason;
      ev.at = this.clock.now();
      alert.lastIsa = ev.to;
      alert.announced = true;
      alert.rev++;
      ev.eventId = `${alert.id}:${alert.rev}`;
      if (t !== "escalated") alert.lastTransition = t;
    }
    this.syncEscalation(alert);
    // Journal first: what an operator sees must survive a restart.
    this.recorder?.alert(alert);
    if (!held) this.listener.alertChanged(alert, t, this.event);
    if (closed) {
      const ks = this.keyOf(alert);
      if (ks) this.forgetKeyIfIdle(ks);
    }
  }
}

class EngineContext implements RuleContext {
  subject: AlertSubject = { id: "", model: "household", household: null };
  suppressed: SuppressReason | null = null;
  constructor(
    private readonly engine: AlertEngine,
    private readonly clock: Clock,
  ) {}
  get now(): number {
    return this.clock.now();
  }
  raise(code: AlertCode, opts: AlertOptions & { windowMs: number }): void {
    this.engine.raise(this.subject, code, opts, this.suppressed);
  }
  condition(code: AlertCode, active: boolean, opts: ConditionOptions): void {
    this.engine.condition(this.subject, code, active, opts, this.suppressed);
  }
  markCancelled(codes: readonly AlertCode[]): number {
    return this.engine.markCancelled(this.subject, codes);
  }
  confirmDelivered(alertId: string): void {
    this.engine.confirmDelivered(this.subject, alertId);
  }
}
