/**
 * An alert as a plain record for the journal, and back. Every field that
 * matters after a restart is kept, so a restored alert is published exactly
 * as it was (same id, state, rev) and its escalation runs on schedule.
 */

import type { AlertCode, AlertState, Priority } from "../../core/index.js";
import {
  Alert,
  type AlertSubject,
  type IsaState,
  type SuppressReason,
  type Transition,
} from "../alerts/alert.js";

export interface AlertRecord {
  id: string;
  code: AlertCode;
  priority: Priority;
  subject: string;
  model: AlertSubject["model"];
  household: string | null;
  raisedAt: number;
  topic: string;
  state: AlertState;
  updatedAt: number;
  count: number;
  causes: string[];
  cancelledByResident: boolean;
  ackedBy: string | null;
  /** Absent in records written before it existed: null. */
  ackedByAccount?: string | null;
  ackedAt: number | null;
  ackNote: string | null;
  clearedAt: number | null;
  urgent: boolean;
  test: boolean;
  detail: Record<string, number | string | boolean>;
  windowUntil: number;
  suppressedFor: SuppressReason | null;
  shelvedBy: string | null;
  /** Absent in records written before it existed: null. */
  shelvedByAccount?: string | null;
  shelvedAt: number | null;
  shelvedUntil: number | null;
  shelveReason: string | null;
  outOfServiceBy: string | null;
  /** Absent in records written before it existed: null. */
  outOfServiceByAccount?: string | null;
  chattering: boolean;
  holds: number;
  announced: boolean;
  unackSince: number;
  escalationLevel: number;
  escalationNextAt: number | null;
  /** Absent in records written before it existed: the alert's own schedule. */
  escalateAs?: 1 | null;
  lastIsa: IsaState;
  rev: number;
  lastTransition: Transition;
  /** Absent in records written before it existed: false. */
  unpublished?: boolean;
}

export function alertRecord(a: Alert): AlertRecord {
  return {
    id: a.id,
    code: a.code,
    priority: a.priority,
    subject: a.subject.id,
    model: a.subject.model,
    household: a.household,
    raisedAt: a.raisedAt,
    topic: a.topic,
    state: a.state,
    updatedAt: a.updatedAt,
    count: a.count,
    causes: a.causes,
    cancelledByResident: a.cancelledByResident,
    ackedBy: a.ackedBy,
    ackedByAccount: a.ackedByAccount,
    ackedAt: a.ackedAt,
    ackNote: a.ackNote,
    clearedAt: a.clearedAt,
    urgent: a.urgent,
    test: a.test,
    detail: a.detail,
    windowUntil: a.windowUntil,
    suppressedFor: a.suppressedFor,
    shelvedBy: a.shelvedBy,
    shelvedByAccount: a.shelvedByAccount,
    shelvedAt: a.shelvedAt,
    shelvedUntil: a.shelvedUntil,
    shelveReason: a.shelveReason,
    outOfServiceBy: a.outOfServiceBy,
    outOfServiceByAccount: a.outOfServiceByAccount,
    chattering: a.chattering,
    holds: a.holds,
    announced: a.announced,
    unackSince: a.unackSince,
    escalationLevel: a.escalationLevel,
    escalationNextAt: a.escalationNextAt,
    escalateAs: a.escalateAs,
    lastIsa: a.lastIsa,
    rev: a.rev,
    lastTransition: a.lastTransition,
    unpublished: a.unpublished,
  };
}

/**
 * The alert state in a press's pair record (since 2026-12-06): a positional array, the layout's
 * version first, then every field of AlertRecord in ALERT_FIELDS_V1's order. No keys: 247 bytes of
 * CBOR for a raised EMERGENCY_CALL against 668 as a map, and a quarter of the encoding time. A
 * layout is never changed once written: a new field is a new version, and every version stays
 * readable (readAlertRecord). docs/durability.md "Record encodings".
 */
export const ALERT_LAYOUT_V1 = 1;

/** ALERT_LAYOUT_V1's fields, in order (packedAlertRecord writes them so). */
export const ALERT_FIELDS_V1 = [
  "id",
  "code",
  "priority",
  "subject",
  "model",
  "household",
  "raisedAt",
  "topic",
  "state",
  "updatedAt",
  "count",
  "causes",
  "cancelledByResident",
  "ackedBy",
  "ackedByAccount",
  "ackedAt",
  "ackNote",
  "clearedAt",
  "urgent",
  "test",
  "detail",
  "windowUntil",
  "suppressedFor",
  "shelvedBy",
  "shelvedByAccount",
  "shelvedAt",
  "shelvedUntil",
  "shelveReason",
  "outOfServiceBy",
  "outOfServiceByAccount",
  "chattering",
  "holds",
  "announced",
  "unackSince",
  "escalationLevel",
  "escalationNextAt",
  "escalateAs",
  "lastIsa",
  "rev",
  "lastTransition",
  "unpublished",
] as const satisfies ReadonlyArray<keyof AlertRecord>;

/** The alert as ALERT_LAYOUT_V1 (no intermediate object: on a P1's path). */
export function packedAlertRecord(a: Alert): unknown[] {
  return [
    ALERT_LAYOUT_V1,
    a.id,
    a.code,
    a.priority,
    a.subject.id,
    a.subject.model,
    a.household,
    a.raisedAt,
    a.topic,
    a.state,
    a.updatedAt,
    a.count,
    a.causes,
    a.cancelledByResident,
    a.ackedBy,
    a.ackedByAccount,
    a.ackedAt,
    a.ackNote,
    a.clearedAt,
    a.urgent,
    a.test,
    a.detail,
    a.windowUntil,
    a.suppressedFor,
    a.shelvedBy,
    a.shelvedByAccount,
    a.shelvedAt,
    a.shelvedUntil,
    a.shelveReason,
    a.outOfServiceBy,
    a.outOfServiceByAccount,
    a.chattering,
    a.holds,
    a.announced,
    a.unackSince,
    a.escalationLevel,
    a.escalationNextAt,
    a.escalateAs,
    a.lastIsa,
    a.rev,
    a.lastTransition,
    a.unpublished,
  ];
}

/**
 * A record read in any form, as ALERT_LAYOUT_V1: what the journal keeps in memory of an alert
 * written as a map (DurableStore.keepAs). Fields absent in older records take the value
 * alertFromRecord gives them, so both forms restore the same alert.
 */
export function packAlertRecord(r: AlertRecord): unknown[] {
  const out: unknown[] = [ALERT_LAYOUT_V1];
  for (const f of ALERT_FIELDS_V1) out.push(r[f]);
  out[ALERT_FIELDS_V1.indexOf("ackedByAccount") + 1] = r.ackedByAccount ?? null;
  out[ALERT_FIELDS_V1.indexOf("shelvedByAccount") + 1] = r.shelvedByAccount ?? null;
  out[ALERT_FIELDS_V1.indexOf("outOfServiceByAccount") + 1] = r.outOfServiceByAccount ?? null;
  out[ALERT_FIELDS_V1.indexOf("escalateAs") + 1] = r.escalateAs ?? null;
  out[ALERT_FIELDS_V1.indexOf("unpublished") + 1] = r.unpublished === true;
  return out;
}

/**
 * A journaled alert state in any form it was ever written in: a map (every record before
 * 2026-12-06, and those not written with a press's seq) or a positional layout; null when it has
 * neither shape (damage: skipped, counted).
 */
export function readAlertRecord(v: unknown): AlertRecord | null {
  if (Array.isArray(v)) {
    if (v[0] !== ALERT_LAYOUT_V1 || v.length !== ALERT_FIELDS_V1.length + 1) return null;
    const r: Record<string, unknown> = {};
    for (let i = 0; i < ALERT_FIELDS_V1.length; i++) r[ALERT_FIELDS_V1[i] as string] = v[i + 1];
    return isAlertRecord(r) ? r : null;
  }
  return isAlertRecord(v) ? v : null;
}

/** Rebuilds the alert for `subject` (resolved by the caller from the record's subject id). */
export function alertFromRecord(r: AlertRecord, site: string, subject: AlertSubject): Alert {
  const a = new Alert(
    r.id,
    r.code,
    r.priority,
    site,
    subject,
    r.raisedAt,
    r.topic,
    r.causes,
    r.urgent,
    r.test,
    r.detail,
    r.suppressedFor,
    // The household it was raised in, not the device's now (a site file edited while down).
    r.household === undefined ? subject.household : r.household,
  );
  a.state = r.state;
  a.updatedAt = r.updatedAt;
  a.count = r.count;
  a.cancelledByResident = r.cancelledByResident;
  a.ackedBy = r.ackedBy;
  a.ackedByAccount = r.ackedByAccount ?? null;
  a.ackedAt = r.ackedAt;
  a.ackNote = r.ackNote;
  a.clearedAt = r.clearedAt;
  a.windowUntil = r.windowUntil;
  a.shelvedBy = r.shelvedBy;
  a.shelvedByAccount = r.shelvedByAccount ?? null;
  a.shelvedAt = r.shelvedAt;
  a.shelvedUntil = r.shelvedUntil;
  a.shelveReason = r.shelveReason;
  a.outOfServiceBy = r.outOfServiceBy;
  a.outOfServiceByAccount = r.outOfServiceByAccount ?? null;
  a.chattering = r.chattering;
  a.holds = r.holds;
  a.announced = r.announced;
  a.unackSince = r.unackSince;
  a.escalationLevel = r.escalationLevel;
  a.escalationNextAt = r.escalationNextAt;
  a.escalateAs = r.escalateAs ?? null;
  a.lastIsa = r.lastIsa;
  a.rev = r.rev;
  a.lastTransition = r.lastTransition;
  a.unpublished = r.unpublished === true;
  return a;
}

/** A record read from disk is trusted only as far as its shape: a damaged one is skipped, counted. */
export function isAlertRecord(v: unknown): v is AlertRecord {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Partial<AlertRecord>;
  return (
    typeof r.id === "string" &&
    typeof r.code === "string" &&
    typeof r.priority === "number" &&
    typeof r.subject === "string" &&
    typeof r.state === "string" &&
    typeof r.topic === "string" &&
    Array.isArray(r.causes) &&
    typeof r.raisedAt === "number"
  );
}
