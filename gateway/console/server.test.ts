import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../log.js";
import { type ConsoleLogin, ConsoleServer } from "./server.js";

describe("console /api/site answers", () => {
  let server: ConsoleServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  const answering = async (login: ConsoleLogin) => {
    server = await ConsoleServer.start({
      host: "127.0.0.1",
      port: 0,
      authenticateOperator: async () => login,
      siteInfo: () => ({
        site: { id: "s", name: null, locale: "zh-CN", timezone: "UTC" },
        households: [],
        devices: [],
        codeNames: {},
        shelveMaxMs: 8 * 3_600_000,
      }),
      attachMqtt: () => {},
      log: createLogger({ level: "silent" }),
    });
    return fetch(`${server.url}api/site`, { headers: { authorization: `Basic ${btoa("duty:x")}` } });
  };

  it("429 with Retry-After in whole seconds while a login ban lasts", async () => {
    const res = await answering({ ok: false, bannedForMs: 90_500 });
    expect(res.status).toBe(429);
    const seconds = Number(res.headers.get("retry-after"));
    expect(Number.isInteger(seconds)).toBe(true);
    expect(seconds).toBeGreaterThan(80);
    expect(seconds).toBeLessThanOrEqual(91);
    expect(await res.text()).toMatch(/^too many failed logins from this address; try again in 2 minutes/);
  });

  it("Retry-After is what is left of the ban, whatever the wall clock reads (a step of it)", async () => {
    const wall = Date.now() + 86_400_000;
    vi.spyOn(Date, "now").mockImplementation(() => wall);
    try {
      const res = await answering({ ok: false, bannedForMs: 90_500 });
      expect(res.headers.get("retry-after")).toBe("91");
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("401 for a wrong password, 503 when the password could not be checked", async () => {
    expect((await answering({ ok: false, bannedForMs: null })).status).toBe(401);
    await server?.close();
    expect((await answering({ ok: false, bannedForMs: null, busy: true })).status).toBe(503);
  });
});
