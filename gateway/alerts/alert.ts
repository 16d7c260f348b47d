/**
 * One alert and its lifecycle (the issue-2 cut of ISA-18.2 / IEC 62682):
 *
 *                 raise                       ack
 *   (none) ───────────────► active-unack ─────────────► active-ack
 *                             │      ▲                     │
 *                       clear │      │ occurs again        │ clear
 *                             ▼      │ (count + 1)         ▼
 *                        cleared-unack ──── ack ───────► closed
 *
 * A new occurrence of an open alert (another press, the door re-opened)
 * returns it to active-unacknowledged: someone must look again.
 * Transitions are methods that return false when they do not apply, so the
 * engine publishes only real changes.
 */

import type { AlertCode, AlertState, AlertView, DeviceModel, Priority } from "../model.js";
import type { WheelTimer } from "../time/timer-wheel.js";

export interface AlertSubject {
  /** Device id, or household id for household alerts (WELFARE_CHECK). */
  readonly id: string;
  readonly model: DeviceModel | "household";
  readonly household: string | null;
}

export type Transition =
  | "raised"
  | "repeated"
  | "reactivated"
  | "acknowledged"
  | "cleared"
  | "closed"
  | "cancelled-by-resident"
  | "delivered";

export class Alert {
  state: AlertState = "active-unacknowledged";
  updatedAt: number;
  count = 1;
  causes: string[];
  cancelledByResident = false;
  ackedBy: string | null = null;
  ackedAt: number | null = null;
  ackNote: string | null = null;
  clearedAt: number | null = null;
  urgent: boolean;
  test: boolean;
  detail: Record<string, number | string | boolean>;
  /** Momentary alerts (calls, falls): until when another occurrence counts as the same alert. */
  windowUntil = 0;
  /** Timer for the momentary window; set by the engine. */
  timer: WheelTimer | null = null;

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
  ) {
    this.updatedAt = raisedAt;
    this.causes = [...causes];
    this.urgent = urgent;
    this.test = test;
    this.detail = { ...detail };
  }

  get isOpen(): boolean {
    return this.state !== "closed";
  }

  get conditionActive(): boolean {
    return this.state === "active-unacknowledged" || this.state === "active-acknowledged";
  }

  /** Another occurrence while open: counts, and needs an operator again. */
  occur(now: number, causes: readonly string[]): Transition {
    this.count++;
    this.addCauses(causes);
    this.updatedAt = now;
    const wasActive = this.conditionActive;
    this.state = "active-unacknowledged";
    this.clearedAt = null;
    return wasActive ? "repeated" : "reactivated";
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

  acknowledge(now: number, by: string, note: string | null): Transition | null {
    if (this.state === "active-unacknowledged") this.state = "active-acknowledged";
    else if (this.state === "cleared-unacknowledged") this.state = "closed";
    else return null;
    this.ackedBy = by;
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

  markCancelled(now: number): boolean {
    if (this.cancelledByResident || !this.isOpen) return false;
    this.cancelledByResident = true;
    this.updatedAt = now;
    return true;
  }

  view(): AlertView {
    return {
      id: this.id,
      code: this.code,
      priority: this.priority,
      state: this.state,
      site: this.site,
      deviceId: this.subject.id,
      model: this.subject.model,
      household: this.subject.household,
      raisedAt: this.raisedAt,
      updatedAt: this.updatedAt,
      count: this.count,
      causes: this.causes,
      cancelledByResident: this.cancelledByResident,
      ackedBy: this.ackedBy,
      ackedAt: this.ackedAt,
      ackNote: this.ackNote,
      clearedAt: this.clearedAt,
      urgent: this.urgent,
      test: this.test,
      detail: this.detail,
    };
  }
}
