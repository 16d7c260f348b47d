import { describe, expect, it } from "vitest";
import { WebSocketSlot, WebSocketSlots } from "./ws-slots.js";

const limits = { total: 8, unauthenticated: 4, perAddress: 2 };

describe("console WebSocket slots", () => {
  it("caps an address's sockets not logged in yet", () => {
    const slots = new WebSocketSlots(limits);
    expect(slots.admit("a", () => {})).toBeInstanceOf(WebSocketSlot);
    expect(slots.admit("a", () => {})).toBeInstanceOf(WebSocketSlot);
    expect(slots.admit("a", () => {})).toBe("per-address");
    expect(slots.admit("b", () => {})).toBeInstanceOf(WebSocketSlot);
  });

  it("a full unauthenticated share evicts the oldest socket of the address holding the most", () => {
    const evicted: string[] = [];
    const closed: string[] = [];
    const slots = new WebSocketSlots(limits, (a) => evicted.push(a));
    const operator = slots.admit("desk", () => closed.push("desk")) as WebSocketSlot;
    slots.admit("x", () => closed.push("x1"));
    slots.admit("x", () => closed.push("x2"));
    slots.admit("y", () => closed.push("y1"));
    expect(slots.unauthenticated).toBe(4);
    // The desk's socket is the oldest, but its address holds one: x's oldest goes.
    expect(slots.admit("y", () => closed.push("y2"))).toBeInstanceOf(WebSocketSlot);
    expect(closed).toEqual(["x1"]);
    expect(evicted).toEqual(["x"]);
    expect(slots.unauthenticated).toBe(4);
    slots.loggedIn(operator);
    expect(slots.unauthenticated).toBe(3);
  });

  it("logged-in operators hold the reserve; only they can fill the pool", () => {
    const closed: number[] = [];
    const slots = new WebSocketSlots(limits);
    const ops: WebSocketSlot[] = [];
    for (let i = 0; i < 6; i++) {
      const s = slots.admit(`desk${i}`, () => {}) as WebSocketSlot;
      slots.loggedIn(s);
      ops.push(s);
    }
    // 6 operators + 2 pending = 8: a third pending socket takes the oldest pending one's slot.
    slots.admit("x", () => closed.push(1));
    slots.admit("y", () => closed.push(2));
    expect(slots.size).toBe(8);
    expect(slots.admit("z", () => closed.push(3))).toBeInstanceOf(WebSocketSlot);
    expect(closed).toEqual([1]);
    expect(slots.size).toBe(8);
    // An operator logging in on a pending socket keeps the pool at its total.
    for (const s of [slots.admit("d6", () => {}), slots.admit("d7", () => {})])
      slots.loggedIn(s as WebSocketSlot);
    expect(slots.unauthenticated).toBe(0);
    expect(slots.admit("w", () => {})).toBe("total");
    slots.release(ops[0] as WebSocketSlot);
    slots.release(ops[0] as WebSocketSlot);
    expect(slots.size).toBe(7);
    expect(slots.admit("w", () => {})).toBeInstanceOf(WebSocketSlot);
  });
});
