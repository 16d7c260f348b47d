/**
 * An alarm's condition in words ("lel at or over 5"): its cause when the document gives none, and
 * the alert's `raised` text. Operators' titles and actions come from the document instead
 * (gateway/content/alert-content.ts).
 */
import type { AlertSpec } from "../../profile.js";
import type { HoldWhile, Limit } from "../schema.js";
import type { Alarm } from "./codes.js";

export function describe(a: Alarm): string {
  if ("all" in a.when)
    return a.when.all
      .map((c) =>
        c.alarm !== undefined
          ? c.alarm
          : c.bit !== undefined
            ? `${c.point} ${c.bit}`
            : c.equals !== undefined
              ? `${c.point} is ${String(c.equals)}`
              : `${c.point} is not ${String(c.notEquals)}`,
      )
      .join(" and ");
  const w = a.when;
  const lim = (l: Limit) =>
    typeof l === "number"
      ? String(l)
      : "ratio" in l
        ? `${l.ratio * 100} % of ${l.of}`
        : "point" in l
          ? l.point
          : `the ${l.setting}`;
  if (w.bit !== undefined) return `${w.point} ${w.bit}`;
  if (w.equals !== undefined) return `${w.point} is ${String(w.equals)}`;
  if (w.notEquals !== undefined) return `${w.point} is not ${String(w.notEquals)}`;
  if (w.inclusive)
    return w.below !== undefined
      ? `${w.point} at or under ${lim(w.below)}`
      : `${w.point} at or over ${lim(w.above!)}`;
  return w.below !== undefined ? `${w.point} under ${lim(w.below)}` : `${w.point} over ${lim(w.above!)}`;
}

/** A hold's condition in words, as `describe` says an alarm's ("lel at or over 5"). */
export function describeHold(h: HoldWhile): string {
  return describe({ code: "X", priority: 1, when: h } as Alarm);
}

/** Each code's alert: its priority (or priorities), and what raises and clears it. */
export function alertSpecsOf(alarms: readonly Alarm[]): Record<string, AlertSpec> {
  const specs: Record<string, AlertSpec> = {};
  for (const a of alarms) {
    // Operators' words (title, action) come from the document (gateway/content/alert-content.ts).
    const same = alarms.filter((o) => o.code === a.code);
    const priorities = [...new Set(same.map((o) => o.priority))].sort();
    specs[a.code] = {
      priority: priorities.length === 1 ? priorities[0]! : priorities,
      raised: same.map((o) => o.cause ?? describe(o)).join(", or "),
      cleared: "the condition no longer holds",
    };
  }
  return specs;
}
