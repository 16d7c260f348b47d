/**
 * Operators' requests (docs/topics.md, "Operator actions"), each a JSON
 * object published at QoS 1 on an already-authorised topic:
 *
 *   linli/<site>/ack/<alertId>         {"by","note"}
 *   linli/<site>/shelve/<alertId>      {"by","duration":"30m","reason"}
 *   linli/<site>/unshelve/<alertId>    {"by","reason"}
 *   linli/<site>/service/<deviceId>    {"by","inService":false,"reason"}
 *   linli/<site>/away/<householdId>    {"by","away":true,"until"?,"reason"?}
 *   linli/<site>/list/<p1..p4>         {"after"?}: which alert states are open, a page at a time
 *                                      (answered where asked, bounded per account: list-budget.ts)
 *
 * Each request is parsed by its row of the action table (operator-actions.ts).
 * Every request gets an answer on `linli/<site>/ops/result/<operator>`
 * (MQTT 3.1.1 has no negative PUBACK); refusals are also counted per reason
 * and logged at most once a minute per operator and reason.
 */

import { type Clock, type Rejection, reject, rejectionText } from "../core/index.js";
import type { Alert } from "./alerts/alert.js";
import type { AlertEngine } from "./alerts/engine.js";
import { enSpan } from "./content/messages.en.js";
import { zhSpan } from "./content/messages.zh-CN.js";
import { type OpsOutcome, type OpsOutcomeArgs, opsOutcomeText } from "./content/ops-text.js";
import { zhJoin } from "./content/zh-join.js";
import { ListBudget } from "./list-budget.js";
import type { Logger, RateLimitedLog } from "./log.js";
import type { AlertPage } from "./northbound/alert-summary.js";
import type { Publisher } from "./northbound/publisher.js";
import type { Route } from "./northbound/sink.js";
import {
  type AckFields,
  type AwayFields,
  type CommandRequest,
  commandRequest,
  type ListFields,
  noDevice,
  OPERATOR_ACTIONS,
  type OperatorAction,
  type OperatorHandlers,
  type OperatorRequest,
  type RefusedRequest,
  requestRef,
  roleRefusal,
  type ServiceFields,
  type ShelveFields,
  type UnshelveFields,
} from "./operator-actions.js";
import { forbidden, type OperatorRole } from "./operator-roles.js";
import type { Registry } from "./registry.js";
import type { DownlinkDevice, DownlinkHooks } from "./southbound/pending-downlinks.js";
import type { Counters } from "./stats.js";
import type { Supervisor } from "./supervision.js";
import { SteadyClock } from "./time/steady-clock.js";

/**
 * Alert states per `list` answer: ~100 bytes each (topic, id, rev), so a page is ~20 KB, which any
 * broker's default maximum packet size takes; 10,000 open alerts are 50 requests.
 */
export const LIST_PAGE = 200;

const PRIORITY_TARGET = /^p([1-4])$/;

/** Away mode longer than a year is a typo, not a holiday. */
const MAX_AWAY_MS = 366 * 86_400_000;

export type OpsAction = OperatorAction;

/**
 * What a result's `message` names, in the site's language, as the alert messages do
 * (content/alert-content.ts): the household's resident and room, the device's name.
 */
export interface OpsNames {
  nameAlert(alert: Alert): string;
  nameDevice(deviceId: string): string;
  nameHousehold(householdId: string): string;
}

/** What the operator gets back on `ops/result/<operator>`. */
export interface OpsResult {
  action: OpsAction;
  target: string;
  ok: boolean;
  /** ok: what happened (e.g. "acknowledged", "closed", "shelved"). */
  result: string | null;
  /** refused: a reason from a fixed vocabulary (docs/topics.md). */
  reason: string | null;
  /** English for machines and logs; times in UTC ISO 8601. */
  detail: string | null;
  /**
   * What happened (ok, since 0.13.0) or why it was refused, in the site's language
   * (`site.locale`), times on the site's clock (`site.timezone`).
   */
  message: string | null;
  /** Echo of the request's `ref`, for correlation. */
  ref: string | null;
  /** The operator account that sent the request (its `by` is free text). */
  account: string;
  at: number;
}

export class OperatorCommands implements OperatorHandlers {
  /** Pages of `list` per account (list-budget.ts); replaceable by tests. */
  listBudget = new ListBudget();
  /**
   * Where the request being handled came from (`handle` runs its row synchronously): a `list`
   * answer goes back there alone, ~20 KB a page that the other side never asked for.
   */
  private from: Route = "local";

  constructor(
    private readonly engine: AlertEngine,
    private readonly registry: Registry,
    private readonly publisher: Publisher,
    private readonly counters: Counters,
    private readonly log: RateLimitedLog,
    private readonly supervisor: Supervisor | null = null,
    private readonly clock: Clock | null = null,
    private readonly audit: Logger | null = null,
    /** Device commands (`cmd`): sent on the device's bus or as a downlink; `refuse` answers one not sent. */
    private readonly deviceCommands: {
      handle(r: CommandRequest): void;
      refuse(r: CommandRequest, refusal: Rejection): void;
    } | null = null,
    /** The site's language for refusals (`site.locale`), read per request: a reload may change it. */
    private readonly locale: () => "zh-CN" | "en" = () => "zh-CN",
    /** Names for the results' `message`; null: they name nothing (the ids are in `target`). */
    private readonly names: OpsNames | null = null,
  ) {}

  /**
   * Routes an operator's publish (already authorised by topic) through the action table, once
   * the sender's role allows the action (docs/security.md "Operator roles"): a request it does
   * not allow is answered `forbidden` on the action's result topic, before its body is looked at.
   */
  handle(
    operator: string,
    role: OperatorRole,
    action: OperatorAction,
    target: string,
    command: string | null,
    payload: Buffer,
    from: Route = "local",
  ): void {
    this.from = from;
    try {
      this.route(operator, role, action, target, command, payload);
    } finally {
      this.from = "local";
    }
  }

  private route(
    operator: string,
    role: OperatorRole,
    action: OperatorAction,
    target: string,
    command: string | null,
    payload: Buffer,
  ): void {
    const row = Object.hasOwn(OPERATOR_ACTIONS, action) ? OPERATOR_ACTIONS[action] : undefined;
    if (!row) {
      this.counters.reject("operator", "action-not-supported");
      this.log.warn(
        operator,
        "action-not-supported",
        { operator, action, target },
        "operator action not supported",
      );
      return;
    }
    const refusal = roleRefusal(role, action);
    if (refusal !== null) {
      this.refuseForRole(operator, role, action, target, command, payload, refusal);
      return;
    }
    row.run(this, operator, target, command, payload);
  }

  /**
   * Answers a request the sender's role does not allow, nothing else: `forbidden` on the action's
   * result topic, counted and logged. The broker's publish rule sends its refusals here directly
   * (broker/access.ts `forbidden`), never through the action handlers.
   */
  refuseForRole(
    operator: string,
    role: OperatorRole,
    action: OperatorAction,
    target: string,
    command: string | null,
    payload: Buffer,
    refusal: Rejection = forbidden(role, action, OPERATOR_ACTIONS[action].who),
  ): void {
    if (action === "cmd") {
      // Answered on the command's own result topic, as every command is (docs/topics.md).
      const r = commandRequest(operator, target, command as string, payload);
      this.log.warn(
        operator,
        refusal.reason,
        { operator, role, action, target, command },
        "operator cmd refused",
      );
      if (this.deviceCommands) this.deviceCommands.refuse(r, refusal);
      else this.counters.reject("operator", `cmd-${refusal.reason}`);
      return;
    }
    this.refuse(operator, action, target, requestRef(payload), refusal, role);
  }

  refused(r: RefusedRequest): void {
    this.refuse(r.operator, r.action, r.target, r.ref, r.refusal);
  }

  cmd(r: CommandRequest): void {
    this.deviceCommands?.handle(r);
  }

  /**
   * Which alert states of a priority are retained now, a page at a time (docs/topics.md "Which
   * alerts are open"): what a client whose states do not match `alerts/summary` compares with
   * to find the ones it lacks or holds stale. Read from the summary's own table, so the list and
   * the summary describe the same set. Not audited: it changes nothing.
   */
  list({ operator, target, ref, fields: { after } }: OperatorRequest<ListFields>): void {
    const m = PRIORITY_TARGET.exec(target);
    if (m === null) {
      this.refuse(
        operator,
        "list",
        target,
        ref,
        reject("bad-request", "the target must be p1, p2, p3 or p4", {
          path: "target",
          zh: "目标须为 p1、p2、p3 或 p4",
        }),
      );
      return;
    }
    // Bounded per account before any work: a page is built on the gateway's one thread.
    const waitMs = this.listBudget.take(operator);
    if (waitMs > 0) {
      const s = Math.ceil(waitMs / 1000);
      this.refuse(
        operator,
        "list",
        target,
        ref,
        reject("rate-limited", `too many list requests from this account; ask again in ${s} s`, {
          zh: `查询未结束告警过于频繁，请 ${s} 秒后再试`,
        }),
        undefined,
        null,
        { retryAfterMs: waitMs },
      );
      return;
    }
    const page = this.publisher.summary.page(Number(m[1]), after, LIST_PAGE);
    const args = { alerts: page.open, listed: page.alerts.length };
    this.publisher.opsResult(
      operator,
      {
        action: "list",
        target,
        ok: true,
        result: "listed",
        reason: null,
        detail: `${page.open} open alert(s)`,
        message: opsOutcomeText(this.locale(), "listed", args, this.registry.siteTime),
        ref,
        account: operator,
        at: this.now(),
        open: page.open,
        digest: page.digest,
        alerts: page.alerts,
        next: page.next,
      } satisfies OpsResult & AlertPage,
      this.from,
    );
  }

  ack({ operator, target: alertId, ref, by, fields: { note } }: OperatorRequest<AckFields>): void {
    const outcome = this.engine.acknowledge(alertId, by, note, operator);
    if (!outcome.ok) {
      if (outcome.reason === "unknown-alert") {
        this.refuse(operator, "ack", alertId, ref, noAlert(alertId));
        return;
      }
      // Acknowledging twice is harmless: say so, count nothing.
      this.answer(operator, "ack", alertId, ref, "already-acknowledged", this.alertName(alertId));
      return;
    }
    const alert = outcome.alert;
    // The device may want to know (the EC-200 beeps: `ack_call`); its profile says what to send.
    const device = this.registry.devices.get(alert.subject.id);
    const profile = device?.profile;
    const message = profile?.transport === "mqtt" ? profile.ackDownlink?.(alert.code, alert.id) : null;
    // A pendant (its base station) away now hears it at its next login, within the downlink's
    // life (southbound/pending-downlinks.ts); the alert shows its `ackd` when it beeps.
    if (device && message) this.publisher.downlink(device, message, this.ackDownlinkHooks(device, alert.id));
    // An ack acknowledges (`acknowledged`) or, when the alert had cleared, closes it (`closed`).
    this.answer(
      operator,
      "ack",
      alertId,
      ref,
      outcome.transition === "closed" ? "closed" : "acknowledged",
      this.alertName(alert),
    );
  }

  /** What an acknowledgement's downlink that has to wait tells (also one the journal kept across a restart). */
  ackDownlinkHooks(device: DownlinkDevice, alertId: string): DownlinkHooks {
    return {
      origin: { kind: "ack", alertId },
      lost: (why) => {
        // A record before 0.13.50 kept no model: a device gone at a start is counted `unknown`.
        this.counters.reject(device.model ?? "unknown", `ack-${why}`);
        this.log.warn(
          device.id,
          `ack-${why}`,
          { deviceId: device.id, alertId, why },
          why === "device-removed"
            ? "the device was not told of the acknowledgement: removed from the configuration first"
            : why === "device-changed"
              ? "the device was not told of the acknowledgement: its model or downlink changed first"
              : "the device was not told of the acknowledgement: it did not connect in time",
        );
      },
    };
  }

  shelve({ operator, target: alertId, ref, by, fields }: OperatorRequest<ShelveFields>): void {
    const out = this.engine.shelve(alertId, by, fields.duration, fields.reason, operator);
    if (!out.ok) {
      // Its largest whole unit and the next: a shelveMax under a minute read "at most 0 minutes".
      const max = this.engine.shelveMaxMs;
      const refusal =
        out.reason === "p1-not-shelvable"
          ? reject(out.reason, "P1 (life safety) alerts cannot be shelved; acknowledge it instead", {
              zh: "一级（生命安全）告警不能搁置，请确认处理",
            })
          : out.reason === "shelve-too-long"
            ? reject(out.reason, `at most ${enSpan(max)}`, {
                path: "duration",
                zh: `最多搁置 ${zhSpan(max)}`,
              })
            : noAlert(alertId);
      this.refuse(operator, "shelve", alertId, ref, refusal);
      return;
    }
    const until = out.alert.shelvedUntil ?? 0;
    this.answer(
      operator,
      "shelve",
      alertId,
      ref,
      "shelved",
      { until, ...this.alertName(out.alert) },
      `until ${new Date(until).toISOString()}`,
    );
  }

  unshelve({ operator, target: alertId, ref, by, fields }: OperatorRequest<UnshelveFields>): void {
    const out = this.engine.unshelve(alertId, by, fields.reason, operator);
    if (!out.ok) {
      this.refuse(
        operator,
        "unshelve",
        alertId,
        ref,
        reject("not-shelved", `${alertId} is not shelved`, { zh: `告警 ${alertId} 未被搁置` }),
        undefined,
        // The name last: an alert's name ends with its title, which would run into the verb.
        this.named(alertId, (n) => [`not shelved: ${n}`, `未被搁置：${n}`]),
      );
      return;
    }
    this.answer(operator, "unshelve", alertId, ref, "unshelved", this.alertName(out.alert ?? alertId));
  }

  service({ operator, target: deviceId, ref, by, fields }: OperatorRequest<ServiceFields>): void {
    const device = this.registry.devices.get(deviceId);
    if (!device) {
      this.refuse(operator, "service", deviceId, ref, noDevice(deviceId));
      return;
    }
    const out = this.engine.setOutOfService(device, !fields.inService, by, fields.reason, operator);
    if (!out.ok) {
      const refusal =
        out.reason === "already-in-service"
          ? reject(out.reason, `${deviceId} is already in service`, {
              path: "inService",
              zh: `设备 ${deviceId} 已在使用中`,
            })
          : reject(out.reason, `${deviceId} is already out of service`, {
              path: "inService",
              zh: `设备 ${deviceId} 已停用`,
            });
      const already = out.reason === "already-in-service";
      const name = this.names?.nameDevice(deviceId);
      const message =
        name === undefined
          ? null
          : this.locale() === "zh-CN"
            ? zhJoin(name, already ? "已在使用中" : "已停用")
            : `${name} is already ${already ? "in service" : "out of service"}`;
      this.refuse(operator, "service", deviceId, ref, refusal, undefined, message);
      return;
    }
    this.supervisor?.serviceChanged(device, fields.inService);
    this.publisher.deviceService(
      deviceId,
      fields.inService ? null : { by, account: operator, since: this.now() },
    );
    this.answer(
      operator,
      "service",
      deviceId,
      ref,
      fields.inService ? "in-service" : "out-of-service",
      { alerts: out.alerts, ...(this.names ? { name: this.names.nameDevice(deviceId) } : {}) },
      `${out.alerts} open alert(s)`,
    );
  }

  away({ operator, target: householdId, ref, by, fields }: OperatorRequest<AwayFields>): void {
    const household = this.registry.households.get(householdId);
    if (!household || !this.supervisor) {
      this.refuse(
        operator,
        "away",
        householdId,
        ref,
        reject("unknown-household", `no household ${householdId}`, { zh: `没有住户 ${householdId}` }),
      );
      return;
    }
    let until: number | null = null;
    if (fields.until !== undefined && fields.until !== null) {
      const now = this.now();
      const wall =
        typeof fields.until === "number"
          ? fields.until
          : typeof fields.until === "string"
            ? Date.parse(fields.until)
            : Number.NaN;
      // On the gateway's clock: between a step of the wall clock and its adoption, the old one.
      const t = this.clock instanceof SteadyClock ? this.clock.fromWall(wall) : wall;
      if (!fields.away || !Number.isFinite(t) || t <= now || t > now + MAX_AWAY_MS) {
        this.refuse(
          operator,
          "away",
          householdId,
          ref,
          reject(
            "bad-request",
            "until must be a future time (ISO 8601 or epoch ms) within a year, and only with away:true",
            {
              path: "until",
              zh: "until 须为一年以内的将来时间（ISO 8601 或毫秒时间戳），且只能与 away:true 一起使用",
            },
          ),
        );
        return;
      }
      until = t;
    }
    const status = this.supervisor.setAway(household, fields.away, by, until, fields.reason, operator);
    const awayUntil = status.state === "away" ? until : null;
    this.answer(
      operator,
      "away",
      householdId,
      ref,
      status.state,
      { until: awayUntil, ...(this.names ? { name: this.names.nameHousehold(householdId) } : {}) },
      awayUntil === null ? null : `until ${new Date(awayUntil).toISOString()}`,
    );
  }

  /** The alert's name for a result's `message` (an id is looked up: it may be closed since). */
  private alertName(alert: Alert | string): { name?: string } {
    if (this.names === null) return {};
    const a = typeof alert === "string" ? this.engine.byAlertId(alert) : alert;
    return a ? { name: this.names.nameAlert(a) } : {};
  }

  /** A refusal's `message` naming the alert, [en, zh]; null (its own words) when it has no name. */
  private named(alertId: string, say: (name: string) => [string, string]): string | null {
    const { name } = this.alertName(alertId);
    if (name === undefined) return null;
    const [en, zh] = say(name);
    return this.locale() === "zh-CN" ? zh : en;
  }

  private now(): number {
    return this.clock?.now() ?? Date.now();
  }

  private answer(
    operator: string,
    action: OpsAction,
    target: string,
    ref: string | null,
    result: OpsOutcome,
    args: OpsOutcomeArgs,
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
      message: opsOutcomeText(this.locale(), result, args, this.registry.siteTime),
      ref,
      account: operator,
      at: this.now(),
    } satisfies OpsResult);
    return true;
  }

  private refuse(
    operator: string,
    action: OpsAction,
    target: string,
    ref: string | null,
    r: Rejection,
    role?: OperatorRole,
    /** Instead of the refusal's own words: the same naming what it refused (`OpsNames`). */
    message: string | null = null,
    /** Fields the refusal adds (a `list` refused for its rate: `retryAfterMs`). */
    extra: object = {},
  ): false {
    this.counters.reject("operator", r.reason);
    this.log.warn(
      operator,
      r.reason,
      {
        operator,
        ...(role ? { role } : {}),
        action,
        target,
        detail: r.detail,
        ...(r.path ? { field: r.path } : {}),
      },
      `operator ${action} refused`,
    );
    this.publisher.opsResult(
      operator,
      {
        action,
        target,
        ok: false,
        result: null,
        reason: r.reason,
        detail: r.detail,
        message: message ?? rejectionText(r, this.locale()),
        ref,
        account: operator,
        at: this.now(),
        ...extra,
      } satisfies OpsResult,
      // A `list` is answered where it came from alone, refused or not.
      action === "list" ? this.from : undefined,
    );
    return false;
  }
}

/** Refusals two actions share. */
function noAlert(alertId: string): Rejection {
  return reject("unknown-alert", `no open alert ${alertId}`, { zh: `没有未结束的告警 ${alertId}` });
}
