import { describe, expect, it } from "vitest";
import { ceilingJson, connectedDevicesPoint, DEFAULT_CEILING } from "./ceiling.js";
import { type CeilingInput, type CeilingProbe, ceilingSummary, ceilingTargets } from "./ceiling-report.js";
import type { ConnectionsOptions, ConnectionsResult, ConnectionsRow } from "./connections.js";
import type { PointResult } from "./harness.js";
import { Latency } from "./latency.js";

/** The fields of a point the report reads. */
function pt(
  offeredRate: number,
  o: {
    p1?: number;
    conflated?: number;
    alertsLost?: number;
    other?: number;
    steal?: number;
    /** The operator console's P1 p99 and alerts lost (gateway points); absent: no console. */
    console?: { p1: number; lost?: number };
  } = {},
): PointResult {
  return {
    offeredRate,
    achievedRate: offeredRate,
    generator: { sendRate: offeredRate },
    console: o.console
      ? {
          alerts: { sent: 10, lost: o.console.lost ?? 0, unexpected: 0 },
          p1: { count: 5, p99Ms: o.console.p1 },
        }
      : null,
    server: { cpuPct: 50 },
    otherCpuPct: o.other ?? 0,
    stealPct: o.steal ?? 0,
    messages: { conflated: o.conflated ?? 0 },
    alerts: { sent: 10, lost: o.alertsLost ?? 0, unexpected: 0 },
    latency: { p1: { count: o.p1 === undefined ? 0 : 5, p99Ms: o.p1 ?? 0 }, messages: { p99Ms: 1 } },
  } as unknown as PointResult;
}

const probe = (side: CeilingProbe["side"], rate: number, sustained: boolean, point = pt(rate)) => ({
  side,
  rate,
  sustained,
  reasons: [],
  point,
});

function input(over: Partial<CeilingInput> = {}): CeilingInput {
  return {
    broker: { done: true, ceiling: 10_000, failedAt: 11_000, why: "resolved" },
    gateway: { done: true, ceiling: 14_000, failedAt: 15_000, why: "resolved" },
    probes: [
      probe("broker", 10_000, true),
      probe("gateway", 10_000, true, pt(10_000, { conflated: 3 })),
      probe("gateway", 20_000, false, pt(20_000, { conflated: 500 })),
    ],
    loads: [
      { share: 0.5, rate: 5_000, broker: pt(5_000, { p1: 2 }), gateway: pt(5_000, { p1: 3 }) },
      { share: 0.8, rate: 8_000, broker: pt(8_000, { p1: 4 }), gateway: pt(8_000, { p1: 4.4 }) },
    ],
    overload: pt(28_000, { p1: 5 }),
    connected: null,
    connectedReason: "not part of this suite",
    ...over,
  };
}

describe("ceiling report", () => {
  it("carries the floor's console P1 p99 at the 50 % and overload rates, null without the floor", () => {
    const withFloor = ceilingSummary(
      input({
        floor: { at50: pt(5_000, { console: { p1: 0.9 } }), overload: pt(28_000, { console: { p1: 2.7 } }) },
      }),
    );
    expect(withFloor.floorConsoleP1P99At50Ms).toBe(0.9);
    expect(withFloor.floorOverloadConsoleP1P99Ms).toBe(2.7);
    const without = ceilingSummary(input());
    expect(without.floorConsoleP1P99At50Ms).toBeNull();
    expect(without.floorOverloadConsoleP1P99Ms).toBeNull();
  });

  it("ratios of one run, conflation counted only at or below the gateway's ceiling", () => {
    const s = ceilingSummary(input());
    expect(s.ceilingRatio).toBeCloseTo(1.4);
    expect(s.p1P99At50Ms).toBe(3);
    expect(s.p1RatioAt80).toBeCloseTo(1.1);
    expect(s.overloadAlertsLost).toBe(0);
    expect(s.overloadP1P99Ms).toBe(5);
    expect(s.telemetryConflatedBelowCeiling).toBe(3); // the 20,000 probe is above the ceiling
    expect(s.connectedDevicesRssMb).toBeNull();
    expect(s.connectedDevicesRssMbReason).toBe("not part of this suite");
  });

  it("judges the overload at the operator console when the points had one", () => {
    const loads = (c50: number) => [
      {
        share: 0.5,
        rate: 5_000,
        broker: pt(5_000, { p1: 2 }),
        gateway: pt(5_000, { p1: 3, console: { p1: c50 } }),
      },
      {
        share: 0.8,
        rate: 8_000,
        broker: pt(8_000, { p1: 4 }),
        gateway: pt(8_000, { p1: 4.4, console: { p1: 4 } }),
      },
    ];
    // The subscriber of every topic saw 50 ms (> 2x 3 ms); the console 5 ms against 3 ms: pass.
    const x = input({ loads: loads(3), overload: pt(28_000, { p1: 50, console: { p1: 5 } }) });
    const s = ceilingSummary(x);
    expect(s.overloadConsoleP1P99Ms).toBe(5);
    expect(s.consoleP1P99At50Ms).toBe(3);
    expect(s.consoleP1P99At80Ms).toBe(4);
    expect(s.overloadP1P99Ms).toBe(50);
    const t = ceilingTargets(s, x)[2];
    expect(t?.pass).toBe(true);
    expect(t?.measured).toContain("at the operator console");
    // The console's own figure over 2x its value at 50 %: fail.
    const y = input({ loads: loads(2), overload: pt(28_000, { p1: 5, console: { p1: 4.5 } }) });
    expect(ceilingTargets(ceilingSummary(y), y)[2]?.pass).toBe(false);
    // An alert the console missed is lost, though the subscriber had it.
    const z = input({ loads: loads(3), overload: pt(28_000, { p1: 5, console: { p1: 5, lost: 1 } }) });
    expect(ceilingSummary(z).overloadAlertsLost).toBe(1);
    expect(ceilingTargets(ceilingSummary(z), z)[2]?.pass).toBe(false);
  });

  it("pools each side's P1 samples over the load pairs, leaves a disturbed pair out, and gives the 80 % ratio an interval", () => {
    /** A point whose P1 samples are `ms` (its histogram encoded, as harness.ts does). */
    const sampled = (rate: number, ms: number[], other = 0) => {
      const l = new Latency();
      for (const v of ms) l.record(v);
      const r = pt(rate, { p1: l.summary().p99Ms, other, console: { p1: l.summary().p99Ms } });
      r.latency.p1Histogram = l.encoded();
      r.latency.p1 = l.summary();
      if (r.console) r.console.p1Histogram = l.encoded();
      return r;
    };
    // 100 samples a point: 98 fast ones and two slow; one point's p99 (the 99th) is its slow value.
    const fast = (base: number, slow: number) => [...Array.from({ length: 98 }, () => base), slow, slow];
    const b = (slow: number, other = 0) => sampled(8_000, fast(1, slow), other);
    const g = (slow: number, other = 0) => sampled(8_000, fast(1.2, slow), other);
    const l80 = {
      share: 0.8,
      rate: 8_000,
      broker: b(2),
      gateway: g(10), // alone, this pair says 10 / 2 = 5x
      more: [
        { broker: b(2), gateway: g(2.2) },
        { broker: b(2), gateway: g(2.2) },
        { broker: b(2), gateway: g(50, 80) }, // disturbed: left out
      ],
    };
    const x = input({ loads: [input().loads[0]!, l80] });
    const s = ceilingSummary(x);
    expect(s.loadPairsPooled).toEqual({ at50: 1, at80: 3 });
    // Pooled: 300 samples a side, the p99 the 297th: 2.2 ms against 2 ms, not 10 or 50.
    expect(s.p1P99At80Ms).toBeCloseTo(2.2, 1);
    expect(s.brokerP1P99At80Ms).toBeCloseTo(2, 1);
    expect(s.p1RatioAt80).toBeCloseTo(1.1, 1);
    expect(s.consoleP1P99At80Ms).toBeCloseTo(2.2, 1);
    expect(s.p1RatioAt80Interval).not.toBeNull();
    expect(s.p1RatioAt80Interval!.high).toBeGreaterThanOrEqual(s.p1RatioAt80Interval!.low);
    const t = ceilingTargets(s, x)[1];
    expect(t?.pass).toBe(true);
    expect(t?.measured).toContain("(3 of 4 pairs pooled)");
    expect(t?.measured).toContain("90 % interval");
    // One pair only: the point's own figures, as before, and no interval.
    const one = ceilingSummary(input({ loads: [input().loads[0]!, { ...l80, more: [] }] }));
    expect(one.p1RatioAt80).toBeCloseTo(5, 1);
    expect(one.p1RatioAt80Interval).toBeNull();
  });

  it("verdicts: pass, fail, and n/a for what was not measured", () => {
    const x = input();
    const t = ceilingTargets(ceilingSummary(x), x);
    expect(t.map((v) => v.pass)).toEqual([true, true, true, false, null, null]);

    const y = input({ gateway: { done: true, ceiling: 11_000, failedAt: 12_000, why: "resolved" } });
    expect(ceilingTargets(ceilingSummary(y), y)[0]?.pass).toBe(false);

    const z = input({ overload: pt(28_000, { p1: 7 }) }); // > 2x the 3 ms at 50 %
    expect(ceilingTargets(ceilingSummary(z), z)[2]?.pass).toBe(false);

    const none = input({ broker: { done: true, ceiling: 0, failedAt: 500, why: "below min" }, loads: [] });
    const tn = ceilingTargets(ceilingSummary(none), none);
    expect(tn[0]?.pass).toBeNull();
    expect(tn[1]?.pass).toBeNull();
  });

  it("no verdict from disturbed points, except that a lost alert always fails", () => {
    const x = input({ overload: pt(28_000, { p1: 50, other: 80 }) });
    const t = ceilingTargets(ceilingSummary(x), x);
    expect(t[2]?.pass).toBeNull();
    expect(t[2]?.measured).toContain("disturbed");

    const lost = input({ overload: pt(28_000, { p1: 50, other: 80, alertsLost: 1 }) });
    expect(ceilingTargets(ceilingSummary(lost), lost)[2]?.pass).toBe(false);
  });

  it("counts the hypervisor's steal as a disturbance even when other load does not show it", () => {
    const stolen = input({ overload: pt(28_000, { p1: 50, other: 5, steal: 35 }) });
    const t = ceilingTargets(ceilingSummary(stolen), stolen);
    expect(t[2]?.pass).toBeNull();
    expect(t[2]?.measured).toContain("up to 35 %");
    expect(ceilingSummary(stolen).maxStealPct).toBe(35);
    // Steal is mostly inside other load already: 12 and 12 is not 24.
    const both = input({ overload: pt(28_000, { p1: 50, other: 12, steal: 12 }) });
    expect(ceilingTargets(ceilingSummary(both), both)[2]?.pass).not.toBeNull();
  });
});

/** A connections measurement as bench/connections.ts returns it: a row before the first connection and after the last. */
function measured(
  devices: number,
  rssMb: number,
  clients = devices,
  load: { rssAfterMb: number; missing: number } = { rssAfterMb: rssMb - 1, missing: 0 },
) {
  const seen: ConnectionsOptions[] = [];
  const row = (connections: number, rss: number, c: number): ConnectionsRow =>
    ({
      connections,
      rssMb: rss,
      clients: c,
      heapUsedMb: 30,
      bytesPerConn: 0,
      heapPerConn: 0,
    }) as ConnectionsRow;
  const measure = async (o: ConnectionsOptions): Promise<ConnectionsResult> => {
    seen.push(o);
    return {
      registered: o.registered,
      publish: o.publish,
      storage: o.storage === true,
      deviceListener: o.deviceListener === true,
      realistic:
        o.realistic === undefined
          ? null
          : {
              seconds: o.realistic.seconds,
              heartbeats: 5_000,
              presses: 300,
              alerts: 300 - load.missing,
              missing: load.missing,
              p1P50Ms: 1.5,
              p1P99Ms: 7.25,
              p1MaxMs: 9,
              after: { ...row(o.connections, load.rssAfterMb, clients) },
            },
      rows: [row(0, 110, 0), row(o.connections, rssMb, clients)],
      connectSeconds: 1,
    };
  };
  return { measure, seen };
}

describe("ceiling suite: the connected-devices point", () => {
  const quiet = () => {};

  it("runs 10,000 connections by default and carries their RSS to the JSON's top level", async () => {
    const m = measured(DEFAULT_CEILING.connectedDevices, 141.5);
    const point = await connectedDevicesPoint(DEFAULT_CEILING.connectedDevices, quiet, m.measure);
    expect(m.seen).toEqual([
      {
        connections: 10_000,
        step: 10_000,
        registered: 10_000,
        publish: true,
        storage: true,
        deviceListener: false,
        realistic: { seconds: 30, pressesPerSecond: 10 },
      },
    ]);
    // With the device listener, the same measurement on it.
    const dl = measured(DEFAULT_CEILING.connectedDevices, 141.5);
    await connectedDevicesPoint(DEFAULT_CEILING.connectedDevices, quiet, dl.measure, true);
    expect(dl.seen[0]?.deviceListener).toBe(true);
    const x = input(point);
    const s = ceilingSummary(x);
    const json = ceilingJson(x, s, DEFAULT_CEILING);
    expect(json.connectedDevicesRssMb).toBe(141.5);
    expect(json.connectedDevicesRssMbReason).toBeNull();
    const verdict = ceilingTargets(s, x)[4];
    expect(verdict?.pass).toBe(true);
    expect(verdict?.measured).toContain("142 MB with 10000 connections");
    expect(json.connectedDevicesP1P99Ms).toBe(7.25);
    expect(json.connectedDevicesAlertsMissing).toBe(0);
    const alerts = ceilingTargets(s, x)[5];
    expect(alerts?.pass).toBe(true);
    expect(alerts?.measured).toContain("300 of 300 presses");
  });

  it("takes the higher RSS of the two readings, and fails the alert target when one is missing", async () => {
    const m = measured(10_000, 141.5, 10_000, { rssAfterMb: 151, missing: 1 });
    const x = input(await connectedDevicesPoint(10_000, quiet, m.measure));
    const s = ceilingSummary(x);
    expect(s.connectedDevicesRssMb).toBe(151);
    expect(ceilingTargets(s, x)[4]?.pass).toBe(false);
    expect(s.connectedDevicesAlertsMissing).toBe(1);
    expect(ceilingTargets(s, x)[5]?.pass).toBe(false);
  });

  it("fails the target at 150 MB or more", async () => {
    const m = measured(10_000, 150);
    const x = input(await connectedDevicesPoint(10_000, quiet, m.measure));
    expect(ceilingTargets(ceilingSummary(x), x)[4]?.pass).toBe(false);
  });

  it("no figure, with the reason, when not run, incomplete or failed", async () => {
    const none = measured(10_000, 100);
    const off = await connectedDevicesPoint(0, quiet, none.measure);
    expect(none.seen).toEqual([]);
    expect(off).toEqual({ connected: null, connectedReason: "not run (--connected-devices 0)" });

    const short = measured(10_000, 120, 9_000);
    const partial = await connectedDevicesPoint(10_000, quiet, short.measure);
    expect(partial.connected).toBeNull();
    expect(partial.connectedReason).toContain("9000 of 10000");

    const broken = await connectedDevicesPoint(10_000, quiet, async () => {
      throw new Error("gateway exited (1)");
    });
    const x = input(broken);
    const s = ceilingSummary(x);
    expect(s.connectedDevicesRssMb).toBeNull();
    expect(s.connectedDevicesRssMbReason).toBe("measurement failed: gateway exited (1)");
    expect(ceilingTargets(s, x)[4]?.pass).toBeNull();
  });
});
