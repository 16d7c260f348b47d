/**
 * What an operator reads when a request succeeded (docs/topics.md, "Operator
 * results", 0.13.0): one line in the site's language, with the times on the
 * site's wall clock (`site.timezone`), beside the English `detail` that keeps
 * its UTC ISO time for machines. Refusals carry their own words (core/refusal.ts).
 */
import type { SiteTime } from "../../core/index.js";
import type { Locale } from "./codes.js";
import { localDateTime } from "./local-time.js";

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
}

type Words = Record<OpsOutcome, (a: OpsOutcomeArgs, at: (t: number) => string) => string>;

const ZH: Words = {
  acknowledged: () => "已确认",
  closed: () => "已确认，告警已结束",
  "already-acknowledged": () => "该告警此前已确认",
  shelved: (a, at) => (a.until ? `已搁置至 ${at(a.until)}` : "已搁置"),
  unshelved: () => "已取消搁置",
  "out-of-service": (a) => `设备已停用${a.alerts ? `（${a.alerts} 条未结束告警）` : ""}`,
  "in-service": (a) => `设备已恢复使用${a.alerts ? `（${a.alerts} 条未结束告警）` : ""}`,
  away: (a, at) =>
    a.until ? `已设为外出，关怀检查暂停至 ${at(a.until)}` : "已设为外出，关怀检查暂停至住户回家",
  monitored: () => "已恢复看护，关怀检查重新计时",
  listed: (a) => `共 ${a.alerts ?? 0} 条未结束告警，本页 ${a.listed ?? 0} 条`,
};

const openAlerts = (n = 0) => (n ? ` (${n} open alert${n === 1 ? "" : "s"})` : "");

const EN: Words = {
  acknowledged: () => "acknowledged",
  closed: () => "acknowledged; the alert is closed",
  "already-acknowledged": () => "already acknowledged",
  shelved: (a, at) => (a.until ? `shelved until ${at(a.until)}` : "shelved"),
  unshelved: () => "unshelved",
  "out-of-service": (a) => `device out of service${openAlerts(a.alerts)}`,
  "in-service": (a) => `device back in service${openAlerts(a.alerts)}`,
  away: (a, at) =>
    a.until
      ? `away: welfare checks paused until ${at(a.until)}`
      : "away: welfare checks paused until the resident is back",
  monitored: () => "monitored again: welfare checks restarted",
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
