/**
 * `all:` alarms: active while every part holds, a part being a point's bit or (in)equality or
 * another code's condition (since when it holds: the incident's start, as gd2.ts's leakSince).
 * They run after every single condition and hold, whose codes they read.
 */
import type { RuleContext } from "../../profile.js";
import type { DeclaredSample } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import type { Codes } from "./codes.js";
import { holds } from "./conditions.js";
import type { Unreliable } from "./unreliable.js";

export function allAlarmsOf(
  doc: DeclaredProfileDoc,
  { namedCodes, codeOn }: Codes,
  { doubtful }: Unreliable,
) {
  const alarms = doc.alarms;
  /** Updates the `all:` alarms' state, and marks in `evaluated` those decided by this message. */
  return (s: DeclaredSample, st: DeclaredState, ctx: RuleContext, evaluated: boolean[]): void => {
    // The codes `all:` parts name: since when each holds (the incident's start, as gd2.ts's leakSince).
    for (const code of namedCodes) {
      const on = codeOn(st, code);
      if (!on) delete st.codeSince[code];
      else if (st.codeSince[code] === undefined) st.codeSince[code] = ctx.now;
    }
    alarms.forEach((a, i) => {
      if (!("all" in a.when)) return;
      const as = st.alarms[i]!;
      // A part's point not believed (`unreliableWhen`) holds the alarm, as a single condition's.
      if (a.when.all.some((c) => c.point !== undefined && doubtful(s, c.point, st))) {
        as.since = 0;
        return;
      }
      a.when.all.forEach((c, j) => {
        const ps = as.parts[j]!;
        if (c.alarm !== undefined) {
          ps.held = st.codeSince[c.alarm] !== undefined;
          ps.since = st.codeSince[c.alarm] ?? 0;
          return;
        }
        // A message without the point says nothing of it: the part keeps its value.
        if (s.v[c.point!] === undefined) return;
        ps.known = true;
        const h = holds(c, s) === true;
        if (h && !ps.held) ps.since = ctx.now;
        if (!h) ps.since = 0;
        ps.held = h;
      });
      // A part's point not had since the start (a restart, then a message without it: the GD-2's
      // reply): nothing is known of the alarm, and an alert restored from the journal stands.
      if (a.when.all.some((c, j) => c.point !== undefined && !as.parts[j]!.known)) {
        as.since = 0;
        return;
      }
      as.active = as.parts.every((p) => p.held);
      as.onset = as.active;
      // The on-delay runs from the first part's onset: "not closed within 20 s" of the leak.
      as.since = as.active ? as.parts[0]!.since : 0;
      evaluated[i] = true;
    });
  };
}
