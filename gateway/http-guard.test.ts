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
});
