/**
 * Raising and clearing: one condition per code, raised while any of its alarms holds (or its hold
 * alone), naming each that holds, at the highest priority among them, with its delays, `unless`,
 * escalation and incident detail, reported to the engine (ctx.condition).
 */
import type { RuleContext } from "../../profile.js";
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import type { Codes } from "./codes.js";
import { describe, describeHold } from "./describe.js";
import type { incidentOf } from "./incident.js";
import { onDelayOf } from "./on-delay.js";

export function reporterOf(
  doc: DeclaredProfileDoc,
  { byCode, groups, holdOf }: Codes,
  incident: ReturnType<typeof incidentOf>,
) {
  const alarms = doc.alarms;
  /** `evaluated`: which alarms this message decided from a believed value (evaluate.ts, all-alarms.ts). */
  return (
    s: DeclaredSample,
    st: DeclaredState,
    settings: DeclaredSettings,
    ctx: RuleContext,
    evaluated: readonly boolean[],
  ): void => {
    // One condition per code: raised while any of its alarms holds, naming each that holds, at
    // the highest priority among them (the MFS-8's one FIRE_ALARM for smoke, heat and call point;
    // its FAULT P2 while the pump's, else P3). Alarms sharing a code share their delays and
    // `unless` (schema.ts), so one alarm's group behaves as that alarm alone.
    for (const [k, group] of groups.entries()) {
      const first = alarms[group[0]!]!;
      const onDelayMs = onDelayOf(first, settings, doc);
      const replaced =
        first.unless !== undefined && byCode.get(first.unless)!.some((j) => st.alarms[j]!.active);
      const causes: string[] = [];
      let priority = first.priority;
      let anyEvaluated = false;
      let onset = false;
      let since = Number.NaN;
      for (const i of group) {
        const a = alarms[i]!;
        const as = st.alarms[i]!;
        if (evaluated[i]) anyEvaluated = true;
        // The earliest onset of the group (NaN compares false: the first one found).
        if (as.active && as.onset && onDelayMs !== undefined && !(as.since >= since)) since = as.since;
        if (!as.active || replaced) continue;
        // A value not believed (self-test, a suspect jump, `unreliableWhen`) cannot confirm an
        // on-delay: it holds a raised alert within the deadband only (onset false, below).
        if (evaluated[i] && as.onset) onset = true;
        let cause = a.cause ?? describe(a);
        if (a.causeFrom !== undefined) cause = `${cause}: ${String(s.v[a.causeFrom])}`;
        causes.push(cause);
        if (causes.length === 1 || a.priority < priority) priority = a.priority;
      }
      // Held by its hold alone: no onset (it raises nothing, nor confirms an on-delay).
      const hold = holdOf[k];
      if (hold !== null && hold !== undefined && st.holding[k]!.on && !replaced) {
        causes.push(hold.cause ?? describeHold(hold));
        priority = hold.priority;
      }
      const active = causes.length > 0;
      if (!anyEvaluated) {
        // Nothing believed: one that runs out meanwhile must not raise. Reported within the
        // deadband only (onset false), a raised alert holds and a pending one ends; the next real
        // value decides, from `since` (forgotten after an `unreliableWhen`).
        if (active && onDelayMs !== undefined) {
          const detail = incident(k, true, s, st, settings, ctx);
          ctx.condition(first.code, true, {
            priority,
            causes,
            onset: false,
            ...(first.escalateAs !== undefined ? { escalateAs: first.escalateAs } : {}),
            ...(detail !== undefined ? { detail } : {}),
          });
        }
        continue;
      }
      st.holding[k]!.was = active;
      const detail = incident(k, active, s, st, settings, ctx);
      ctx.condition(first.code, active, {
        priority,
        causes,
        ...(detail !== undefined ? { detail } : {}),
        ...(onDelayMs !== undefined ? { onDelayMs } : {}),
        ...(first.offDelay !== undefined ? { offDelayMs: first.offDelay } : {}),
        ...(first.escalateAs !== undefined ? { escalateAs: first.escalateAs } : {}),
        ...(active && !onset ? { onset: false } : {}),
        ...(Number.isNaN(since) ? {} : { since }),
      });
    }
  };
}
