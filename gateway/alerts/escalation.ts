/**
 * Escalation: an announced P1/P2 that nobody acknowledges is escalated after
 * its first interval, then again at growing intervals (factor, capped). Its
 * state is the alert's plain fields (level, nextAt), so it survives a restart.
 */
import { WheelTimer } from "../time/timer-wheel.js";
import type { Alert } from "./alert.js";
import { BY_GATEWAY, Policy, type PolicyHost } from "./ports.js";
import { HOLD_OUT_OF_SERVICE } from "./service.js";
import { HOLD_SHELVED } from "./shelving.js";

export interface EscalationOptions {
  /** First escalation of an unacknowledged P1 / P2 after this; 0 disables. */
  escalationP1Ms?: number;
  escalationP2Ms?: number;
  /** Each further escalation waits this factor longer ... */
  escalationFactor?: number;
  /** ... but never longer than this. */
  escalationMaxIntervalMs?: number;
}

export class Escalation extends Policy {
  // Not readonly: a live reload changes them (setOptions).
  private escalationP1Ms: number;
  private escalationP2Ms: number;
  private escalationFactor: number;
  private escalationMaxMs: number;

  constructor(host: PolicyHost, opts: EscalationOptions) {
    super(host);
    this.escalationP1Ms = opts.escalationP1Ms ?? 60_000;
    this.escalationP2Ms = opts.escalationP2Ms ?? 300_000;
    this.escalationFactor = Math.max(1, opts.escalationFactor ?? 2);
    this.escalationMaxMs = opts.escalationMaxIntervalMs ?? 900_000;
  }

  /** New figures; the caller re-syncs the open alerts. */
  setOptions(opts: EscalationOptions): void {
    this.escalationP1Ms = opts.escalationP1Ms ?? this.escalationP1Ms;
    this.escalationP2Ms = opts.escalationP2Ms ?? this.escalationP2Ms;
    this.escalationFactor = Math.max(1, opts.escalationFactor ?? this.escalationFactor);
    this.escalationMaxMs = opts.escalationMaxIntervalMs ?? this.escalationMaxMs;
  }

  /** An escalation that fell due while the gateway was down happens now; returns whether it did. */
  fireOverdue(alert: Alert, now: number): boolean {
    const t = alert.escalationTimer;
    if (t?.armed && alert.escalationNextAt !== null && alert.escalationNextAt <= now) {
      this.wheel.disarm(t);
      if (!alert.isOpen || !alert.unacknowledged) return false;
      // On schedule (docs/durability.md "Recovery at start"): the levels that fell due while the
      // gateway was down (or whose records a power cut lost) are counted, and the next one is due
      // when it would have been, not an interval after the start; published once, at that level.
      let level = alert.escalationLevel + 1;
      let next = alert.escalationNextAt + this.intervalAfter(alert, level);
      while (next <= now) {
        const step = this.intervalAfter(alert, level + 1);
        if (step === this.intervalAfter(alert, level + 2)) {
          // Capped: every later interval is this one (a month down is one division, not a loop).
          const n = Math.floor((now - next) / step) + 1;
          level += n;
          next += n * step;
        } else {
          level++;
          next += step;
        }
      }
      this.escalateTo(alert, level, next, now);
      return true;
    }
    return false;
  }

  /** How long after escalation `level` the next one is due. */
  private intervalAfter(alert: Alert, level: number): number {
    const first = this.firstEscalationMs(alert);
    return Math.max(Math.min(first * this.escalationFactor ** level, this.escalationMaxMs), 1000);
  }

  stop(alert: Alert): void {
    if (alert.escalationTimer) this.wheel.disarm(alert.escalationTimer);
  }

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
  syncEscalation(alert: Alert): void {
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
    const level = alert.escalationLevel + 1;
    this.escalateTo(alert, level, now + this.intervalAfter(alert, level), now);
  };

  private escalateTo(alert: Alert, level: number, nextAt: number, now: number): void {
    alert.escalationLevel = level;
    alert.escalationNextAt = nextAt;
    const unackFor = now - alert.unackSince;
    // Journaled by the emit before it is announced, like every other change.
    this.emit(alert, "escalated", BY_GATEWAY, `unacknowledged for ${Math.round(unackFor / 1000)} s`, true);
    // After the emit, which gives the escalation its rev: the escalations topic and the retained
    // alert name it by the same `id` + `rev`.
    this.listener.escalated?.(alert, alert.escalationLevel, unackFor);
  }
}
