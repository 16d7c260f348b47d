/**
 * Out of service (ISA-18.2): an operator takes a device out of service; its
 * open alerts are published once as out-of-service, then held
 * (HOLD_OUT_OF_SERVICE), new ones tracked but not published (P1 excepted)
 * and never escalated. Back in service publishes whatever is open, as it is now.
 */
import type { AlertCode } from "../../core/index.js";
import type { Alert, AlertSubject } from "./alert.js";
import { Policy, type PolicyHost } from "./ports.js";

/** Hold bit: an operator took the alert's device out of service. */
export const HOLD_OUT_OF_SERVICE = 4;

export type ServiceOutcome =
  | { ok: true; alerts: number }
  | { ok: false; reason: "already-out-of-service" | "already-in-service" };

/** What out of service keeps per subject: the engine's subject state has these fields. */
export interface ServiceSubject {
  readonly subject: AlertSubject;
  readonly keys: ReadonlyMap<AlertCode, { readonly alert: Alert | null }>;
  outOfServiceBy: string | null;
  outOfServiceByAccount: string | null;
  outOfServiceAt: number;
}

/** What out of service looks up in the engine's core. */
export interface ServiceSubjects<S extends ServiceSubject> {
  readonly subjects: ReadonlyMap<string, S>;
  subjectState(subject: AlertSubject): S;
  forgetSubjectIfIdle(ss: S): void;
}

export class OutOfService<S extends ServiceSubject> extends Policy {
  private readonly subjects: ReadonlyMap<string, S>;
  private readonly subjectState: (subject: AlertSubject) => S;
  private readonly forgetSubjectIfIdle: (ss: S) => void;

  constructor(host: PolicyHost, subjects: ServiceSubjects<S>) {
    super(host);
    this.subjects = subjects.subjects;
    this.subjectState = (s) => subjects.subjectState(s);
    this.forgetSubjectIfIdle = (ss) => subjects.forgetSubjectIfIdle(ss);
  }

  setOutOfService(
    subject: AlertSubject,
    outOfService: boolean,
    by: string,
    reason: string | null,
    account: string | null = null,
  ): ServiceOutcome {
    const now = this.clock.now();
    let ss = this.subjects.get(subject.id);
    if (outOfService) {
      if (ss?.outOfServiceBy != null) return { ok: false, reason: "already-out-of-service" };
      ss ??= this.subjectState(subject);
      ss.outOfServiceBy = by;
      ss.outOfServiceByAccount = account;
      ss.outOfServiceAt = now;
      this.recorder?.service(subject, by, now, account);
      let n = 0;
      for (const ks of ss.keys.values()) {
        const a = ks.alert;
        if (!a) continue;
        a.outOfServiceBy = by;
        a.outOfServiceByAccount = account;
        a.holds |= HOLD_OUT_OF_SERVICE;
        a.updatedAt = now;
        this.emit(a, "out-of-service", by, reason ?? "out of service", true);
        n++;
      }
      return { ok: true, alerts: n };
    }
    if (!ss || ss.outOfServiceBy === null) return { ok: false, reason: "already-in-service" };
    ss.outOfServiceBy = ss.outOfServiceByAccount = null;
    let n = 0;
    for (const ks of [...ss.keys.values()]) {
      const a = ks.alert;
      if (!a) continue;
      a.outOfServiceBy = a.outOfServiceByAccount = null;
      a.holds &= ~HOLD_OUT_OF_SERVICE;
      // Escalation counts from now: while out of service nobody was meant to act.
      if (a.unacknowledged) a.unackSince = now;
      a.updatedAt = now;
      this.emit(a, "in-service", by, reason ?? "back in service", true);
      n++;
    }
    // The service record goes last: a power cut that keeps part of this (a torn tail keeps a prefix
    // of the records) leaves the device out of service, with its alerts held as the restart reads
    // them, and the operator's request, sent again, completes it. Deleted first, it left a device
    // in service whose alerts' return was lost: their escalation counted from before the device
    // went out of service (a P1 at level 3 at once), and the request sent again was refused
    // (already-in-service). Found by test/powercut-model.e2e.test.ts.
    this.recorder?.service(subject, null, now);
    this.forgetSubjectIfIdle(ss);
    return { ok: true, alerts: n };
  }

  restoreService(subject: AlertSubject, by: string, at: number, account: string | null = null): void {
    const ss = this.subjectState(subject);
    ss.outOfServiceBy = by;
    ss.outOfServiceByAccount = account;
    ss.outOfServiceAt = at;
  }

  /** A new alert (or one read back after a restart) of a subject out of service is held. */
  noteNew(ss: S, alert: Alert): void {
    if (ss.outOfServiceBy !== null) {
      alert.outOfServiceBy = ss.outOfServiceBy;
      alert.outOfServiceByAccount = ss.outOfServiceByAccount;
      alert.holds |= HOLD_OUT_OF_SERVICE;
    }
  }

  /** The out-of-service hold of an alert read back after a restart. */
  restoredHold(ss: S, alert: Alert): number {
    alert.outOfServiceBy = ss.outOfServiceBy;
    alert.outOfServiceByAccount = ss.outOfServiceByAccount;
    return ss.outOfServiceBy !== null ? HOLD_OUT_OF_SERVICE : 0;
  }

  /** Nothing left to remember (the subject may be forgotten, as far as service goes). */
  idle(ss: S): boolean {
    return ss.outOfServiceBy === null;
  }

  /** The subject left the configuration: out of the journal too. */
  reset(ss: S, now: number): void {
    if (ss.outOfServiceBy !== null) this.recorder?.service(ss.subject, null, now);
  }
}
