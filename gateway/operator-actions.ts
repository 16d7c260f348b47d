/**
 * The operator actions (docs/topics.md, "Operator actions"), in one table:
 * action -> topic shape -> who may -> request schema -> handler.
 *
 *   linli/<site>/ack/<alertId>            {"by","note"}
 *   linli/<site>/shelve/<alertId>         {"by","duration":"30m","reason"}
 *   linli/<site>/unshelve/<alertId>       {"by","reason"}
 *   linli/<site>/service/<deviceId>       {"by","inService":false,"reason"}
 *   linli/<site>/away/<householdId>       {"by","away":true,"until"?,"reason"?}
 *   linli/<site>/cmd/<deviceId>/<command> {"id"?,"by"?}
 *
 * Access control (broker/access.ts) and the upstream bridge read the topic
 * shapes from it; operator routing (ops.ts) parses each request with its
 * schema and calls its handler; device commands are the `cmd` row.
 */
import { parseDuration } from "../core/index.js";
import type { RejectReason } from "./stats.js";

export type OperatorAction = "ack" | "shelve" | "unshelve" | "service" | "away" | "cmd";

const MAX_NOTE = 500;
const MAX_NAME = 64;

/** Why a request is refused: a counted reason and a detail for the operator. */
export class Refusal {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
  ) {}
}

type Body = Record<string, unknown>;

/** A request that passed its schema. */
export interface OperatorRequest<F> {
  operator: string;
  target: string;
  /** Echo of the request's `ref`, for correlation. */
  ref: string | null;
  /** Who did it: the request's `by`, or the operator's account. */
  by: string;
  fields: F;
}

/** A device command: never refused for its body; `id` and `by` are echoed in its result. */
export interface CommandRequest {
  operator: string;
  deviceId: string;
  command: string;
  id: string | number | null;
  by: string;
  /** The request's `value`, for commands that write one (a set-point); checked by the command. */
  value?: unknown;
}

/** A request its schema refused (`ref` when the body was an object that had one). */
export interface RefusedRequest {
  operator: string;
  action: OperatorAction;
  target: string;
  ref: string | null;
  refusal: Refusal;
}

export type AckFields = { note: string | null };
export type ShelveFields = { reason: string | null; duration: number };
export type UnshelveFields = { reason: string | null };
export type ServiceFields = { reason: string | null; inService: boolean };
/** `until` is checked by the handler, after the household (a refusal names the first problem). */
export type AwayFields = { reason: string | null; away: boolean; until: unknown };

/** Who handles each action (ops.ts; `cmd` goes to the device's bus or downlink). */
export interface OperatorHandlers {
  ack(r: OperatorRequest<AckFields>): void;
  shelve(r: OperatorRequest<ShelveFields>): void;
  unshelve(r: OperatorRequest<UnshelveFields>): void;
  service(r: OperatorRequest<ServiceFields>): void;
  away(r: OperatorRequest<AwayFields>): void;
  cmd(r: CommandRequest): void;
  refused(r: RefusedRequest): void;
}

/** One field of a request: its value, or why the request is refused. */
type Field<T> = (body: Body) => T | Refusal;

interface ActionRow {
  /** `linli/<site>/<action>/<target>`, or `.../<target>/<command>` for device commands. */
  readonly topic: "target" | "target-command";
  /**
   * Who may publish it: any operator account of the site (broker/access.ts checks the
   * account; upstream requests come from the site's own upstream broker).
   */
  readonly who: "operator";
  /** Parses the payload with the row's schema and calls its handler (or `refused`). */
  run(h: OperatorHandlers, operator: string, target: string, command: string | null, payload: Buffer): void;
}

/**
 * A strict row: a JSON object (or an empty payload, when `emptyOk`), an optional
 * `by` and `ref`, then `fields` checked in order; the first problem is the refusal.
 */
function strict<F>(
  action: OperatorAction,
  spec: {
    emptyOk: boolean;
    /** The reason counted for any malformed request (ack keeps its own name). */
    malformed?: RejectReason;
    fields: { [K in keyof F]: Field<F[K]> };
    handle: (h: OperatorHandlers, r: OperatorRequest<F>) => void;
  },
): ActionRow {
  const refusal = (r: Refusal) => (spec.malformed ? new Refusal(spec.malformed, r.detail) : r);
  return {
    topic: "target",
    who: "operator",
    run(h, operator, target, _command, payload) {
      const body = parseBody(payload, spec.emptyOk);
      if (body instanceof Refusal) {
        h.refused({ operator, action, target, ref: null, refusal: refusal(body) });
        return;
      }
      const ref = refOf(body);
      const by = byOf(body, operator);
      if (by instanceof Refusal) {
        h.refused({ operator, action, target, ref, refusal: refusal(by) });
        return;
      }
      const fields = {} as F;
      for (const name of Object.keys(spec.fields) as (keyof F)[]) {
        const v = spec.fields[name](body);
        if (v instanceof Refusal) {
          h.refused({ operator, action, target, ref, refusal: refusal(v) });
          return;
        }
        fields[name] = v;
      }
      spec.handle(h, { operator, target, ref, by, fields });
    },
  };
}

const reason = optionalText("reason");

export const OPERATOR_ACTIONS: Readonly<Record<OperatorAction, ActionRow>> = {
  ack: strict<AckFields>("ack", {
    emptyOk: true,
    malformed: "bad-ack",
    fields: { note: optionalText("note") },
    handle: (h, r) => h.ack(r),
  }),
  shelve: strict<ShelveFields>("shelve", {
    emptyOk: false,
    fields: { reason, duration: (body) => durationOf(body.duration) },
    handle: (h, r) => h.shelve(r),
  }),
  unshelve: strict<UnshelveFields>("unshelve", {
    emptyOk: true,
    fields: { reason },
    handle: (h, r) => h.unshelve(r),
  }),
  service: strict<ServiceFields>("service", {
    emptyOk: false,
    fields: { reason, inService: requiredBoolean("inService") },
    handle: (h, r) => h.service(r),
  }),
  away: strict<AwayFields>("away", {
    emptyOk: false,
    fields: { reason, away: requiredBoolean("away"), until: (body) => body.until },
    handle: (h, r) => h.away(r),
  }),
  cmd: {
    topic: "target-command",
    who: "operator",
    // Lenient: the command's result echoes what it can; the device decides what the command means.
    run(h, operator, deviceId, command, payload) {
      let request: { id?: unknown; by?: unknown; value?: unknown } = {};
      try {
        if (payload.length > 0) request = JSON.parse(payload.toString("utf8")) as typeof request;
      } catch {
        request = {};
      }
      h.cmd({
        operator,
        deviceId,
        command: command as string,
        id: typeof request.id === "string" || typeof request.id === "number" ? request.id : null,
        by: typeof request.by === "string" ? request.by.slice(0, MAX_NAME) : operator,
        value: request.value,
      });
    },
  },
};

/**
 * The action a topic under `linli/<site>/` names (its segments after the site),
 * or null. `isId` says what a target or command segment may be.
 */
export function operatorTopic(
  segments: readonly string[],
  isId: (s: string | undefined) => boolean,
): { action: OperatorAction; target: string; command: string | null } | null {
  const action = segments[0] as string;
  if (!Object.hasOwn(OPERATOR_ACTIONS, action)) return null;
  const row = OPERATOR_ACTIONS[action as OperatorAction];
  if (row.topic === "target" && segments.length === 2 && isId(segments[1]))
    return { action: action as OperatorAction, target: segments[1] as string, command: null };
  if (row.topic === "target-command" && segments.length === 3 && isId(segments[1]) && isId(segments[2]))
    return {
      action: action as OperatorAction,
      target: segments[1] as string,
      command: segments[2] as string,
    };
  return null;
}

/** MQTT subscription filters for every action's topic under `prefix` (`linli/<site>/`). */
export function operatorTopicFilters(prefix: string): string[] {
  return Object.entries(OPERATOR_ACTIONS).map(([action, row]) =>
    row.topic === "target" ? `${prefix}${action}/+` : `${prefix}${action}/+/+`,
  );
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

function optionalText(field: string): Field<string | null> {
  return (body) => {
    const v = body[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string" || v.length > MAX_NOTE)
      return new Refusal("bad-request", `${field} must be a string of at most ${MAX_NOTE} characters`);
    return v;
  };
}

function requiredBoolean(field: string): Field<boolean> {
  return (body) => {
    const v = body[field];
    return typeof v === "boolean" ? v : new Refusal("bad-request", `${field} must be true or false`);
  };
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
