/**
 * The console's and the metrics port's HTTP servers bound what a LAN host may hold of the
 * gateway's file descriptors (gateway/http-guard.ts, docs/security.md "Limits"): a socket that
 * sends nothing, and one that sends its headers a line a second, are closed within 6 s (Node alone
 * kept both 30 s), and sockets beyond an address's share or the server's total are closed at
 * accept, counted.
 */
import { type Socket, connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CONSOLE_MAX_PER_ADDRESS } from "../gateway/console/server.js";
import type { Gateway } from "../gateway/gateway.js";
import { METRICS_MAX_CONNECTIONS, METRICS_MAX_PER_ADDRESS } from "../gateway/metrics/server.js";
import { metricsGet, startGateway, testConfig } from "./support/harness.js";

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
    await sleep(300);
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
    const beyond = await open(metricsPort, `127.0.0.${address}`);
    held.push(beyond);
    await sleep(300);
    expect(beyond.closedAt).not.toBeNull();

    // The console counts its own: one address's share.
    const consoleHeld: Held[] = [];
    for (let i = 0; i < CONSOLE_MAX_PER_ADDRESS; i++) consoleHeld.push(await open(consolePort, "127.0.0.9"));
    const consoleOver = await open(consolePort, "127.0.0.9");
    held.push(...consoleHeld, consoleOver);
    await sleep(300);
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
