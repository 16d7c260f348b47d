/**
 * One alert and its lifecycle, after ISA-18.2 / IEC 62682 (docs/topics.md, "Lifecycle").
 *
 * `state` is the acknowledgement lifecycle, unchanged since topics 0.1.0:
 *
 *                 raise                       ack
 *   (normal) ─────────────► active-unack ─────────────► active-ack
 *                             │      ▲                     │
 *                       clear │      │ occurs again        │ clear
 *                             ▼      │ (count + 1)         ▼
 *                        cleared-unack ──── ack ───────► closed
 *
 * Orthogonal to it, the ISA-18.2 "suppressed alarm" states (not annunciated):
 * shelved (an operator, for a stated time), suppressed by design (test mode,
 * maintenance) and out of service (an operator took the device out). They are
 * plain fields here and `suppression` in the view, so 0.1 consumers that
 * only read `state` keep working.
 *
 * Every field that matters after a restart is a plain value (no closures), so
 * a durable journal can store and restore an alert, escalation included.
 */

import type { AlertCode, AlertState, AlertView, DeviceModel, Priority } from "../../core/index.js";
import type { WheelTimer } from "../time/timer-wheel.js";

export interface AlertSubject {
  /** Device id, household id for household alerts (WELFARE_CHECK), or "gateway" for its own. */
  readonly id: string;
  readonly model: DeviceModel | "household" | "gateway";
  readonly household: string | null;
}

/** Why an alert is suppressed by design (ISA-18.2 "designed suppression"). */
export type SuppressReason = "test" | "maintenance";

/** Why an alert was closed and a new one raised in its place (docs/topics.md, MFS-8 FAULT; 0.13.7). */
export type ReplacedFor = { priority: Priority } | { ended: SuppressReason };

/**
 * Why the gateway closed an alert whose subject left the configuration (docs/reload.md): the
 * device or household removed, or another model now under the device's id; or whose cause the
 * configuration itself ended (CONFIG_REFUSED once a valid site file is applied: `corrected`, by a
 * reload or at a start of the gateway).
 */
export type SubjectGone =
  | { removed: "device" | "household" }
  | { model: string }
  | { corrected: "reload" | "start" };

/** The ISA-18.2 suppressed-alarm states, shown as `suppression` (null: annunciated). */
export type Suppression = "shelved" | "suppressed" | "out-of-service";

/** The state vocabulary of `from`/`to` in transition events: lifecycle or suppression, plus normal. */
export type IsaState = "normal" | AlertState | Suppression;

export type Transition =
  // topics 0.1.0: the acknowledgement lifecycle
  | "raised"
  | "repeated"
  | "reactivated"
  | "acknowledged"
  | "cleared"
  | "closed"
  | "cancelled-by-resident"
  | "delivered"
  // topics 0.2.0: suppression, chattering, escalation, flood
  | "shelved"
  | "unshelved"
  | "shelve-expired"
  | "out-of-service"
  | "in-service"
  | "chattering"
  | "chattering-ended"
  | "flood-released"
  | "escalated"
  // topics 0.12.0: an open condition whose causes or readings changed (before: "repeated")
  | "changed";

/*
 * Hold bits (`Alert.holds`): why device-driven changes of an alert are tracked but not
 * published. Each belongs to the policy that sets and clears it: HOLD_CHATTER = 1
 * (chattering.ts), HOLD_FLOOD = 2 (flood.ts), HOLD_OUT_OF_SERVICE = 4 (service.ts),
 * HOLD_SHELVED = 8 (shelving.ts). The values are journaled: never renumber one.
 */

/** The alert as published (0.1.0 fields plus the 0.2.0 lifecycle ones; docs/topics.md). */
export interface AlertPayload extends AlertView {
  /** The operator account that acknowledged it (`ackedBy` is the request's free text). */
  ackedByAccount: string | null;
  suppression: Suppression | null;
  suppressedFor: SuppressReason | null;
  shelvedBy: string | null;
  /** The operator account that shelved it (`shelvedBy` is the request's free text). */
  shelvedByAccount: string | null;
  shelvedAt: number | null;
  shelvedUntil: number | null;
  shelveReason: string | null;
  outOfServiceBy: string | null;
  /** The operator account that took the device out of service. */
  outOfServiceByAccount: string | null;
  chattering: boolean;
  escalationLevel: number;
  escalationNextAt: number | null;
  rev: number;
}

export class Alert {
  /**
   * The household it was raised in, kept until it closes: the subject's entry follows the site
   * file, and a device a reload moved to another household would have the operator call that
   * household about this one's press (docs/reload.md). Names are still read from the file.
   */
  readonly household: string | null;
  state: AlertState = "active-unacknowledged";
  updatedAt: number;
  count = 1;
  causes: string[];
  cancelledByResident = false;
  ackedBy: string | null = null;
  /** The operator account that acknowledged it (`ackedBy` is the request's free text). */
  ackedByAccount: string | null = null;
  ackedAt: number | null = null;
  ackNote: string | null = null;
  clearedAt: number | null = null;
  urgent: boolean;
  test: boolean;
  detail: Record<string, number | string | boolean>;
  /** Momentary alerts (calls, falls): until when another occurrence counts as the same alert. */
  windowUntil = 0;
  /** Timer for the momentary window or a pending off-delay; set by the engine. */
  timer: WheelTimer | null = null;

  // --- suppression, holds, escalation (plain, serialisable) ---
  /** Suppressed by design when raised (fixed for the alert's life: it is never paged). */
  suppressedFor: SuppressReason | null;
  shelvedBy: string | null = null;
  shelvedByAccount: string | null = null;
  shelvedAt: number | null = null;
  shelvedUntil: number | null = null;
  shelveReason: string | null = null;
  outOfServiceBy: string | null = null;
  outOfServiceByAccount: string | null = null;
  chattering = false;
  /** HOLD_* bits (see above), 0 when nothing holds it. */
  holds = 0;
  /** Some state of this alert has been published (a retained copy may exist). */
  announced = false;
  /** Since when nobody has acknowledged it (the escalation clock). */
  unackSince: number;
  escalationLevel = 0;
  escalationNextAt: number | null = null;
  /** Escalates on the P1 schedule while keeping its own priority (LV-4 WATER_LEVEL_CRITICAL); null: its own. */
  escalateAs: 1 | null = null;
  /** Escalation timer (allocated on first use); set by the engine. */
  escalationTimer: WheelTimer | null = null;
  /** The ISA state last published in an event: `from` of the next one. */
  lastIsa: IsaState = "normal";
  /**
   * Published changes so far: `rev` in the alert's JSON and the second half of an
   * event's `eventId`, so a consumer that sees a message twice (an upstream
   * re-send after a restart) can drop the copy.
   */
  rev = 0;
  /**
   * Why the gateway closed this alert for a new one in its place (the live condition's priority
   * changed, or its suppression by design ended): the operator's message says so, so a closed
   * fault is not read as a fault gone. Null for any other close.
   */
  replacedFor: ReplacedFor | null = null;
  /**
   * Why the gateway closed this alert when its subject left the configuration: the operator's
   * message says so, so an unacknowledged call is not read as handled. Null for any other close.
   */
  goneFor: SubjectGone | null = null;
  /** The transition of the last published change (republished as it was after a restart). */
  lastTransition: Transition = "raised";
  /**
   * A held change (chattering, shelved, flood, out of service) made the state differ from the one
   * published as `rev`: republishing it must take a new rev, never reuse the old one.
   */
  unpublished = false;

  constructor(
    readonly id: string,
    readonly code: AlertCode,
    readonly priority: Priority,
    readonly site: string,
    readonly subject: AlertSubject,
    readonly raisedAt: number,
    readonly topic: string,
    causes: readonly string[],
    urgent: boolean,
    test: boolean,
    detail: Record<string, number | string | boolean>,
    suppressedFor: SuppressReason | null = test ? "test" : null,
    household: string | null = subject.household,
  ) {
    this.household = household;
    this.updatedAt = raisedAt;
    this.unackSince = raisedAt;
    this.causes = [...causes];
    this.urgent = urgent;
    this.test = test;
    this.detail = { ...detail };
    this.suppressedFor = suppressedFor;
  }

  /** An event alert (EMERGENCY_CALL, FALL_DETECTED: docs/topics.md): no "normal" to return to, only a call window that ends. */
  get momentary(): boolean {
    return this.windowUntil > 0;
  }

  get isOpen(): boolean {
    return this.state !== "closed";
  }

  get conditionActive(): boolean {
    return this.state === "active-unacknowledged" || this.state === "active-acknowledged";
  }

  get unacknowledged(): boolean {
    return this.state === "active-unacknowledged" || this.state === "cleared-unacknowledged";
  }

  /** ISA-18.2 precedence: out of service, then suppressed by design, then shelved. */
  get suppression(): Suppression | null {
    if (this.outOfServiceBy !== null) return "out-of-service";
    if (this.suppressedFor !== null) return "suppressed";
    if (this.shelvedUntil !== null) return "shelved";
    return null;
  }

  /** The state named in transition events (`from`/`to`). */
  get isaState(): IsaState {
    if (this.state === "closed") return "closed";
    return this.suppression ?? this.state;
  }

  /** Another occurrence while open: counts, and needs an operator again. */
  occur(now: number, causes: readonly string[]): Transition {
    this.count++;
    this.addCauses(causes);
    this.updatedAt = now;
    const wasActive = this.conditionActive;
    if (!this.unacknowledged) this.unackSince = now;
    this.state = "active-unacknowledged";
    this.clearedAt = null;
    return wasActive ? "repeated" : "reactivated";
  }

  /**
   * A condition reported again: its causes become the live ones and the detail
   * fields it names take their live values (fields it does not name, such as
   * `residentNotified`, stay). Returns whether anything changed.
   */
  describe(
    causes: readonly string[] | undefined,
    detail: Readonly<Record<string, number | string | boolean>> | undefined,
  ): boolean {
    let changed = false;
    if (
      causes !== undefined &&
      (causes.length !== this.causes.length || causes.some((c, i) => c !== this.causes[i]))
    ) {
      this.causes = [...causes];
      changed = true;
    }
    if (detail !== undefined)
      for (const [k, v] of Object.entries(detail)) {
        if (this.detail[k] === v) continue;
        this.detail[k] = v;
        changed = true;
      }
    return changed;
  }

  addCauses(causes: readonly string[]): boolean {
    let added = false;
    for (const c of causes) {
      if (!this.causes.includes(c)) {
        this.causes.push(c);
        added = true;
      }
    }
    return added;
  }

  acknowledge(
    now: number,
    by: string,
    note: string | null,
    account: string | null = null,
  ): Transition | null {
    if (this.state === "active-unacknowledged") this.state = "active-acknowledged";
    else if (this.state === "cleared-unacknowledged") this.state = "closed";
    else return null;
    this.ackedBy = by;
    this.ackedByAccount = account;
    this.ackedAt = now;
    this.ackNote = note;
    this.updatedAt = now;
    return this.state === "closed" ? "closed" : "acknowledged";
  }

  /** The condition returned to normal. */
  clear(now: number): Transition | null {
    if (this.state === "active-unacknowledged") this.state = "cleared-unacknowledged";
    else if (this.state === "active-acknowledged") this.state = "closed";
    else return null;
    this.clearedAt = now;
    this.updatedAt = now;
    return this.state === "closed" ? "closed" : "cleared";
  }

  /**
   * Closed by the gateway whatever its state (its device left the configuration,
   * or its condition now has another priority). Returns null if already closed.
   */
  close(now: number): Transition | null {
    if (this.state === "closed") return null;
    this.state = "closed";
    this.updatedAt = now;
    this.clearedAt ??= now;
    return "closed";
  }

  /**
   * Shelving ended with the condition still active: annunciated again as
   * unacknowledged (ISA-18.2: an unshelved alarm returns to its current state
   * and must be acknowledged anew if it is still in alarm).
   */
  reannunciate(now: number): void {
    if (this.conditionActive) this.state = "active-unacknowledged";
    // Escalation counts from the moment it is shown again, not from before it was shelved.
    if (this.unacknowledged) this.unackSince = now;
    this.updatedAt = now;
  }

  markCancelled(now: number): boolean {
    if (this.cancelledByResident || !this.isOpen) return false;
    this.cancelledByResident = true;
    this.updatedAt = now;
    return true;
  }

  view(): AlertPayload {
    return {
      id: this.id,
      code: this.code,
      priority: this.priority,
      state: this.state,
      site: this.site,
      deviceId: this.subject.id,
      model: this.subject.model,
      household: this.household,
      raisedAt: this.raisedAt,
      updatedAt: this.updatedAt,
      count: this.count,
      causes: this.causes,
      cancelledByResident: this.cancelledByResident,
      ackedBy: this.ackedBy,
      ackedByAccount: this.ackedByAccount,
      ackedAt: this.ackedAt,
      ackNote: this.ackNote,
      clearedAt: this.clearedAt,
      urgent: this.urgent,
      test: this.test,
      detail: this.detail,
      suppression: this.suppression,
      suppressedFor: this.suppressedFor,
      shelvedBy: this.shelvedBy,
      shelvedByAccount: this.shelvedByAccount,
      shelvedAt: this.shelvedAt,
      shelvedUntil: this.shelvedUntil,
      shelveReason: this.shelveReason,
      outOfServiceBy: this.outOfServiceBy,
      outOfServiceByAccount: this.outOfServiceByAccount,
      chattering: this.chattering,
      escalationLevel: this.escalationLevel,
      escalationNextAt: this.escalationNextAt,
      rev: this.rev,
    };
  }
}
