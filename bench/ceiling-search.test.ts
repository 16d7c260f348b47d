import { describe, expect, it } from "vitest";
import { DEFAULT_SEARCH, nextProbe, type Probe, type SearchOptions } from "./ceiling-search.js";

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

describe("ceiling search", () => {
  it("starts at the start rate, confirms a pass before doubling", () => {
    expect(nextProbe([], opts)).toEqual({ done: false, next: 5_000 });
    expect(nextProbe([{ rate: 5_000, sustained: true }], opts)).toEqual({ done: false, next: 5_000 });
    expect(
      nextProbe(
        [
          { rate: 5_000, sustained: true },
          { rate: 5_000, sustained: true },
        ],
        opts,
      ),
    ).toEqual({ done: false, next: 10_000 });
  });

  it("brackets then bisects to within the resolution, every sustained rate passed twice", () => {
    const r = search({ ...opts, maxProbes: 30 }, (rate) => rate <= 13_000);
    expect(r).toMatchObject({ done: true, why: "resolved" });
    expect(r.ceiling).toBeLessThanOrEqual(13_000);
    expect((r.failedAt as number) / r.ceiling).toBeLessThanOrEqual(1 + opts.resolution);
    expect(r.history.filter((p) => p.rate === r.ceiling && p.sustained)).toHaveLength(2);
    for (const p of r.history) expect(p.rate % opts.step).toBe(0);
  });

  it("a single failure marks a rate not sustained, a single lucky pass does not raise the ceiling", () => {
    // 10,000 passes once then fails (noise): the ceiling stays below it.
    const r = search({ ...opts, maxProbes: 30 }, (rate, k) => rate < 10_000 || (rate === 10_000 && k === 2));
    expect(r.ceiling).toBeLessThan(10_000);
    expect(r.failedAt).toBe(10_000);
    expect(r.ceiling).toBeGreaterThanOrEqual(9_000);
  });

  it("halves down to the minimum when nothing is sustained", () => {
    const r = search(opts, () => false);
    expect(r).toMatchObject({ ceiling: 0, why: "below min", failedAt: 500 });
    expect(r.history.map((p) => p.rate)).toEqual([5_000, 2_500, 1_250, 750, 500]);
  });

  it("stops at the maximum when everything is sustained", () => {
    const r = search({ ...opts, max: 20_000 }, () => true);
    expect(r).toMatchObject({ ceiling: 20_000, failedAt: null, why: "at max" });
  });

  it("never runs more than the probe budget, and says the bracket was not closed", () => {
    // 5,000 x2, 10,000 x2, 20,000 fails, 15,000 fails: [10,000, 15,000) not closed.
    const r = search({ ...opts, maxProbes: 6 }, (rate) => rate <= 13_000);
    expect(r.history).toHaveLength(6);
    expect(r).toMatchObject({ why: "probe budget spent", ceiling: 10_000, failedAt: 15_000 });
  });
});
