import { describe, expect, it } from "vitest";
import { DEFAULT_SEARCH, describeRate, nextProbe, type Probe, type SearchOptions } from "./ceiling-search.js";

const opts: SearchOptions = { ...DEFAULT_SEARCH, start: 5_000 };

/** Runs the search against a deterministic system: `sustains(rate, k)` for the k-th probe. */
function search(o: SearchOptions, sustains: (rate: number, k: number) => boolean) {
  const history: Probe[] = [];
  for (;;) {
    const s = nextProbe(history, o);
    if (s.done) return { ...s, history };
    history.push({ rate: s.next, sustained: sustains(s.next, history.length) });
  }
}

/**
 * A system whose probes at some rates go as scripted (in order; past the script, the last
 * outcome), every other rate sustained up to `ceiling`.
 */
function scripted(ceiling: number, ...script: Array<[number, boolean[]]>) {
  const byRate = new Map(script);
  const seen = new Map<number, number>();
  return (rate: number) => {
    const n = seen.get(rate) ?? 0;
    seen.set(rate, n + 1);
    const s = byRate.get(rate);
    if (s === undefined) return rate <= ceiling;
    return s[Math.min(n, s.length - 1)] as boolean;
  };
}

const P = true;
const F = false;
const h = (...probes: Array<[number, boolean]>): Probe[] =>
  probes.map(([rate, sustained]) => ({ rate, sustained }));

describe("ceiling search", () => {
  it("starts at the start rate, confirms a pass before doubling", () => {
    expect(nextProbe([], opts)).toEqual({ done: false, next: 5_000 });
    expect(nextProbe(h([5_000, P]), opts)).toEqual({ done: false, next: 5_000 });
    expect(nextProbe(h([5_000, P], [5_000, P]), opts)).toEqual({ done: false, next: 10_000 });
  });

  it("decides a rate by a majority of three: a third probe only when the first two disagree", () => {
    // One failure alone decides nothing, in either order.
    expect(nextProbe(h([5_000, F]), opts)).toEqual({ done: false, next: 5_000 });
    expect(nextProbe(h([5_000, P], [5_000, F]), opts)).toEqual({ done: false, next: 5_000 });
    expect(nextProbe(h([5_000, F], [5_000, P]), opts)).toEqual({ done: false, next: 5_000 });
    // Two failures: not sustained, halve.
    expect(nextProbe(h([5_000, F], [5_000, F]), opts)).toEqual({ done: false, next: 2_500 });
    // The third probe decides either way.
    expect(nextProbe(h([5_000, P], [5_000, F], [5_000, P]), opts)).toEqual({ done: false, next: 10_000 });
    expect(nextProbe(h([5_000, F], [5_000, P], [5_000, F]), opts)).toEqual({ done: false, next: 2_500 });
    expect(describeRate(h([5_000, P], [5_000, F]), 5_000, opts)).toBe("1 of 2 passed: undecided");
    expect(describeRate(h([5_000, P], [5_000, F], [5_000, P]), 5_000, opts)).toBe("2 of 3 passed: sustained");
  });

  it("brackets then bisects to within the resolution, every sustained rate passed twice", () => {
    const r = search({ ...opts, maxProbes: 30 }, (rate) => rate <= 13_000);
    expect(r).toMatchObject({ done: true, why: "resolved" });
    expect(r.ceiling).toBeLessThanOrEqual(13_000);
    expect((r.failedAt as number) / r.ceiling).toBeLessThanOrEqual(1 + opts.resolution);
    expect(r.history.filter((p) => p.rate === r.ceiling && p.sustained)).toHaveLength(2);
    expect(r.history.filter((p) => p.rate === r.failedAt && !p.sustained)).toHaveLength(2);
    for (const p of r.history) expect(p.rate % opts.step).toBe(0);
  });

  it("fits the default budget for a clean system, bracket closed", () => {
    for (const ceiling of [1_000, 9_000, 13_000, 27_000, 35_000, 60_000]) {
      const r = search(opts, (rate) => rate <= ceiling);
      expect(r.why, `ceiling ${ceiling}`).toBe("resolved");
      expect(r.ceiling).toBeLessThanOrEqual(ceiling);
      expect(r.ceiling).toBeGreaterThanOrEqual(ceiling / (1 + opts.resolution));
    }
  });

  it("a single lucky pass does not raise the ceiling, a single spike does not lower it", () => {
    // 10,000 passes once then fails twice: not sustained.
    const lucky = search(opts, scripted(9_500, [10_000, [P, F, F]]));
    expect(lucky.ceiling).toBeLessThan(10_000);
    expect(lucky.ceiling).toBeGreaterThanOrEqual(9_000);
    expect(lucky.failedAt).toBe(10_000);
    // 10,000 fails once (a spike) and then passes twice: sustained.
    const spike = search(opts, scripted(10_000, [10_000, [F, P]]));
    expect(spike.ceiling).toBe(10_000);
    expect(spike.history.filter((p) => p.rate === 10_000)).toHaveLength(3);
  });

  // The gateway's search of 2026-12-06: 40,000 passed once then failed, 30,000 passed once then
  // failed (telemetry p99 just over the limit: spikes); with one failure deciding, the search
  // reported 27,500 with its budget spent.
  it("the spike run: resolves the gateway's ceiling at or above 30,000 when passes dominate", () => {
    const r = search(opts, scripted(35_000, [40_000, [P, F, F]], [30_000, [P, F, P]]));
    expect(r.ceiling).toBeGreaterThanOrEqual(30_000);
    expect(r.failedAt).toBeLessThanOrEqual(40_000);
    expect(r.why).toBe("resolved");
    expect(r.history.length).toBeLessThanOrEqual(opts.maxProbes);
    // Passes dominating at 40,000 too: at or above 40,000.
    const up = search(opts, scripted(45_000, [40_000, [P, F, P]], [30_000, [P, F, P]]));
    expect(up.ceiling).toBeGreaterThanOrEqual(40_000);
    expect(up.why).toBe("resolved");
  });

  it("the spike run: still resolves low when the failures repeat", () => {
    const r = search(opts, scripted(27_500, [40_000, [P, F, F]], [30_000, [P, F, F]]));
    expect(r.ceiling).toBe(27_500);
    expect(r.failedAt).toBe(30_000);
    expect(r.why).toBe("resolved");
  });

  it("the same rules for the broker: a gross failure costs two probes, not one", () => {
    // The broker's search of 2026-12-06: 40,000 and 30,000 far behind, 27,500 just over.
    const r = search(opts, (rate) => rate <= 25_000);
    expect(r).toMatchObject({ ceiling: 25_000, failedAt: 27_500, why: "resolved" });
    expect(r.history.filter((p) => p.rate === 40_000)).toHaveLength(2);
  });

  it("monotonicity: a failure below a sustained rate is re-probed, not believed", () => {
    // 20,000 failed twice, then 30,000 passed twice: 20,000 is probed again.
    const contested = h([20_000, F], [20_000, F], [30_000, P], [30_000, P]);
    expect(nextProbe(contested, opts)).toEqual({ done: false, next: 20_000 });
    expect(describeRate(contested, 20_000, opts)).toBe(
      "0 of 2 passed: failed below a sustained rate: probing again",
    );
    // Two passes more: no majority against 30,000 any more, the search goes on above it.
    const cleared = [...contested, ...h([20_000, P])];
    expect(nextProbe(cleared, opts)).toEqual({ done: false, next: 20_000 });
    expect(nextProbe([...cleared, ...h([20_000, P])], opts)).toEqual({ done: false, next: 60_000 });
    // A third failure, a majority of five: the failure stands, and the ceiling is taken below it.
    expect(nextProbe([...cleared, ...h([20_000, F])], opts)).toEqual({ done: false, next: 10_000 });
    const stands = [...contested, ...h([20_000, F])];
    expect(describeRate(stands, 20_000, opts)).toBe("0 of 3 passed: not sustained");
    expect(nextProbe(stands, opts)).toEqual({ done: false, next: 10_000 });
    expect(nextProbe(stands, { ...opts, maxProbes: stands.length })).toMatchObject({
      done: true,
      ceiling: 0,
      failedAt: 20_000,
    });
  });

  it("one vote: a single probe decides either way (bench/cores.ts)", () => {
    const one = { ...opts, votes: 1 };
    expect(nextProbe(h([5_000, P]), one)).toEqual({ done: false, next: 10_000 });
    expect(nextProbe(h([5_000, F]), one)).toEqual({ done: false, next: 2_500 });
  });

  it("halves down to the minimum when nothing is sustained", () => {
    const r = search(opts, () => false);
    expect(r).toMatchObject({ ceiling: 0, why: "below min", failedAt: 500 });
    expect(r.history.map((p) => p.rate)).toEqual([
      5_000, 5_000, 2_500, 2_500, 1_250, 1_250, 750, 750, 500, 500,
    ]);
  });

  it("stops at the maximum when everything is sustained", () => {
    const r = search({ ...opts, max: 20_000 }, () => true);
    expect(r).toMatchObject({ ceiling: 20_000, failedAt: null, why: "at max" });
  });

  it("never runs more than the probe budget, and says the bracket was not closed", () => {
    // 5,000 x2, 10,000 x2, 20,000 fails x2, 15,000 fails x2: [10,000, 15,000) not closed.
    const r = search({ ...opts, maxProbes: 8 }, (rate) => rate <= 13_000);
    expect(r.history).toHaveLength(8);
    expect(r).toMatchObject({ why: "probe budget spent", ceiling: 10_000, failedAt: 15_000 });
  });
});
