import { describe, expect, it } from "vitest";
import { sustainedVerdict } from "./gateway.js";
import type { PointResult } from "./harness.js";

/** A point that passes every rule of the sustained criterion, with `server` as given. */
function point(server: Record<string, unknown>): PointResult {
  return {
    offeredRate: 1000,
    achievedRate: 1000,
    generator: { sendRate: 1000 },
    server,
    receiptOverflow: 0,
    messages: { sent: 10_000, unexplainedLoss: 0, conflated: 0, duplicated: 0, unexpected: 0 },
    alerts: { lost: 0, duplicated: 0, unexpected: 0 },
    latency: { messages: { p99Ms: 2, maxMs: 5 }, p1: { p99Ms: 2, maxMs: 5 } },
  } as unknown as PointResult;
}

describe("sustainedVerdict", () => {
  it("passes a point that keeps every rule", () => {
    expect(sustainedVerdict(point({ cpuPct: 50 }))).toEqual({ sustained: true, reasons: [] });
  });

  it("fails a point whose server died during it, naming why", () => {
    const v = sustainedVerdict(point({ cpuPct: 0, crashed: "server exited (1)" }));
    expect(v.sustained).toBe(false);
    expect(v.reasons).toEqual(["the server crashed (server exited (1))"]);
  });
});
