import { describe, expect, it } from "vitest";
import { SocketTable } from "./http-guard.js";

describe("an HTTP server's socket table", () => {
  it("caps an address's sockets", () => {
    const t = new SocketTable<string>(2);
    expect(t.add("a1", "a")).toBe(true);
    expect(t.add("a2", "a")).toBe(true);
    expect(t.add("a3", "a")).toBe(false);
    expect(t.add("b1", "b")).toBe(true);
    expect(t.remove("a1")).toBe("a");
    expect(t.remove("a1")).toBeUndefined();
    expect(t.add("a3", "a")).toBe(true);
    expect(t.size).toBe(3);
  });

  it("evicts the oldest socket not logged in of the address holding the most", () => {
    const t = new SocketTable<string>(64);
    t.add("desk", "10.0.0.1");
    for (let i = 1; i <= 3; i++) t.add(`x${i}`, "10.0.0.2");
    t.add("y1", "10.0.0.3");
    // The desk's socket is the oldest, but its address holds one.
    expect(t.evictionVictim()).toBe("x1");
    t.remove("x1");
    t.remove("x2");
    // A tie (one each, x3 and y1 and the desk): the first address, in the order first seen.
    expect(t.evictionVictim()).toBe("desk");
    t.authenticated("desk");
    expect(t.evictionVictim()).toBe("x3");
    t.remove("x3");
    t.remove("y1");
    // Only logged-in sockets left: none to evict.
    expect(t.evictionVictim()).toBeUndefined();
    expect(t.size).toBe(1);
    // An authenticated socket still counts towards its address's share and leaves at its close.
    expect(t.remove("desk")).toBe("10.0.0.1");
    expect(t.size).toBe(0);
  });

  it("evicts waiting sockets (nothing in flight) before busy ones, whatever their address holds", () => {
    const t = new SocketTable<string>(64);
    // Behind one NAT: the operator's login in flight, and a slowloris socket of a flooder.
    t.add("login", "nat");
    t.busy("login");
    t.add("slow", "nat");
    for (let i = 1; i <= 3; i++) t.add(`x${i}`, "flood");
    // The flood's address holds the most waiting sockets.
    expect(t.evictionVictim()).toBe("x1");
    t.remove("x1");
    t.remove("x2");
    t.remove("x3");
    // The NAT's waiting socket goes before its busy one, though the busy one is older.
    expect(t.evictionVictim()).toBe("slow");
    t.remove("slow");
    // Only busy sockets left: the oldest of the address holding the most.
    expect(t.evictionVictim()).toBe("login");
    // Answered: it waits again (idle keep-alive), the longest waiting first.
    t.add("y1", "flood");
    t.idle("login");
    expect(t.evictionVictim()).toBe("y1");
    t.remove("y1");
    expect(t.evictionVictim()).toBe("login");
  });

  it("counts pipelined requests; an authenticated socket stays out of both tiers", () => {
    const t = new SocketTable<string>(64);
    t.add("a", "x");
    t.busy("a");
    t.busy("a");
    t.idle("a");
    t.add("b", "x");
    // "a" still has a request in flight.
    expect(t.evictionVictim()).toBe("b");
    t.idle("a");
    // Both wait now; "b" longer.
    expect(t.evictionVictim()).toBe("b");
    t.busy("b");
    expect(t.evictionVictim()).toBe("a");
    t.idle("b");
    t.busy("a");
    t.authenticated("a");
    t.idle("a");
    t.busy("a");
    expect(t.evictionVictim()).toBe("b");
    t.remove("b");
    expect(t.evictionVictim()).toBeUndefined();
    // Calls for a socket gone are ignored.
    t.remove("a");
    t.busy("a");
    t.idle("a");
    expect(t.size).toBe(0);
    expect(t.evictionVictim()).toBeUndefined();
  });
});
