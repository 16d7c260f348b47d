import { describe, expect, it } from "vitest";
import { AlertMatcher } from "./matcher.js";
import { buildReport, formatFlood, formatGatewayRefusals, type SimReport } from "./report.js";
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

describe("what the gateway refused and its flood, in every report", () => {
  const refusals = (byReason: SimReport["gatewayRefusals"]["byReason"], error: string | null = null) => ({
    metrics: "http://127.0.0.1:9464/metrics",
    error,
    byReason,
  });

  it("says how many messages the gateway dropped over their device's rate, by model, and those left with devices", () => {
    expect(
      formatGatewayRefusals(
        refusals({
          "rate-limited": { ec200: 3100, ds10: 3140 },
          "p1-device-limit": {},
          "deferred-to-device": { gd2: 2 },
        }),
      ),
    ).toBe(
      "gateway refused: 6240 message(s) dropped over their device's rate (ec200 3100, ds10 3140; acknowledged, so the devices could not tell), 2 left with their device over its lane share (deferred-to-device: gd2 2; sent again) (http://127.0.0.1:9464/metrics, whole gateway)",
    );
    expect(
      formatGatewayRefusals(
        refusals({ "rate-limited": {}, "p1-device-limit": {}, "deferred-to-device": {} }),
      ),
    ).toBe(
      "gateway refused: 0 message(s) dropped over their device's rate, 0 left with their device over its lane share (http://127.0.0.1:9464/metrics, whole gateway)",
    );
    expect(formatGatewayRefusals(refusals(null, "http://127.0.0.1:9464/metrics: ECONNREFUSED"))).toBe(
      "gateway refused: not read (http://127.0.0.1:9464/metrics: ECONNREFUSED; --metrics URL names the gateway's /metrics)",
    );
  });

  it("says whether the gateway was in an alert flood, passed or not", () => {
    const flooded = missingBatteryLow([
      { state: "flood", since: 2, newAlerts10m: 11 },
      { state: "flood", since: 2, newAlerts10m: 14 },
      { state: "normal", since: 3, newAlerts10m: 4 },
    ]);
    expect(flooded.flood).toEqual({ newAlerts10m: 14, ongoing: false });
    expect(formatFlood(flooded.flood)).toBe(
      "alert flood: seen (14 new alerts in 10 minutes when it began), ended during the run: meanwhile the gateway holds new P3 and P4 alerts until it ends",
    );
    expect(formatFlood(missingBatteryLow([{ state: "flood", since: 2, newAlerts10m: 11 }]).flood)).toMatch(
      /still on at the end/,
    );
    expect(formatFlood(missingBatteryLow([{ state: "normal", since: 1, newAlerts10m: 3 }]).flood)).toBe(
      "alert flood: none seen",
    );
  });
});
