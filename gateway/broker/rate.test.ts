import { describe, expect, it } from "vitest";
import { DeviceRateLimiter, type Misbehaviour, OVER_ALERT_SHARE, OVER_P1_SHARE, OVER_RATE } from "./rate.js";

function limiter(enabled = true) {
  const events: Array<[string, boolean]> = [];
  /** Every report, as it came. */
  const reports: Array<[string, Misbehaviour]> = [];
  const l = new DeviceRateLimiter(
    {
      enabled,
      models: { ec200: { perSecond: 1, burst: 5 } },
      misbehavingAfter: 60_000,
      clearAfter: 300_000,
    },
    {
      misbehaving: (id, m) => {
        events.push([id, m.over.length > 0]);
        reports.push([id, m]);
      },
    },
  );
  return { l, events, reports };
}

describe("DeviceRateLimiter", () => {
  it("drops messages beyond the burst and refills at the rate", () => {
    const { l } = limiter();
    let ok = 0;
    for (let i = 0; i < 20; i++) if (l.admit("p1", "ec200", false, 0)) ok++;
    expect(ok).toBe(5);
    expect(l.dropped).toBe(15);
    expect(l.admit("p1", "ec200", false, 1000)).toBe(true);
    expect(l.admit("p1", "ec200", false, 1000)).toBe(false);
    // Another device has its own bucket.
    expect(l.admit("p2", "ec200", false, 1000)).toBe(true);
  });

  it("never drops a P1-bearing message, however fast, and P1 takes no token", () => {
    const { l } = limiter();
    for (let i = 0; i < 10_000; i++) expect(l.admit("p1", "ec200", true, i)).toBe(true);
    for (let i = 0; i < 5; i++) expect(l.admit("p1", "ec200", false, 10_000)).toBe(true);
    for (let i = 0; i < 100; i++) l.admit("p1", "ec200", false, 10_000);
    expect(l.admit("p1", "ec200", true, 10_000)).toBe(true);
  });

  it("raises DEVICE_MISBEHAVING when drops go on for misbehavingAfter, clears after clearAfter quiet", () => {
    const { l, events } = limiter();
    // 10 msg/s for 2 minutes: 1 admitted per second, the rest dropped.
    for (let t = 0; t <= 120_000; t += 100) l.admit("p1", "ec200", false, t);
    expect(events).toEqual([["p1", true]]);
    l.sweep(120_000 + 299_000);
    expect(events).toHaveLength(1);
    l.sweep(120_000 + 300_000);
    expect(events).toEqual([
      ["p1", true],
      ["p1", false],
    ]);
  });

  it("a short burst now and then is not misbehaviour", () => {
    const { l, events } = limiter();
    for (let minute = 0; minute < 10; minute++)
      for (let i = 0; i < 20; i++) l.admit("p1", "ec200", false, minute * 120_000 + i);
    expect(l.dropped).toBeGreaterThan(0);
    expect(events).toEqual([]);
  });

  it("disabled: everything passes", () => {
    const l = new DeviceRateLimiter(
      { enabled: false, models: {}, misbehavingAfter: 1, clearAfter: 1 },
      { misbehaving: () => {} },
    );
    for (let i = 0; i < 1000; i++) expect(l.admit("p1", "ec200", false, 0)).toBe(true);
  });

  it("a device kept over its P1 share raises DEVICE_MISBEHAVING after misbehavingAfter, clears after clearAfter without", () => {
    const { l, reports } = limiter();
    // Its connection closed at each refusal, it comes back every 2 s and is over its share again.
    for (let t = 0; t < 60_000; t += 2_000) l.overP1Share("p1", "ec200", t);
    expect(reports).toEqual([]);
    l.overP1Share("p1", "ec200", 60_000);
    expect(reports).toEqual([["p1", { over: [OVER_P1_SHARE], dropped: 0, deferred: 31, deferredAlerts: 0 }]]);
    // Its presses and heartbeats go on (none dropped): the P1 share's cause stays until clearAfter
    // without a refusal, however busy the device is meanwhile.
    for (let t = 61_000; t < 60_000 + 300_000; t += 1_000) l.admit("p1", "ec200", t % 10_000 === 0, t);
    l.sweep(60_000 + 299_999);
    expect(reports).toHaveLength(1);
    l.sweep(60_000 + 300_000);
    expect(reports[1]).toEqual(["p1", { over: [], dropped: 0, deferred: 0, deferredAlerts: 0 }]);
  });

  it("the P1 share is watched whatever the rate limit: off, or a model without a rate", () => {
    const { l, events } = limiter(false);
    for (let t = 0; t <= 60_000; t += 5_000) {
      l.overP1Share("p1", "ec200", t);
      l.overP1Share("gas", "gd2", t);
    }
    expect(events).toEqual([
      ["p1", true],
      ["gas", true],
    ]);
    l.sweep(400_000);
    expect(events.slice(2)).toEqual([
      ["p1", false],
      ["gas", false],
    ]);
  });

  it("the alert-lane share is watched like the P1 share: rate off, or a model without a rate", () => {
    const { l, reports } = limiter(false);
    for (let t = 0; t <= 60_000; t += 5_000) l.overAlertShare("gas", "gd2", t);
    expect(reports).toEqual([
      ["gas", { over: [OVER_ALERT_SHARE], dropped: 0, deferred: 0, deferredAlerts: 13 }],
    ]);
    l.sweep(60_000 + 300_000);
    expect(reports[1]).toEqual(["gas", { over: [], dropped: 0, deferred: 0, deferredAlerts: 0 }]);
  });

  it("a P1 share hit now and then is not misbehaviour", () => {
    const { l, events } = limiter();
    for (let minute = 0; minute < 10; minute++)
      for (let i = 0; i < 50; i++) l.overP1Share("p1", "ec200", minute * 120_000 + i);
    expect(events).toEqual([]);
  });

  it("over its rate and its P1 share: one alert whose causes are the live ones; each ends on its own", () => {
    const { l, reports } = limiter();
    // Over its rate from 0, over its P1 share from 30 s, both until 120 s.
    for (let t = 0; t <= 120_000; t += 500) {
      l.admit("p1", "ec200", false, t);
      if (t >= 30_000) l.overP1Share("p1", "ec200", t);
    }
    expect(reports.map(([, m]) => m.over)).toEqual([[OVER_RATE], [OVER_RATE, OVER_P1_SHARE]]);
    expect(reports[1]?.[1].dropped).toBeGreaterThan(reports[0]?.[1].dropped ?? Infinity);
    expect(reports[1]?.[1].deferred).toBe(121);
    // From 120 s only its P1 share is hit: the rate's cause ends 300 s after its last drop, and the
    // alert stays, with the P1 share alone (its drop count 0).
    for (let t = 120_500; t <= 440_000; t += 10_000) {
      l.overP1Share("p1", "ec200", t);
      l.sweep(t);
    }
    expect(reports[2]).toEqual([
      "p1",
      { over: [OVER_P1_SHARE], dropped: 0, deferred: expect.any(Number), deferredAlerts: 0 },
    ]);
    expect(reports[2]?.[1].deferred).toBeGreaterThan(121);
    // Then it goes over its rate again: both causes again, after misbehavingAfter.
    for (let t = 440_500; t <= 520_000; t += 500) l.admit("p1", "ec200", false, t);
    expect(reports.map(([, m]) => m.over).slice(3)).toEqual([[OVER_RATE, OVER_P1_SHARE]]);
    // Nothing over either from then: the last cause ends the alert, once.
    l.sweep(520_000 + 300_000);
    expect(reports.slice(4)).toEqual([["p1", { over: [], dropped: 0, deferred: 0, deferredAlerts: 0 }]]);
    l.sweep(520_000 + 600_000);
    expect(reports).toHaveLength(5);
  });
});
