/**
 * Operators' roles (docs/security.md, "Operator roles"): what an account may ask of the gateway.
 * Ranked, each one everything the one below may and more:
 *
 *   viewer      reads alerts, telemetry, states, and which alerts are open (`list`); changes nothing
 *   responder   the duty desk: acknowledge, shelve, unshelve, away mode
 *   supervisor  also takes devices out of service and sends device commands (a GD-2's valve_open)
 *
 * Which role an action needs is a column of the action table (operator-actions.ts, `who`);
 * the broker's publish ACL (broker/access.ts) and the operator router (ops.ts) both read it.
 */
import { type Rejection, reject } from "../core/index.js";

export const OPERATOR_ROLES = ["viewer", "responder", "supervisor"] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

/**
 * An operator entry without `role`: every action, as before roles existed (0.13.25), so a site
 * file written before keeps working; `linli config check` warns about each such entry.
 */
export const DEFAULT_ROLE: OperatorRole = "supervisor";

const RANK: Readonly<Record<OperatorRole, number>> = { viewer: 0, responder: 1, supervisor: 2 };

/** Whether `role` includes what `needed` may do. */
export function roleIncludes(role: OperatorRole, needed: OperatorRole): boolean {
  return RANK[role] >= RANK[needed];
}

/** The roles' names as duty staff read them (the console, results). */
export const ROLE_ZH: Readonly<Record<OperatorRole, string>> = {
  viewer: "查看员",
  responder: "值班员",
  supervisor: "主管",
};

const ACTION_ZH: Readonly<Record<string, string>> = {
  ack: "确认告警",
  shelve: "搁置告警",
  unshelve: "取消搁置",
  service: "停用或恢复设备",
  away: "设置住户外出",
  cmd: "向设备发送命令",
  list: "查询未结束告警",
};

/** The refusal of a request the account's role does not allow (counted as `forbidden`). */
export function forbidden(role: OperatorRole, action: string, needed: OperatorRole): Rejection {
  return reject("forbidden", `role ${role} may not ${action} (needs ${needed})`, {
    zh: `无权限：${ROLE_ZH[role]}不能${ACTION_ZH[action] ?? action}（需要${ROLE_ZH[needed]}）`,
  });
}
