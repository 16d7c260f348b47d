/**
 * A small seeded PRNG (mulberry32) so a crash run's schedule (when to kill, which
 * pendant presses, which alert the operator acknowledges) can be replayed from its seed.
 */
// The simulator's mulberry32: one implementation of the seeded generator.
export { type Random as Rng, seededRandom as seededRng } from "../../../sim/mqtt/random.js";

import type { Random as Rng } from "../../../sim/mqtt/random.js";

/** The seed of this run: LINLI_CRASH_SEED replays one, else a fresh one (printed by the caller). */
export function runSeed(): number {
  const env = process.env.LINLI_CRASH_SEED;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new RangeError(`LINLI_CRASH_SEED must be an integer 0..4294967295, got ${JSON.stringify(env)}`);
    }
    return n;
  }
  return Math.floor(Math.random() * 0xffffffff);
}

export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + rng() * (hi - lo);
}

export function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
