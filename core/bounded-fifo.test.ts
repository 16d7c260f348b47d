import { describe, expect, it } from "vitest";
import { BoundedFifo } from "./bounded-fifo.js";

describe("BoundedFifo", () => {
  it("hands items back oldest first", () => {
    const q = new BoundedFifo<number>(4);
    expect(q.isEmpty()).toBe(true);
    expect(q.peek()).toBeUndefined();
    expect(q.shift()).toBeUndefined();
    for (const n of [1, 2, 3]) expect(q.push(n)).toBe(true);
    expect(q.length).toBe(3);
    expect(q.peek()).toBe(1);
    expect([q.shift(), q.shift(), q.shift()]).toEqual([1, 2, 3]);
    expect(q.isEmpty()).toBe(true);
  });

  it("refuses a push when full, changing nothing, and accepts again after a shift", () => {
    const q = new BoundedFifo<string>(2);
    expect(q.push("a")).toBe(true);
    expect(q.push("b")).toBe(true);
    expect(q.isFull()).toBe(true);
    expect(q.push("c")).toBe(false);
    expect(q.length).toBe(2);
    expect(q.shift()).toBe("a");
    expect(q.push("c")).toBe(true);
    expect([q.shift(), q.shift(), q.shift()]).toEqual(["b", "c", undefined]);
  });

  it("keeps its storage at capacity and its order across many wraps, never fully drained", () => {
    const q = new BoundedFifo<number>(5);
    let next = 0;
    let expected = 0;
    // Fill, then for 10,000 rounds take one and add two while there is room: never empty.
    while (q.push(next)) next++;
    for (let round = 0; round < 10_000; round++) {
      expect(q.shift()).toBe(expected++);
      while (q.push(next)) next++;
      expect(q.length).toBe(5);
      expect(q.storageSlots).toBe(5);
    }
    expect(next).toBe(10_005);
  });

  it("clear empties it; a handled item is not kept", () => {
    const q = new BoundedFifo<object>(3);
    q.push({});
    q.push({});
    q.shift();
    expect((q as unknown as { slots: unknown[] }).slots.filter((s) => s !== undefined)).toHaveLength(1);
    q.clear();
    expect(q.length).toBe(0);
    expect(q.push({})).toBe(true);
    expect(q.length).toBe(1);
  });

  it("rejects a capacity that is not a whole number >= 1", () => {
    expect(() => new BoundedFifo(0)).toThrow(RangeError);
    expect(() => new BoundedFifo(1.5)).toThrow(RangeError);
    expect(() => new BoundedFifo(Number.NaN)).toThrow(RangeError);
  });
});
