import type { Socket } from "node:net";
import { PassThrough } from "node:stream";
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

describe("SocketLimits login deadlines under a flood of connections closed at once", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A socket as accept() sees it: a stream with an address. */
  const fakeSocket = (i: number) =>
    Object.assign(new PassThrough(), { remoteAddress: `10.1.${i >> 8}.${i & 0xff}` }) as unknown as Socket;

  it("holds the sockets waiting for their login, not every one accepted within connectTimeout; those still close at their deadline", () => {
    vi.useFakeTimers();
    const counters = new Counters();
    const l = new SocketLimits(
      DEFAULT_CONNECTION_LIMITS,
      counters,
      createLogger({ level: "silent" }),
      null,
      () => Date.now(),
    );
    const waiting: Socket[] = [];
    // 20,000 connections from 20,000 addresses, each closed at once (a connect-and-reset flood),
    // and one in 100 left open, waiting for its login.
    for (let i = 0; i < 20_000; i++) {
      const s = fakeSocket(i);
      l.accept(s, () => {});
      if (i % 100 === 0) waiting.push(s);
      else s.destroy();
    }
    // 200 waiting: the queue stays within twice that or its floor, where it held all 20,000.
    expect(l.awaitingLogin).toBeLessThanOrEqual(1024 + 1);
    expect(l.awaitingLogin).toBeGreaterThanOrEqual(waiting.length);
    vi.advanceTimersByTime(DEFAULT_CONNECTION_LIMITS.connectTimeout + 10);
    vi.runAllTimers();
    expect(waiting.every((s) => s.destroyed)).toBe(true);
    expect(counters.rejected("connection", "login-timeout")).toBe(waiting.length);
    l.close();
  });
});
