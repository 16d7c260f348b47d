/**
 * How far a ratio of two pooled p99s can be trusted: a bootstrap interval.
 *
 * The journal's P1 target compares the p99 of a few hundred P1 alerts per point, pooled over a
 * few off/on pairs. At 2,000 msg/s a p99 is the 3rd-9th largest of its samples, and one pair's
 * ratio moved between 0.5x and 2.2x from run to run on a quiet machine (docs/durability.md): a
 * single pooled figure near the target decides nothing. The interval resamples at both levels
 * the noise lives on: which pairs ran (a pair is one hypervisor minute, one page-cache state),
 * and, inside each pair, which P1 alerts happened to be measured. Its upper end is what "met with
 * a margin" means.
 */
import hdr from "hdr-histogram-js";
import { seededRandom } from "../sim/mqtt/random.js";

/** The recorded values of an encoded histogram (Latency.encoded()), one entry per sample, in µs. */
export function samplesOf(encoded: string): Float64Array {
  const h = hdr.decodeFromCompressedBase64(encoded) as hdr.JsHistogram;
  const out = new Float64Array(h.totalCount);
  const it = h.recordedValuesIterator;
  it.reset();
  let n = 0;
  while (it.hasNext()) {
    const v = it.next();
    // The bucket's highest equivalent value, as getValueAtPercentile() reports it.
    const value = h.highestEquivalentValue(v.valueIteratedTo);
    for (let k = 0; k < v.countAtValueIteratedTo && n < out.length; k++) out[n++] = value;
  }
  return n === out.length ? out : out.subarray(0, n);
}

/** The value at percentile `p` of `sorted` (ascending) by nearest rank, as hdr-histogram reports one; 0 when empty. */
export function atPercentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] as number;
}

export interface PairSamples {
  off: Float64Array;
  on: Float64Array;
}

export interface IntervalOptions {
  /** The percentile compared (default 99). */
  percentile?: number;
  /** Bootstrap resamples (default 1,000). */
  resamples?: number;
  /** Two-sided coverage (default 0.9: the 5th to the 95th percentile of the resampled ratios). */
  level?: number;
  seed?: number;
}

/**
 * The interval of on/off (pooled p`percentile` of "on" over pooled p`percentile` of "off"): each
 * resample draws as many pairs as there are, with replacement, and from each drawn pair as many
 * samples of each side as it has, with replacement. Null with fewer than 2 pairs (one pair says
 * nothing about the run-to-run spread, which is the larger part) or a side without samples.
 */
export function ratioInterval(
  pairs: readonly PairSamples[],
  opts: IntervalOptions = {},
): { low: number; high: number } | null {
  const percentile = opts.percentile ?? 99;
  const resamples = opts.resamples ?? 1000;
  const level = opts.level ?? 0.9;
  if (pairs.length < 2 || pairs.some((p) => p.off.length === 0 || p.on.length === 0)) return null;
  // Seeded: the same run prints the same interval.
  const random = seededRandom(opts.seed ?? 1);
  // The largest pool a resample can draw: the largest pair drawn every time.
  const widest = Math.max(...pairs.map((p) => Math.max(p.off.length, p.on.length))) * pairs.length;
  const offPool = new Float64Array(widest);
  const onPool = new Float64Array(widest);
  const ratios = new Float64Array(resamples);
  const draw = (from: Float64Array, into: Float64Array, at: number): number => {
    for (let k = 0; k < from.length; k++) into[at + k] = from[Math.floor(random() * from.length)] as number;
    return at + from.length;
  };
  for (let r = 0; r < resamples; r++) {
    let nOff = 0;
    let nOn = 0;
    for (let k = 0; k < pairs.length; k++) {
      const pair = pairs[Math.floor(random() * pairs.length)] as PairSamples;
      nOff = draw(pair.off, offPool, nOff);
      nOn = draw(pair.on, onPool, nOn);
    }
    const off = atPercentile(offPool.subarray(0, nOff).sort(), percentile);
    const on = atPercentile(onPool.subarray(0, nOn).sort(), percentile);
    ratios[r] = off > 0 ? on / off : Number.POSITIVE_INFINITY;
  }
  ratios.sort();
  const tail = (1 - level) / 2;
  return { low: atPercentile(ratios, 100 * tail), high: atPercentile(ratios, 100 * (1 - tail)) };
}
