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
    { banned: (kind, scope, key) => bans.push(`${scope} ${kind}:${key}`) },
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

  it("bans an address in both scopes after maxFailures with unknown usernames, once, until the ban ends", () => {
    const { g, bans, advance } = guard();
    for (let i = 0; i < 3; i++) g.failed("10.0.0.1", "nobody", "unknown");
    expect(bans).toEqual(["device address:10.0.0.1", "operator address:10.0.0.1"]);
    expect(g.admitConnection("10.0.0.1")).toBe("banned");
    g.failed("10.0.0.1", "nobody", "unknown");
    expect(bans).toHaveLength(2);
    advance(300_001);
    expect(g.admitConnection("10.0.0.1")).toBe("ok");
    // A served ban starts a new window: one more failure does not ban again.
    g.failed("10.0.0.1", "nobody", "unknown");
    expect(g.admitConnection("10.0.0.1")).toBe("ok");
    expect(g.admitLogin("10.0.0.1", "p1", "device")).toBeNull();
  });

  it("the console's accept takes the address's rate only, banned or not; its logins see the ban", () => {
    const { g, advance } = guard({ attemptBurst: 10 });
    for (let i = 0; i < 3; i++) g.failed("10.0.0.1", "nobody", "unknown");
    expect(g.admitConnection("10.0.0.1")).toBe("banned");
    // Failures take no token, nor does "banned" above: the burst's ten are all there.
    for (let i = 0; i < 10; i++) expect(g.admitConnectionRate("10.0.0.1")).toBe("ok");
    expect(g.admitConnectionRate("10.0.0.1")).toBe("rate-limited");
    advance(500);
    expect(g.admitConnectionRate("10.0.0.1")).toBe("ok");
    expect(g.admitLogin("10.0.0.1", undefined, "operator")).toMatchObject({ kind: "address", ms: 299_500 });
  });

  it("operator failures never refuse a device's login from the same address", () => {
    const { g, bans } = guard();
    for (let i = 0; i < 10; i++) g.failed("127.0.0.1", "duty", "operator", true);
    expect(bans).toEqual(["operator address:127.0.0.1"]);
    // The pendant's connection is accepted and its login admitted; operators from there are not.
    expect(g.admitConnection("127.0.0.1")).toBe("ok");
    expect(g.admitLogin("127.0.0.1", "p1", "device")).toBeNull();
    expect(g.admitLogin("127.0.0.1", "duty", "operator")).toEqual({
      kind: "address",
      until: 1_300_000,
      ms: 300_000,
    });
    expect(g.admitLogin("127.0.0.1", "ghost", "unknown")?.kind).toBe("address");
  });

  it("device failures never refuse an operator's login from the same address", () => {
    const { g, bans } = guard();
    for (let i = 0; i < 10; i++) g.failed("10.0.0.5", "p1", "device", true);
    expect(bans).toEqual(["device address:10.0.0.5", "device username:p1"]);
    expect(g.admitConnection("10.0.0.5")).toBe("ok");
    expect(g.admitLogin("10.0.0.5", "duty", "operator")).toBeNull();
    expect(g.admitLogin("10.0.0.5", "p2", "device")?.kind).toBe("address");
  });

  it("never bans an operator's username: guesses from one address leave the others free", () => {
    const { g, bans } = guard();
    for (let i = 0; i < 30; i++) g.failed(`10.0.1.${i % 3}`, "duty", "operator", true);
    expect(bans).toEqual([
      "operator address:10.0.1.0",
      "operator address:10.0.1.1",
      "operator address:10.0.1.2",
    ]);
    expect(g.admitLogin("10.0.2.1", "duty", "operator")).toBeNull();
    expect(g.stats().usernames).toBe(0);
  });

  it("an operator who last logged in from a banned address may still log in from it (a console's reconnect)", () => {
    const { g } = guard();
    g.succeeded("10.0.3.7", "duty", "operator");
    // A colleague at the same desk mistypes another account's password ten times.
    for (let i = 0; i < 10; i++) g.failed("10.0.3.7", "night", "operator", true);
    expect(g.admitLogin("10.0.3.7", "duty", "operator")).toBeNull();
    expect(g.admitLogin("10.0.3.7", "night", "operator")?.kind).toBe("address");
    expect(g.admitLogin("10.0.3.7", "ghost", "unknown")?.kind).toBe("address");
    // Its good address is its last one: logged in elsewhere since, the ban here applies to it too.
    g.succeeded("10.0.3.8", "duty", "operator");
    expect(g.admitLogin("10.0.3.7", "duty", "operator")?.kind).toBe("address");
  });

  it("a device that last logged in from a banned address may still log in from it (pendants on one base station)", () => {
    const { g } = guard();
    g.succeeded("10.0.4.2", "p1", "device");
    // Another pendant on the same base station keeps trying an old password.
    for (let i = 0; i < 10; i++) g.failed("10.0.4.2", "p2", "device", true);
    expect(g.admitLogin("10.0.4.2", "p1", "device")).toBeNull();
    expect(g.admitLogin("10.0.4.2", "p2", "device")?.kind).toBe("address");
    expect(g.admitLogin("10.0.4.2", "p3", "device")?.kind).toBe("address");
    // Its own username banned (guessed from here), it still passes from its good address.
    for (let i = 0; i < 10; i++) g.failed("10.0.4.2", "p1", "device", true);
    expect(g.admitLogin("10.0.4.2", "p1", "device")).toBeNull();
    expect(g.admitLogin("10.0.4.9", "p1", "device")?.kind).toBe("username");
    // Its good address is its last one: logged in elsewhere since, the ban here applies to it too.
    g.succeeded("10.0.4.3", "p1", "device");
    expect(g.admitLogin("10.0.4.2", "p1", "device")?.kind).toBe("address");
  });

  it("failures spread wider than the window do not ban", () => {
    const { g, bans, advance } = guard();
    for (let i = 0; i < 6; i++) {
      g.failed("10.0.0.1", "x", "unknown");
      advance(31_000);
    }
    expect(bans).toEqual([]);
  });

  it("bans a device username guessed from many addresses, but not from its last good address", () => {
    const { g, bans } = guard();
    g.succeeded("10.0.0.9", "p1", "device");
    for (let i = 0; i < 3; i++) g.failed(`10.0.1.${i}`, "p1", "device", true);
    expect(bans).toEqual(["device username:p1"]);
    expect(g.admitLogin("10.0.2.1", "p1", "device")?.kind).toBe("username");
    expect(g.admitLogin("10.0.0.9", "p1", "device")).toBeNull();
    // Unknown usernames are never tracked (the table cannot be grown by inventing names).
    for (let i = 0; i < 100; i++) g.failed(`10.0.3.${i % 2}`, `ghost${i}`, "unknown");
    expect(g.stats().usernames).toBe(1);
  });

  it("tells when an address comes to be closed at accept (banned in both scopes), and when a full ban table drops it", () => {
    let now = 1_000_000;
    const events: [string, number | null][] = [];
    const g = new LoginGuard(
      cfg,
      { banned: () => {}, closedAtAccept: (address, ms) => events.push([address, ms]) },
      () => now,
    );
    for (let i = 0; i < 3; i++) g.failed("10.0.0.1", "duty", "operator", true);
    expect(events).toEqual([]);
    now += 1000;
    for (let i = 0; i < 3; i++) g.failed("10.0.0.1", "p1", "device");
    // For as long as is left of its first ban (the operator scope's).
    expect(events).toEqual([["10.0.0.1", 299_000]]);
    // A scanner of names: banned in both at once, told once.
    for (let i = 0; i < 3; i++) g.failed("10.0.0.2", "ghost", "unknown");
    expect(events).toEqual([
      ["10.0.0.1", 299_000],
      ["10.0.0.2", 300_000],
    ]);
    expect(g.closedAtAcceptNow()).toEqual([
      ["10.0.0.1", 1_300_000],
      ["10.0.0.2", 1_301_000],
    ]);
    // 15 more device bans fill the table (16): the oldest, 10.0.0.1's, is dropped.
    for (let k = 0; k < 15; k++) for (let i = 0; i < 3; i++) g.failed(`10.0.1.${k}`, "p1", "device");
    expect(events.slice(2)).toEqual([["10.0.0.1", null]]);
    expect(g.admitConnection("10.0.0.1")).toBe("ok");
    expect(g.closedAtAcceptNow()).toEqual([["10.0.0.2", 1_301_000]]);
    now = 1_301_000;
    expect(g.closedAtAcceptNow()).toEqual([]);
    expect(g.admitConnection("10.0.0.2")).toBe("ok");
  });

  it("keeps its tables bounded, forgetting the least recently seen address", () => {
    const { g } = guard({ maxTracked: 16, attemptBurst: 1 });
    g.admitConnection("a");
    for (let i = 0; i < 40; i++) g.admitConnection(`10.0.0.${i}`);
    expect(g.stats().addresses).toBe(16);
    // "a" was forgotten: it starts with a full bucket again.
    expect(g.admitConnection("a")).toBe("ok");
    for (let i = 0; i < 40; i++) for (let k = 0; k < 3; k++) g.failed(`10.1.0.${i}`, undefined, "unknown");
    expect(g.stats().deviceAddressBans).toBe(16);
    expect(g.stats().operatorAddressBans).toBe(16);
  });
});
