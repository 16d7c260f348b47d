import { describe, expect, it } from "vitest";
import { AlertMatcher } from "./matcher.js";
import { buildReport, type SimReport } from "./report.js";
import type { Scenario } from "./schema.js";

/** A run whose one expected BATTERY_LOW never came. */
function missingBatteryLow(flood: unknown[]): SimReport {
  const matcher = new AlertMatcher({
    brokerUrl: "mqtt://127.0.0.1:1",
    site: "demo",
    operator: { name: "operator", password: "x" },
    ownKeys: new Set(["demo-pendant"]),
    allowUnexpected: [],
  });
  matcher.begin(0);
  matcher.expect({
    incident: "low-battery#1",
    code: "BATTERY_LOW",
    key: "demo-pendant",
    at: 0,
    dueAt: 0,
    latencyMaxMs: 5_000,
  });
  for (const f of flood) matcher.onFlood(f);
  const base = {} as Parameters<typeof buildReport>[0];
  return buildReport(base, { latency: { max: 5_000 } } as Scenario, matcher);
}

describe("a missing alert while the gateway was in an alert flood", () => {
  it("says the gateway holds new P3 and P4 alerts during the flood (the demo floods after a few minutes)", () => {
    const r = missingBatteryLow([
      { state: "normal", since: 1, newAlerts10m: 0 },
      { state: "flood", since: 2, newAlerts10m: 11 },
    ]);
    expect(r.passed).toBe(false);
    expect(r.failures).toEqual([
      "1 expected alert(s) missing: BATTERY_LOW demo-pendant (the gateway was in an alert flood, 11 new alerts in 10 minutes: it holds new P3 and P4 alerts until the flood ends)",
    ]);
  });

  it("says nothing more without a flood", () => {
    expect(missingBatteryLow([{ state: "normal", since: 1, newAlerts10m: 3 }]).failures).toEqual([
      "1 expected alert(s) missing: BATTERY_LOW demo-pendant",
    ]);
  });
});
