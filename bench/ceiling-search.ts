/**
 * The search for a sustained ceiling over offered rates (pure, unit-tested in
 * ceiling-search.test.ts): bracketing, then bisection, with a bounded number of
 * probes. Each probe is one bench point judged by the existing sustained
 * criterion (bench/gateway.ts `sustainedVerdict`); this module only decides which
 * rate to probe next and what the ceiling is.
 *
 * Noise policy (the machine is shared; a spike can fail a probe, a quiet moment
 * can pass one): symmetric. A rate is decided by a majority of up to `votes`
 * probes (3: two passes = sustained, two failures = not sustained; a third probe
 * only when the first two disagree), so neither one lucky pass nor one disturbed
 * failure decides a rate, for the broker and the gateway alike.
 *
 * Monotonicity: what sustains a rate sustains every lower one. A rate decided not
 * sustained below a rate decided sustained contradicts that; the failure is not
 * believed but re-probed, the majority of up to `2 * votes - 1` probes at that
 * rate (5) deciding: cleared (more passes), or no longer a majority either way
 * (then the sustained rate above it stands for it), or failed `votes` times, a
 * majority that stands, and the ceiling is taken below it. (The search itself
 * never probes below its highest sustained rate, so this guards the verdicts
 * rather than being a path the search takes on its own.)
 *
 * - an undecided rate inside the bracket is probed again before anything else;
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
  /** Probes in all, repeats included. */
  maxProbes: number;
  /**
   * Probes that decide a rate, by majority (odd): 3 for the noise policy above, 1 for a single
   * probe deciding either way (bench/cores.ts).
   */
  votes: number;
}

export const DEFAULT_SEARCH: Omit<SearchOptions, "start"> = {
  min: 500,
  max: 80_000,
  step: 250,
  resolution: 0.1,
  // 14 with two passes to confirm a rate and one failure to reject it (2026-12-04 to 12-06); with
  // a majority of 3 a rate costs 2-3 probes: 20 covers bracketing from 5,000 to 40,000 msg/s (4
  // rates) and three bisection steps with a third probe at two of those rates.
  maxProbes: 20,
  votes: 3,
};

export interface Probe {
  rate: number;
  sustained: boolean;
}

export type SearchState =
  | { done: false; next: number }
  | {
      done: true;
      /** Highest rate decided sustained (a majority of its probes passed); 0 if none. */
      ceiling: number;
      /** Lowest rate above the ceiling decided not sustained; null if none (ceiling may be `max`). */
      failedAt: number | null;
      /** Why the search stopped. */
      why: "resolved" | "at max" | "below min" | "probe budget spent";
    };

/** A rate's probes so far and what they decide. */
export interface RateVerdict {
  passes: number;
  fails: number;
  /**
   * "open": no majority yet, or a failure below a sustained rate that may still be re-probed
   * (`contested`).
   */
  verdict: "sustained" | "not sustained" | "open";
  contested: boolean;
}

/** Every probed rate's verdict after `history`, monotonicity applied. */
export function rateVerdicts(history: readonly Probe[], o: SearchOptions): Map<number, RateVerdict> {
  const majority = Math.floor(o.votes / 2) + 1;
  const t = new Map<number, RateVerdict>();
  for (const p of history) {
    const x = t.get(p.rate) ?? { passes: 0, fails: 0, verdict: "open", contested: false };
    if (p.sustained) x.passes++;
    else x.fails++;
    t.set(p.rate, x);
  }
  for (const x of t.values())
    x.verdict =
      x.passes >= majority && x.passes > x.fails
        ? "sustained"
        : x.fails >= majority && x.fails > x.passes
          ? "not sustained"
          : "open";
  const sustained = [...t].filter(([, x]) => x.verdict === "sustained").map(([r]) => r);
  const top = sustained.length > 0 ? Math.max(...sustained) : 0;
  // `votes` failures are a majority of 2 * votes - 1 probes: more probes could not clear it.
  for (const [r, x] of t)
    if (x.verdict === "not sustained" && r < top && x.fails < o.votes) {
      x.verdict = "open";
      x.contested = true;
    }
  return t;
}

/** One line on a rate's probes, for the log: "1 of 2 passed: undecided". */
export function describeRate(history: readonly Probe[], rate: number, o: SearchOptions): string {
  const x = rateVerdicts(history, o).get(rate);
  if (x === undefined) return "not probed";
  const what =
    x.verdict === "open"
      ? x.contested
        ? "failed below a sustained rate: probing again"
        : "undecided"
      : x.verdict;
  return `${x.passes} of ${x.passes + x.fails} passed: ${what}`;
}

const roundTo = (v: number, step: number) => Math.max(step, Math.round(v / step) * step);

/** What to do after `history` (probes in the order they ran). */
export function nextProbe(history: readonly Probe[], o: SearchOptions): SearchState {
  const t = rateVerdicts(history, o);
  const rates = (v: RateVerdict["verdict"]) => [...t].filter(([, x]) => x.verdict === v).map(([r]) => r);
  const failed = rates("not sustained");
  // A failure that stood its re-probes below a sustained rate: the ceiling lies below it.
  const lowestFail = failed.length > 0 ? Math.min(...failed) : Number.POSITIVE_INFINITY;
  const good = rates("sustained").filter((r) => r < lowestFail);
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

  // A contested failure first (it may move the ceiling), then an undecided rate inside the bracket
  // (outside it a rate's verdict would change nothing), the highest first.
  const contested = [...t].filter(([, x]) => x.contested).map(([r]) => r);
  if (contested.length > 0) return { done: false, next: Math.max(...contested) };
  const pending = rates("open").filter((r) => r > lo && (hi === null || r < hi));
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
