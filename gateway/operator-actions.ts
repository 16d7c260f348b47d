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
 *   linli/<site>/list/<p1|p2|p3|p4>       {"after"?}: which alert states are open (reads only)
 *
 * Access control (broker/access.ts) and the upstream bridge read the topic
 * shapes from it; operator routing (ops.ts) parses each request with its
 * schema and calls its handler; device commands are the `cmd` row. `who` is
 * the least role (operator-roles.ts) that may send the action.
 */
import { isRejection, parseDuration, type Rejection, reject } from "../core/index.js";
import { forbidden, OPERATOR_ROLES, type OperatorRole, roleIncludes } from "./operator-roles.js";
import type { RejectReason } from "./stats.js";

export type OperatorAction = "ack" | "shelve" | "unshelve" | "service" | "away" | "cmd" | "list";

const MAX_NOTE = 500;
const MAX_NAME = 64;

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
  /** The one refusal shape (core/refusal.ts): a counted reason, the field, words for the operator. */
  refusal: Rejection;
}

export type AckFields = { note: string | null };
export type ShelveFields = { reason: string | null; duration: number };
export type UnshelveFields = { reason: string | null };
export type ServiceFields = { reason: string | null; inService: boolean };
/** `until` is checked by the handler, after the household (a refusal names the first problem). */
export type AwayFields = { reason: string | null; away: boolean; until: unknown };
/** `after`: the last topic of the previous page ("" for the first). The priority is the target. */
export type ListFields = { after: string };

/** Who handles each action (ops.ts; `cmd` goes to the device's bus or downlink). */
export interface OperatorHandlers {
  ack(r: OperatorRequest<AckFields>): void;
  shelve(r: OperatorRequest<ShelveFields>): void;
  unshelve(r: OperatorRequest<UnshelveFields>): void;
  service(r: OperatorRequest<ServiceFields>): void;
  away(r: OperatorRequest<AwayFields>): void;
  cmd(r: CommandRequest): void;
  list(r: OperatorRequest<ListFields>): void;
  refused(r: RefusedRequest): void;
}

/** One field of a request: its value, or why the request is refused. */
type Field<T> = (body: Body) => T | Rejection;

interface ActionRow {
  /** `linli/<site>/<action>/<target>`, or `.../<target>/<command>` for device commands. */
  readonly topic: "target" | "target-command";
  /**
   * The least role that may send it (docs/security.md "Operator roles"): broker/access.ts checks
   * the account's role before anything is taken, ops.ts again for every source (upstream too).
   */
  readonly who: OperatorRole;
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
    who: OperatorRole;
    emptyOk: boolean;
    /** The reason counted for any malformed request (ack keeps its own name). */
    malformed?: RejectReason;
    fields: { [K in keyof F]: Field<F[K]> };
    handle: (h: OperatorHandlers, r: OperatorRequest<F>) => void;
  },
): ActionRow {
  const refusal = (r: Rejection): Rejection => (spec.malformed ? { ...r, reason: spec.malformed } : r);
  return {
    topic: "target",
    who: spec.who,
    run(h, operator, target, _command, payload) {
      const body = parseBody(payload, spec.emptyOk);
      if (isRejection(body)) {
        h.refused({ operator, action, target, ref: null, refusal: refusal(body) });
        return;
      }
      const ref = refOf(body);
      const by = byOf(body, operator);
      if (isRejection(by)) {
        h.refused({ operator, action, target, ref, refusal: refusal(by) });
        return;
      }
      const fields = {} as F;
      for (const name of Object.keys(spec.fields) as (keyof F)[]) {
        const v = spec.fields[name](body);
        if (isRejection(v)) {
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
    who: "responder",
    emptyOk: true,
    malformed: "bad-ack",
    fields: { note: optionalText("note") },
    handle: (h, r) => h.ack(r),
  }),
  shelve: strict<ShelveFields>("shelve", {
    who: "responder",
    emptyOk: false,
    fields: { reason, duration: (body) => durationOf(body.duration) },
    handle: (h, r) => h.shelve(r),
  }),
  unshelve: strict<UnshelveFields>("unshelve", {
    who: "responder",
    emptyOk: true,
    fields: { reason },
    handle: (h, r) => h.unshelve(r),
  }),
  service: strict<ServiceFields>("service", {
    who: "supervisor",
    emptyOk: false,
    fields: { reason, inService: requiredBoolean("inService") },
    handle: (h, r) => h.service(r),
  }),
  away: strict<AwayFields>("away", {
    who: "responder",
    emptyOk: false,
    // Only a string or a number can be a time: anything else reaches the handler as NaN and is
    // refused there (never taken for a refusal of the gateway's own, whatever its fields).
    fields: { reason, away: requiredBoolean("away"), until: (body) => untilOf(body.until) },
    handle: (h, r) => h.away(r),
  }),
  cmd: {
    topic: "target-command",
    // A command changes a device's state (a GD-2's valve_open lets gas flow again).
    who: "supervisor",
    run(h, operator, deviceId, command, payload) {
      h.cmd(commandRequest(operator, deviceId, command as string, payload));
    },
  },
  // Reads only (docs/topics.md "Which alerts are open"): a viewer may, like reading alert topics.
  list: strict<ListFields>("list", {
    who: "viewer",
    emptyOk: true,
    fields: { after: afterOf },
    handle: (h, r) => h.list(r),
  }),
};

/**
 * A device command's request. Lenient: the command's result echoes what it can (`id`, `by`);
 * the device decides what the command means.
 */
export function commandRequest(
  operator: string,
  deviceId: string,
  command: string,
  payload: Buffer,
): CommandRequest {
  let request: { id?: unknown; by?: unknown; value?: unknown } = {};
  try {
    if (payload.length > 0) request = JSON.parse(payload.toString("utf8")) as typeof request;
  } catch {
    request = {};
  }
  if (typeof request !== "object" || request === null) request = {};
  return {
    operator,
    deviceId,
    command,
    id: typeof request.id === "string" || typeof request.id === "number" ? request.id : null,
    by: typeof request.by === "string" ? request.by.slice(0, MAX_NAME) : operator,
    value: request.value,
  };
}

/** Whether an account of `role` may send `action`. */
export function roleMay(role: OperatorRole, action: OperatorAction): boolean {
  return roleIncludes(role, OPERATOR_ACTIONS[action].who);
}

/** Why `role` may not send `action`, or null when it may. */
export function roleRefusal(role: OperatorRole, action: OperatorAction): Rejection | null {
  const needed = OPERATOR_ACTIONS[action].who;
  return roleIncludes(role, needed) ? null : forbidden(role, action, needed);
}

/** The actions each role may send (the console shows only these; docs/security.md's table). */
export function roleActions(role: OperatorRole): OperatorAction[] {
  return (Object.keys(OPERATOR_ACTIONS) as OperatorAction[]).filter((a) => roleMay(role, a));
}

/** Every role with its actions, for the docs and tests. */
export function roleTable(): Record<OperatorRole, OperatorAction[]> {
  return Object.fromEntries(OPERATOR_ROLES.map((r) => [r, roleActions(r)])) as Record<
    OperatorRole,
    OperatorAction[]
  >;
}

/** A request's `ref` for the echo of a refusal made before its body is checked (null if none). */
export function requestRef(payload: Buffer): string | null {
  if (payload.length === 0) return null;
  try {
    const body: unknown = JSON.parse(payload.toString("utf8"));
    return typeof body === "object" && body !== null && !Array.isArray(body) ? refOf(body as Body) : null;
  } catch {
    return null;
  }
}

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

/** No such device (a `service` request, a device command). */
export function noDevice(deviceId: string): Rejection {
  return reject("unknown-device", `no device ${deviceId}`, { zh: `没有设备 ${deviceId}` });
}

function parseBody(payload: Buffer, emptyOk: boolean): Body | Rejection {
  if (payload.length === 0)
    return emptyOk ? {} : reject("bad-request", "a JSON object is required", { zh: "请求须为 JSON 对象" });
  let body: unknown;
  try {
    body = JSON.parse(payload.toString("utf8"));
  } catch {
    return reject("bad-request", "not JSON", { zh: "请求不是 JSON" });
  }
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return reject("bad-request", "must be a JSON object", { zh: "请求须为 JSON 对象" });
  return body as Body;
}

function byOf(body: Body, operator: string): string | Rejection {
  if (body.by === undefined) return operator;
  if (typeof body.by !== "string" || body.by.length === 0 || body.by.length > MAX_NAME)
    return reject("bad-request", `by must be a name of 1 to ${MAX_NAME} characters`, {
      path: "by",
      zh: `by 须为 1 到 ${MAX_NAME} 个字符的名字`,
    });
  return body.by;
}

function optionalText(field: string): Field<string | null> {
  return (body) => {
    const v = body[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== "string" || v.length > MAX_NOTE)
      return reject("bad-request", `${field} must be a string of at most ${MAX_NOTE} characters`, {
        path: field,
        zh: `${field} 须为不超过 ${MAX_NOTE} 个字符的文字`,
      });
    return v;
  };
}

/** A topic is at most a few hundred characters; longer is no topic of an alert. */
const MAX_AFTER = 1000;

function afterOf(body: Body): string | Rejection {
  const v = body.after;
  if (v === undefined || v === null) return "";
  if (typeof v !== "string" || v.length > MAX_AFTER)
    return reject("bad-request", `after must be a topic of at most ${MAX_AFTER} characters`, {
      path: "after",
      zh: `after 须为不超过 ${MAX_AFTER} 个字符的主题`,
    });
  return v;
}

function requiredBoolean(field: string): Field<boolean> {
  return (body) => {
    const v = body[field];
    return typeof v === "boolean"
      ? v
      : reject("bad-request", `${field} must be true or false`, {
          path: field,
          zh: `${field} 须为 true 或 false`,
        });
  };
}

function untilOf(v: unknown): unknown {
  return v === undefined || v === null || typeof v === "string" || typeof v === "number" ? v : Number.NaN;
}

function refOf(body: Body): string | null {
  return typeof body.ref === "string" && body.ref.length <= MAX_NAME ? body.ref : null;
}

/** The forms a shelve's `duration` takes (core/duration.ts), for the refusals below. */
const DURATION_FORMS = {
  en: 'seconds (a number such as 1800), or a number with ms, s, m, h or d ("30m", "2h")',
  zh: '秒数（如 1800），或数字加 ms、s、m、h、d（如 "30m"、"2h"）',
};

/** The operator's value in a refusal, short enough to quote (a long one is not echoed). */
const quoted = (v: unknown) => {
  const s = JSON.stringify(v);
  return s !== undefined && s.length <= 40 ? ` ${s}` : "";
};

function durationOf(v: unknown): number | Rejection {
  // Missing and malformed are told apart: "required" to an operator who sent "abc" sent them looking for a missing field.
  if (v === undefined || v === null || v === "")
    return reject("bad-request", `duration is required: ${DURATION_FORMS.en}`, {
      path: "duration",
      zh: `duration 为必填：${DURATION_FORMS.zh}`,
    });
  const ms = typeof v === "string" || typeof v === "number" ? parseDuration(v) : null;
  if (ms === null)
    return reject("bad-request", `duration${quoted(v)} is not a duration: ${DURATION_FORMS.en}`, {
      path: "duration",
      zh: `duration${quoted(v)} 不是有效的时长：应为${DURATION_FORMS.zh}`,
    });
  if (ms <= 0)
    return reject("bad-request", `duration must be more than 0: ${DURATION_FORMS.en}`, {
      path: "duration",
      zh: `duration 须大于 0：${DURATION_FORMS.zh}`,
    });
  return ms;
}
