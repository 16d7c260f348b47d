/**
 * Each alarm's own single condition on this message (before `unless`, holds and codes): a bit or
 * an equality as the message says, a threshold through its ThresholdState (limit, deadband), and
 * since when it is beyond (the on-delay's start). Values not believed leave the alarm as it was.
 */
import type { RuleContext } from "../../profile.js";
import { ThresholdState } from "../../threshold.js";
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import { single } from "./codes.js";
import { raw } from "./conditions.js";
import type { Limits } from "./limits.js";
import { num } from "./spikes.js";
import type { Unreliable } from "./unreliable.js";

export function ownConditionsOf(
  doc: DeclaredProfileDoc,
  { resolve, deadbandOf }: Limits,
  { doubtful }: Unreliable,
  spikeOf: ReadonlyMap<string, number>,
) {
  const alarms = doc.alarms;
  /** Whether each alarm was evaluated from a believed value (false for every `all:` one: all-alarms.ts). */
  return (s: DeclaredSample, st: DeclaredState, settings: DeclaredSettings, ctx: RuleContext): boolean[] =>
    alarms.map((a, i) => {
      const as = st.alarms[i]!;
      const w = single(a);
      // After every single condition: an `all:` alarm reads the codes it names (all-alarms.ts).
      if (w === null) return false;
      // A point not believed (`unreliableWhen`) holds its alarm: neither raised nor cleared, and
      // its on-delay starts again from the first believed reading after (`since` forgotten).
      if (doubtful(s, w.point, st)) {
        as.since = 0;
        return false;
      }
      const r = raw(a, s);
      if (r !== null) {
        // An optional field absent from this message says nothing of it: the alarm keeps its
        // state (as a threshold's does), rather than reading "not true" as cleared.
        if (s.v[w.point] !== undefined) {
          as.active = r;
          as.onset = r;
        }
      } else {
        const spike = spikeOf.get(w.point);
        if (st.testing || (spike !== undefined && st.spikes[spike]!.suspect)) return false;
        const high = w.above !== undefined;
        const limit = resolve((high ? w.above : w.below)!, s, st, settings);
        if (!Number.isFinite(limit)) return false;
        const deadband = deadbandOf(w, limit, s, st, settings);
        if (as.threshold === null || as.limit !== limit || as.deadband !== deadband) {
          const first = as.threshold === null;
          const inclusive = w.inclusive === true;
          as.threshold = new ThresholdState(
            high ? { above: limit, deadband, inclusive } : { below: limit, deadband, inclusive },
          );
          // The first build after a restart takes whether it was crossed from the journal
          // (`durable`; false on a fresh start, before any reading).
          if (first) as.threshold.active = as.active;
          as.limit = limit;
          as.deadband = deadband;
        }
        as.active = as.threshold.update(num(s, w.point));
        // The on-delay times the limit itself; the deadband is the way back of a raised alert.
        as.onset = as.threshold.beyond;
      }
      if (as.onset && as.since === 0) as.since = ctx.now;
      if (!as.onset) as.since = 0;
      return true;
    });
}
