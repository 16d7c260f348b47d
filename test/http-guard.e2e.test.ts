/**
 * The console's and the metrics port's HTTP servers bound what a LAN host may hold of the
 * gateway's file descriptors (gateway/http-guard.ts, docs/security.md "Limits"): a socket that
 * sends nothing, and one that sends its headers a line a second, are closed within 6 s (Node alone
 * kept both 30 s), and sockets beyond an address's share or the server's total are closed at
 * accept, counted.
 */
import { request } from "node:http";
import { type Socket, connect as tcpConnect } from "node:net";
import { Writable } from "node:stream";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CONSOLE_MAX_CONNECTIONS, CONSOLE_MAX_PER_ADDRESS } from "../gateway/console/server.js";
import type { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { METRICS_MAX_CONNECTIONS, METRICS_MAX_PER_ADDRESS } from "../gateway/metrics/server.js";
import { metricsGet, OPS, startGateway, testConfig } from "./support/harness.js";

interface Held {
  socket: Socket;
  closedAt: number | null;
}

function open(port: number, localAddress = "127.0.0.1"): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port, localAddress });
    const held: Held = { socket, closedAt: null };
    socket.on("error", () => {});
    socket.resume(); // read what the server says, so that its close is seen
    socket.on("close", () => (held.closedAt = Date.now()));
    socket.once("connect", () => resolve(held));
    socket.once("error", reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until `ok` or until `deadline` (epoch ms); the assertions after it say what did not happen.
 * Instead of a fixed sleep: the server runs in this process, and on a loaded machine a turn of the
 * event loop that ran long lets a sleep's timer fire before the sockets waiting to be accepted (or
 * their closes) are read: a 200 ms sleep after a flood had seen 46 of its 60 evictions.
 */
async function until(ok: () => boolean, deadline: number): Promise<void> {
  while (!ok() && Date.now() < deadline) await sleep(10);
}

describe("HTTP servers under a socket flood", () => {
  let gw: Gateway | null = null;
  const held: Held[] = [];

  afterEach(async () => {
    for (const h of held.splice(0)) h.socket.destroy();
    await gw?.stop();
    gw = null;
  });

  const start = async () => {
    gw = await startGateway({
      config: testConfig({
        console: { enabled: true, host: "127.0.0.1", port: 0 },
        metrics: { host: "127.0.0.1", port: 0 },
      }),
    });
    const consolePort = Number(new URL(gw.consoleUrl as string).port);
    return { gw, consolePort, metricsPort: gw.metricsAddress?.port as number };
  };

  it("closes silent sockets and slow headers within seconds, on both servers", async () => {
    const { consolePort, metricsPort } = await start();
    const t0 = Date.now();
    const silent = [await open(consolePort), await open(metricsPort)];
    const slow = [await open(consolePort), await open(metricsPort)];
    held.push(...silent, ...slow);
    const drips = slow.map((h) => {
      h.socket.write("GET / HTTP/1.1\r\nHost: x\r\n");
      return setInterval(() => h.socket.writable && h.socket.write("X-Drip: 1\r\n"), 1_000);
    });
    try {
      const deadline = t0 + 9_000;
      while ([...silent, ...slow].some((h) => h.closedAt === null) && Date.now() < deadline) await sleep(200);
    } finally {
      for (const d of drips) clearInterval(d);
    }
    // headersTimeout (5 s), checked every second; the sockets were opened within a few ms of t0.
    for (const h of [...silent, ...slow])
      expect(h.closedAt === null ? Infinity : h.closedAt - t0).toBeLessThan(8_000);
  }, 20_000);

  it("an MQTT-over-WebSocket listener closes a socket that sends no upgrade within 6 s", async () => {
    gw = await startGateway({
      config: testConfig({
        mqtt: {
          listeners: [
            { host: "127.0.0.1", port: 0 },
            { host: "127.0.0.1", port: 0, transport: "websocket" },
          ],
        },
      }),
    });
    const wsPort = (gw.broker.addresses()[1] as { port: number }).port;
    const t0 = Date.now();
    const silent = await open(wsPort);
    const slow = await open(wsPort);
    held.push(silent, slow);
    slow.socket.write("GET /mqtt HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => slow.socket.writable && slow.socket.write("X-Drip: 1\r\n"), 1_000);
    try {
      while ((silent.closedAt === null || slow.closedAt === null) && Date.now() < t0 + 9_000)
        await sleep(200);
    } finally {
      clearInterval(drip);
    }
    for (const h of [silent, slow])
      expect(h.closedAt === null ? Infinity : h.closedAt - t0).toBeLessThan(8_000);
  }, 20_000);

  it("closes sockets beyond an address's share and the server's total at accept, and counts them", async () => {
    const { consolePort, metricsPort } = await start();
    // One address: its share, then one more.
    for (let i = 0; i < METRICS_MAX_PER_ADDRESS; i++) held.push(await open(metricsPort));
    const over = await open(metricsPort);
    held.push(over);
    await until(() => over.closedAt !== null, Date.now() + 5_000);
    expect(over.closedAt).not.toBeNull();
    expect(held.slice(0, METRICS_MAX_PER_ADDRESS).every((h) => h.closedAt === null)).toBe(true);
    // Other addresses of the loopback network up to the server's total, then one more.
    let address = 2;
    while (held.filter((h) => h.closedAt === null).length < METRICS_MAX_CONNECTIONS) {
      const from = `127.0.0.${address}`;
      for (
        let i = 0;
        i < METRICS_MAX_PER_ADDRESS &&
        held.filter((h) => h.closedAt === null).length < METRICS_MAX_CONNECTIONS;
        i++
      )
        held.push(await open(metricsPort, from));
      address++;
    }
    // The server full: a new socket takes the place of the oldest of the address holding the most
    // (every address holds 16: the first, 127.0.0.1).
    const beyond = await open(metricsPort, `127.0.0.${address}`);
    held.push(beyond);
    await until(() => held[0]?.closedAt !== null, Date.now() + 5_000);
    expect(beyond.closedAt).toBeNull();
    expect(held[0]?.closedAt).not.toBeNull();
    expect(held.filter((h) => h.closedAt === null).length).toBe(METRICS_MAX_CONNECTIONS);

    // The console counts its own: one address's share.
    const consoleHeld: Held[] = [];
    for (let i = 0; i < CONSOLE_MAX_PER_ADDRESS; i++) consoleHeld.push(await open(consolePort, "127.0.0.9"));
    const consoleOver = await open(consolePort, "127.0.0.9");
    held.push(...consoleHeld, consoleOver);
    await until(() => consoleOver.closedAt !== null, Date.now() + 5_000);
    expect(consoleOver.closedAt).not.toBeNull();
    expect(consoleHeld.every((h) => h.closedAt === null)).toBe(true);

    // The flood's sockets gone, the metrics port serves again, and said what it refused.
    for (const h of held) h.socket.destroy();
    await sleep(300);
    const m = await metricsGet(gw as Gateway, "/metrics");
    expect(m.status).toBe(200);
    expect(m.body).toMatch(
      /^linli_rejections_total\{model="connection",reason="http-connection-limit"\} 3$/m,
    );
  });
});

/** A GET to the console from 127.0.0.1 on a connection of its own: the status, or the error's code. */
function consoleGet(gw: Gateway, path: string, auth?: string): Promise<number | string> {
  const headers: Record<string, string> = auth
    ? { authorization: `Basic ${Buffer.from(auth).toString("base64")}` }
    : {};
  return new Promise((resolve) => {
    const req = request(new URL(path, gw.consoleUrl as string), { headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", (err: Error & { code?: string }) => resolve(err.code ?? err.message));
    req.setTimeout(5_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

describe("the console flooded by a few hosts", () => {
  let gw: Gateway | null = null;
  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });

  it("eight hosts at their share evict their own sockets: a logged-in operator's console still loads and logs in", async () => {
    const logged: Record<string, unknown>[] = [];
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
    const g = gw;
    const wsUrl = `ws://127.0.0.1:${new URL(g.consoleUrl as string).port}/mqtt`;
    const login = (clientId: string) =>
      mqtt.connectAsync(wsUrl, {
        username: OPS.name,
        password: OPS.password,
        clientId,
        reconnectPeriod: 0,
        connectTimeout: 5_000,
      });
    // An operator's console, logged in before the flood.
    const desk = await login(`${OPS.name}-desk`);
    let deskClosed = false;
    desk.on("close", () => {
      deskClosed = true;
    });

    // Eight hosts (127.0.0.2-9) hold their share each, 512 sockets, the console's total, and open
    // a new one whenever one of theirs is closed (bounded: 4,000 reopens, stopped at the end).
    const hosts = 8;
    expect(hosts * CONSOLE_MAX_PER_ADDRESS).toBe(CONSOLE_MAX_CONNECTIONS);
    const flood: Held[] = [];
    let stopped = false;
    let reopens = 0;
    const openFrom = (from: string): Promise<void> =>
      open(consolePort(g), from).then(
        (h) => {
          flood.push(h);
          h.socket.once("close", () => {
            if (stopped || reopens >= 4_000) return;
            reopens++;
            setTimeout(() => stopped || void openFrom(from), 10);
          });
        },
        () => undefined,
      );
    try {
      await Promise.all(
        Array.from({ length: hosts }, (_, h) =>
          Promise.all(Array.from({ length: CONSOLE_MAX_PER_ADDRESS }, () => openFrom(`127.0.0.${h + 2}`))),
        ),
      );
      await sleep(200);
      // Full (the desk's WebSocket is one; one or two of the flood's are being reopened).
      expect(flood.filter((h) => h.closedAt === null).length).toBeGreaterThanOrEqual(
        CONSOLE_MAX_CONNECTIONS - 8,
      );

      // The desk reloads its page, logs in again (HTTP and a new WebSocket) while the flood goes on.
      expect(await consoleGet(g, "/")).toBe(200);
      expect(await consoleGet(g, "/app.js")).toBe(200);
      expect(await consoleGet(g, "/api/site", `${OPS.name}:${OPS.password}`)).toBe(200);
      const again = await login(`${OPS.name}-reload`);
      expect(again.connected).toBe(true);
      again.end(true);
      // The console logged in before the flood was never touched.
      expect(deskClosed).toBe(false);
      expect(desk.connected).toBe(true);
    } finally {
      stopped = true;
      for (const h of flood) h.socket.destroy();
      desk.end(true);
    }
    // Each socket evicted for the desk's was counted, and logged once a minute per address.
    expect(g.counters.rejected("connection", "http-connection-limit")).toBeGreaterThanOrEqual(4);
    const evictions = logged.filter((l) => l.server === "console" && l.limit === "evicted");
    expect(evictions.length).toBeGreaterThanOrEqual(1);
    expect(evictions.length).toBeLessThanOrEqual(hosts);
  }, 30_000);
});

function consolePort(gw: Gateway): number {
  return Number(new URL(gw.consoleUrl as string).port);
}

/** An MQTT 3.1.1 CONNECT (clean session, username and password). */
function connectPacket(clientId: string, username: string, password: string): Buffer {
  const field = (s: string) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  };
  const body = Buffer.concat([
    Buffer.from([0, 4]),
    Buffer.from("MQTT"),
    Buffer.from([4, 0xc2, 0, 30]),
    field(clientId),
    field(username),
    field(password),
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

describe("an operator behind the same NAT as a flood", () => {
  let gw: Gateway | null = null;
  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });

  it("keeps the socket its login is on: the flood's half-sent sockets, the NAT's too, are evicted first", async () => {
    // A console of 64 sockets, 16 per address (512 and 64 in production): the flood that fills it
    // is opened in well under the 5 s headers timeout that would close its first sockets, even on
    // a machine many times slower than this one. The eviction order does not depend on the size.
    const max = 64;
    const perAddress = 16;
    gw = await startGateway({
      // Room for the flood to be opened on a loaded machine before the desk's login must be done.
      config: testConfig({
        console: { enabled: true, host: "127.0.0.1", port: 0 },
        limits: { connectTimeout: "30s" },
      }),
      consoleConnections: { max, perAddress },
    });
    const g = gw;
    const port = consolePort(g);
    const nat = "127.0.0.2";
    // The desk behind the NAT opens the console's WebSocket; its CONNECT (the login) comes later.
    const desk = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, "mqtt", { localAddress: nat });
    let deskClosed = false;
    desk.on("close", () => {
      deskClosed = true;
    });
    desk.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      desk.once("open", () => resolve());
      desk.once("error", reject);
    });

    // Slowloris sockets: headers begun, never finished. 15 more behind the NAT (its share is 16),
    // 15 from each of three other hosts, three from a fourth: the console's 64.
    const flood: Held[] = [];
    const slow = async (from: string, n: number) => {
      const opened = await Promise.all(Array.from({ length: n }, () => open(port, from)));
      for (const h of opened) h.socket.write("GET / HTTP/1.1\r\nHost: linli\r\n");
      flood.push(...opened);
    };
    try {
      const t0 = Date.now();
      await slow(nat, perAddress - 1);
      for (let h = 3; h <= 5; h++) await slow(`127.0.0.${h}`, perAddress - 1);
      await slow("127.0.0.6", max - 1 - (perAddress - 1) - 3 * (perAddress - 1));
      await sleep(100);
      expect(flood.filter((h) => h.closedAt === null).length).toBe(max - 1);
      const evictedBefore = g.counters.rejected("connection", "http-connection-limit");
      // The flood goes on from new hosts: every new socket evicts one, 60 in all (nearly the
      // whole flood turned over). Waited for until the server has taken every new socket and
      // the evicted ones are seen closed (or the time the headers timeout leaves is up).
      for (let h = 7; h <= 10; h++) await slow(`127.0.0.${h}`, perAddress - 1);
      await until(
        () =>
          g.counters.rejected("connection", "http-connection-limit") - evictedBefore >= 60 &&
          flood.filter((h) => h.closedAt === null).length <= max - 1,
        t0 + 4_000,
      );
      // All of it within the headers timeout (5 s, checked every second): no socket was closed for
      // it, so every one the counter saw closed was evicted.
      expect(Date.now() - t0, "the flood took longer than the headers timeout allows").toBeLessThan(4_000);
      expect(g.counters.rejected("connection", "http-connection-limit") - evictedBefore).toBe(60);
      // The NAT's address held the most sockets not logged in (the desk's and 15), yet the desk's,
      // mid-login, is still there (the 60 evicted were the flood's); its CONNECT logs in.
      expect(deskClosed).toBe(false);
      expect(flood.filter((h) => h.closedAt === null).length).toBe(max - 1);
      // The CONNACK's bytes may come in more than one WebSocket message.
      const connack = new Promise<Buffer>((resolve) => {
        let got = Buffer.alloc(0);
        desk.on("message", (m: Buffer) => {
          got = Buffer.concat([got, m]);
          if (got.length >= 4) resolve(got);
        });
      });
      desk.send(connectPacket(`${OPS.name}-nat`, OPS.name, OPS.password));
      expect([...(await connack)]).toEqual([0x20, 2, 0, 0]);
    } finally {
      for (const h of flood) h.socket.destroy();
      desk.terminate();
    }
  }, 30_000);
});
