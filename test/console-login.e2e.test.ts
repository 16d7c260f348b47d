/**
 * Console logins against a real gateway on 127.0.0.1 (console and MQTT on ephemeral ports):
 * failures are counted like MQTT ones, a login ban answers 429 with Retry-After, and guessing an
 * operator's password never keeps a device from the same address out (docs/security.md "Login
 * bans") nor the operator out from another address. Also the page's anti-framing headers.
 */
import { request } from "node:http";
import { createConnection } from "node:net";
import { Writable } from "node:stream";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { connect, OPS, pendantMsg, SITE, startGateway, TestClient, testConfig } from "./support/harness.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET to the console, from `localAddress` (another loopback address is another client). */
function get(
  gw: Gateway,
  path: string,
  auth?: [string, string],
  localAddress = "127.0.0.1",
): Promise<Answer> {
  const url = new URL(path, gw.consoleUrl as string);
  const headers: Record<string, string> = {};
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`).toString("base64")}`;
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe("console logins", () => {
  let gw: Gateway | null = null;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => undefined);
    await gw?.stop();
    gw = null;
  });

  /** The gateway's log lines, as JSON objects. */
  let logged: Record<string, unknown>[] = [];

  const start = async () => {
    logged = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split("\n")) if (line) logged.push(JSON.parse(line));
        done();
      },
    });
    gw = await startGateway({
      config: testConfig({ console: { enabled: true, host: "127.0.0.1", port: 0 } }),
      logger: createLogger({ level: "warn", format: "json", destination }),
    });
    return gw;
  };

  it("counts and refuses console failures like MQTT ones", async () => {
    const g = await start();
    expect((await get(g, "/api/site", [OPS.name, "wrong"])).status).toBe(401);
    expect(g.counters.rejected("auth", "bad-password")).toBe(1);
    expect((await get(g, "/api/site", ["night", "bad"])).status).toBe(401);
    expect(g.counters.rejected("unknown", "unknown-device")).toBe(1);
    // A device's own credentials are not an operator's.
    expect((await get(g, "/api/site", ["p-1", "pw-p1"])).status).toBe(401);
    expect(g.counters.rejected("ec200", "console-operators-only")).toBe(1);
    expect((await get(g, "/api/site", [OPS.name, OPS.password])).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${g.metricsAddress?.port}/metrics`)).text();
    expect(metrics).toMatch(/linli_rejections_total\{model="auth",reason="bad-password"\} 1\b/);
    // Logged with the address, never the password.
    const refused = logged.filter((l) => l.msg === "console login refused");
    expect(refused.map((l) => [l.username, l.reason, l.address])).toEqual([
      [OPS.name, "bad-password", "127.0.0.1"],
      ["night", "unknown-device", "127.0.0.1"],
      ["p-1", "console-operators-only", "127.0.0.1"],
    ]);
    expect(JSON.stringify(logged)).not.toMatch(/wrong|"bad"|pw-p1/);
  });

  it("after 10 wrong console passwords: 429 with Retry-After, devices still in, the operator in from elsewhere", async () => {
    const g = await start();
    for (let i = 0; i < 10; i++) expect((await get(g, "/api/site", [OPS.name, `x${i}`])).status).toBe(401);

    const banned = await get(g, "/api/site", [OPS.name, OPS.password]);
    expect(banned.status).toBe(429);
    const retryAfter = Number(banned.headers["retry-after"]);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(300);
    expect(banned.body).toMatch(/too many failed logins.*try again in 5 minutes/);
    expect(g.counters.rejected("auth", "address-banned")).toBe(1);

    // A pendant from the same address connects and its press is taken in.
    const pendant = await connect(g, "p-1", "pw-p1");
    clients.push(pendant);
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const deadline = Date.now() + 3000;
    while (!g.engine.find("p-1", "EMERGENCY_CALL") && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(g.engine.find("p-1", "EMERGENCY_CALL")).toBeDefined();

    // The operator's MQTT login from the banned address is refused too (one operator scope) ...
    await expect(
      mqtt.connectAsync(`mqtt://127.0.0.1:${g.mqttPort}`, {
        username: OPS.name,
        password: OPS.password,
        clientId: `${OPS.name}-banned`,
        reconnectPeriod: 0,
        connectTimeout: 2000,
      }),
    ).rejects.toThrow(/Bad username or password/i);

    // ... but not from another address: the username itself is not banned.
    expect((await get(g, "/api/site", [OPS.name, OPS.password], "127.0.0.2")).status).toBe(200);
    const ops = new TestClient(
      new mqtt.MqttClient(
        () => createConnection({ host: "127.0.0.1", port: g.mqttPort, localAddress: "127.0.0.2" }),
        {
          username: OPS.name,
          password: OPS.password,
          clientId: `${OPS.name}-elsewhere`,
          reconnectPeriod: 0,
          connectTimeout: 2000,
        },
      ),
    );
    clients.push(ops);
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
  });

  it("forbids framing the page", async () => {
    const g = await start();
    const page = await get(g, "/");
    expect(page.status).toBe(200);
    expect(page.headers["x-frame-options"]).toBe("DENY");
    expect(page.headers["content-security-policy"]).toMatch(/(^|;\s*)frame-ancestors 'none'(;|$)/);
  });
});

describe("console WebSocket from another site's page", () => {
  let gw: Gateway | null = null;
  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });

  /** The HTTP status of a WebSocket upgrade of /mqtt with this Origin (101: upgraded). */
  const upgrade = (g: Gateway, origin?: string, extra: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      const url = new URL("/mqtt", g.consoleUrl as string);
      const headers: Record<string, string> = {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": Buffer.from("0123456789abcdef").toString("base64"),
        "sec-websocket-protocol": "mqtt",
        ...extra,
      };
      if (origin !== undefined) headers.origin = origin;
      const req = request(url, { headers, agent: false });
      req.on("upgrade", (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });

  it("is refused (403); the console's own page and tools without an Origin are served", async () => {
    gw = await startGateway({
      config: testConfig({ console: { enabled: true, host: "127.0.0.1", port: 0 } }),
    });
    const own = new URL(gw.consoleUrl as string).origin;
    expect(await upgrade(gw)).toBe(101);
    expect(await upgrade(gw, own)).toBe(101);
    // A page elsewhere (on the Internet, opened at a desk) would use the desk's browser to try
    // operators' passwords from the desk's address, and to get that address banned.
    expect(await upgrade(gw, "https://evil.example")).toBe(403);
    expect(await upgrade(gw, "null")).toBe(403);
    // Behind a reverse proxy that rewrites Host, the host the browser asked for.
    expect(await upgrade(gw, "https://linli.local", { "x-forwarded-host": "linli.local" })).toBe(101);
  });
});

describe("console WebSocket slots", () => {
  let gw: Gateway | null = null;
  const sockets: WebSocket[] = [];
  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    await gw?.stop();
    gw = null;
  });

  it("an operator logged in over /mqtt holds the reserve: sockets that never log in cannot evict it", async () => {
    gw = await startGateway({
      config: testConfig({ console: { enabled: true, host: "0.0.0.0", port: 0 } }),
      logger: createLogger({ level: "silent" }),
    });
    const url = `ws://127.0.0.1:${new URL(gw.consoleUrl as string).port}/mqtt`;
    const op = mqtt.connect(url, {
      username: OPS.name,
      password: OPS.password,
      clientId: `${OPS.name}-console-slots`,
      reconnectPeriod: 0,
      localAddress: "127.0.0.1",
    } as mqtt.IClientOptions);
    let closed = false;
    await new Promise<void>((resolve, reject) => {
      op.once("connect", () => resolve());
      op.once("error", reject);
    });
    op.on("close", () => {
      closed = true;
    });
    try {
      // One socket each from 80 addresses, never logging in: the share not logged in (64) overflows
      // and, every address holding one, the oldest goes first. Only a logged-in operator is exempt.
      const opened = await Promise.all(
        Array.from(
          { length: 80 },
          (_, i) =>
            new Promise<boolean>((resolve) => {
              const ws = new WebSocket(url, "mqtt", { localAddress: `127.0.1.${i + 1}` });
              sockets.push(ws);
              ws.once("open", () => resolve(true));
              ws.once("unexpected-response", () => resolve(false));
              ws.once("error", () => resolve(false));
            }),
        ),
      );
      expect(opened.filter(Boolean).length).toBe(80);
      await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(false);
      expect(op.connected).toBe(true);
      expect(gw.counters.rejected("connection", "console-websocket-limit")).toBe(16);
    } finally {
      op.end(true);
    }
  });
});
