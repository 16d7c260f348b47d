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

  it("grows from its initial slots up to its capacity, keeping order, slots and the refusal at capacity", () => {
    let made = 0;
    const ring = new Ring(
      16,
      () => {
        made++;
        return { v: 0 };
      },
      4,
    );
    expect(ring.capacity).toBe(16);
    expect(ring.allocated).toBe(4);
    expect(made).toBe(4);
    // Wrap the 4 slots first, so that growth happens with sequences that do not start at 0.
    for (let i = 0; i < 3; i++) {
      (ring.reserve() as { v: number }).v = -1;
      ring.commit();
    }
    ring.drain(() => {});
    const queued: object[] = [];
    for (let i = 1; i <= 16; i++) {
      const slot = ring.reserve() as { v: number };
      slot.v = i;
      queued.push(slot);
      ring.commit();
    }
    expect(ring.allocated).toBe(16);
    expect(made).toBe(16);
    expect(ring.isFull).toBe(true);
    expect(ring.reserve()).toBeNull();
    const seen: object[] = [];
    expect(ring.drain((s) => seen.push(s))).toBe(16);
    expect(seen).toEqual(queued);
    expect(seen.map((s) => (s as { v: number }).v)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    // No more allocation once grown.
    for (let i = 0; i < 40; i++) {
      ring.reserve();
      ring.commit();
      ring.drain(() => {});
    }
    expect(made).toBe(16);
  });

  it("grows while a drain is in progress without losing or repeating a slot", () => {
    const ring = new Ring(64, () => ({ v: 0 }), 2);
    const put = (v: number) => {
      (ring.reserve() as { v: number }).v = v;
      ring.commit();
    };
    put(1);
    put(2);
    const seen: number[] = [];
    let next = 3;
    ring.drain((s) => {
      seen.push(s.v);
      // The handler offers more: the ring (2 slots, both being drained) grows under the drain.
      if (next <= 6) for (let k = 0; k < 3; k++) put(next++);
    }, 2);
    expect(seen).toEqual([1, 2]);
    ring.drain((s) => seen.push(s.v));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ring.occupancy).toBe(0);
  });
});
