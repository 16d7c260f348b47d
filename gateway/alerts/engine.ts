/**
 * The alert engine: turns what device rules report (an event occurred, a
 * condition is active or gone) into alerts with a lifecycle, and tells its
 * listener about every real change. One open alert per (subject, code).
 *
 * Bounds: open alerts are at most subjects x alert codes; closed alerts are
 * forgotten at once (their last state has been published). Pending on-delays
 * are at most one per (subject, code).
 */
import { randomBytes } from "node:crypto";
import type { AlertOptions, ConditionOptions, RuleContext } from "../../devices/profile.js";
import type { AlertCode, Priority } from "../model.js";
import type { Clock } from "../time/clock.js";
import { type TimerWheel, WheelTimer } from "../time/timer-wheel.js";
import { Alert, type AlertSubject, type Transition } from "./alert.js";

export interface AlertListener {
  alertChanged(alert: Alert, transition: Transition): void;
}

export type AckOutcome =
  | { ok: true; alert: Alert; transition: Transition }
  | { ok: false; reason: "unknown-alert" | "already-acknowledged" };

/** An on-delayed condition waiting to become an alert (door held open, grace periods). */
class PendingCondition {
  readonly timer: WheelTimer;
  opts: ConditionOptions = { priority: 4 };
  constructor(
    readonly subject: AlertSubject,
    readonly code: AlertCode,
    fire: (p: PendingCondition) => void,
  ) {
    this.timer = new WheelTimer(() => fire(this), this);
  }
}

export function alertTopic(site: string, priority: Priority, code: AlertCode, subjectId: string): string {
  return `linli/${site}/alerts/p${priority}/${code}/${subjectId}`;
}

export class AlertEngine {
  private readonly open = new Map<string, Alert>();
  private readonly byId = new Map<string, Alert>();
  private readonly pending = new Map<string, PendingCondition>();
  private readonly idPrefix = randomBytes(3).toString("hex");
  private idCounter = 0;
  /** The one rule context, re-pointed at each subject: rules run synchronously, so no per-sample allocation. */
  private readonly ctx: EngineContext;

  constructor(
    readonly site: string,
    private readonly clock: Clock,
    private readonly wheel: TimerWheel,
    private readonly listener: AlertListener,
  ) {
    this.ctx = new EngineContext(this, clock);
  }

  /** The rule context for one subject, valid until the next call. */
  contextFor(subject: AlertSubject, test = false): RuleContext {
    this.ctx.subject = subject;
    this.ctx.test = test;
    return this.ctx;
  }

  get openCount(): number {
    return this.open.size;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  openAlerts(): Alert[] {
    return [...this.open.values()];
  }

  find(subjectId: string, code: AlertCode): Alert | undefined {
    return this.open.get(key(subjectId, code));
  }

  byAlertId(id: string): Alert | undefined {
    return this.byId.get(id);
  }

  acknowledge(alertId: string, by: string, note: string | null): AckOutcome {
    const alert = this.byId.get(alertId);
    if (!alert) return { ok: false, reason: "unknown-alert" };
    const t = alert.acknowledge(this.clock.now(), by, note);
    if (t === null) return { ok: false, reason: "already-acknowledged" };
    this.emit(alert, t);
    return { ok: true, alert, transition: t };
  }

  /** Stops every timer (shutdown); open alerts keep their last published state. */
  stop(): void {
    for (const p of this.pending.values()) this.wheel.disarm(p.timer);
    for (const a of this.open.values()) if (a.timer) this.wheel.disarm(a.timer);
  }

  // --- used by EngineContext ---

  raise(
    subject: AlertSubject,
    code: AlertCode,
    opts: AlertOptions & { windowMs: number },
    test: boolean,
  ): void {
    const now = this.clock.now();
    const existing = this.open.get(key(subject.id, code));
    // Same call: within the window of the last occurrence, or not yet seen by anyone.
    if (existing && (now <= existing.windowUntil || existing.state !== "closed")) {
      if (opts.urgent) existing.urgent = true;
      existing.windowUntil = now + opts.windowMs;
      this.armWindow(existing);
      this.emit(existing, existing.occur(now, opts.causes ?? []));
      return;
    }
    const alert = this.create(subject, code, opts, test, now);
    alert.windowUntil = now + opts.windowMs;
    this.armWindow(alert);
    this.emit(alert, "raised");
  }

  condition(
    subject: AlertSubject,
    code: AlertCode,
    active: boolean,
    opts: ConditionOptions,
    test: boolean,
  ): void {
    const k = key(subject.id, code);
    const now = this.clock.now();
    const existing = this.open.get(k);
    if (!active) {
      const p = this.pending.get(k);
      if (p) {
        this.wheel.disarm(p.timer);
        this.pending.delete(k);
      }
      if (existing?.conditionActive) this.transition(existing, existing.clear(now));
      return;
    }
    if (existing?.conditionActive) {
      if (existing.addCauses(opts.causes ?? [])) {
        existing.updatedAt = now;
        this.emit(existing, "repeated");
      }
      return;
    }
    const due = (opts.since ?? now) + (opts.onDelayMs ?? 0);
    if (due > now) {
      let p = this.pending.get(k);
      if (!p) {
        p = new PendingCondition(subject, code, this.firePending);
        this.pending.set(k, p);
      }
      p.opts = { ...opts, test };
      if (!p.timer.armed || p.timer.deadline !== due) this.wheel.arm(p.timer, due);
      return;
    }
    this.activate(subject, code, opts, test, now);
  }

  markCancelled(subject: AlertSubject, codes: readonly AlertCode[]): number {
    const now = this.clock.now();
    let n = 0;
    for (const code of codes) {
      const a = this.open.get(key(subject.id, code));
      if (a?.markCancelled(now)) {
        n++;
        this.emit(a, "cancelled-by-resident");
      }
    }
    return n;
  }

  confirmDelivered(subject: AlertSubject, alertId: string): void {
    const a = this.byId.get(alertId);
    if (!a || a.subject.id !== subject.id || a.detail.residentNotified === true) return;
    a.detail.residentNotified = true;
    a.updatedAt = this.clock.now();
    this.emit(a, "delivered");
  }

  // --- internals ---

  private activate(
    subject: AlertSubject,
    code: AlertCode,
    opts: ConditionOptions,
    test: boolean,
    now: number,
  ): void {
    const existing = this.open.get(key(subject.id, code));
    if (existing) {
      // Cleared but not yet acknowledged, and active again: the same alert, counted.
      this.emit(existing, existing.occur(now, opts.causes ?? []));
      return;
    }
    this.emit(this.create(subject, code, opts, test, now), "raised");
  }

  private readonly firePending = (p: PendingCondition): void => {
    this.pending.delete(key(p.subject.id, p.code));
    const { test, ...opts } = p.opts as ConditionOptions & { test: boolean };
    this.activate(p.subject, p.code, opts, test, this.clock.now());
  };

  private create(
    subject: AlertSubject,
    code: AlertCode,
    opts: AlertOptions,
    test: boolean,
    now: number,
  ): Alert {
    const id = `${now.toString(36)}-${this.idPrefix}${(this.idCounter++).toString(36)}`;
    const alert = new Alert(
      id,
      code,
      opts.priority,
      this.site,
      subject,
      now,
      alertTopic(this.site, opts.priority, code, subject.id),
      opts.causes ?? [],
      opts.urgent ?? false,
      test || (opts.test ?? false),
      opts.detail ?? {},
    );
    this.open.set(key(subject.id, code), alert);
    this.byId.set(id, alert);
    return alert;
  }

  private armWindow(alert: Alert): void {
    if (!alert.timer) alert.timer = new WheelTimer(this.windowExpired, alert);
    this.wheel.arm(alert.timer, alert.windowUntil);
  }

  /** A momentary alert's window ended: the event is over, the alert still waits for its ack. */
  private readonly windowExpired = (timer: WheelTimer): void => {
    const alert = timer.owner as Alert;
    if (alert.conditionActive) this.transition(alert, alert.clear(this.clock.now()));
  };

  private transition(alert: Alert, t: Transition | null): void {
    if (t !== null) this.emit(alert, t);
  }

  private emit(alert: Alert, t: Transition): void {
    if (alert.state === "closed") {
      this.open.delete(key(alert.subject.id, alert.code));
      this.byId.delete(alert.id);
      if (alert.timer) this.wheel.disarm(alert.timer);
    }
    this.listener.alertChanged(alert, t);
  }
}

function key(subjectId: string, code: AlertCode): string {
  return `${subjectId}\u0000${code}`;
}

class EngineContext implements RuleContext {
  subject: AlertSubject = { id: "", model: "household", household: null };
  test = false;
  constructor(
    private readonly engine: AlertEngine,
    private readonly clock: Clock,
  ) {}
  get now(): number {
    return this.clock.now();
  }
  raise(code: AlertCode, opts: AlertOptions & { windowMs: number }): void {
    this.engine.raise(this.subject, code, opts, this.test);
  }
  condition(code: AlertCode, active: boolean, opts: ConditionOptions): void {
    this.engine.condition(this.subject, code, active, opts, this.test);
  }
  markCancelled(codes: readonly AlertCode[]): number {
    return this.engine.markCancelled(this.subject, codes);
  }
  confirmDelivered(alertId: string): void {
    this.engine.confirmDelivered(this.subject, alertId);
  }
}
