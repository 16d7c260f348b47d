/** A declared model's rule state before any message (state.ts says what each part means). */
import type { DeclaredProfileDoc } from "../schema.js";
import type { DeclaredState } from "../state.js";

export function initialStateOf(doc: DeclaredProfileDoc, groups: readonly number[][]): () => DeclaredState {
  const alarms = doc.alarms;
  return (): DeclaredState => ({
    alarms: alarms.map((a) => ({
      threshold: null,
      limit: Number.NaN,
      deadband: Number.NaN,
      active: false,
      onset: false,
      since: 0,
      laneHeld: false,
      parts: "all" in a.when ? a.when.all.map(() => ({ held: false, since: 0, known: false })) : [],
    })),
    spikes: doc.spikes.map(() => ({
      good: Number.NaN,
      lastAt: Number.NaN,
      suspectSince: Number.NaN,
      suspect: false,
    })),
    testing: false,
    doubted: false,
    reads: {},
    lastOf: {},
    codeSince: {},
    holding: groups.map(() => ({ was: false, hold: false, on: false })),
    incidents: groups.map(() => ({ on: false, peak: Number.NaN, suspectPeak: Number.NaN, sent: false })),
    seen: {},
  });
}
