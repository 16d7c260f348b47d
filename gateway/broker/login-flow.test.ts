import { describe, expect, it } from "vitest";
import { validateConfig } from "../config/load.js";
import { createLogger, RateLimitedLog } from "../log.js";
import { Registry } from "../registry.js";
import { Counters } from "../stats.js";
import { AccessPolicy } from "./access.js";
import { DEFAULT_CONNECTION_LIMITS, SocketLimits } from "./connection-limits.js";
import { decideLogin, type LoginRequest } from "./login-flow.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [{ name: "ops", password: "secret" }],
  devices: [{ id: "p1", model: "ec200", password: "pw1" }],
});

function deps() {
  const log = createLogger({ level: "silent" });
  const counters = new Counters();
  const lines: { key: string; reason: string; obj: Record<string, unknown>; msg: string }[] = [];
  const rateLog = new RateLimitedLog(log);
  rateLog.warn = (key, reason, obj, msg) => {
    lines.push({ key, reason, obj: obj as Record<string, unknown>, msg });
    return true;
  };
  return {
    counters,
    lines,
    deps: {
      limits: new SocketLimits(DEFAULT_CONNECTION_LIMITS, counters, log),
      policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
      counters,
      rateLog,
    },
  };
}

const request = (o: Partial<LoginRequest>): LoginRequest => ({
  address: "10.0.0.9",
  username: "p1",
  password: Buffer.from("pw1"),
  certNames: [],
  clientId: "ec200-p1",
  gone: () => false,
  logFields: { transport: "tcp" },
  ...o,
});

describe("decideLogin", () => {
  it("accepts a device with its own client id", async () => {
    const { deps: d } = deps();
    expect(await decideLogin(d, request({}))).toMatchObject({ ok: true, identity: { kind: "device" } });
  });

  it("refuses, counts and logs a wrong password, a client id not owned and the wrong kind", async () => {
    const { deps: d, counters, lines } = deps();
    expect(await decideLogin(d, request({ password: Buffer.from("x") }))).toMatchObject({
      ok: false,
      reason: "bad-password",
      returnCode: 4,
    });
    expect(await decideLogin(d, request({ clientId: "ops-1" }))).toMatchObject({
      ok: false,
      reason: "client-id-not-owned",
      returnCode: 2,
    });
    const operatorsOnly = {
      kind: "operator" as const,
      reason: "console-operators-only",
      recordSuccess: false,
    };
    expect(await decideLogin(d, request({ clientId: null, only: operatorsOnly }))).toMatchObject({
      ok: false,
      reason: "console-operators-only",
      returnCode: 5,
    });
    expect(counters.snapshot().rejections).toEqual({
      auth: { "bad-password": 1 },
      ec200: { "client-id-not-owned": 1, "console-operators-only": 1 },
    });
    expect(lines.map((l) => [l.key, l.reason, l.obj.address, l.obj.transport])).toEqual([
      ["p1", "bad-password", "10.0.0.9", "tcp"],
      ["p1", "client-id-not-owned", "10.0.0.9", "tcp"],
      ["p1", "console-operators-only", "10.0.0.9", "tcp"],
    ]);
  });

  it("a banned address is refused before its password is looked at, with the ban's end", async () => {
    const { deps: d, counters } = deps();
    for (let i = 0; i < 10; i++) await decideLogin(d, request({ password: Buffer.from(`x${i}`) }));
    const refused = await decideLogin(d, request({}));
    expect(refused).toMatchObject({ ok: false, reason: "address-banned", returnCode: 4 });
    expect(refused.ok === false && refused.bannedForMs).toBeGreaterThan(0);
    expect(counters.snapshot().rejections.auth?.["address-banned"]).toBe(1);
  });

  it("a connection gone during the check is neither answered nor counted", async () => {
    const { deps: d, counters, lines } = deps();
    let gone = false;
    const decided = decideLogin(d, request({ password: Buffer.from("x"), gone: () => gone }));
    gone = true;
    expect(await decided).toMatchObject({ ok: false, reason: "gone" });
    expect(counters.snapshot().rejections).toEqual({});
    expect(lines).toEqual([]);
  });
});
