import { afterEach, describe, expect, it, vi } from "vitest";
import { mockedClocks } from "../../test/support/mocked-clocks.js";
import { createLogger } from "../log.js";
import { Counters } from "../stats.js";
import { DEFAULT_CONNECTION_LIMITS, SocketLimits } from "./connection-limits.js";

describe("SocketLimits login counting", () => {
  const limits = () =>
    new SocketLimits(DEFAULT_CONNECTION_LIMITS, new Counters(), createLogger({ level: "silent" }));

  it("a login refused as auth-busy (never checked) is not a failed login", () => {
    const l = limits();
    for (let i = 0; i < 50; i++)
      l.loginResultAt("10.0.0.7", "p1", "device", { ok: false, reason: "auth-busy" });
    expect(l.login.admitConnection("10.0.0.7")).toBe("ok");
    expect(l.loginBannedAt("10.0.0.7", "p1", "device")).toBeNull();
  });

  it("wrong passwords are failed logins, counted in the account's scope", () => {
    const l = limits();
    for (let i = 0; i < 10; i++)
      l.loginResultAt("10.0.0.8", "p1", "device", { ok: false, reason: "bad-password" });
    expect(l.loginBannedAt("10.0.0.8", "p2", "device")?.kind).toBe("address");
    expect(l.loginBannedAt("10.0.0.8", "duty", "operator")).toBeNull();
  });
});

describe("SocketLimits on a stepped wall clock", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const banMs = DEFAULT_CONNECTION_LIMITS.login.banDuration;
  const DAY = 86_400_000;

  function bannedLimits() {
    const l = new SocketLimits(DEFAULT_CONNECTION_LIMITS, new Counters(), createLogger({ level: "silent" }));
    for (let i = 0; i < 10; i++)
      l.loginResultAt("10.0.0.9", "duty", "operator", { ok: false, reason: "bad-password" });
    expect(l.loginBannedAt("10.0.0.9", "duty", "operator")?.ms).toBe(banMs);
    return l;
  }

  it("a step forward of the wall clock does not end a login ban", () => {
    const c = mockedClocks();
    const l = bannedLimits();
    c.wall += DAY;
    c.mono += 1000;
    expect(l.loginBannedAt("10.0.0.9", "duty", "operator")).toMatchObject({
      kind: "address",
      ms: banMs - 1000,
    });
  });

  it("a step back of the wall clock does not make a login ban last a day longer", () => {
    const c = mockedClocks();
    const l = bannedLimits();
    c.wall -= DAY;
    c.mono += banMs;
    expect(l.loginBannedAt("10.0.0.9", "duty", "operator")).toBeNull();
  });

  it("a failure window is elapsed time too: failures a window apart do not add up after a step back", () => {
    const c = mockedClocks();
    const l = new SocketLimits(DEFAULT_CONNECTION_LIMITS, new Counters(), createLogger({ level: "silent" }));
    const max = DEFAULT_CONNECTION_LIMITS.login.maxFailures;
    for (let i = 0; i < max - 1; i++)
      l.loginResultAt("10.0.0.10", "duty", "operator", { ok: false, reason: "bad-password" });
    c.wall -= DAY;
    c.mono += DEFAULT_CONNECTION_LIMITS.login.failureWindow + 1;
    l.loginResultAt("10.0.0.10", "duty", "operator", { ok: false, reason: "bad-password" });
    expect(l.loginBannedAt("10.0.0.10", "duty", "operator")).toBeNull();
  });
});
