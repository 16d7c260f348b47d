/**
 * A login ban refuses logins, not the console's page (docs/security.md "Login bans"). An address
 * banned in both login scopes (ten failed logins with unknown usernames: a whole office behind one
 * NAT after one misconfigured client) was closed before the console's TLS handshake: the operators
 * there got a reset connection and no word why. Now the page loads over HTTPS, says in Chinese and
 * English that logins from this address are paused until HH:MM (site time), /api/site answers 429,
 * while the MQTT TLS listener still closes the address before its handshake and the console keeps
 * the per-address connection rate before TLS (test/tls-accept.e2e.test.ts).
 *
 * Real gateways on 127.0.0.1 (127.0.0.x as other hosts), real sockets, test certificates; the page
 * itself in chromium when it is installed.
 */
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pausedUntil } from "../gateway/console/server.js";
import type { Gateway } from "../gateway/gateway.js";
import { makeTestPki, type TestPki } from "./support/certs.js";
import { haveBrowser, launchChromium } from "./support/console-browser.js";
import { OPS, startGateway, testConfig } from "./support/harness.js";

let p: TestPki;
beforeAll(() => {
  p = makeTestPki();
});
afterAll(() => p.remove());

const TIME_ZONE = "Asia/Shanghai";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTPS GET to the console from `localAddress`; rejects on a reset connection. */
function get(gw: Gateway, path: string, localAddress: string, auth?: [string, string]): Promise<Answer> {
  const url = new URL(path, gw.consoleUrl as string);
  const headers: Record<string, string> = {};
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`).toString("base64")}`;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { ca: readFileSync(p.ca), servername: "localhost", headers, localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on("error", reject);
    req.setTimeout(8_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

/** Whether a TLS handshake from `localAddress` completes. */
function handshake(port: number, localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    let secure = false;
    const tcp = tcpConnect({ host: "127.0.0.1", port, localAddress });
    tcp.on("error", () => {});
    const s = tlsConnect({ socket: tcp, ca: readFileSync(p.ca), servername: "localhost" }, () => {
      secure = true;
      s.destroy();
    });
    s.on("error", () => {});
    s.on("close", () => resolve(secure));
    s.setTimeout(8_000, () => s.destroy());
  });
}

/** An MQTT CONNECT with an unknown username from `localAddress`, on plain TCP: a failed login. */
function unknownLogin(port: number, localAddress: string, i: number): Promise<void> {
  const field = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  const body = Buffer.concat([
    Buffer.from([0, 4]),
    Buffer.from("MQTT"),
    Buffer.from([4, 0xc2, 0, 30]),
    field(Buffer.from(`scan-${i}`)),
    field(Buffer.from(`nobody-${i}`)),
    field(Buffer.from("x")),
  ]);
  const packet = Buffer.concat([Buffer.from([0x10, body.length]), body]);
  return new Promise((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port, localAddress }, () => s.write(packet));
    s.on("data", () => s.destroy());
    s.on("error", () => {});
    s.on("close", () => resolve());
  });
}

/** Bans `address` in both login scopes: ten logins naming no account. */
async function banBoth(gw: Gateway, address: string): Promise<void> {
  for (let i = 0; i < 10; i++) await unknownLogin(gw.mqttPort, address, i);
  expect(gw.counters.rejected("auth", "ban-started")).toBe(2);
}

/** The HH:MM a ban with `retryAfter` seconds left may be said to end at (the second it was read in). */
function untilCandidates(retryAfter: number): string[] {
  const opts = { timeZone: () => TIME_ZONE };
  return [pausedUntil(retryAfter * 1000 - 1000, opts), pausedUntil(retryAfter * 1000, opts)];
}

const tls = () => ({ cert: p.serverCert, key: p.serverKey });

describe("a banned address and the HTTPS console", () => {
  let gw: Gateway | null = null;
  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });

  it("loads the page, says logins are paused until HH:MM in both languages, answers logins 429; MQTT over TLS stays closed before the handshake", async () => {
    gw = await startGateway({
      config: testConfig({
        site: { id: "t1", timezone: TIME_ZONE },
        mqtt: {
          listeners: [
            { host: "127.0.0.1", port: 0 },
            { host: "127.0.0.1", port: 0, tls: tls() },
          ],
        },
        console: { enabled: true, host: "127.0.0.1", port: 0, tls: tls() },
      }),
    });
    const g = gw;
    const mqtts = (g.broker.addresses()[1] as { port: number }).port;
    const banned = "127.0.0.40";
    await banBoth(g, banned);

    // The page and its scripts load.
    const page = await get(g, "/", banned);
    expect(page.status).toBe(200);
    expect(page.body).toContain('id="login-paused"');
    expect((await get(g, "/app.js", banned)).status).toBe(200);

    // It is told, before anyone types a password, until when.
    const status = await get(g, "/api/login-status", banned);
    expect(status.status).toBe(200);
    const s = JSON.parse(status.body) as { loginsPaused: boolean; retryAfter: number; until: string };
    expect(s.loginsPaused).toBe(true);
    expect(s.retryAfter).toBeGreaterThan(240);
    expect(s.retryAfter).toBeLessThanOrEqual(300);
    expect(untilCandidates(s.retryAfter)).toContain(s.until);
    expect(s.until).toMatch(/^\d\d:\d\d$/);

    // A login, even with the right password, is refused 429, in both languages.
    const login = await get(g, "/api/site", banned, [OPS.name, OPS.password]);
    expect(login.status).toBe(429);
    const until = login.headers["linli-logins-paused-until"] as string;
    expect(untilCandidates(Number(login.headers["retry-after"]))).toContain(until);
    expect(login.body).toContain(`此地址的登录已暂停至 ${until}`);
    expect(login.body).toContain(`Logins from this address are paused until ${until}`);
    expect(g.counters.rejected("auth", "address-banned")).toBe(1);

    // Nothing was refused at accept on the console; the MQTT TLS listener still refuses before TLS.
    expect(g.counters.rejected("connection", "address-banned")).toBe(0);
    expect(await handshake(mqtts, banned)).toBe(false);
    expect(g.counters.rejected("connection", "address-banned")).toBe(1);

    // Another address: nothing paused, the login goes through.
    const other = await get(g, "/api/login-status", "127.0.0.41");
    expect(JSON.parse(other.body)).toEqual({ loginsPaused: false });
    expect((await get(g, "/api/site", "127.0.0.41", [OPS.name, OPS.password])).status).toBe(200);
  }, 60_000);

  it.skipIf(!haveBrowser("console ban page test"))(
    "the page in chromium says it in Chinese and English as it opens",
    async () => {
      gw = await startGateway({
        config: testConfig({
          site: { id: "t1", timezone: TIME_ZONE, locale: "zh-CN" },
          console: { enabled: true, host: "127.0.0.1", port: 0, tls: tls() },
        }),
      });
      const g = gw;
      // Chromium connects from 127.0.0.1: that address is the banned one here.
      await banBoth(g, "127.0.0.1");
      const browser = await launchChromium(["--ignore-certificate-errors"]);
      try {
        const page = await browser.newPage();
        await page.goto(g.consoleUrl as string);
        const notice = page.locator("#login-paused");
        await notice.waitFor({ state: "visible", timeout: 10_000 });
        const lines = await notice.locator("span").allTextContents();
        expect(lines).toHaveLength(2);
        expect(lines[0]).toMatch(/^此地址的登录已暂停至 \d\d:\d\d（登录失败次数过多），到时自动恢复。$/);
        expect(lines[1]).toMatch(
          /^Logins from this address are paused until \d\d:\d\d \(too many failed logins\)/,
        );
        // The same end in both, the gateway's.
        const status = await get(g, "/api/login-status", "127.0.0.1");
        expect(lines[0]).toContain(JSON.parse(status.body).until);
        await page.close();
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
