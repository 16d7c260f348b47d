import { afterEach, describe, expect, it, vi } from "vitest";
import { mockedClocks } from "../../../test/support/mocked-clocks.js";
import { AcceptBans } from "./accept-bans.js";

describe("AcceptBans (the device listener worker's)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("a ban lasts its time on the monotonic clock, whatever the wall clock does", () => {
    const c = mockedClocks();
    const bans = new AcceptBans();
    bans.ban("10.0.0.1", 300_000);
    c.wall += 86_400_000;
    expect(bans.banned("10.0.0.1")).toBe(true);
    c.wall -= 2 * 86_400_000;
    c.mono += 300_000;
    expect(bans.banned("10.0.0.1")).toBe(false);
    expect(bans.size).toBe(0);
  });

  it("a ban of 0 ms lifts one; expired ones at the front are dropped when one is added", () => {
    let now = 0;
    const bans = new AcceptBans(() => now);
    bans.ban("a", 100);
    bans.ban("b", 1000);
    bans.ban("a", 0);
    expect(bans.banned("a")).toBe(false);
    now = 500;
    bans.ban("c", 100);
    expect(bans.size).toBe(2);
    bans.ban("d", 100);
    now = 700;
    bans.ban("e", 100);
    expect([bans.banned("b"), bans.banned("c"), bans.banned("e")]).toEqual([true, false, true]);
  });

  it("bounded: expired entries behind a live one go when it is full, then the oldest", () => {
    let now = 0;
    const bans = new AcceptBans(() => now, 3);
    bans.ban("a", 1000);
    bans.ban("b", 10);
    bans.ban("c", 10);
    now = 500;
    // b and c expired behind a, still live at the front.
    bans.ban("d", 1000);
    expect(bans.size).toBe(2);
    expect(bans.banned("a")).toBe(true);
    expect(bans.banned("d")).toBe(true);
    bans.ban("e", 1000);
    bans.ban("f", 1000);
    // None expired: the oldest, a, goes.
    expect(bans.size).toBe(3);
    expect(bans.banned("a")).toBe(false);
    expect(["d", "e", "f"].every((x) => bans.banned(x))).toBe(true);
    for (let i = 0; i < 100; i++) bans.ban(`10.0.0.${i}`, 1000);
    expect(bans.size).toBe(3);
  });
});
