import { describe, expect, it } from "vitest";
import { SeqWindow } from "./seq-window.js";

describe("SeqWindow", () => {
  it("recognises a re-sent seq among the last `size` and forgets older ones", () => {
    const w = new SeqWindow(3);
    expect([1, 2, 3].map((s) => w.checkAndRecord(s))).toEqual([false, false, false]);
    expect(w.checkAndRecord(2)).toBe(true);
    expect(w.checkAndRecord(4)).toBe(false); // 1 is forgotten
    expect(w.checkAndRecord(1)).toBe(false);
    w.forget(4);
    expect(w.checkAndRecord(4)).toBe(false);
  });

  it("forgetting the seq just recorded undoes the record: the seq it pushed out is remembered again", () => {
    const w = new SeqWindow(3);
    for (const s of [1, 2, 3]) w.checkAndRecord(s);
    // A flood of messages refused as they come in, each forgotten at once.
    for (let s = 10; s < 20; s++) {
      expect(w.checkAndRecord(s)).toBe(false);
      w.forget(s);
    }
    expect([1, 2, 3].map((s) => w.checkAndRecord(s))).toEqual([true, true, true]);
    expect(w.checkAndRecord(10)).toBe(false); // its re-send is taken in
    expect(w.checkAndRecord(1)).toBe(false); // and pushes out the oldest, as any new seq
    // Before the window is full too.
    const v = new SeqWindow(4);
    v.checkAndRecord(1);
    v.checkAndRecord(2);
    v.forget(2);
    expect(v.checkAndRecord(1)).toBe(true);
    for (const s of [3, 4, 5]) v.checkAndRecord(s);
    expect([1, 3, 4, 5].map((s) => v.checkAndRecord(s))).toEqual([true, true, true, true]);
    // An older seq is still forgotten, its slot blanked.
    v.forget(3);
    expect(v.checkAndRecord(3)).toBe(false);
  });

  it("windows sharing one backing array do not see each other's seqs", () => {
    const pool = new Float64Array(2 * 4);
    const a = new SeqWindow(4, pool.subarray(0, 4));
    const b = new SeqWindow(4, pool.subarray(4, 8));
    for (let s = 1; s <= 6; s++) expect(a.checkAndRecord(s)).toBe(false);
    expect(b.checkAndRecord(5)).toBe(false);
    expect(b.checkAndRecord(6)).toBe(false);
    expect(a.checkAndRecord(6)).toBe(true);
    expect(b.checkAndRecord(6)).toBe(true);
    expect(a.checkAndRecord(1)).toBe(false); // fell out of a's window, not overwritten by b
  });

  it("windows at offsets of one pool do not see each other's seqs", () => {
    const pool = new Float64Array(2 * 4);
    const a = new SeqWindow(4, pool, 0);
    const b = new SeqWindow(4, pool, 4);
    for (let s = 1; s <= 6; s++) expect(a.checkAndRecord(s)).toBe(false);
    expect(b.checkAndRecord(5)).toBe(false);
    expect(b.checkAndRecord(6)).toBe(false);
    expect(a.checkAndRecord(6)).toBe(true);
    expect(b.checkAndRecord(6)).toBe(true);
    expect(a.checkAndRecord(1)).toBe(false);
    b.forget(5);
    expect(a.checkAndRecord(5)).toBe(true); // b's forget leaves a's slots alone
    expect(b.checkAndRecord(5)).toBe(false);
    for (let s = 10; s < 14; s++) b.checkAndRecord(s); // b wraps around within its own 4 slots
    expect(a.checkAndRecord(6)).toBe(true);
  });

  it("refuses a backing slice of the wrong size", () => {
    expect(() => new SeqWindow(4, new Float64Array(3))).toThrow(RangeError);
    expect(() => new SeqWindow(4, new Float64Array(8), 5)).toThrow(RangeError);
  });
});
