import { describe, expect, it } from "vitest";
import { ratioInterval, samplesOf } from "./interval.js";
import { Latency } from "./latency.js";

/** A histogram of `n` latencies from `f(i)` ms, encoded as the bench keeps it. */
function encoded(n: number, f: (i: number) => number): string {
  const l = new Latency();
  for (let i = 0; i < n; i++) l.record(f(i));
  return l.encoded();
}

/** Fixed pseudo-random latencies: `scale` ms times 1 + 4u^6 (u uniform), a smooth tail to 5x. */
function spread(n: number, scale: number, salt: number): Float64Array {
  const u = (i: number) => (((i + 1) * 2_654_435_761 + salt * 40_503) % 4_294_967_296) / 4_294_967_296;
  return samplesOf(encoded(n, (i) => scale * (1 + 4 * u(i) ** 6)));
}

describe("samplesOf", () => {
  it("gives back every recorded sample at the histogram's resolution", () => {
    const s = samplesOf(encoded(500, (i) => 0.5 + i / 100));
    expect(s.length).toBe(500);
    const l = new Latency();
    for (let i = 0; i < 500; i++) l.record(0.5 + i / 100);
    // The same p99 as the histogram reports (its highest equivalent value, µs).
    const sorted = Float64Array.from(s).sort();
    expect((sorted[Math.ceil(0.99 * 500) - 1] as number) / 1000).toBeCloseTo(l.summary().p99Ms, 6);
    expect(Math.abs((sorted[0] as number) - 500)).toBeLessThanOrEqual(1);
  });
});

describe("ratioInterval", () => {
  it("needs two pairs: one pair says nothing about the run-to-run spread", () => {
    const a = spread(300, 1, 1);
    expect(ratioInterval([{ off: a, on: a }])).toBeNull();
    expect(ratioInterval([])).toBeNull();
    expect(
      ratioInterval([
        { off: a, on: new Float64Array(0) },
        { off: a, on: a },
      ]),
    ).toBeNull();
  });

  it("brackets 1 when both sides draw from the same distribution, and is the same on every call", () => {
    const pairs = [1, 2, 3].map((k) => ({ off: spread(400, 1, k), on: spread(400, 1, k + 10) }));
    const i = ratioInterval(pairs);
    expect(i).not.toBeNull();
    expect(i?.low).toBeLessThanOrEqual(1);
    expect(i?.high).toBeGreaterThanOrEqual(1);
    expect(ratioInterval(pairs)).toEqual(i);
  });

  it("lies above the target when every pair is slower on than off", () => {
    const pairs = [1, 2, 3].map((k) => ({ off: spread(400, 1, k), on: spread(400, 2, k + 10) }));
    const i = ratioInterval(pairs);
    expect(i?.low).toBeGreaterThan(1.3);
  });

  it("widens when one pair of three disagrees with the others (what a single pooled figure hides)", () => {
    const agree = [1, 2, 3].map((k) => ({ off: spread(400, 1, k), on: spread(400, 1, k + 10) }));
    const odd = [...agree.slice(0, 2), { off: spread(400, 1, 3), on: spread(400, 3, 13) }];
    const narrow = ratioInterval(agree);
    const wide = ratioInterval(odd);
    expect(narrow && wide).toBeTruthy();
    expect((wide?.high ?? 0) - (wide?.low ?? 0)).toBeGreaterThan((narrow?.high ?? 0) - (narrow?.low ?? 0));
    expect(wide?.high).toBeGreaterThan(1.3);
  });
});
