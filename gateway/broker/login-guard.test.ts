import { describe, expect, it } from "vitest";
import { LoginGuard, type LoginGuardConfig } from "./login-guard.js";

const cfg: LoginGuardConfig = {
  attemptsPerSecond: 2,
  attemptBurst: 5,
  maxFailures: 3,
  failureWindow: 60_000,
  banDuration: 300_000,
  maxTracked: 16,
};

function guard(over: Partial<LoginGuardConfig> = {}) {
  let now = 1_000_000;
  const bans: string[] = [];
  const g = new LoginGuard(
    { ...cfg, ...over },
    { banned: (kind, key) => bans.push(`${kind}:${key}`) },
    () => now,
  );
  return { g, bans, advance: (ms: number) => (now += ms) };
}

describe("LoginGuard", () => {
  it("rate-limits new connections per address with a burst, refilled over time", () => {
    const { g, advance } = guard();
    for (let i = 0; i < 5; i++) expect(g.admitConnection("10.0.0.1")).toBe("ok");
    expect(g.admitConnection("10.0.0.1")).toBe("rate-limited");
    expect(g.admitConnection("10.0.0.2")).toBe("ok");
    advance(500);
    expect(g.admitConnection("10.0.0.1")).toBe("ok");
    expect(g.admitConnection("10.0.0.1")).toBe("rate-limited");
  });

  it("bans an address after maxFailures within the window, once, until the ban ends", () => {
    const { g, bans, advance } = guard();
    for (let i = 0; i < 3; i++) g.failed("10.0.0.1", "nobody", false);
    expect(bans).toEqual(["address:10.0.0.1"]);
    expect(g.admitConnection("10.0.0.1")).toBe("banned");
    g.failed("10.0.0.1", "nobody", false);
    expect(bans).toHaveLength(1);
    advance(300_001);
    expect(g.admitConnection("10.0.0.1")).toBe("ok");
    // A served ban starts a new window: one more failure does not ban again.
    g.failed("10.0.0.1", "nobody", false);
    expect(g.admitConnection("10.0.0.1")).toBe("ok");
  });

  it("failures spread wider than the window do not ban", () => {
    const { g, bans, advance } = guard();
    for (let i = 0; i < 6; i++) {
      g.failed("10.0.0.1", "x", false);
      advance(31_000);
    }
    expect(bans).toEqual([]);
  });

  it("bans a known username guessed from many addresses, but not from its last good address", () => {
    const { g, bans } = guard();
    g.succeeded("10.0.0.9", "p1");
    for (let i = 0; i < 3; i++) g.failed(`10.0.1.${i}`, "p1", true);
    expect(bans).toEqual(["username:p1"]);
    expect(g.admitLogin("10.0.2.1", "p1")).toBe("banned");
    expect(g.admitLogin("10.0.0.9", "p1")).toBe("ok");
    // Unknown usernames are never tracked (the table cannot be grown by inventing names).
    for (let i = 0; i < 100; i++) g.failed(`10.0.3.${i % 2}`, `ghost${i}`, false);
    expect(g.stats().usernames).toBe(1);
  });

  it("keeps its tables bounded, forgetting the least recently seen address", () => {
    const { g } = guard({ maxTracked: 16, attemptBurst: 1 });
    g.admitConnection("a");
    for (let i = 0; i < 40; i++) g.admitConnection(`10.0.0.${i}`);
    expect(g.stats().addresses).toBe(16);
    // "a" was forgotten: it starts with a full bucket again.
    expect(g.admitConnection("a")).toBe("ok");
    for (let i = 0; i < 40; i++) for (let k = 0; k < 3; k++) g.failed(`10.1.0.${i}`, undefined, false);
    expect(g.stats().addressBans).toBe(16);
  });
});
