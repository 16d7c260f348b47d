/**
 * The search for a sustained ceiling over offered rates (pure, unit-tested in
 * ceiling-search.test.ts): bracketing, then bisection, with a bounded number of
 * probes. Each probe is one bench point judged by the existing sustained
 * criterion (bench/gateway.ts `sustainedVerdict`); this module only decides which
 * rate to probe next and what the ceiling is.
 *
 * Noise policy (the machine is shared): a rate counts as sustained only once it
 * has passed twice, so a lucky probe cannot raise the ceiling; one failure marks
 * the rate as not sustained, so a disturbed probe can only lower it (the search
 * errs low, never high).
 *
 * - bracketing: from `start`, double while the rate is sustained (up to `max`),
 *   halve while it is not (down to `min`);
 * - bisection: between the highest sustained rate `lo` and the lowest failed
 *   rate above it `hi`, probe the midpoint (rounded to `step`) until
 *   hi / lo <= 1 + `resolution` or the midpoint rounds onto a bound;
 * - budget: at most `maxProbes` probes; when spent, the ceiling is `lo`, and the
 *   result says the bracket was not closed.
 */

export interface SearchOptions {
  /** First rate probed, msg/s. */
  start: number;
  /** Never probe below / above these. */
  min: number;
  max: number;
  /** Rates are rounded to a multiple of this, msg/s. */
  step: number;
  /** Stop when hi / lo <= 1 + resolution. */
  resolution: number;
  /** Probes in all, confirmations included. */
  maxProbes: number;
  /** Passes a rate needs before it counts as sustained (2: the noise policy above). */
  passesNeeded: number;
}

export const DEFAULT_SEARCH: Omit<SearchOptions, "start"> = {
  min: 500,
  max: 80_000,
  step: 250,
  resolution: 0.1,
  // With 10 the budget was spent before a bracket closed, on both sides, in both runs of 2026-12-04
  // evening (docs/performance.md); 14 leaves room for two bisection steps after the bracketing.
  maxProbes: 14,
  passesNeeded: 2,
};

export interface Probe {
  rate: number;
  sustained: boolean;
}

export type SearchState =
  | { done: false; next: number }
  | {
      done: true;
      /** Highest rate sustained (passed `passesNeeded` times, never failed); 0 if none. */
      ceiling: number;
      /** Lowest rate above the ceiling that failed; null if none did (ceiling may be `max`). */
      failedAt: number | null;
      /** Why the search stopped. */
      why: "resolved" | "at max" | "below min" | "probe budget spent";
    };

interface RateTally {
  passes: number;
  fails: number;
}

function tally(history: readonly Probe[]): Map<number, RateTally> {
  const t = new Map<number, RateTally>();
  for (const p of history) {
    const x = t.get(p.rate) ?? { passes: 0, fails: 0 };
    if (p.sustained) x.passes++;
    else x.fails++;
    t.set(p.rate, x);
  }
  return t;
}

const roundTo = (v: number, step: number) => Math.max(step, Math.round(v / step) * step);

/** What to do after `history` (probes in the order they ran). */
export function nextProbe(history: readonly Probe[], o: SearchOptions): SearchState {
  const t = tally(history);
  const good = [...t].filter(([, x]) => x.fails === 0 && x.passes >= o.passesNeeded).map(([r]) => r);
  const failed = [...t].filter(([, x]) => x.fails > 0).map(([r]) => r);
  const lo = good.length > 0 ? Math.max(...good) : 0;
  const above = failed.filter((r) => r > lo);
  const hi = above.length > 0 ? Math.min(...above) : null;
  const done = (why: Extract<SearchState, { done: true }>["why"]): SearchState => ({
    done: true,
    ceiling: lo,
    failedAt: hi,
    why,
  });
  if (history.length >= o.maxProbes) return done("probe budget spent");

  // A rate inside the bracket that passed but not often enough yet: confirm it first.
  const pending = [...t]
    .filter(([r, x]) => x.fails === 0 && x.passes < o.passesNeeded && r > lo && (hi === null || r < hi))
    .map(([r]) => r);
  if (pending.length > 0) return { done: false, next: Math.max(...pending) };

  if (history.length === 0)
    return { done: false, next: Math.min(o.max, Math.max(o.min, roundTo(o.start, o.step))) };
  if (hi === null) {
    if (lo >= o.max) return done("at max");
    return { done: false, next: Math.min(o.max, roundTo(2 * lo, o.step)) };
  }
  if (lo === 0) {
    if (hi <= o.min) return done("below min");
    return { done: false, next: Math.max(o.min, roundTo(hi / 2, o.step)) };
  }
  if (hi / lo <= 1 + o.resolution) return done("resolved");
  const mid = roundTo((lo + hi) / 2, o.step);
  if (mid <= lo || mid >= hi) return done("resolved");
  return { done: false, next: mid };
}
