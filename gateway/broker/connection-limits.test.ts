import { describe, expect, it } from "vitest";
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
