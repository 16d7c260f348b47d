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
 * published. P1 alerts are never held (life safety). Each of those policies
 * is a module of its own that owns its hold bit and its state (chattering.ts,
 * flood.ts, shelving.ts, service.ts, escalation.ts); this file is the core:
 * keyed state, raise and clear, on/off delays, momentary windows, emit.
 *
 * Bounds (policy: forget as soon as nothing is left to remember):
 * - subjects: those with an open alert, a pending delay, shelving, recent
 *   activations (at most one chatter window old) or out of service;
 * - keys per subject: at most the alert codes (a fixed set);
 * - per key: CHATTER_COUNT activation times in a fixed array;
 * - flood: FLOOD_BUCKETS counters; closed alerts are forgotten at once.
 */
import { randomBytes } from "node:crypto";
import type { AlertCode, Clock, Priority } from "../../core/index.js";
import type { AlertContext, AlertOptions, ConditionOptions } from "../../devices/index.js";
import { moveLive } from "../moved-times.js";
import { type TimerWheel, WheelTimer } from "../time/timer-wheel.js";
import {
  Alert,
  type AlertSubject,
  type ReplacedFor,
  type SubjectGone,
  type SuppressReason,
  type Transition,
} from "./alert.js";
import { CHATTER_COUNT, Chattering, type ChatterKey } from "./chattering.js";
import { Escalation, type EscalationOptions } from "./escalation.js";
import { Flood, HOLD_FLOOD } from "./flood.js";
import {
  AlertEvent,
  type AlertListener,
  BY_DEVICE,
  BY_GATEWAY,
  type EngineRecorder,
  type FloodRecord,
  type FloodStatus,
  type PolicyHost,
  type ShelveRecord,
} from "./ports.js";
import { HOLD_OUT_OF_SERVICE, OutOfService, type ServiceOutcome, type ServiceSubject } from "./service.js";
import {
  HOLD_SHELVED,
  type ShelveKey,
  type ShelveOutcome,
  Shelving,
  type UnshelveOutcome,
} from "./shelving.js";

export { CHATTER_COUNT, CHATTER_QUIET_MS, CHATTER_WINDOW_MS } from "./chattering.js";
export { FLOOD_ENTER_ABOVE, FLOOD_EXIT_BELOW, FLOOD_WINDOW_MS } from "./flood.js";
export {
  AlertEvent,
  type AlertListener,
  BY_DEVICE,
  BY_GATEWAY,
  type EngineRecorder,
  type FloodRecord,
  type FloodStatus,
  type ShelveRecord,
} from "./ports.js";
export type { ServiceOutcome } from "./service.js";
export type { ShelveOutcome, UnshelveOutcome } from "./shelving.js";

const PENDING_NONE = 0;
const PENDING_ON = 1;
const PENDING_OFF = 2;

export interface EngineOptions extends EscalationOptions {
  /** Longest shelving an operator may ask for (ISA-18.2: shelving is always time-limited). */
  shelveMaxMs?: number;
  /** The durable journal's side of the engine (absent: state lives in memory only). */
  recorder?: EngineRecorder;
}

export type AckOutcome =
  | { ok: true; alert: Alert; transition: Transition }
  | { ok: false; reason: "unknown-alert" | "already-acknowledged" };

class SubjectState implements ServiceSubject {
  readonly keys = new Map<AlertCode, KeyState>();
  outOfServiceBy: string | null = null;
  outOfServiceByAccount: string | null = null;
  outOfServiceAt = 0;
  constructor(public subject: AlertSubject) {}
}

/** A key's options while nothing is pending: one object for every key (replaced, never changed). */
const NO_PENDING_OPTS: ConditionOptions = Object.freeze({ priority: 4 });

class KeyState implements ChatterKey, ShelveKey {
  alert: Alert | null = null;
  /**
   * The key's two timers, made at their first use: most keys never arm them (a restored alert's,
   * a P1's), and an aged start holds 15,000 keys (~80 bytes a timer).
   */
  private pending: WheelTimer | null = null;
  private quiet: WheelTimer | null = null;
  pendingKind = PENDING_NONE;
  pendingOpts: ConditionOptions = NO_PENDING_OPTS;
  pendingSuppressed: SuppressReason | null = null;
  /**
   * When the on-delay under way started (gateway time), 0 when none: journaled while it runs
   * (`hold/<subject>/<CODE>`, docs/durability.md), so that a restart does not start it again.
   */
  holdSince = 0;
  /** The hold came back from the journal at start; until a reading confirms it, no timer runs. */
  holdRestored = false;
  // Kept for chattering.ts (ChatterKey).
  // A plain array, not a Float64Array: ~70 bytes against ~210 (a typed array is an object, an
  // ArrayBuffer and its store), for every key of every open alert (15,000 after an aged start).
  readonly activations: number[] = new Array<number>(CHATTER_COUNT).fill(0);
  activationNext = 0;
  chattering = false;
  lastChange = 0;
  // Kept for shelving.ts (ShelveKey).
  shelveId: string | null = null;
  shelvedBy: string | null = null;
  shelvedByAccount: string | null = null;
  shelvedAt = 0;
  shelvedUntil: number | null = null;
  shelveReason: string | null = null;
  shelveTimer: WheelTimer | null = null;

  constructor(
    readonly owner: SubjectState,
    readonly code: AlertCode,
    private readonly onPending: (t: WheelTimer) => void,
    private readonly onQuiet: (t: WheelTimer) => void,
  ) {}

  /** On-delay before raising, or off-delay before clearing (made here at its first use). */
  get pendingTimer(): WheelTimer {
    if (this.pending === null) this.pending = new WheelTimer(this.onPending, this);
    return this.pending;
  }

  get pendingArmed(): boolean {
    return this.pending?.armed === true;
  }

  get quietTimer(): WheelTimer {
    if (this.quiet === null) this.quiet = new WheelTimer(this.onQuiet, this);
    return this.quiet;
  }

  get quietArmed(): boolean {
    return this.quiet?.armed === true;
  }
}

export function alertTopic(site: string, priority: Priority, code: AlertCode, subjectId: string): string {
  return `linli/${site}/alerts/p${priority}/${code}/${subjectId}`;
}

export class AlertEngine {
  private readonly subjects = new Map<string, SubjectState>();
  private readonly byId = new Map<string, Alert>();
  private openN = 0;
  private readonly idPrefix = randomBytes(3).toString("hex");
  private idCounter = 0;
  /** The one rule context, re-pointed at each subject: rules run synchronously, so no per-sample allocation. */
  private readonly ctx: EngineContext;
  private readonly event = new AlertEvent();
  /** Restored alerts never published, with the holds journaled (fireOverdue; empty once started). */
  private readonly heldAtRestore = new Map<Alert, number>();
  /** The account of the operator request being carried out (actingAs), for its events. */
  private actingAccount: string | null = null;
  private readonly recorder: EngineRecorder | null;
  // The policies, each with its state and hold bit.
  private readonly chatter: Chattering<KeyState>;
  private readonly floods: Flood;
  private readonly shelving: Shelving<KeyState>;
  private readonly service: OutOfService<SubjectState>;
  private readonly escalation: Escalation;

  constructor(
    readonly site: string,
    private readonly clock: Clock,
    private readonly wheel: TimerWheel,
    private readonly listener: AlertListener,
    opts: EngineOptions = {},
  ) {
    this.ctx = new EngineContext(this, clock);
    this.recorder = opts.recorder ?? null;
    const host: PolicyHost = {
      clock,
      wheel,
      listener,
      recorder: this.recorder,
      emit: (alert, t, by, reason, force) => this.emit(alert, t, by, reason, force),
    };
    this.chatter = new Chattering(host, (ks) => this.forgetKeyIfIdle(ks));
    this.floods = new Flood(host, () => this.byId.values());
    const keys = {
      byId: this.byId,
      keyOf: (a: Alert) => this.keyOf(a),
      key: (subject: AlertSubject, code: AlertCode) => this.key(subject, code),
      forgetKeyIfIdle: (ks: KeyState) => this.forgetKeyIfIdle(ks),
    };
    this.shelving = new Shelving(host, keys, opts.shelveMaxMs ?? 8 * 3_600_000);
    const subjects = {
      subjects: this.subjects,
      subjectState: (subject: AlertSubject) => this.subjectState(subject),
      forgetSubjectIfIdle: (ss: SubjectState) => this.forgetSubjectIfIdle(ss),
    };
    this.service = new OutOfService(host, subjects);
    this.escalation = new Escalation(host, opts);
  }

  /** Longest shelving an operator may ask for (ops.ts names it in a refusal). */
  get shelveMaxMs(): number {
    return this.shelving.shelveMaxMs;
  }

  /**
   * The rule context for one subject, valid until the next call. `suppressed`:
   * the device is in test mode (true) or names why it is suppressed by design.
   */
  contextFor(subject: AlertSubject, suppressed: boolean | SuppressReason = false): AlertContext<AlertCode> {
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
    for (const s of this.subjects.values()) for (const k of s.keys.values()) if (k.pendingArmed) n++;
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

  /** The subject has an alert whose condition is still present, at this priority or a more urgent one. */
  hasActive(subjectId: string, priority: number): boolean {
    const ss = this.subjects.get(subjectId);
    if (ss === undefined) return false;
    for (const ks of ss.keys.values())
      if (ks.alert?.conditionActive && ks.alert.priority <= priority) return true;
    return false;
  }

  byAlertId(id: string): Alert | undefined {
    return this.byId.get(id);
  }

  isOutOfService(subjectId: string): boolean {
    const s = this.subjects.get(subjectId);
    return s !== undefined && s.outOfServiceBy !== null;
  }

  /** Subjects an operator took out of service, with who and since when (restored from the journal after a restart). */
  outOfServiceSubjects(): Array<{ subjectId: string; by: string; account: string | null; since: number }> {
    const out: Array<{ subjectId: string; by: string; account: string | null; since: number }> = [];
    for (const [subjectId, s] of this.subjects)
      if (s.outOfServiceBy !== null)
        out.push({
          subjectId,
          by: s.outOfServiceBy,
          account: s.outOfServiceByAccount ?? null,
          since: s.outOfServiceAt,
        });
    return out;
  }

  get flood(): FloodStatus {
    return this.floods.flood;
  }

  /** Tells the listener the current flood state (at start: consoles get a retained `normal`). */
  announceFlood(): void {
    this.listener.floodChanged?.(this.flood);
  }

  // --- operator actions -------------------------------------------------------

  /*
   * `by` is the request's free text (a name at a shared desk); `account` the operator account that
   * sent it (null: not an operator's request), published beside it and journaled.
   */

  acknowledge(alertId: string, by: string, note: string | null, account: string | null = null): AckOutcome {
    const alert = this.byId.get(alertId);
    if (!alert) return { ok: false, reason: "unknown-alert" };
    const t = alert.acknowledge(this.clock.now(), by, note, account);
    if (t === null) return { ok: false, reason: "already-acknowledged" };
    return this.actingAs(account, () => {
      this.emit(alert, t, by, note ?? "acknowledged", true);
      return { ok: true, alert, transition: t };
    });
  }

  /** Shelving (shelving.ts): P1 is never shelvable. */
  shelve(
    alertId: string,
    by: string,
    durationMs: number,
    reason: string | null,
    account: string | null = null,
  ): ShelveOutcome {
    return this.actingAs(account, () => this.shelving.shelve(alertId, by, durationMs, reason, account));
  }

  /** Ends shelving early; `id` is the open alert's id or the id it was shelved with. */
  unshelve(id: string, by: string, reason: string | null, account: string | null = null): UnshelveOutcome {
    return this.actingAs(account, () => this.shelving.unshelve(id, by, reason));
  }

  /** Out of service (service.ts): held, P1 excepted, never escalated; back in service publishes. */
  setOutOfService(
    subject: AlertSubject,
    outOfService: boolean,
    by: string,
    reason: string | null,
    account: string | null = null,
  ): ServiceOutcome {
    return this.actingAs(account, () =>
      this.service.setOutOfService(subject, outOfService, by, reason, account),
    );
  }

  /** Runs an operator's request: the events it emits (synchronously) carry the account. */
  private actingAs<T>(account: string | null, run: () => T): T {
    this.actingAccount = account;
    try {
      return run();
    } finally {
      this.actingAccount = null;
    }
  }

  // --- live reconfiguration (gateway/reload.ts) ----------------------------------

  /**
   * New escalation and shelving limits. An alert not yet escalated is re-timed
   * from when it became unacknowledged; an escalated one keeps its next time
   * and uses the new figures from then on. A re-timed alert is journaled (kept
   * as it was, a crash brought the old time back); the shown ones (announced,
   * not held) are returned with their next rev, for the caller to publish.
   */
  setOptions(opts: EngineOptions): Alert[] {
    this.escalation.setOptions(opts);
    this.shelving.shelveMaxMs = opts.shelveMaxMs ?? this.shelving.shelveMaxMs;
    const moved: Alert[] = [];
    for (const a of this.byId.values()) {
      const before = a.escalationNextAt;
      if (a.escalationLevel === 0) a.escalationNextAt = null;
      this.escalation.syncEscalation(a);
      if (a.escalationNextAt === before) continue;
      // Another escalationNextAt is another state: the next rev, never the old rev with a new time.
      if (a.announced && (a.holds === 0 || a.priority === 1)) {
        a.rev++;
        a.unpublished = false;
        moved.push(a);
      } else if (a.announced) a.unpublished = true;
      this.recorder?.alert(a);
    }
    return moved;
  }

  /**
   * The subject left the configuration: its open alerts are closed by the
   * gateway with `reason` (published like any closure, so retained copies go)
   * and everything kept for it (delays, chatter, shelving, out of service) is
   * forgotten. Returns how many alerts were closed. `nowModel`: the model now configured under a
   * device's id (its model changed), said in the closed alerts' messages.
   */
  closeSubject(subjectId: string, reason: string, nowModel?: string): number {
    const ss = this.subjects.get(subjectId);
    if (!ss) return 0;
    const now = this.clock.now();
    let n = 0;
    for (const ks of [...ss.keys.values()]) {
      this.cancelPending(ks);
      this.chatter.reset(ks);
      this.shelving.reset(ks);
      const a = ks.alert;
      if (a?.close(now)) {
        a.goneFor =
          a.subject.model === "household"
            ? { removed: "household" }
            : nowModel === undefined
              ? { removed: "device" }
              : { model: nowModel };
        this.emit(a, "closed", BY_GATEWAY, reason, false);
        n++;
      }
      ss.keys.delete(ks.code);
    }
    this.service.reset(ss, now);
    this.subjects.delete(subjectId);
    return n;
  }

  /**
   * One open alert of `code` about the subject closed by the gateway with `reason`, whatever its
   * state (the cause is gone for good: CONFIG_REFUSED once a valid file is applied). False: none open.
   */
  closeCode(subjectId: string, code: AlertCode, reason: string, why: SubjectGone | null = null): boolean {
    const ks = this.subjects.get(subjectId)?.keys.get(code);
    const a = ks?.alert;
    if (!ks || !a) return false;
    this.cancelPending(ks);
    if (!a.close(this.clock.now())) return false;
    a.holds = 0;
    // The operator's message says why (`…；已结束：配置已修正并重新加载`), not 已结束 alone.
    a.goneFor = why;
    this.emit(a, "closed", BY_GATEWAY, reason, true);
    this.forgetKeyIfIdle(ks);
    return true;
  }

  /** Stops every timer (shutdown); open alerts keep their last published state. */
  stop(): void {
    for (const s of this.subjects.values()) {
      for (const k of s.keys.values()) {
        if (k.pendingArmed) this.wheel.disarm(k.pendingTimer);
        this.chatter.stop(k);
        this.shelving.stop(k);
        const a = k.alert;
        if (a?.timer) this.wheel.disarm(a.timer);
        if (a) this.escalation.stop(a);
      }
    }
    this.floods.stop();
  }

  // --- restart (gateway/state) ------------------------------------------------------

  /** The flood detector's state for the journal. */
  floodRecord(): FloodRecord {
    return this.floods.floodRecord();
  }

  restoreFlood(rec: FloodRecord): void {
    this.floods.restoreFlood(rec);
  }

  restoreService(subject: AlertSubject, by: string, at: number, account: string | null = null): void {
    this.service.restoreService(subject, by, at, account);
  }

  /**
   * An on-delay that was under way before the restart (`hold/<subject>/<CODE>`, its start on this
   * start's clock). No timer runs until a reading confirms the condition (`condition` active): the
   * hold then runs on from `since`, the time down included; a reading that ends the condition ends
   * it. False (nothing kept): the alert is already active.
   */
  restoreHold(subject: AlertSubject, code: AlertCode, since: number): boolean {
    const ks = this.key(subject, code);
    if (ks.alert?.conditionActive || ks.pendingKind !== PENDING_NONE) {
      this.forgetKeyIfIdle(ks);
      return false;
    }
    ks.holdSince = since;
    ks.holdRestored = true;
    return true;
  }

  /** Shelving that was running before the restart; one already over ends now, as it would have. */
  restoreShelve(subject: AlertSubject, code: AlertCode, rec: ShelveRecord): void {
    this.shelving.restoreShelve(subject, code, rec);
  }

  /**
   * After a restart, once the restored alerts have been republished: the
   * escalations and shelvings that fell due while the gateway was down happen
   * now, not at the wheel's next tick (up to a second later).
   */
  fireOverdue(): number {
    let n = 0;
    for (const _ of this.fireOverdueSteps()) n++;
    return n;
  }

  /**
   * fireOverdue() one firing at a time: each step fires one alert's due escalation, release or
   * shelving end (its messages published), so that a start with thousands due can let the broker
   * take each few hundred before the next (gateway/startup.ts republishRecovered).
   */
  *fireOverdueSteps(): Generator<void, void, void> {
    const now = this.clock.now();
    // Never published, held when journaled, and nothing holds it now: the end of its hold (a flood
    // over, back in service, unshelved) reached the journal, its release did not (a crash, a power
    // cut under `sync: batch`). The restart republishes only what was published: this is published now.
    const held = [...this.heldAtRestore];
    this.heldAtRestore.clear();
    for (const [a, recorded] of held) {
      if (!a.isOpen || a.announced || a.holds !== 0 || this.byId.get(a.id) !== a) continue;
      const [t, reason] = releasedBy(recorded);
      // Escalation counts from now, as when a hold ends while running.
      if (a.unacknowledged) a.unackSince = now;
      this.emit(a, t, BY_GATEWAY, reason, true);
      yield;
    }
    // P1 first (an alert escalating like a P1 with them): a site with thousands due puts its
    // emergencies ahead of the rest in every queue after it (sessions, upstream).
    const open = [...this.byId.values()];
    for (const a of open)
      if ((a.escalateAs ?? a.priority) === 1 && this.escalation.fireOverdue(a, now)) yield;
    for (const a of open)
      if ((a.escalateAs ?? a.priority) !== 1 && this.escalation.fireOverdue(a, now)) yield;
    // A shelving that ran out while down: shown again as of its end, its escalations since then
    // counted as the others' are (docs/durability.md "Recovery at start").
    for (const released of this.shelving.fireOverdueSteps(now)) {
      if (released !== null) this.escalation.fireOverdue(released, now);
      yield;
    }
  }

  /**
   * The wall clock stepped by `stepMs` (negative: set back) while the gateway ran. The wheel's
   * timers run on elapsed time and already moved; the times they stand for move with them, as a
   * restart after a clock set back moves them (gateway/state/recovery.ts): every open alert's call
   * window, unacknowledged-since, next escalation and shelving end, shelvings' ends, chattering's
   * recent activations and the flood window. Shelvings and the flood are journaled here; the open alerts are returned for the
   * caller to journal and republish with the next rev.
   */
  shiftTimes(stepMs: number): Alert[] {
    const moved: Alert[] = [];
    for (const a of this.byId.values()) {
      moveLive("alert", a, stepMs);
      moved.push(a);
    }
    this.shelving.shiftTimes(stepMs);
    this.floods.shiftTimes(stepMs);
    // Chattering's recent activations too: left ahead of a clock set back, they read as recent.
    for (const ss of this.subjects.values())
      for (const ks of ss.keys.values()) {
        const acts = ks.activations;
        for (let i = 0; i < acts.length; i++) if (acts[i] !== 0) acts[i]! += stepMs;
        if (ks.lastChange > 0) ks.lastChange += stepMs;
        // An on-delay's start: its timer kept its elapsed time; the journaled start moves with it.
        if (ks.holdSince > 0) {
          moveLive("hold", ks, stepMs);
          this.recorder?.hold?.(ss.subject.id, ks.code, ks.holdSince);
        }
      }
    return moved;
  }

  /**
   * An open alert read back from the journal (its fields already set): it
   * takes its place again, its call window and escalation are re-armed at
   * the times they had (a time that passed while the gateway was down fires
   * at once; a first escalation is timed by the running settings), and it is
   * not published here: the caller republishes every restored alert as it was.
   */
  restoreAlert(alert: Alert): void {
    const ks = this.key(alert.subject, alert.code);
    if (!alert.announced && alert.holds !== 0) this.heldAtRestore.set(alert, alert.holds);
    // Not yet escalated: timed from the settings this start runs with, as a reload re-times it (a
    // start with an edited file, or a crash before a reload's re-timing was journaled).
    if (alert.escalationLevel === 0) alert.escalationNextAt = null;
    // Holds follow from the restored shelving, service and flood state, not from the record: a
    // crash between an end of flood (or a return to service) and the rewrite of each alert must
    // not leave an alert held for good.
    alert.holds =
      this.chatter.restoredHold(alert) |
      this.shelving.restoredHold(ks) |
      this.service.restoredHold(ks.owner, alert) |
      this.floods.restoredHold(alert);
    if (ks.alert !== null) this.byId.delete(ks.alert.id);
    else this.openN++;
    ks.alert = alert;
    this.byId.set(alert.id, alert);
    this.chatter.restore(ks, alert);
    if (alert.windowUntil > 0 && alert.conditionActive) this.armWindow(alert);
    this.escalation.syncEscalation(alert);
  }

  // --- used by EngineContext ----------------------------------------------------

  raise(
    subject: AlertSubject,
    code: AlertCode,
    opts: AlertOptions & { windowMs: number },
    suppressed: SuppressReason | null,
  ): void {
    const now = this.clock.now();
    const cause = opts.causes?.[0] ?? code;
    const open = this.find(subject.id, code);
    if (open && endsSuppression(open, opts, suppressed))
      this.supersede(open, suppressionEnded(open), now, { ended: open.suppressedFor ?? "test" });
    // The last call's window ran out and its timer has not fired yet: the wheel is held from a
    // start's recovery until the restored state is republished, and fires up to a tick late. That
    // call is over first, as its timer would have ended it: a press 2 minutes after an acknowledged
    // call is a new call, not a repeat folded into the acknowledged one (found by
    // test/powercut-model.e2e.test.ts: a press re-sent right after a power cut).
    const last = this.find(subject.id, code);
    if (last?.conditionActive && last.windowUntil > 0 && last.windowUntil <= now) this.endWindow(last, now);
    const ks = this.key(subject, code);
    const existing = ks.alert;
    // Same call: an open alert (within its window, or not yet closed by an operator).
    if (existing) {
      if (opts.urgent) existing.urgent = true;
      // EC-200: `cancel` marks the call; a press or fall after it is the resident calling again.
      existing.cancelledByResident = false;
      existing.windowUntil = now + opts.windowMs;
      this.armWindow(existing);
      const t = existing.occur(now, opts.causes ?? []);
      if (t === "reactivated" && this.chatter.noteActivation(ks, existing, now)) return;
      this.emit(existing, t, BY_DEVICE, cause, false);
      return;
    }
    const alert = this.create(ks, opts, suppressed, now);
    alert.windowUntil = now + opts.windowMs;
    this.armWindow(alert);
    if (this.chatter.noteActivation(ks, alert, now)) return;
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
      if (ks.pendingKind === PENDING_ON || ks.holdSince > 0) this.cancelPending(ks);
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
    if (open && open.priority !== opts.priority)
      this.supersede(open, `priority now P${opts.priority}`, now, { priority: opts.priority });
    // Still active, reported outside test mode or maintenance: not the alert suppressed by design
    // (endsSuppression); one that cleared is replaced when the condition raises again (activate).
    else if (open?.conditionActive && endsSuppression(open, opts, suppressed))
      this.supersede(open, suppressionEnded(open), now, { ended: open.suppressedFor ?? "test" });
    const ks = this.key(subject, code);
    // Back to abnormal within the off-delay: no clear, nothing to publish.
    if (ks.pendingKind === PENDING_OFF) this.cancelPending(ks);
    const existing = ks.alert;
    if (existing?.conditionActive) {
      // A hold restored for an alert that is active (raised before the journal heard the hold end).
      if (ks.holdSince > 0) this.cancelPending(ks);
      // Causes and detail describe the live condition, not every cause it ever had. Nothing
      // occurred again (count unchanged): "changed", not "repeated" (docs/topics.md 0.12.0).
      if (existing.describe(opts.causes, opts.detail)) {
        existing.updatedAt = now;
        this.emit(existing, "changed", BY_DEVICE, opts.causes?.[0] ?? code, false);
      }
      return;
    }
    // Within the deadband only (back over the limit, not past the deadband): that holds a raised
    // alert (above), raises nothing, and a pending on-delay ends; it runs again from the next
    // reading beyond the limit (ISA-18.2: the deadband is the way back of a raised alarm).
    if (opts.onset === false) {
      if (ks.pendingKind === PENDING_ON || ks.holdSince > 0) this.cancelPending(ks);
      this.forgetKeyIfIdle(ks);
      return;
    }
    const onDelay = opts.onDelayMs ?? 0;
    let start = opts.since ?? now;
    // A hold the journal kept across a restart, confirmed by this reading: it runs on from its
    // start, the time the gateway was down included (the condition held before and holds now).
    if (ks.holdRestored && ks.holdSince < start) start = ks.holdSince;
    const due = start + onDelay;
    if (due > now) {
      // A polled value reports "active" every poll: the delay runs from the first report, unless
      // the rule says when the condition started (`since`).
      if (
        ks.pendingKind !== PENDING_ON ||
        ((opts.since !== undefined || ks.holdRestored) && ks.pendingTimer.deadline !== due)
      ) {
        ks.pendingKind = PENDING_ON;
        this.wheel.arm(ks.pendingTimer, due);
        this.noteHold(ks, start);
      }
      ks.pendingOpts = opts;
      ks.pendingSuppressed = suppressed;
      return;
    }
    const held = ks.holdSince > 0;
    if (ks.pendingKind === PENDING_ON) this.stopPending(ks);
    this.activate(ks, opts, suppressed, now);
    // After the alert's state: a crash between the two keeps the hold, never loses both.
    if (held) this.endHold(ks);
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
      ks = new KeyState(ss, code, this.firePending, this.chatter.quietEnded);
      ss.keys.set(code, ks);
    }
    return ks;
  }

  private keyOf(alert: Alert): KeyState | undefined {
    return this.subjects.get(alert.subject.id)?.keys.get(alert.code);
  }

  private cancelPending(ks: KeyState): void {
    this.stopPending(ks);
    if (ks.holdSince > 0) this.endHold(ks);
  }

  private stopPending(ks: KeyState): void {
    if (ks.pendingArmed) this.wheel.disarm(ks.pendingTimer);
    ks.pendingKind = PENDING_NONE;
  }

  /** An on-delay started (or its start moved): journaled, one record per (subject, code). */
  private noteHold(ks: KeyState, since: number): void {
    if (ks.holdSince === since) return;
    ks.holdSince = since;
    this.recorder?.hold?.(ks.owner.subject.id, ks.code, since);
  }

  /** The on-delay ended (raised, cancelled, forgotten): its record goes. */
  private endHold(ks: KeyState): void {
    ks.holdSince = 0;
    ks.holdRestored = false;
    this.recorder?.hold?.(ks.owner.subject.id, ks.code, null);
  }

  private activate(
    key: KeyState,
    opts: ConditionOptions,
    suppressed: SuppressReason | null,
    now: number,
  ): void {
    let ks = key;
    const cause = opts.causes?.[0] ?? ks.code;
    let existing = ks.alert;
    if (existing && endsSuppression(existing, opts, suppressed)) {
      // Cleared, unacknowledged, and active again (at once or after its on-delay) outside test
      // mode or maintenance: a new alert, not the suppressed one reactivated.
      const subject = ks.owner.subject;
      this.supersede(existing, suppressionEnded(existing), now, { ended: existing.suppressedFor ?? "test" });
      ks = this.key(subject, ks.code);
      existing = ks.alert;
    }
    if (existing) {
      // Cleared but not yet acknowledged, and active again: the same alert, counted, as it is now.
      const t = existing.occur(now, []);
      existing.describe(opts.causes, opts.detail);
      if (this.chatter.noteActivation(ks, existing, now)) return;
      this.emit(existing, t, BY_DEVICE, cause, false);
      return;
    }
    const alert = this.create(ks, opts, suppressed, now);
    if (this.chatter.noteActivation(ks, alert, now)) return;
    this.emit(alert, "raised", BY_DEVICE, cause, false);
  }

  /**
   * Closes an open alert that the live condition no longer is (another priority, or no longer
   * suppressed by design), published, then forgotten; a new alert takes its place.
   */
  private supersede(a: Alert, reason: string, now: number, why: ReplacedFor): void {
    const ks = this.keyOf(a);
    if (ks) this.cancelPending(ks);
    if (!a.close(now)) return;
    a.replacedFor = why;
    a.holds = 0;
    this.emit(a, "closed", BY_GATEWAY, reason, true);
  }

  private clearAlert(ks: KeyState, a: Alert, now: number, by: string, reason: string): void {
    const t = a.clear(now);
    if (t === null) return;
    if (a.priority !== 1) this.chatter.noteChange(ks, now);
    this.emit(a, t, by, reason, false);
  }

  private readonly firePending = (timer: WheelTimer): void => {
    const ks = timer.owner as KeyState;
    const kind = ks.pendingKind;
    ks.pendingKind = PENDING_NONE;
    const now = this.clock.now();
    if (kind === PENDING_ON) {
      this.activate(ks, ks.pendingOpts, ks.pendingSuppressed, now);
      if (ks.holdSince > 0) this.endHold(ks);
    } else if (kind === PENDING_OFF && ks.alert?.conditionActive)
      this.clearAlert(ks, ks.alert, now, BY_DEVICE, "condition cleared (off-delay elapsed)");
  };

  private create(ks: KeyState, opts: AlertOptions, suppressed: SuppressReason | null, now: number): Alert {
    const ss = ks.owner;
    const subject = ss.subject;
    const id = `${now.toString(36)}-${this.idPrefix}${(this.idCounter++).toString(36)}`;
    const suppressedFor = designedSuppression(opts, suppressed);
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
      // `test` keeps its 0.1 meaning for old consumers: "nobody should be paged".
      suppressedFor !== null,
      opts.detail ?? {},
      suppressedFor,
    );
    alert.escalateAs = opts.escalateAs ?? null;
    ks.alert = alert;
    this.byId.set(id, alert);
    this.openN++;
    this.service.noteNew(ss, alert);
    this.shelving.noteNew(ks, alert);
    this.chatter.noteNew(ks, alert);
    this.floods.noteNew(alert, suppressedFor === null && ss.outOfServiceBy === null, now);
    return alert;
  }

  private forgetKeyIfIdle(ks: KeyState): void {
    if (
      ks.alert !== null ||
      ks.pendingArmed ||
      ks.holdSince > 0 ||
      !this.chatter.idle(ks) ||
      !this.shelving.idle(ks)
    )
      return;
    const ss = ks.owner;
    if (ss.keys.get(ks.code) === ks) ss.keys.delete(ks.code);
    this.forgetSubjectIfIdle(ss);
  }

  private forgetSubjectIfIdle(ss: SubjectState): void {
    if (ss.keys.size === 0 && this.service.idle(ss) && this.subjects.get(ss.subject.id) === ss)
      this.subjects.delete(ss.subject.id);
  }

  private armWindow(alert: Alert): void {
    if (!alert.timer) alert.timer = new WheelTimer(this.windowExpired, alert);
    this.wheel.arm(alert.timer, alert.windowUntil);
  }

  /** A momentary alert's window ended: the event is over, the alert still waits for its ack. */
  private readonly windowExpired = (timer: WheelTimer): void => {
    const alert = timer.owner as Alert;
    if (alert.conditionActive) this.endWindow(alert, this.clock.now());
  };

  private endWindow(alert: Alert, now: number): void {
    if (alert.timer) this.wheel.disarm(alert.timer);
    const ks = this.keyOf(alert);
    if (ks && ks.alert === alert) this.clearAlert(ks, alert, now, BY_GATEWAY, "call window ended");
  }

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
      ev.household = alert.household;
      ev.from = alert.lastIsa;
      ev.to = alert.isaState;
      ev.state = alert.state;
      ev.transition = t;
      ev.by = by;
      ev.account = this.actingAccount;
      ev.reason = reason;
      ev.at = this.clock.now();
      alert.lastIsa = ev.to;
      alert.announced = true;
      alert.rev++;
      ev.eventId = `${alert.id}:${alert.rev}`;
      alert.lastTransition = t;
      alert.unpublished = false;
    } else alert.unpublished = true;
    this.escalation.syncEscalation(alert);
    // Journal first: what an operator sees must survive a restart.
    this.recorder?.alert(alert);
    if (!held) this.listener.alertChanged(alert, t, this.event);
    if (closed) {
      const ks = this.keyOf(alert);
      if (ks) this.forgetKeyIfIdle(ks);
    }
  }
}

/** How the release of a hold that ended while the gateway was down is published. */
function releasedBy(recordedHolds: number): [Transition, string] {
  if (recordedHolds & HOLD_OUT_OF_SERVICE) return ["in-service", "back in service"];
  if (recordedHolds & HOLD_SHELVED) return ["unshelved", "shelving ended"];
  if (recordedHolds & HOLD_FLOOD) return ["flood-released", "flood ended"];
  return ["chattering-ended", "quiet for 60 s"];
}

/** The designed suppression (test mode, maintenance) a report of the device carries. */
function designedSuppression(opts: AlertOptions, suppressed: SuppressReason | null): SuppressReason | null {
  return opts.suppressedFor ?? suppressed ?? (opts.test ? "test" : null);
}

/**
 * An open alert raised in test mode or maintenance, reported again by a device that has left it:
 * the live condition is real and must page (ISA-18.2: designed suppression ends with its cause).
 * Reused, the real fire after an unacknowledged test alarm stayed marked test, never escalated.
 * The reverse (a real alert, reported again in test mode) stays real: paging is the safe side.
 */
function endsSuppression(open: Alert, opts: AlertOptions, suppressed: SuppressReason | null): boolean {
  return open.suppressedFor !== null && designedSuppression(opts, suppressed) === null;
}

function suppressionEnded(open: Alert): string {
  return open.suppressedFor === "maintenance" ? "maintenance ended" : "test mode ended";
}

class EngineContext implements AlertContext<AlertCode> {
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
