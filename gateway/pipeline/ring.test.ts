import { describe, expect, it } from "vitest";
import { nextPowerOfTwo, Ring } from "./ring.js";

describe("Ring", () => {
  it("rounds its size up to a power of two", () => {
    expect(new Ring(100, () => ({ v: 0 })).capacity).toBe(128);
    expect(nextPowerOfTwo(64)).toBe(64);
  });

  it("hands slots back in order and refuses when full", () => {
    const ring = new Ring(4, () => ({ v: 0 }));
    for (let i = 1; i <= 4; i++) {
      const slot = ring.reserve();
      expect(slot).not.toBeNull();
      (slot as { v: number }).v = i;
      ring.commit();
    }
    expect(ring.isFull).toBe(true);
    expect(ring.reserve()).toBeNull();
    const seen: number[] = [];
    expect(ring.drain((s) => seen.push(s.v), 3)).toBe(3);
    expect(seen).toEqual([1, 2, 3]);
    expect(ring.occupancy).toBe(1);
    expect(ring.highWater).toBe(4);
  });

  it("reuses preallocated slots instead of allocating", () => {
    const made: object[] = [];
    const ring = new Ring(2, () => {
      const o = { v: 0 };
      made.push(o);
      return o;
    });
    const first = ring.reserve();
    ring.commit();
    ring.drain(() => {});
    ring.reserve();
    ring.commit();
    ring.drain(() => {});
    expect(ring.reserve()).toBe(first);
    expect(made).toHaveLength(2);
  });

  it("allows exactly one open reservation", () => {
    const ring = new Ring(4, () => ({}));
    ring.reserve();
    expect(() => ring.reserve()).toThrow(/already open/);
    ring.abandon();
    expect(ring.occupancy).toBe(0);
  });

  it("consumes a slot whose handler throws, so the lane cannot wedge", () => {
    const ring = new Ring(4, () => ({ v: 0 }));
    for (let i = 0; i < 3; i++) {
      ring.reserve();
      ring.commit();
    }
    expect(() =>
      ring.drain(() => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(ring.occupancy).toBe(2);
  });
});
