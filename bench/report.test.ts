/** The journal verdicts of `npm run bench` (bench/report.ts): which points get a P1 verdict. */
import { describe, expect, it } from "vitest";
import type { PointResult } from "./harness.js";
import { Latency } from "./latency.js";
import { type JournalSummary, journalSummary, journalTargets, type RatePoint, rssTarget } from "./report.js";

type P = JournalSummary["points"][number];
const point = (over: Partial<P>): P => ({
  rate: 2000,
  p1P99OffMs: 4,
  p1P99OnMs: 4.4,
  p1P99Ratio: 1.1,
  p1P99RatioInterval: null,
  consoleP1P99OffMs: null,
  consoleP1P99OnMs: null,
  consoleP1P99Ratio: null,
  p1CountOff: 300,
  p1CountOn: 300,
  pairsPooled: 1,
  pairs: 1,
  pairRatios: [1.1],
  achievedOff: 2000,
  achievedOn: 2000,
  sustainedOff: true,
  sustainedOn: true,
  notSustainedOnBecause: [],
  otherPctOff: 3,
  otherPctOn: 3,
  p1P99LoopMs: null,
  p1P99LoopRatio: null,
  achievedLoop: null,
  records: 1,
  syncs: 1,
  lastSyncMs: 0.2,
  poolWrites: 1,
  idleLoopWrites: 0,
  urgentWrites: 0,
  urgentWritesSlow: 0,
  urgentWriteMaxMs: 0,
  bytesOnDisk: 1,
  ...over,
});
const summary = (points: P[], off: number, on: number): JournalSummary => ({
  points,
  maxSustainedOff: off,
  maxSustainedOn: on,
  sustainedRatio: off > 0 ? on / off : null,
});

/**
 * A point whose P1 alerts took `ms` each (n of them), with other processes at `other` % of a core
 * and the hypervisor's steal at `steal`.
 */
function fakePoint(ms: number[], other = 0, steal = 0, consoleMs?: number[]): PointResult {
  const l = new Latency();
  for (const v of ms) l.record(v);
  const c = new Latency();
  for (const v of consoleMs ?? []) c.record(v);
  return {
    achievedRate: 2000,
    otherCpuPct: other,
    stealPct: steal,
    latency: { p1: l.summary(), p1Histogram: l.encoded() },
    ...(consoleMs ? { console: { p1: c.summary(), p1Histogram: c.encoded() } } : {}),
    server: { gateway: { journal: { records: 1, syncs: 1, lastSyncMs: 0.1, bytesOnDisk: 1 } } },
  } as unknown as PointResult;
}
const ramp = (n: number, from: number, step: number) => Array.from({ length: n }, (_, i) => from + i * step);

/** A sustained 2,000 msg/s rate point: its first journal pair (off, on), then `morePairs`. */
function journalPoint(off: PointResult, on: PointResult, morePairs: RatePoint["morePairs"] = []): RatePoint {
  return {
    rate: 2000,
    baseline: off,
    gateway: off,
    sustained: true,
    reasons: [],
    journal: on,
    journalSustained: true,
    journalReasons: [],
    journalLoop: null,
    morePairs,
  };
}

describe("journal summary", () => {
  it("pools the P1 samples of every undisturbed pair per side; a disturbed pair is left out of the pool", () => {
    // Each point alone: 100 alerts, its p99 is its 2nd slowest. Pooled: 200 alerts per side.
    const quietOff = fakePoint(ramp(100, 1, 0.01));
    const quietOn = fakePoint(ramp(100, 1, 0.012));
    const slowOn = fakePoint(ramp(100, 1, 0.05), 150); // disturbed: other processes at 150 %
    const rp = journalPoint(quietOff, quietOn, [
      { off: fakePoint(ramp(100, 1, 0.01)), on: fakePoint(ramp(100, 1, 0.012)) },
      { off: fakePoint(ramp(100, 1, 0.01)), on: slowOn },
    ]);
    const p = journalSummary([rp])?.points[0];
    expect(p).toMatchObject({ pairs: 3, pairsPooled: 2, p1CountOff: 200, p1CountOn: 200 });
    expect(p?.p1P99OffMs).toBeCloseTo(1.98, 1);
    expect(p?.p1P99OnMs).toBeCloseTo(2.18, 1);
    expect(p?.p1P99Ratio).toBeCloseTo(1.1, 1);
    // Each pair's own ratio is printed, the disturbed one included.
    expect(p?.pairRatios).toHaveLength(3);
    expect(p?.pairRatios[2]).toBeGreaterThan(2.4);
    expect(journalTargets(journalSummary([rp]))[0]?.pass).toBe(true);
    // The interval resamples the two pooled pairs only: the disturbed one would push it past 2x.
    const i = p?.p1P99RatioInterval;
    expect(i).not.toBeNull();
    expect(i?.low).toBeLessThanOrEqual(p?.p1P99Ratio as number);
    expect(i?.high).toBeGreaterThanOrEqual(p?.p1P99Ratio as number);
    expect(i?.high).toBeLessThan(1.5);
  });

  it("pools the console's P1 samples the same way, as information beside the subscriber's", () => {
    const off = (k: number) => fakePoint(ramp(100, 1, 0.01), 0, 0, ramp(100, 2, 0.01 * k));
    const on = (k: number) => fakePoint(ramp(100, 1, 0.01), 0, 0, ramp(100, 2, 0.02 * k));
    const rp = journalPoint(off(1), on(1), [{ off: off(1), on: on(1) }]);
    const p = journalSummary([rp])?.points[0];
    expect(p?.consoleP1P99OffMs).toBeCloseTo(2.98, 1);
    expect(p?.consoleP1P99OnMs).toBeCloseTo(3.96, 1);
    expect(p?.consoleP1P99Ratio).toBeCloseTo(3.96 / 2.98, 1);
    // A side without a console in some pooled point has no pooled console figure.
    const partial = journalPoint(off(1), on(1), [{ off: fakePoint(ramp(100, 1, 0.01)), on: on(1) }]);
    expect(journalSummary([partial])?.points[0]?.consoleP1P99Ratio).toBeNull();
  });

  it("gives no interval for a single pooled pair", () => {
    const rp = journalPoint(fakePoint(ramp(100, 1, 0.01)), fakePoint(ramp(100, 1, 0.011)));
    expect(journalSummary([rp])?.points[0]?.p1P99RatioInterval).toBeNull();
  });

  it("withholds the verdict when every pair was disturbed", () => {
    const rp = journalPoint(fakePoint(ramp(100, 1, 0.01), 90), fakePoint(ramp(100, 1, 0.01)));
    const t = journalTargets(journalSummary([rp]));
    expect(t[0]?.pass).toBeNull();
    expect(t[0]?.measured).toMatch(/disturbed/);
  });

  it("leaves a pair out of the pool when the hypervisor's steal disturbed it", () => {
    const quietOff = fakePoint(ramp(100, 1, 0.01));
    const quietOn = fakePoint(ramp(100, 1, 0.012));
    // Other processes quiet, but the host took 40 % of a core during the second pair's on point.
    const rp = journalPoint(quietOff, quietOn, [
      { off: fakePoint(ramp(100, 1, 0.01)), on: fakePoint(ramp(100, 1, 0.05), 0, 40) },
    ]);
    const p = journalSummary([rp])?.points[0];
    expect(p?.pairsPooled).toBe(1);
    expect(p?.pairs).toBe(2);
    expect(p?.p1P99Ratio).toBeCloseTo(quietOn.latency.p1.p99Ms / quietOff.latency.p1.p99Ms, 5);
  });
});

describe("journal targets", () => {
  it("judges the P1 ratio at every rate journal-off sustains, and only there", () => {
    const t = journalTargets(
      summary(
        [
          point({ rate: 2000 }),
          point({ rate: 5000, p1P99Ratio: 1.4, p1P99OnMs: 5.6 }),
          point({ rate: 20000, sustainedOff: false, sustainedOn: false, p1P99Ratio: 3 }),
        ],
        5000,
        5000,
      ),
    );
    expect(t.map((x) => x.pass)).toEqual([true, false, null, true]);
    expect(t[2]?.measured).toMatch(/above capacity/);
  });

  it("says whether a pooled figure under the target holds with a margin", () => {
    const t = journalTargets(
      summary(
        [
          point({ rate: 2000, p1P99RatioInterval: { low: 0.95, high: 1.22 } }),
          point({ rate: 5000, p1P99RatioInterval: { low: 0.98, high: 1.45 } }),
          point({
            rate: 10000,
            p1P99Ratio: 1.4,
            p1P99OnMs: 5.6,
            p1P99RatioInterval: { low: 1.33, high: 1.6 },
          }),
        ],
        10000,
        10000,
      ),
    );
    // The verdict stays on the pooled figure; the interval is said beside it.
    expect(t.map((x) => x.pass)).toEqual([true, true, false, true]);
    expect(t[0]?.measured).toMatch(/interval 0\.95-1\.22x: within the target/);
    expect(t[1]?.measured).toMatch(/interval 0\.98-1\.45x: the target inside it, no margin/);
    expect(t[2]?.measured).toMatch(/above the target/);
  });

  it("gives no verdict for a disturbed point, even one that looks above capacity", () => {
    const t = journalTargets(summary([point({ sustainedOff: false, otherPctOn: 150 })], 0, 0));
    expect(t[0]?.pass).toBeNull();
    expect(t[0]?.measured).toMatch(/disturbed/);
  });

  it("fails the sustained-rate target when on sustains less than 90 % of off", () => {
    const t = journalTargets(
      summary([point({ rate: 5000 }), point({ rate: 10000, sustainedOn: false })], 10000, 5000),
    );
    expect(t.at(-1)?.pass).toBe(false);
  });
});

const rssPoint = (maxRssMb: number, registered: number | null, readyRssMb = 100) => ({
  server: {
    maxRssMb,
    readyRssMb,
    ...(registered === null ? {} : { gateway: { registered } }),
  } as unknown as import("./server.js").ServerSample,
});

describe("RSS target", () => {
  it("passes a peak under 150 MB with 10,000 registered devices", () => {
    const t = rssTarget([rssPoint(101, 10_000), rssPoint(98, 10_000)]);
    expect(t.pass).toBe(true);
    expect(t.measured).toContain("peak 101 MB");
  });

  it("fails a peak at or over 150 MB", () => {
    expect(rssTarget([rssPoint(101, 10_000), rssPoint(150.2, 10_000)]).pass).toBe(false);
  });

  it("gives no verdict (not FAIL) when fewer devices were registered, and says why", () => {
    const t = rssTarget([rssPoint(101, 2_000)]);
    expect(t.pass).toBeNull();
    expect(t.measured).toContain("peak 101 MB");
    expect(t.measured).toContain("2000 devices registered");
    expect(t.measured).toContain("no verdict");
    expect(rssTarget([rssPoint(101, null)]).pass).toBeNull();
  });

  it("judges by the fewest devices any gateway point registered", () => {
    expect(rssTarget([rssPoint(90, 10_000), rssPoint(95, 5_000)]).pass).toBeNull();
  });
});
