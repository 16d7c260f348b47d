/**
 * What the rules note of each message before judging any alarm: whether the device tests itself,
 * the last value of the fault fields and of the points a command's `unless` reads, and whether a
 * reading of this message is not believed.
 */
import type { RuleContext } from "../../profile.js";
import type { DeclaredSample } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import type { Codes } from "./codes.js";
import { bitOf } from "./conditions.js";
import type { Unreliable } from "./unreliable.js";

export function observerOf(
  doc: DeclaredProfileDoc,
  { unlessPoints }: Codes,
  { unreliableSources, unreliablePoints, doubtful }: Unreliable,
) {
  return (s: DeclaredSample, st: DeclaredState, ctx: RuleContext): void => {
    st.testing = doc.testWhile ? bitOf(s, doc.testWhile.point, doc.testWhile.bit) : false;
    // A fault field's value stands until a message carries it again; an older message (lanes
    // reorder) does not overrule what a newer one said.
    if (!ctx.stale)
      for (const n of unreliableSources) {
        const v = s.v[n];
        if (v !== undefined) st.lastOf[n] = v;
      }
    // What a command's `unless` reads: the point's last value, whatever the message's age.
    for (const n of unlessPoints) {
      const v = s.v[n];
      if (v !== undefined) st.seen[n] = v;
    }
    st.doubted = false;
    // Suspect: a reading of this sample not believed (a message without the reading is not).
    for (const n of unreliablePoints) if (s.v[n] !== undefined && doubtful(s, n, st)) st.doubted = true;
  };
}
