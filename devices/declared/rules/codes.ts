/**
 * An alarm's condition, and the codes the alarms raise: alarms sharing a code are one alert (its
 * causes every one that holds), and a code's `holdWhile`, `peak` and `command` sit on one of its
 * alarms (schema.ts).
 */
import type { Condition, DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";

export type Alarm = DeclaredProfileDoc["alarms"][number];

/** An alarm's single condition; null for an `all:` one. */
export const single = (a: Alarm): Condition | null => ("all" in a.when ? null : a.when);
/** The points an alarm's condition reads (its own; an `all:` alarm's parts' points). */
export const pointsOf = (a: Alarm): string[] =>
  "all" in a.when ? a.when.all.flatMap((c) => (c.point !== undefined ? [c.point] : [])) : [a.when.point];

export type Codes = ReturnType<typeof codesOf>;

/** The alarms grouped by code, in the order of each code's first alarm (the journal's order too). */
export function codesOf(alarms: readonly Alarm[]) {
  // Alarms sharing a code are one alert (its causes every one that holds): the indices of each code.
  const byCode = new Map<string, number[]>();
  alarms.forEach((a, i) => {
    byCode.set(a.code, [...(byCode.get(a.code) ?? []), i]);
  });
  const groups = [...byCode.values()];
  /** Each code's `holdWhile` (schema.ts: on one of its alarms), with that alarm's priority. */
  const holdOf = groups.map((g) => {
    const i = g.find((j) => alarms[j]!.holdWhile !== undefined);
    return i === undefined ? null : { ...alarms[i]!.holdWhile!, priority: alarms[i]!.priority };
  });
  const groupOf = new Map([...byCode.keys()].map((code, k) => [code, k]));
  /** Each code's `peak` and automatic `command` (schema.ts: on one of its alarms). */
  const peakOf = groups.map((g) => alarms[g.find((j) => alarms[j]!.peak !== undefined) ?? -1]?.peak ?? null);
  const commandOf = groups.map(
    (g) => alarms[g.find((j) => alarms[j]!.command !== undefined) ?? -1]?.command ?? null,
  );
  const unlessPoints = [...new Set(commandOf.flatMap((c) => (c?.unless ? [c.unless.point] : [])))];
  /** Whether a code's condition holds in the state: one of its alarms, or its hold alone. */
  const codeOn = (st: DeclaredState, code: string): boolean =>
    byCode.get(code)!.some((j) => st.alarms[j]!.active) || st.holding[groupOf.get(code)!]!.on;
  /** The codes `all:` parts name (their alarms' state is read by another alarm). */
  const namedCodes = [
    ...new Set(alarms.flatMap((a) => ("all" in a.when ? a.when.all.flatMap((c) => c.alarm ?? []) : []))),
  ];
  return { byCode, groups, groupOf, holdOf, peakOf, commandOf, unlessPoints, codeOn, namedCodes };
}
