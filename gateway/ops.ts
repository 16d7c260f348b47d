/**
 * Operators' requests (docs/topics.md, "Operator actions"), each a JSON
 * object published at QoS 1 on an already-authorised topic:
 *
 *   linli/<site>/ack/<alertId>         {"by","note"}
 *   linli/<site>/shelve/<alertId>      {"by","duration":"30m","reason"}
 *   linli/<site>/unshelve/<alertId>    {"by","reason"}
 *   linli/<site>/service/<deviceId>    {"by","inService":false,"reason"}
 *   linli/<site>/away/<householdId>    {"by","away":true,"until"?,"reason"?}
 *
 * Every request gets an answer on `linli/<site>/ops/result/<operator>`
 * (MQTT 3.1.1 has no negative PUBACK); refusals are also counted per reason
 * and logged at most once a minute per operator and reason.
 */

import type { Clock } from "../core/index.js";
import { parseDuration } from "../core/index.js";
import type { AlertEngine } from "./alerts/engine.js";
import type { Logger, RateLimitedLog } from "./log.js";
import type { Publisher } from "./northbound/publisher.js";
import type { Registry } from "./registry.js";
import type { Counters, RejectReason } from "./stats.js";
import type { Supervisor } from "./supervision.js";

const MAX_NOTE = 500;
const MAX_NAME = 64;
/** Away mode longer than a year is a typo, not a holiday. */
const MAX_AWAY_MS = 366 * 86_400_000;

export type OpsAction = "ack" | "shelve" | "unshelve" | "service" | "away";

export type AckResult = "acknowledged" | "bad-ack" | "unknown-alert" | "already-acknowledged";

/** What the operator gets back on `ops/result/<operator>`. */
export interface OpsResult {
  action: OpsAction;
  target: string;
  ok: boolean;
  /** ok: what happened (e.g. "acknowledged", "closed", "shelved"). */
  result: string | null;
  /** refused: a reason from a fixed vocabulary (docs/topics.md). */
  reason: string | null;
  detail: string | null;
  /** Echo of the request's `ref`, for correlation. */
  ref: string | null;
  at: number;
}

type Body = Record<string, unknown>;

class Refusal {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
  ) {}
}

export class OperatorCommands {
  constructor(
    private readonly engine: AlertEngine,
    private readonly registry: Registry,
    private readonly publisher: Publisher,
    private readonly counters: Counters,
    private readonly log: RateLimitedLog,
    private readonly supervisor: Supervisor | null = null,
    private readonly clock: Clock | null = null,
    private readonly audit: Logger | null = null,
  ) {}

  ack(operator: string, alertId: string, payload: Buffer): AckResult {
    const body = parseBody(payload, true);
    if (body instanceof Refusal) {
      this.refuse(operator, "ack", alertId, null, new Refusal("bad-ack", body.detail));
      return "bad-ack";
    }
    const ref = refOf(body);
    const by = byOf(body, operator);
    const note = optionalText(body, "note");
    if (by instanceof Refusal || note instanceof Refusal) {
      const r = by instanceof Refusal ? by : (note as Refusal);
      this.refuse(operator, "ack", alertId, ref, new Refusal("bad-ack", r.detail));
      return "bad-ack";
    }
    const outcome = this.engine.acknowledge(alertId, by, note);
    if (!outcome.ok) {
      if (outcome.reason === "unknown-alert") {
        this.refuse(operator, "ack", alertId, ref, new Refusal("unknown-alert", `no open alert ${alertId}`));
        return "unknown-alert";
      }
      // Acknowledging twice is harmless: say so, count nothing.
      this.answer(operator, "ack", alertId, ref, "already-acknowledged");
      return "already-acknowledged";
    }
    const alert = outcome.alert;
    if (alert.code === "EMERGENCY_CALL" || alert.code === "FALL_DETECTED") {
      const device = this.registry.devices.get(alert.subject.id);
      if (device) this.publisher.downlink(device, { cmd: "ack_call", alertId: alert.id });
    }
    this.answer(operator, "ack", alertId, ref, outcome.transition);
    return "acknowledged";
  }

  shelve(operator: string, alertId: string, payload: Buffer): boolean {
    const body = parseBody(payload, false);
    if (body instanceof Refusal) return this.refuse(operator, "shelve", alertId, null, body);
    const ref = refOf(body);
    const by = byOf(body, operator);
    const reason = optionalText(body, "reason");
    const duration = durationOf(body.duration);
    const bad = [by, reason, duration].find((x) => x instanceof Refusal);
    if (bad) return this.refuse(operator, "shelve", alertId, ref, bad as Refusal);
    const out = this.engine.shelve(alertId, by as string, duration as number, reason as string | null);
    if (!out.ok) {
      const detail =
        out.reason === "p1-not-shelvable"
          ? "P1 (life safety) alerts cannot be shelved; acknowledge it instead"
          : out.reason === "shelve-too-long"
            ? `at most ${Math.round(this.engine.shelveMaxMs / 60_000)} minutes`
            : `no open alert ${alertId}`;
      return this.refuse(operator, "shelve", alertId, ref, new Refusal(out.reason, detail));
    }
    return this.answer(
      operator,
      "shelve",
      alertId,
      ref,
      "shelved",
      `until ${new Date(out.alert.shelvedUntil ?? 0).toISOString()}`,
    );
  }

  unshelve(operator: string, alertId: string, payload: Buffer): boolean {
    const body = parseBody(payload, true);
    if (body instanceof Refusal) return this.refuse(operator, "unshelve", alertId, null, body);
    const ref = refOf(body);
    const by = byOf(body, operator);
    const reason = optionalText(body, "reason");
    if (by instanceof Refusal) return this.refuse(operator, "unshelve", alertId, ref, by);
    if (reason instanceof Refusal) return this.refuse(operator, "unshelve", alertId, ref, reason);
    const out = this.engine.unshelve(alertId, by, reason);
    if (!out.ok)
      return this.refuse(
        operator,
        "unshelve",
        alertId,
        ref,
        new Refusal("not-shelved", `${alertId} is not shelved`),
      );
    return this.answer(operator, "unshelve", alertId, ref, "unshelved");
  }

  service(operator: string, deviceId: string, payload: Buffer): boolean {
    const body = parseBody(payload, false);
    if (body instanceof Refusal) return this.refuse(operator, "service", deviceId, null, body);
    const ref = refOf(body);
    const by = byOf(body, operator);
    const reason = optionalText(body, "reason");
    if (by instanceof Refusal) return this.refuse(operator, "service", deviceId, ref, by);
    if (reason instanceof Refusal) return this.refuse(operator, "service", deviceId, ref, reason);
    if (typeof body.inService !== "boolean")
      return this.refuse(
        operator,
        "service",
        deviceId,
        ref,
        new Refusal("bad-request", "inService must be true or false"),
      );
    const device = this.registry.devices.get(deviceId);
    if (!device)
      return this.refuse(
        operator,
        "service",
        deviceId,
        ref,
        new Refusal("unknown-device", `no device ${deviceId}`),
      );
    const out = this.engine.setOutOfService(device, !body.inService, by, reason);
    if (!out.ok) return this.refuse(operator, "service", deviceId, ref, new Refusal(out.reason, out.reason));
    this.supervisor?.serviceChanged(device, body.inService);
    return this.answer(
      operator,
      "service",
      deviceId,
      ref,
      body.inService ? "in-service" : "out-of-service",
      `${out.alerts} open alert(s)`,
    );
  }

  away(operator: string, householdId: string, payload: Buffer): boolean {
    const body = parseBody(payload, false);
    if (body instanceof Refusal) return this.refuse(operator, "away", householdId, null, body);
    const ref = refOf(body);
    const by = byOf(body, operator);
    const reason = optionalText(body, "reason");
    if (by instanceof Refusal) return this.refuse(operator, "away", householdId, ref, by);
    if (reason instanceof Refusal) return this.refuse(operator, "away", householdId, ref, reason);
    if (typeof body.away !== "boolean")
      return this.refuse(
        operator,
        "away",
        householdId,
        ref,
        new Refusal("bad-request", "away must be true or false"),
      );
    const household = this.registry.households.get(householdId);
    if (!household || !this.supervisor)
      return this.refuse(
        operator,
        "away",
        householdId,
        ref,
        new Refusal("unknown-household", `no household ${householdId}`),
      );
    let until: number | null = null;
    if (body.until !== undefined && body.until !== null) {
      const now = this.now();
      const t =
        typeof body.until === "number"
          ? body.until
          : typeof body.until === "string"
            ? Date.parse(body.until)
            : Number.NaN;
      if (!body.away || !Number.isFinite(t) || t <= now || t > now + MAX_AWAY_MS)
        return this.refuse(
          operator,
          "away",
          householdId,
          ref,
          new Refusal(
            "bad-request",
            "until must be a future time (ISO 8601 or epoch ms) within a year, and only with away:true",
          ),
        );
      until = t;
    }
    const status = this.supervisor.setAway(household, body.away, by, until, reason);
    return this.answer(operator, "away", householdId, ref, status.state);
  }

  private now(): number {
    return this.clock?.now() ?? Date.now();
  }

  private answer(
    operator: string,
    action: OpsAction,
    target: string,
    ref: string | null,
    result: string,
    detail: string | null = null,
  ): true {
    this.audit?.info({ operator, action, target, result }, `operator ${action}`);
    this.publisher.opsResult(operator, {
      action,
      target,
      ok: true,
      result,
      reason: null,
      detail,
      ref,
      at: this.now(),
    } satisfies OpsResult);
    return true;
  }

  private refuse(operator: string, action: OpsAction, target: string, ref: string | null, r: Refusal): false {
    this.counters.reject("operator", r.reason);
    this.log.warn(
      operator,
      r.reason,
      { operator, action, target, detail: r.detail },
      `operator ${action} refused`,
    );
    this.publisher.opsResult(operator, {
      action,
      target,
      ok: false,
      result: null,
      reason: r.reason,
      detail: r.detail,
      ref,
      at: this.now(),
    } satisfies OpsResult);
    return false;
  }
}

function parseBody(payload: Buffer, emptyOk: boolean): Body | Refusal {
  if (payload.length === 0) return emptyOk ? {} : new Refusal("bad-request", "a JSON object is required");
  let body: unknown;
  try {
    body = JSON.parse(payload.toString("utf8"));
  } catch {
    return new Refusal("bad-request", "not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return new Refusal("bad-request", "must be a JSON object");
  return body as Body;
}

function byOf(body: Body, operator: string): string | Refusal {
  if (body.by === undefined) return operator;
  if (typeof body.by !== "string" || body.by.length === 0 || body.by.length > MAX_NAME)
    return new Refusal("bad-request", `by must be a name of 1 to ${MAX_NAME} characters`);
  return body.by;
}

function optionalText(body: Body, field: string): string | null | Refusal {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string" || v.length > MAX_NOTE)
    return new Refusal("bad-request", `${field} must be a string of at most ${MAX_NOTE} characters`);
  return v;
}

function refOf(body: Body): string | null {
  return typeof body.ref === "string" && body.ref.length <= MAX_NAME ? body.ref : null;
}

function durationOf(v: unknown): number | Refusal {
  const ms = typeof v === "string" || typeof v === "number" ? parseDuration(v) : null;
  if (ms === null || ms <= 0)
    return new Refusal("bad-request", 'duration is required: seconds, or a string such as "30m" or "2h"');
  return ms;
}
