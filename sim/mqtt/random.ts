/**
 * A small seeded PRNG (mulberry32). The simulator must be reproducible per seed
 * (same community, same device table), and Math.random is not seedable.
 */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer in [min, max], inclusive. */
export function randomInt(rng: Random, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

/** Exponential inter-arrival time for a Poisson process of `ratePerMs`. */
export function exponentialMs(rng: Random, meanMs: number): number {
  // 1 - rng() is in (0, 1], so the log is finite.
  return -Math.log(1 - rng()) * meanMs;
}

/** Derives an independent stream from a parent seed and a label (per device, per behaviour). */
export function deriveSeed(seed: number, label: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}
