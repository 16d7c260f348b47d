/**
 * `holdWhile`: a code's alert, once raised, stays while another condition holds (the GD-2's leak
 * under its threshold while lel is not yet back under 5 %LEL), even when none of its alarms does.
 */
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { HoldWhile } from "../schema.js";
import type { DeclaredState } from "../state.js";
import type { Codes } from "./codes.js";
import type { Limits } from "./limits.js";
import type { Unreliable } from "./unreliable.js";

export type Holds = ReturnType<typeof holdsOf>;

export function holdsOf(
  { holdOf, groups }: Codes,
  { resolve }: Limits,
  { doubtful }: Unreliable,
  blankState: DeclaredState,
) {
  /**
   * A `holdWhile` condition on this sample; null when it says nothing (its point absent or not
   * believed, a limit that cannot be resolved): the hold stays as it was.
   */
  const holdHolds = (
    h: HoldWhile,
    s: DeclaredSample,
    st: DeclaredState | undefined,
    settings: DeclaredSettings,
  ): boolean | null => {
    const v = s.v[h.point];
    if (v === undefined || doubtful(s, h.point, st)) return null;
    if (h.equals !== undefined) return v === h.equals;
    if (h.notEquals !== undefined) return v !== h.notEquals;
    if (typeof v !== "number") return null;
    const high = h.above !== undefined;
    const limit = resolve((high ? h.above : h.below)!, s, st ?? blankState, settings);
    if (!Number.isFinite(limit)) return null;
    if (high) return h.inclusive ? v >= limit : v > limit;
    return h.inclusive ? v <= limit : v < limit;
  };
  /**
   * After the code's own alarms are evaluated: the alert raised before this message stays while
   * its hold holds, when none of the code's own alarms holds it any more.
   */
  const updateHolds = (s: DeclaredSample, st: DeclaredState, settings: DeclaredSettings): void => {
    holdOf.forEach((h, k) => {
      if (h === null) return;
      const hs = st.holding[k]!;
      const c = holdHolds(h, s, st, settings);
      if (c !== null) hs.hold = c;
      hs.on = hs.was && hs.hold && !groups[k]!.some((i) => st.alarms[i]!.active);
    });
  };
  return { holdHolds, updateHolds };
}
