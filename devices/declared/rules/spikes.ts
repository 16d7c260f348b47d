/**
 * The jump filter (`spikes`): a reading far from the last believed one (for the time since the
 * previous poll, with `per`) is suspect until it persists; one outside min..max is never believed.
 */
import type { RuleContext } from "../../profile.js";
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";
import type { Limits } from "./limits.js";
import type { Unreliable } from "./unreliable.js";

export const num = (s: DeclaredSample, point: string) => s.v[point] as number;

/** Each filtered point's index in `doc.spikes` (and in the state's `spikes`). */
export const spikeIndex = (doc: DeclaredProfileDoc) => new Map(doc.spikes.map((s, i) => [s.point, i]));

export function spikeFilterOf(doc: DeclaredProfileDoc, { resolve }: Limits, { doubtful }: Unreliable) {
  return (s: DeclaredSample, st: DeclaredState, settings: DeclaredSettings, ctx: RuleContext): void => {
    doc.spikes.forEach((sp, i) => {
      const ss = st.spikes[i]!;
      ss.suspect = false;
      // An MQTT message without the reading (an optional field) says nothing of it: the last
      // believed value stays the reference, and the time since the last reading runs on.
      if (s.v[sp.point] === undefined) return;
      const sinceLast = ctx.readAt - ss.lastAt;
      // Not believed (`unreliableWhen`): no persistence counted, and no poll of the point either
      // (the fault is a gap: the first believed value after it is judged over the whole gap).
      const doubted = doubtful(s, sp.point, st);
      if (doubted) ss.suspectSince = Number.NaN;
      else ss.lastAt = ctx.readAt;
      if (st.testing) return;
      // Suspect, and never the reference.
      if (doubted) {
        ss.suspect = true;
        return;
      }
      const v = num(s, sp.point);
      if (
        (sp.max !== undefined && v > resolve(sp.max, s, st, settings)) ||
        (sp.min !== undefined && v < resolve(sp.min, s, st, settings))
      ) {
        ss.suspect = true;
        return;
      }
      const allowed = resolve(sp.maxJump, s, st, settings) * (sp.per === undefined ? 1 : sinceLast / sp.per);
      if (Math.abs(v - ss.good) > allowed && !Number.isNaN(ss.good)) {
        if (Number.isNaN(ss.suspectSince)) ss.suspectSince = ctx.readAt;
        if (ctx.readAt - ss.suspectSince < sp.persist) {
          ss.suspect = true;
          return;
        }
      }
      ss.good = v;
      ss.suspectSince = Number.NaN;
    });
  };
}
