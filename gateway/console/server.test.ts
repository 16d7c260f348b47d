import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { createLogger } from "../log.js";
import { type ConsoleLogin, ConsoleServer, pausedUntil } from "./server.js";

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
    const until = res.headers.get("linli-logins-paused-until") as string;
    expect(until).toMatch(/^\d\d:\d\d$/);
    const [zh, en] = (await res.text()).split("\n");
    expect(zh).toBe(`此地址的登录已暂停至 ${until}（约 2 分钟后恢复）：登录失败次数过多。`);
    expect(en).toMatch(
      new RegExp(
        `^Logins from this address are paused until ${until} \\(too many failed logins from this address\\); try again in 2 minutes`,
      ),
    );
  });

  it("says a ban's end as HH:MM in the site's time zone, rounded up to the minute", () => {
    const now = Date.UTC(2026, 11, 6, 14, 30, 10);
    expect(pausedUntil(300_000, { timeZone: () => "Asia/Shanghai" }, now)).toBe("22:36");
    expect(pausedUntil(289_000, { timeZone: () => "Asia/Shanghai" }, now)).toBe("22:35");
    expect(pausedUntil(60_000, { timeZone: () => "UTC" }, Date.UTC(2026, 11, 6, 23, 59, 30))).toBe("00:01");
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

describe("console WebSocket slots against unauthenticated floods", () => {
  let server: ConsoleServer | null = null;
  const sockets: WebSocket[] = [];
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    await server?.close();
    server = null;
  });

  /** Resolves with the socket once open, or null when the upgrade was refused or the socket closed first. */
  const open = (url: string, localAddress: string): Promise<WebSocket | null> =>
    new Promise((resolve) => {
      const ws = new WebSocket(url, "mqtt", { localAddress });
      sockets.push(ws);
      ws.once("open", () => resolve(ws));
      ws.once("unexpected-response", (_req, res) => {
        res.resume();
        resolve(null);
      });
      ws.once("error", () => resolve(null));
      ws.once("close", () => resolve(null));
    });

  it("a few LAN hosts holding sockets that never log in cannot lock an operator out", async () => {
    const OPERATOR = "127.0.0.20";
    const refused: string[] = [];
    server = await ConsoleServer.start({
      host: "0.0.0.0",
      port: 0,
      authenticateOperator: async () => ({ ok: true }),
      siteInfo: () => {
        throw new Error("not asked");
      },
      // The operator's address logs in at once; the others never send a CONNECT (alive up to connectTimeout).
      attachMqtt: (_stream, socket, operatorLoggedIn) => {
        if (socket.remoteAddress === OPERATOR) operatorLoggedIn();
      },
      log: createLogger({ level: "silent" }),
      onWebSocketRefused: (_address, why) => refused.push(why),
    });
    const url = `ws://127.0.0.1:${server.address.port}/mqtt`;
    // Five hosts, 64 sockets each (the console's per-address share of TCP sockets): 320 before the
    // fix held every one of the 256 WebSocket slots.
    const flood = async (hosts: string[]) =>
      (await Promise.all(hosts.flatMap((h) => Array.from({ length: 64 }, () => open(url, h))))).filter(
        (ws) => ws !== null,
      ).length;
    await flood(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]);
    const operator = await open(url, OPERATOR);
    expect(operator).not.toBeNull();
    // At most 16 per address at once (an eviction frees its address room, so the count varies).
    expect(refused.filter((w) => w === "per-address").length).toBeGreaterThan(0);
    // Logged in: a further flood from new hosts evicts their own kind, never the operator.
    await flood(["127.0.0.7", "127.0.0.8"]);
    await new Promise((r) => setTimeout(r, 50));
    expect(operator?.readyState).toBe(WebSocket.OPEN);
    expect(refused).toContain("evicted");
  });
});
