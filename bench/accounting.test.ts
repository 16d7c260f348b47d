import { describe, expect, it } from "vitest";
import {
  accountAlerts,
  accountBaseline,
  accountTelemetry,
  disturbedPct,
  lowerBound,
  nextPow2,
  otherCpuPct,
  Receipts,
  ratePerS,
  sendSpan,
  sendTimes,
  stealPct,
} from "./accounting.js";

/** Latencies as a plain list. */
const sink = () => {
  const ms: number[] = [];
  return { ms, record: (v: number) => ms.push(v) };
};

const receipts = (...rows: [dev: number, key: number, at: number][]) => {
  const r = new Receipts(rows.length);
  for (const [d, k, a] of rows) r.push(d, k, a);
  return r;
};

// Two devices: device 0 sent seq 1..3 at 1000.2, 1000.7 (the same millisecond) and 1005.5;
// device 1 sent seq 1 at 1001.0.
const walls = [Float64Array.from([1000.2, 1000.7, 1005.5]), Float64Array.from([1001])];

describe("bench accounting", () => {
  it("reads send times until the generator knows no more, and their span", () => {
    const times: Record<string, number[]> = { a: [5, 6], b: [] };
    const w = sendTimes(["a", "b"], (id, seq) => times[id]?.[seq - 1]);
    expect(w.map((x) => Array.from(x))).toEqual([[5, 6], []]);
    expect(sendSpan(w)).toEqual({ first: 5, last: 6 });
    expect(sendSpan([new Float64Array(0)])).toEqual({ first: Number.POSITIVE_INFINITY, last: 0 });
  });

  it("baseline: matches by seq, counts duplicates, strays and losses, and presses as alerts", () => {
    const msg = sink();
    const p1 = sink();
    const r = receipts([0, 1, 1010.2], [0, 1, 1011], [0, 3, 1006.5], [0, 9, 1012], [1, 1, 1003]);
    const out = accountBaseline(walls, [[3], []], r, 1001, 4, msg, p1);
    expect(out.messages).toEqual({ sent: 4, delivered: 3, lost: 1, duplicated: 1, unexpected: 1 });
    expect(out.alerts).toEqual({ sent: 1, delivered: 1, lost: 0, duplicated: 0, unexpected: 0 });
    // Seq 1 of device 0 was sent in the warm-up: accounted for, no latency.
    expect(msg.ms).toEqual([1, 2]);
    expect(p1.ms).toEqual([1]);
  });

  it("telemetry: two sends in one millisecond are matched in seq order; a third copy is a duplicate", () => {
    const lat = sink();
    const r = receipts([0, 1000, 1002], [0, 1000, 1003], [0, 1000, 1004], [0, 1004, 1009], [1, 1001, 1002]);
    const acc = accountTelemetry(walls, r, 0, 4, lat);
    expect(acc).toEqual({ sent: 4, delivered: 3, lost: 1, duplicated: 1, unexpected: 1 });
    expect(lat.ms.map((x) => Math.round(x * 10) / 10)).toEqual([1.8, 2.3, 1]);
  });

  it("alerts: update count k is the device's k-th press", () => {
    const lat = sink();
    // Device 0 pressed at seq 2 and 3.
    const r = receipts([0, 1, 1001.7], [0, 2, 1006.5], [0, 2, 1007], [0, 3, 1008], [0, 1.5, 1008]);
    const acc = accountAlerts(walls, [[2, 3], []], r, 1000.5, lat);
    expect(acc).toEqual({ sent: 2, delivered: 2, lost: 0, duplicated: 1, unexpected: 2 });
    expect(lat.ms.map((x) => Math.round(x * 10) / 10)).toEqual([1, 1]);
  });

  it("rates, other CPU and helpers", () => {
    expect(ratePerS(100, 1000, 3000)).toBe(50);
    expect(ratePerS(100, 3000, 3000)).toBe(0);
    // 150 % of a core busy, of which the runner 40 % and the server 90 %: 20 % others.
    expect(otherCpuPct(1500, 2000, 1000, 40, 90)).toBeCloseTo(20);
    expect(otherCpuPct(100, 2000, 1000, 40, 90)).toBe(0);
    expect(otherCpuPct(1500, 0, 1000, 40, 90)).toBe(0);
    // 300 ms stolen over a 1.5 s load: 20 % of a core. Mostly inside other load already: not added.
    expect(stealPct(300, 1500)).toBeCloseTo(20);
    expect(stealPct(300, 0)).toBe(0);
    expect(disturbedPct({ otherCpuPct: 5, stealPct: 20 })).toBe(20);
    expect(disturbedPct({ otherCpuPct: 30, stealPct: 20 })).toBe(30);
    expect(nextPow2(5)).toBe(8);
    expect(nextPow2(8)).toBe(8);
    expect(lowerBound(Float64Array.from([1, 2, 2, 4]), 2)).toBe(1);
    expect(lowerBound(Float64Array.from([1, 2, 2, 4]), 5)).toBe(4);
    const full = receipts([0, 1, 1]);
    full.push(0, 2, 2);
    expect([full.n, full.overflow]).toEqual([1, 1]);
  });
});
