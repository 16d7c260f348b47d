/**
 * Shelving (ISA-18.2): an operator silences a (subject, code) for a limited
 * time; its alerts are tracked but held (HOLD_SHELVED) until the time is up
 * or an operator unshelves, which publishes what is open as it is now.
 */
import type { AlertCode } from "../../core/index.js";
import { moveLive } from "../moved-times.js";
import { WheelTimer } from "../time/timer-wheel.js";
import type { Alert, AlertSubject, Transition } from "./alert.js";
import { BY_GATEWAY, Policy, type PolicyHost, type ShelveRecord } from "./ports.js";

/** Hold bit: an operator shelved the alert's (subject, code). */
export const HOLD_SHELVED = 8;

export type ShelveOutcome =
  | { ok: true; alert: Alert }
  | { ok: false; reason: "unknown-alert" | "p1-not-shelvable" | "shelve-too-long" };

export type UnshelveOutcome = { ok: true; alert: Alert | null } | { ok: false; reason: "not-shelved" };

/** What shelving keeps per (subject, code): the engine's key state has these fields. */
export interface ShelveKey {
  readonly alert: Alert | null;
  readonly owner: { readonly subject: AlertSubject };
  readonly code: AlertCode;
  shelveId: string | null;
  shelvedBy: string | null;
  shelvedByAccount: string | null;
  shelvedAt: number;
  shelvedUntil: number | null;
  shelveReason: string | null;
  shelveTimer: WheelTimer | null;
}

/** What shelving looks up in the engine's core. */
export interface ShelveKeys<K extends ShelveKey> {
  readonly byId: ReadonlyMap<string, Alert>;
  keyOf(alert: Alert): K | undefined;
  key(subject: AlertSubject, code: AlertCode): K;
  forgetKeyIfIdle(ks: K): void;
}

export class Shelving<K extends ShelveKey> extends Policy {
  /** Shelved keys by the alert id they were shelved with (the alert may have closed since). */
  private readonly shelvedById = new Map<string, K>();
  private readonly byId: ReadonlyMap<string, Alert>;
  private readonly keyOf: (alert: Alert) => K | undefined;
  private readonly key: (subject: AlertSubject, code: AlertCode) => K;
  private readonly forgetKeyIfIdle: (ks: K) => void;

  constructor(
    host: PolicyHost,
    keys: ShelveKeys<K>,
    /** Longest shelving an operator may ask for (ISA-18.2: shelving is always time-limited). */
    public shelveMaxMs: number,
  ) {
    super(host);
    this.byId = keys.byId;
    this.keyOf = (a) => keys.keyOf(a);
    this.key = (s, c) => keys.key(s, c);
    this.forgetKeyIfIdle = (ks) => keys.forgetKeyIfIdle(ks);
  }

  /**
   * Shelves the alert's (device, code) for `durationMs`: this alert and any
   * new one of the same code from the same device are not annunciated until
   * the time is up or an operator unshelves. P1 is never shelvable: a life-
   * safety alarm must not be silenced from a console (ISA-18.2 lets the
   * alarm philosophy exclude alarms from shelving; ours excludes P1).
   */
  shelve(
    alertId: string,
    by: string,
    durationMs: number,
    reason: string | null,
    account: string | null = null,
  ): ShelveOutcome {
    const alert = this.byId.get(alertId);
    if (!alert) return { ok: false, reason: "unknown-alert" };
    if (alert.priority === 1) return { ok: false, reason: "p1-not-shelvable" };
    if (durationMs > this.shelveMaxMs) return { ok: false, reason: "shelve-too-long" };
    const ks = this.keyOf(alert)!;
    const now = this.clock.now();
    if (ks.shelveId !== null) this.shelvedById.delete(ks.shelveId);
    ks.shelveId = alert.id;
    ks.shelvedBy = by;
    ks.shelvedByAccount = account;
    ks.shelvedAt = now;
    ks.shelvedUntil = now + durationMs;
    ks.shelveReason = reason;
    this.shelvedById.set(alert.id, ks);
    ks.shelveTimer ??= new WheelTimer(this.shelveExpired, ks);
    this.wheel.arm(ks.shelveTimer, ks.shelvedUntil);
    this.recorder?.shelve(ks.owner.subject.id, ks.code, {
      id: alert.id,
      by,
      account,
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

  /** Shelving that was running before the restart; one already over ends now, as it would have. */
  restoreShelve(subject: AlertSubject, code: AlertCode, rec: ShelveRecord): void {
    const ks = this.key(subject, code);
    ks.shelveId = rec.id;
    ks.shelvedBy = rec.by;
    ks.shelvedByAccount = rec.account ?? null;
    ks.shelvedAt = rec.at;
    ks.shelvedUntil = rec.until;
    ks.shelveReason = rec.reason;
    this.shelvedById.set(rec.id, ks);
    ks.shelveTimer ??= new WheelTimer(this.shelveExpired, ks);
    this.wheel.arm(ks.shelveTimer, rec.until);
  }

  /**
   * The wall clock stepped by `stepMs` while running: every shelving's end moves with it (its
   * timer, on elapsed time, already did) and is journaled so. Alerts' copies move with their own.
   */
  shiftTimes(stepMs: number): void {
    for (const ks of this.shelvedById.values()) {
      if (ks.shelvedUntil === null || ks.shelveId === null) continue;
      moveLive("shelve", ks, stepMs);
      this.recorder?.shelve(ks.owner.subject.id, ks.code, {
        id: ks.shelveId,
        by: ks.shelvedBy ?? "",
        account: ks.shelvedByAccount,
        at: ks.shelvedAt,
        until: ks.shelvedUntil,
        reason: ks.shelveReason,
      });
    }
  }

  /** An alert read back after a restart: held while its key's restored shelving lasts. */
  restoredHold(ks: K): number {
    if (ks.shelvedUntil !== null && ks.shelveId !== null) this.shelvedById.set(ks.shelveId, ks);
    return ks.shelvedUntil !== null ? HOLD_SHELVED : 0;
  }

  /**
   * Shelvings that fell due while the gateway was down end now, each alert shown again as of its
   * shelving's end: its unacknowledged time (and so its escalation, which the caller catches up
   * with the alert each step yields, null when the shelving had no open alert) counts from then,
   * as it would have without the restart, not from the start. One shelving per step.
   */
  *fireOverdueSteps(now: number): Generator<Alert | null, void, void> {
    for (const ks of [...this.shelvedById.values()]) {
      const t = ks.shelveTimer;
      const until = ks.shelvedUntil;
      if (t?.armed && until !== null && until <= now) {
        this.wheel.disarm(t);
        this.endShelve(ks, "shelve-expired", BY_GATEWAY, "shelving time is up", until);
        yield ks.alert?.isOpen ? ks.alert : null;
      }
    }
  }

  /** A new alert of a shelved key is shelved from the start. */
  noteNew(ks: K, alert: Alert): void {
    if (ks.shelvedUntil !== null) this.applyShelve(ks, alert);
  }

  /** Nothing left to remember (the key may be forgotten). */
  idle(ks: K): boolean {
    return ks.shelvedUntil === null;
  }

  stop(ks: K): void {
    if (ks.shelveTimer) this.wheel.disarm(ks.shelveTimer);
  }

  /** The subject left the configuration: its shelving goes with it (and out of the journal). */
  reset(ks: K): void {
    if (ks.shelveId !== null) this.shelvedById.delete(ks.shelveId);
    if (ks.shelveTimer) this.wheel.disarm(ks.shelveTimer);
    if (ks.shelvedUntil !== null) this.recorder?.shelve(ks.owner.subject.id, ks.code, null);
    ks.shelveId = null;
    ks.shelvedUntil = null;
  }

  private applyShelve(ks: K, alert: Alert): void {
    alert.shelvedBy = ks.shelvedBy;
    alert.shelvedByAccount = ks.shelvedByAccount;
    alert.shelvedAt = ks.shelvedAt;
    alert.shelvedUntil = ks.shelvedUntil;
    alert.shelveReason = ks.shelveReason;
    alert.holds |= HOLD_SHELVED;
  }

  private readonly shelveExpired = (timer: WheelTimer): void => {
    this.endShelve(timer.owner as K, "shelve-expired", BY_GATEWAY, "shelving time is up");
  };

  /** `shownAt`: when the alert is shown again (now, or a shelving's end that fell while down). */
  private endShelve(ks: K, t: Transition, by: string, reason: string, shownAt = this.clock.now()): void {
    if (ks.shelveId !== null) this.shelvedById.delete(ks.shelveId);
    if (ks.shelveTimer) this.wheel.disarm(ks.shelveTimer);
    ks.shelveId = ks.shelvedBy = ks.shelvedByAccount = ks.shelveReason = null;
    ks.shelvedUntil = null;
    const a = ks.alert;
    if (a) {
      a.shelvedBy = a.shelvedByAccount = a.shelveReason = null;
      a.shelvedAt = a.shelvedUntil = null;
      a.holds &= ~HOLD_SHELVED;
      a.reannunciate(shownAt);
      this.emit(a, t, by, reason, true);
    }
    // The shelving record goes after the alert's return (as the service record, service.ts): a
    // tail torn between them keeps the alert shelved, and the request sent again (or, for a
    // shelving that ran out, the start) shows it again; deleted first, the restart showed it
    // without its return, its escalation counted from before it was shelved.
    this.recorder?.shelve(ks.owner.subject.id, ks.code, null);
    this.forgetKeyIfIdle(ks);
  }
}
