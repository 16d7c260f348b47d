import { describe, expect, it } from "vitest";
import { Backlog, COMPACT_AT } from "./backlog.js";

describe("Backlog", () => {
  it("keeps first-in first-out order across compactions", () => {
    const q = new Backlog<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push(next++);
      for (let i = 0; i < 90; i++) expect(q.shift()).toBe(expected++);
    }
    expect(q.length).toBe(next - expected);
    while (q.length > 0) expect(q.shift()).toBe(expected++);
    expect(q.shift()).toBeUndefined();
    expect(q.peek()).toBeUndefined();
  });

  it("never empty (sustained overload): its slots stay bounded by the entries waiting", () => {
    const q = new Backlog<object>();
    for (let i = 0; i < 100; i++) q.push({});
    // One in, one out, a million times: the queue never drains.
    for (let i = 0; i < 1_000_000; i++) {
      q.push({});
      q.shift();
    }
    expect(q.length).toBe(100);
    expect(q.slots).toBeLessThanOrEqual(2 * (COMPACT_AT + 100));
  });

  it("peek leaves the entry; clear empties", () => {
    const q = new Backlog<string>();
    q.push("a");
    q.push("b");
    expect(q.peek()).toBe("a");
    expect(q.length).toBe(2);
    q.clear();
    expect(q.length).toBe(0);
    expect(q.slots).toBe(0);
  });
});
