import { describe, expect, it } from "vitest";
import { DeviceRateLimiter } from "./rate.js";

function limiter() {
  const events: Array<[string, boolean]> = [];
  const l = new DeviceRateLimiter(
    {
      enabled: true,
      models: { ec200: { perSecond: 1, burst: 5 } },
      misbehavingAfter: 60_000,
      clearAfter: 300_000,
    },
    { misbehaving: (id, active) => events.push([id, active]) },
  );
  return { l, events };
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
});
