import { describe, expect, it } from "vitest";
import { LATENCY_BUCKETS_SECONDS, LatencyHistogram } from "./latency.js";

describe("LatencyHistogram", () => {
  it("puts a value in the first bucket whose bound is >= it (le is inclusive), cumulative on read", () => {
    const h = new LatencyHistogram(1, [0.001, 0.01, 0.1]);
    h.record(0, 0.5); // 0.5 ms -> le 0.001
    h.record(0, 1); // exactly 1 ms -> le 0.001
    h.record(0, 1.0001); // -> le 0.01
    h.record(0, 100); // exactly 100 ms -> le 0.1
    h.record(0, 100.5); // -> +Inf
    const l = h.lane(0);
    expect(l.cumulative).toEqual([2, 3, 4, 5]);
    expect(l.count).toBe(5);
    expect(l.sumSeconds).toBeCloseTo(0.2030001, 12);
  });

  it("keeps lanes apart", () => {
    const h = new LatencyHistogram(3);
    h.record(2, 3);
    h.record(0, 0.05);
    expect(h.lane(0).count).toBe(1);
    expect(h.lane(1).count).toBe(0);
    expect(h.lane(2).count).toBe(1);
    expect(h.lane(2).sumSeconds).toBeCloseTo(0.003, 12);
    // 3 ms: first bound >= 0.003 s is 0.005 s.
    const i = LATENCY_BUCKETS_SECONDS.indexOf(0.005);
    expect(h.lane(2).cumulative[i - 1]).toBe(0);
    expect(h.lane(2).cumulative[i]).toBe(1);
    expect(h.lane(2).cumulative).toHaveLength(LATENCY_BUCKETS_SECONDS.length + 1);
  });

  it("counts negative and NaN latencies (a clock step) as 0 in the lowest bucket", () => {
    const h = new LatencyHistogram(1, [0.001, 1]);
    h.record(0, -5);
    h.record(0, Number.NaN);
    expect(h.lane(0)).toEqual({ cumulative: [2, 2, 2], count: 2, sumSeconds: 0 });
  });

  it("agrees with a linear scan over every bound and the values either side of it", () => {
    const bounds = LATENCY_BUCKETS_SECONDS;
    const h = new LatencyHistogram(1);
    const expected = new Array<number>(bounds.length + 1).fill(0);
    const values: number[] = [0];
    for (const b of bounds) values.push(b * 1000 * 0.999, b * 1000, b * 1000 * 1.001);
    values.push(1e9);
    for (const ms of values) {
      h.record(0, ms);
      let idx = bounds.findIndex((b) => ms <= b * 1000);
      if (idx === -1) idx = bounds.length;
      expected[idx] = (expected[idx] as number) + 1;
    }
    let acc = 0;
    expect(h.lane(0).cumulative).toEqual(expected.map((n) => (acc += n)));
  });

  it("refuses bounds that do not increase", () => {
    expect(() => new LatencyHistogram(1, [0.1, 0.1])).toThrow(/increase/);
  });
});
