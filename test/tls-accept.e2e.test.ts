/**
 * A TLS handshake costs the main thread a key exchange and a signature: the source address's
 * connection rate applies to the TCP socket at accept, before the handshake, on the MQTT TLS and
 * secure WebSocket listeners and on the console's and the metrics port's HTTPS, and so do login
 * bans on the MQTT listeners; the console answers them at login, the metrics port checks no login
 * they guard (docs/security.md "Login bans", test/metrics-auth.e2e.test.ts). Before, each
 * handshake was completed and the socket refused after it. Counted here: the handshakes a looping
 * host gets done.
 */
import { readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { makeTestPki, type TestPki } from "./support/certs.js";
import { startGateway, testConfig } from "./support/harness.js";

let p: TestPki;
beforeAll(() => {
  p = makeTestPki();
});
afterAll(() => p.remove());

/** The burst of connections an address may open at once (a rate of 1 a second after it). */
const BURST = 20;
/** Handshakes a looping host asks for, at once. */
const TRIES = 80;

/** Opens `n` TLS connections at once from `localAddress`; how many completed their handshake. */
async function handshakes(port: number, localAddress: string, n: number, ca: Buffer): Promise<number> {
  const done = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<boolean>((resolve) => {
          let secure = false;
          const tcp = tcpConnect({ host: "127.0.0.1", port, localAddress });
          tcp.on("error", () => {});
          const s = tlsConnect({ socket: tcp, ca, servername: "localhost" }, () => {
            secure = true;
            s.destroy();
          });
          s.on("error", () => {});
          s.on("close", () => resolve(secure));
          s.setTimeout(8_000, () => s.destroy());
        }),
    ),
  );
  return done.filter(Boolean).length;
}

/** An MQTT CONNECT with an unknown username from `localAddress`, on plain TCP: a failed login. */
function unknownLogin(port: number, localAddress: string, i: number): Promise<void> {
  const id = Buffer.from(`scan-${i}`);
  const user = Buffer.from(`nobody-${i}`);
  const pw = Buffer.from("x");
  const field = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  const body = Buffer.concat([
    Buffer.from([0, 4]),
    Buffer.from("MQTT"),
    Buffer.from([4, 0xc2, 0, 30]),
    field(id),
    field(user),
    field(pw),
  ]);
  const packet = Buffer.concat([Buffer.from([0x10, body.length]), body]);
  return new Promise((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port, localAddress }, () => s.write(packet));
    s.on("data", () => s.destroy());
    s.on("error", () => {});
    s.on("close", () => resolve());
  });
}

describe("TLS handshakes under the address's connection rate", () => {
  let gw: Gateway | null = null;
  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });

  it("a host opening handshakes in a loop gets its burst done, the rest refused before a handshake; a banned host none", async () => {
    const tls = { cert: p.serverCert, key: p.serverKey };
    gw = await startGateway({
      config: testConfig({
        mqtt: {
          listeners: [
            { host: "127.0.0.1", port: 0 },
            { host: "127.0.0.1", port: 0, tls },
            { host: "127.0.0.1", port: 0, transport: "websocket", tls },
          ],
        },
        console: { enabled: true, host: "127.0.0.1", port: 0, tls },
        metrics: { host: "127.0.0.1", port: 0, tls },
        limits: { login: { attemptsPerSecond: 1, attemptBurst: BURST } },
      }),
    });
    const g = gw;
    const ca = readFileSync(p.ca);
    const [plain, mqtts, wss] = g.broker.addresses().map((a) => (a as { port: number }).port);
    const ports = {
      mqtts: mqtts as number,
      wss: wss as number,
      console: Number(new URL(g.consoleUrl as string).port),
      metrics: g.metricsAddress?.port as number,
    };
    // One address per port: the rate is per address, for the whole gateway.
    let host = 21;
    const done: [string, number][] = [];
    for (const [name, port] of Object.entries(ports))
      done.push([name, await handshakes(port, `127.0.0.${host++}`, TRIES, ca)]);
    // The burst, and the token or two the rate adds while they run.
    expect(done.filter(([, n]) => n > BURST + 3 || n < BURST - 1)).toEqual([]);
    const refused = g.counters.rejected("connection", "address-rate-limited");
    expect(refused).toBeGreaterThanOrEqual(4 * (TRIES - BURST - 3));

    // An address banned in both login scopes (ten unknown usernames) gets no handshake on the MQTT
    // listeners. The console answers its ban at login, so that its page can say why and until when
    // (test/console-ban.e2e.test.ts): the rate alone bounds its handshakes there, as any address's.
    for (let i = 0; i < 10; i++) await unknownLogin(plain as number, "127.0.0.30", i);
    expect(await handshakes(ports.mqtts, "127.0.0.30", 3, ca)).toBe(0);
    expect(await handshakes(ports.wss, "127.0.0.30", 3, ca)).toBe(0);
    expect(g.counters.rejected("connection", "address-banned")).toBe(6);
    const rateLimited = g.counters.rejected("connection", "address-rate-limited");
    // Its ten logins took ten of its burst's tokens.
    const consoleDone = await handshakes(ports.console, "127.0.0.30", TRIES, ca);
    expect(consoleDone).toBeGreaterThan(0);
    expect(consoleDone).toBeLessThanOrEqual(BURST - 10 + 3);
    expect(g.counters.rejected("connection", "address-rate-limited") - rateLimited).toBe(TRIES - consoleDone);

    // Another address is served as usual.
    expect(await handshakes(ports.console, "127.0.0.31", 2, ca)).toBe(2);
  }, 60_000);

  it("the device listener's worker closes a banned address before its handshake", async () => {
    const tls = { cert: p.serverCert, key: p.serverKey };
    gw = await startGateway({
      config: testConfig({
        mqtt: {
          listeners: [{ host: "127.0.0.1", port: 0 }],
          deviceListener: { host: "127.0.0.1", port: 0, tls },
        },
      }),
    });
    const g = gw;
    const ca = readFileSync(p.ca);
    const port = g.broker.deviceListenerPort as number;
    expect(await handshakes(port, "127.0.0.33", 2, ca)).toBe(2);
    for (let i = 0; i < 10; i++) await unknownLogin(g.mqttPort, "127.0.0.33", i);
    expect(g.counters.rejected("auth", "ban-started")).toBe(2);
    // The worker is told of the ban by a message.
    await new Promise((r) => setTimeout(r, 200));
    expect(await handshakes(port, "127.0.0.33", 3, ca)).toBe(0);
    const until = Date.now() + 3_000;
    while (g.counters.rejected("connection", "address-banned") < 3 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    expect(g.counters.rejected("connection", "address-banned")).toBe(3);
  }, 30_000);
});
