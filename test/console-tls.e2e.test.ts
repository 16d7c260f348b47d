/**
 * The operators' console over TLS (`console.tls`): on a LAN, the console's logins (HTTP Basic on
 * /api/site, the MQTT CONNECT on /mqtt) carry an operator's password; without TLS anyone on the
 * centre's Wi-Fi reads it. A real gateway on 127.0.0.1 with test certificates.
 */
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect as tlsConnect } from "node:tls";
import mqtt from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import type { Gateway } from "../gateway/gateway.js";
import { makeTestPki, type TestPki } from "./support/certs.js";
import { OPS, SITE, startGateway, testConfig } from "./support/harness.js";

let p: TestPki;
beforeAll(() => {
  p = makeTestPki();
});
afterAll(() => p.remove());

describe("console over TLS", () => {
  let gw: Gateway | null = null;
  afterEach(async () => {
    await gw?.stop();
    gw = null;
  });

  const config = () =>
    testConfig({
      console: { enabled: true, host: "127.0.0.1", port: 0, tls: { cert: p.serverCert, key: p.serverKey } },
    });

  const get = (url: URL, auth?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers: Record<string, string> = auth
        ? { authorization: `Basic ${Buffer.from(auth).toString("base64")}` }
        : {};
      const req = httpsRequest(url, { ca: readFileSync(p.ca), headers, agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });

  const serial = (port: number) =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: "127.0.0.1", port, ca: readFileSync(p.ca) }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.once("error", reject);
    });

  it("serves the page, /api/site and /mqtt over https and wss only", async () => {
    gw = await startGateway({ config: config() });
    const url = new URL(gw.consoleUrl as string);
    expect(url.protocol).toBe("https:");
    expect((await get(new URL("/", url))).status).toBe(200);
    expect((await get(new URL("/api/site", url), `${OPS.name}:${OPS.password}`)).status).toBe(200);
    // Plain HTTP on the TLS port gets no page.
    const plain = await new Promise<number | Error>((resolve) => {
      const req = httpRequest(new URL(`http://127.0.0.1:${url.port}/`), { agent: false }, (res) =>
        resolve(res.statusCode ?? 0),
      );
      req.on("error", (err) => resolve(err));
      req.setTimeout(3_000, () => req.destroy(new Error("timeout")));
      req.end();
    });
    expect(plain).not.toBe(200);
    const c = await mqtt.connectAsync(`wss://127.0.0.1:${url.port}/mqtt`, {
      ca: readFileSync(p.ca),
      username: OPS.name,
      password: OPS.password,
      clientId: `${OPS.name}-tls-console`,
      reconnectPeriod: 0,
    });
    try {
      const granted = await c.subscribeAsync(`linli/${SITE}/gateway/status`, { qos: 1 });
      expect(granted[0]?.qos).toBe(1);
    } finally {
      await c.endAsync();
    }
  });

  it("re-reads its certificate on reload", async () => {
    const cfg = config();
    gw = await startGateway({ config: cfg });
    const port = Number(new URL(gw.consoleUrl as string).port);
    const before = await serial(port);
    const renewed = p.renewServer();
    const r = await gw.reload(validateConfig({ ...cfg, storage: { enabled: false } }, "test"));
    expect(r).toMatchObject({ result: "applied", certificates: { failed: [] } });
    const after = await serial(port);
    expect(after).not.toBe(before);
    expect(renewed.toLowerCase()).toContain(after.toLowerCase());
  });
});
