/**
 * What an operator reads when a request succeeded (docs/topics.md, "Operator
 * results", 0.13.0): one line in the site's language, with the times on the
 * site's wall clock (`site.timezone`), beside the English `detail` that keeps
 * its UTC ISO time for machines. Refusals carry their own words (core/refusal.ts).
 */
import type { SiteTime } from "../../core/index.js";
import type { Locale } from "./codes.js";
import { localDateTime } from "./local-time.js";
import { zhJoin } from "./zh-join.js";

/** The `result` values of a successful operator request (docs/topics.md). */
export type OpsOutcome =
  | "acknowledged"
  | "closed"
  | "already-acknowledged"
  | "shelved"
  | "unshelved"
  | "out-of-service"
  | "in-service"
  | "away"
  | "monitored"
  | "listed";

export interface OpsOutcomeArgs {
  /** shelved: when the shelving ends; away: when away mode ends (null: until the resident is back). */
  until?: number | null;
  /** out-of-service, in-service: the device's open alerts; listed: the priority's open alerts. */
  alerts?: number;
  /** listed: how many of them this page names. */
  listed?: number;
  /**
   * What it acted on, in the site's language (alert-content.ts `nameAlert`, `nameDevice`,
   * `nameHousehold`): "1号楼 101室 张阿姨的紧急呼叫". Without it the line names nothing.
   */
  name?: string;
}

type Words = Record<OpsOutcome, (a: OpsOutcomeArgs, at: (t: number) => string) => string>;

const zhOf = (a: OpsOutcomeArgs) => (a.name ? `：${a.name}` : "");
const zhAlerts = (n = 0) => (n ? `（${n} 条未结束告警）` : "");

const ZH: Words = {
  acknowledged: (a) => `已确认${zhOf(a)}`,
  closed: (a) => `已确认，告警已结束${zhOf(a)}`,
  // The name first would run its title into the verb ("…，门长时间未关此前已确认").
  "already-acknowledged": (a) => (a.name ? `此前已确认${zhOf(a)}` : "该告警此前已确认"),
  shelved: (a, at) =>
    a.name
      ? `已搁置${zhOf(a)}${a.until ? `，至 ${at(a.until)}` : ""}`
      : a.until
        ? `已搁置至 ${at(a.until)}`
        : "已搁置",
  unshelved: (a) => `已取消搁置${zhOf(a)}`,
  "out-of-service": (a) =>
    a.name ? `已停用${zhOf(a)}${zhAlerts(a.alerts)}` : `设备已停用${zhAlerts(a.alerts)}`,
  "in-service": (a) =>
    a.name ? `已恢复使用${zhOf(a)}${zhAlerts(a.alerts)}` : `设备已恢复使用${zhAlerts(a.alerts)}`,
  away: (a, at) =>
    zhJoin(a.name ?? "", `已设为外出，关怀检查暂停至${a.until ? ` ${at(a.until)}` : "住户回家"}`),
  monitored: (a) => zhJoin(a.name ?? "", "已恢复看护，关怀检查重新计时"),
  listed: (a) => `共 ${a.alerts ?? 0} 条未结束告警，本页 ${a.listed ?? 0} 条`,
};

const openAlerts = (n = 0) => (n ? ` (${n} open alert${n === 1 ? "" : "s"})` : "");

const enOf = (a: OpsOutcomeArgs) => (a.name ? `: ${a.name}` : "");

const EN: Words = {
  acknowledged: (a) => `acknowledged${enOf(a)}`,
  closed: (a) =>
    a.name ? `acknowledged${enOf(a)}; the alert is closed` : "acknowledged; the alert is closed",
  "already-acknowledged": (a) => (a.name ? `already acknowledged${enOf(a)}` : "already acknowledged"),
  shelved: (a, at) => `shelved${a.until ? ` until ${at(a.until)}` : ""}${enOf(a)}`,
  unshelved: (a) => `unshelved${enOf(a)}`,
  "out-of-service": (a) =>
    a.name
      ? `out of service${enOf(a)}${openAlerts(a.alerts)}`
      : `device out of service${openAlerts(a.alerts)}`,
  "in-service": (a) =>
    a.name
      ? `back in service${enOf(a)}${openAlerts(a.alerts)}`
      : `device back in service${openAlerts(a.alerts)}`,
  away: (a, at) =>
    `away${a.name ? ` (${a.name})` : ""}: welfare checks paused until ${a.until ? at(a.until) : "the resident is back"}`,
  monitored: (a) => `monitored again${a.name ? ` (${a.name})` : ""}: welfare checks restarted`,
  listed: (a) => `${a.alerts ?? 0} open alert${a.alerts === 1 ? "" : "s"}, ${a.listed ?? 0} on this page`,
};

const WORDS: Record<Locale, Words> = { "zh-CN": ZH, en: EN };

/** The line for a successful request, in `locale`, times in the site's zone ("2026-12-06 07:15"). */
export function opsOutcomeText(
  locale: Locale,
  outcome: OpsOutcome,
  args: OpsOutcomeArgs,
  site: SiteTime,
): string {
  return WORDS[locale][outcome](args, (t) => localDateTime(t, site));
}
