import { describe, expect, it } from "vitest";
import { Backlog, type UplinkKind } from "./backlog.js";

const item = (kind: UplinkKind, id: number) => ({ kind, id });

describe("Backlog overflow policy", () => {
  it("evicts the oldest heartbeat first and never an event", () => {
    const b = new Backlog<{ kind: UplinkKind; id: number }>(3);
    b.push(item("event", 1));
    b.push(item("heartbeat", 2));
    b.push(item("heartbeat", 3));
    const out = b.push(item("event", 4));
    expect(out).toEqual({ accepted: true, evicted: item("heartbeat", 2) });
    b.push(item("event", 5)); // evicts heartbeat 3
    expect(b.push(item("event", 6))).toEqual({ accepted: false, reason: "full-of-events" });
    expect(b.push(item("heartbeat", 7))).toEqual({ accepted: false, reason: "full-of-events" });
    expect(b.drain().map((x) => x.id)).toEqual([1, 4, 5]);
    expect(b.stats()).toEqual({
      size: 0,
      highWater: 3,
      evictedHeartbeats: 2,
      droppedHeartbeats: 1,
      refusedEvents: 1,
    });
  });

  it("requeues in-flight messages at the front, beyond capacity if need be", () => {
    const b = new Backlog<{ kind: UplinkKind; id: number }>(2);
    b.push(item("event", 3));
    b.push(item("event", 4));
    b.requeue([item("event", 1), item("event", 2)]);
    expect(b.size).toBe(4);
    expect(b.drain().map((x) => x.id)).toEqual([1, 2, 3, 4]);
    expect(() => new Backlog(0)).toThrow(RangeError);
  });
});
