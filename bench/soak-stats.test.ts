import { describe, expect, it } from "vitest";
import {
  afterWarmup,
  alertFailure,
  countAlerts,
  judgeSeries,
  latencyBySpan,
  type Point,
  type PressRecord,
  quantile,
  slopeHalfWidthPerHour,
  slopePerHour,
  troughs,
  warmupSeconds,
} from "./soak-stats.js";

/** A sample every 10 s for `minutes`, value = f(t in s). */
const series = (minutes: number, f: (tS: number) => number): Point[] =>
  Array.from({ length: minutes * 6 + 1 }, (_, i) => ({ tS: i * 10, value: f(i * 10) }));

const RSS_BOUND = { maxSlopePerHour: 5, why: "test" };

describe("slopePerHour", () => {
  it("is the least-squares slope per hour", () => {
    expect(slopePerHour(series(30, (t) => 100 + (10 * t) / 3600))).toBeCloseTo(10, 9);
    expect(slopePerHour(series(30, () => 42))).toBe(0);
    // Noise around a line: the fit, not the end points.
    const noisy = series(60, (t) => 50 + (2 * t) / 3600 + (t % 20 === 0 ? 1 : -1));
    expect(slopePerHour(noisy)).toBeCloseTo(2, 1);
  });

  it("is null without two distinct times", () => {
    expect(slopePerHour([])).toBeNull();
    expect(slopePerHour([{ tS: 5, value: 1 }])).toBeNull();
    expect(
      slopePerHour([
        { tS: 5, value: 1 },
        { tS: 5, value: 9 },
      ]),
    ).toBeNull();
  });
});

describe("judgeSeries", () => {
  it("passes a flat series", () => {
    const f = judgeSeries(
      "RSS",
      "MB",
      series(30, () => 80),
      warmupSeconds(1800),
      RSS_BOUND,
    );
    expect(f.pass).toBe(true);
    expect(f.slopePerHour).toBe(0);
    expect(f.end).toBe(80);
    expect(f.failure).toBeNull();
  });

  it("fails a series growing 10 MB/h against a 5 MB/h bound", () => {
    const f = judgeSeries(
      "RSS",
      "MB",
      series(30, (t) => 80 + (10 * t) / 3600),
      warmupSeconds(1800),
      RSS_BOUND,
    );
    expect(f.pass).toBe(false);
    expect(f.slopePerHour).toBeCloseTo(10, 9);
    expect(f.failure).toMatch(/grows 10\.00 MB\/h/);
  });

  it("leaves the warm-up out: a start-up climb then flat passes, and the figure after warm-up is the first one past it", () => {
    // 60 MB/h for the first 6 minutes (a fifth of 30), flat after.
    const climb = series(30, (t) => (t < 360 ? 70 + (60 * t) / 3600 : 76));
    expect(slopePerHour(climb)).toBeGreaterThan(5); // the whole run would fail
    const f = judgeSeries("RSS", "MB", climb, warmupSeconds(1800), RSS_BOUND);
    expect(f.pass).toBe(true);
    expect(f.afterWarmup).toBe(76);
    expect(afterWarmup(climb, warmupSeconds(1800))[0]?.tS).toBe(360);
  });

  it("does not leave out growth after the warm-up", () => {
    const late = series(30, (t) => (t < 900 ? 80 : 80 + (30 * (t - 900)) / 3600));
    expect(judgeSeries("RSS", "MB", late, warmupSeconds(1800), RSS_BOUND).pass).toBe(false);
  });

  it("fails with too few samples after the warm-up", () => {
    const f = judgeSeries("fds", "", [{ tS: 0, value: 10 }], warmupSeconds(60), {
      maxSlopePerHour: 1,
      why: "test",
    });
    expect(f.pass).toBe(false);
    expect(f.failure).toMatch(/too few samples/);
  });

  it("fails a sample over the ceiling even when the slope is within bound", () => {
    const quota = 256;
    const spiky = series(30, (t) => (t === 60 ? 300 : 100));
    const f = judgeSeries("journal", "MiB", spiky, warmupSeconds(1800), {
      maxSlopePerHour: quota,
      maxValue: quota,
      why: "q",
    });
    expect(f.pass).toBe(false);
    expect(f.max).toBe(300);
    expect(
      judgeSeries(
        "journal",
        "MiB",
        series(30, () => 100),
        warmupSeconds(1800),
        {
          maxSlopePerHour: quota,
          maxValue: quota,
          why: "q",
        },
      ).pass,
    ).toBe(true);
  });
});

describe("countAlerts", () => {
  const END = 1_000_000;
  const WINDOW = 60_000;
  const GRACE = 15_000;
  it("counts each stage and passes when every alert went through", () => {
    const presses: PressRecord[] = [
      { device: "a", pressedAt: 0, raisedAt: 10, acknowledgedAt: 20, closedAt: 60_030 },
      { device: "b", pressedAt: 1000, raisedAt: 1010, acknowledgedAt: 1020, closedAt: 61_030 },
      // Raised near the end: its window is not over, so not yet closed is fine.
      { device: "c", pressedAt: END - 30_000, raisedAt: END - 29_990, acknowledgedAt: END - 29_980 },
    ];
    const c = countAlerts(presses, END, WINDOW, GRACE);
    expect(c).toEqual({
      presses: 3,
      raised: 3,
      acknowledged: 3,
      cleared: 2,
      missing: 0,
      notAcknowledged: 0,
      notCleared: 0,
      stillInWindow: 1,
    });
    expect(alertFailure(c)).toBeNull();
  });

  it("fails a missing, an unacknowledged and an unclosed alert, each named", () => {
    const presses: PressRecord[] = [
      { device: "a", pressedAt: 0 },
      { device: "b", pressedAt: 0, raisedAt: 10 },
      { device: "c", pressedAt: 0, raisedAt: 10, acknowledgedAt: 20 },
    ];
    const c = countAlerts(presses, END, WINDOW, GRACE);
    expect(c.missing).toBe(1);
    expect(c.notAcknowledged).toBe(1);
    expect(c.notCleared).toBe(2);
    const why = alertFailure(c);
    expect(why).toMatch(/1 press\(es\) without an alert/);
    expect(why).toMatch(/1 alert\(s\) not seen acknowledged/);
    expect(why).toMatch(/2 alert\(s\) not seen closed/);
  });

  it("fails a run without presses", () => {
    expect(alertFailure(countAlerts([], END, WINDOW, GRACE))).toBe("no press was made");
  });
});

describe("memory judged on its troughs (a garbage-collected heap's saw-tooth)", () => {
  /** Climbs 20 MB over 11 minutes, then a major collection drops it back: the soak's RSS shape. */
  const sawTooth = (t: number) => 105 + 20 * ((t % 660) / 660);
  const TROUGH_BOUND = { maxSlopePerHour: 5, troughs: true, why: "test" };

  it("passes a saw-tooth without a leak, whatever its phase at the end", () => {
    for (const minutes of [80, 85, 90, 100, 120]) {
      const f = judgeSeries(
        "RSS",
        "MB",
        series(minutes, sawTooth),
        warmupSeconds(minutes * 60),
        TROUGH_BOUND,
      );
      expect(f.failure).toBeNull();
      expect(Math.abs(f.slopePerHour as number)).toBeLessThan(1);
    }
  });

  it("fails the same saw-tooth on a 10 MB/h leak", () => {
    const f = judgeSeries(
      "RSS",
      "MB",
      series(120, (t) => sawTooth(t) + (10 * t) / 3600),
      warmupSeconds(7200),
      TROUGH_BOUND,
    );
    expect(f.pass).toBe(false);
    expect(f.failure).toMatch(/^grows/);
    expect(f.slopePerHour).toBeGreaterThan(7);
  });

  it("says a run too short for four spans cannot be judged on troughs", () => {
    // 60 minutes less a fifth: 48 minutes, three spans of 16.
    const f = judgeSeries("RSS", "MB", series(60, sawTooth), warmupSeconds(3600), TROUGH_BOUND);
    expect(f.pass).toBe(false);
    expect(f.failure).toMatch(/too short to judge on troughs: 3 span\(s\) .* 4 needed/);
  });

  /** Each cycle's floor off by a few MB, as RSS after a collection is (85.9-92.0 MB in one run). */
  const JITTER = [0, 3, -2, 2, -3, 1, -1, 3, -2];
  const jittered = (t: number) => sawTooth(t) + (JITTER[Math.floor(t / 660) % JITTER.length] as number);

  it("does not pass floors that jitter by more than the bound can tell over a short run", () => {
    const f = judgeSeries("RSS", "MB", series(100, jittered), warmupSeconds(6000), TROUGH_BOUND);
    expect(f.slopeHalfWidthPerHour).toBeGreaterThan(2);
    expect(f.pass).toBe(false);
    expect(f.failure).toMatch(/^not settled: .* over 5 troughs reaches the bound/);
  });

  it("passes the same jittering floors over a run long enough to tell", () => {
    const f = judgeSeries("RSS", "MB", series(600, jittered), warmupSeconds(36_000), TROUGH_BOUND);
    expect(f.failure).toBeNull();
    expect((f.slopePerHour as number) + (f.slopeHalfWidthPerHour as number)).toBeLessThan(5);
  });

  it("takes the lowest value of each equal span of at least the window, dated at the span's centre", () => {
    const pts: Point[] = [
      { tS: 0, value: 5 },
      { tS: 10, value: 3 },
      { tS: 80, value: 9 },
      { tS: 90, value: 8 },
    ];
    expect(troughs(pts, 30)).toEqual([
      { tS: 15, value: 3 },
      { tS: 75, value: 8 },
    ]);
    expect(troughs(pts, 60)).toEqual([{ tS: 45, value: 3 }]);
    expect(troughs([], 30)).toEqual([]);
    // Two floors 6 MB apart in neighbouring spans of 15 minutes, 4 minutes apart in time: dated at
    // their samples they read 83 MB/h, at their spans' centres 24.
    const near: Point[] = [
      { tS: 0, value: 95 },
      { tS: 880, value: 86 },
      { tS: 1140, value: 92 },
      { tS: 1800, value: 97 },
    ];
    expect(slopePerHour(troughs(near, 900))).toBeCloseTo(24, 6);
  });

  it("counts a span that its samples' late timers left a little short of the window", () => {
    // A two-hour run after its hour of warm-up: the first sample 0.2 ms late, the last on time.
    const hour = Array.from({ length: 361 }, (_, i) => ({
      tS: 3600 + i * 10 + (i === 0 ? 0.0002 : 0),
      value: i % 90,
    }));
    expect(troughs(hour, 900)).toHaveLength(4);
    // Shorter by more than 1 %: three spans, as before.
    expect(troughs(hour.slice(0, 355), 900)).toHaveLength(3);
  });
});

describe("warmupSeconds", () => {
  it("is a fifth of the run, or the first round of pendants when that is longer", () => {
    expect(warmupSeconds(3600)).toBe(720);
    expect(warmupSeconds(3600, 500)).toBe(720);
    expect(warmupSeconds(7200, 2000)).toBe(2000);
  });
});

describe("slopeHalfWidthPerHour", () => {
  it("is zero on a straight line, null under three points, and wider the more the points scatter", () => {
    const line = [0, 1, 2, 3].map((h) => ({ tS: h * 3600, value: 10 + 2 * h }));
    expect(slopeHalfWidthPerHour(line)).toBe(0);
    expect(slopeHalfWidthPerHour(line.slice(0, 2))).toBeNull();
    const scatter = (d: number) =>
      [0, 1, 2, 3, 4].map((h) => ({ tS: h * 3600, value: 10 + (h % 2 === 0 ? d : -d) }));
    expect(slopeHalfWidthPerHour(scatter(1)) as number).toBeGreaterThan(0);
    expect(slopeHalfWidthPerHour(scatter(3)) as number).toBeCloseTo(
      3 * (slopeHalfWidthPerHour(scatter(1)) as number),
      9,
    );
  });
});

describe("latencyBySpan", () => {
  const START = 1_000_000;
  const press = (atS: number, raiseMs: number | undefined, ackMs?: number): PressRecord => ({
    device: "d",
    pressedAt: START + atS * 1000,
    ...(raiseMs === undefined ? {} : { raisedAt: START + atS * 1000 + raiseMs }),
    ...(raiseMs === undefined || ackMs === undefined
      ? {}
      : { acknowledgedAt: START + atS * 1000 + raiseMs + ackMs }),
  });

  it("puts each press in the span it was made in and takes each span's quantiles", () => {
    const presses = [
      ...Array.from({ length: 100 }, (_, i) => press(i, i + 1, 2)), // 0-99 s: 1..100 ms
      ...Array.from({ length: 100 }, (_, i) => press(1000 + i, 10 * (i + 1), 5)), // 1000-1099 s: 10..1000 ms
      press(1500, undefined), // never raised: not in any latency
    ];
    const spans = latencyBySpan(presses, START, 1800, 900);
    expect(spans).toHaveLength(2);
    expect(spans[0]).toEqual({
      fromMin: 0,
      toMin: 15,
      raised: 100,
      raiseP50Ms: 50,
      raiseP99Ms: 99,
      raiseMaxMs: 100,
      acknowledged: 100,
      ackP99Ms: 2,
    });
    expect(spans[1]).toMatchObject({ fromMin: 15, toMin: 30, raised: 100, raiseP50Ms: 500, raiseP99Ms: 990 });
  });

  it("keeps an empty span, and a last span shorter than the window", () => {
    const spans = latencyBySpan([press(10, 5)], START, 2000, 900);
    expect(spans.map((s) => [s.fromMin, s.toMin, s.raised])).toEqual([
      [0, 15, 1],
      [15, 30, 0],
      [30, 2000 / 60, 0],
    ]);
    expect(spans[1]?.raiseP99Ms).toBeNull();
  });
});

describe("quantile", () => {
  it("is the nearest rank, null on nothing", () => {
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([3, 1, 2], 1)).toBe(3);
    expect(quantile([5], 0.99)).toBe(5);
    expect(quantile([], 0.5)).toBeNull();
  });
});
