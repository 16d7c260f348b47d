/**
 * docs/security.md against a real gateway: client ids belong to their owner,
 * client certificates stand for passwords, certificates are re-read on reload
 * without dropping connections, hashed passwords log in and plain ones are
 * warned about (never shown).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { Writable } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { hashPassword } from "../gateway/broker/credentials.js";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { makeTestPki, type TestPki } from "./support/certs.js";
import { OPS, pendantMsg, SITE, sleep, startGateway, testConfig } from "./support/harness.js";

const gateways: Gateway[] = [];
const clients: MqttClient[] = [];
const pkis: TestPki[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  for (const g of gateways.splice(0)) await g.stop();
  for (const p of pkis.splice(0)) p.remove();
});

async function start(config: ConfigInput): Promise<Gateway> {
  const gw = await startGateway({ config: { ...config, storage: { enabled: false } } });
  gateways.push(gw);
  return gw;
}

function pki(): TestPki {
  const p = makeTestPki();
  pkis.push(p);
  return p;
}

async function client(url: string, opts: IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  clients.push(c);
  return c;
}

function refusal(url: string, opts: IClientOptions): Promise<string> {
  return client(url, opts).then(
    () => "connected",
    (err: Error) => err.message,
  );
}

const port = (gw: Gateway, i: number) => (gw.broker.addresses()[i] as { port: number }).port;

describe("client ids belong to their owner", () => {
  it("another login using a pendant's client id is refused and counted; the pendant stays connected", async () => {
    const gw = await start(testConfig());
    const url = `mqtt://127.0.0.1:${gw.mqttPort}`;
    const pendant = await client(url, { username: "p-1", password: "pw-p1", clientId: "ec200-p-1" });
    let pendantClosed = false;
    pendant.on("close", () => {
      pendantClosed = true;
    });
    // An operator, another pendant and a door sensor, each with a valid login, try the pendant's id.
    for (const who of [
      { username: OPS.name, password: OPS.password },
      { username: "p-2", password: "pw-p2" },
      { username: "d-1", password: "pw-d1" },
    ])
      expect(await refusal(url, { ...who, clientId: "ec200-p-1" })).toMatch(/Identifier rejected/i);
    // An operator may not use another operator's ids, nor a device use anything but its own.
    expect(await refusal(url, { username: OPS.name, password: OPS.password, clientId: "ops2-x" })).toMatch(
      /Identifier rejected/i,
    );
    expect(await refusal(url, { username: "p-2", password: "pw-p2", clientId: "p-2" })).toMatch(
      /Identifier rejected/i,
    );
    const counted = gw.stats().counters.rejections;
    expect(counted.operator?.["client-id-not-owned"]).toBe(2);
    expect(counted.ec200?.["client-id-not-owned"]).toBe(2);
    expect(counted.ds10?.["client-id-not-owned"]).toBe(1);
    // The real pendant is still there and its messages still go through.
    await pendant.publishAsync("devices/ec200/p-1/up", pendantMsg(1, null), { qos: 1 });
    expect(pendantClosed).toBe(false);
    expect(pendant.connected).toBe(true);
    // Its owner may reconnect with it (a half-open connection is replaced).
    const again = await client(url, { username: "p-1", password: "pw-p1", clientId: "ec200-p-1" });
    expect(again.connected).toBe(true);
  });
});

describe("client certificates (TLS listener with ca)", () => {
  it("a verified certificate naming the device stands for its password; others count for nothing", async () => {
    const p = pki();
    const base = testConfig();
    const gw = await start({
      ...base,
      mqtt: {
        listeners: [{ host: "127.0.0.1", port: 0, tls: { cert: p.serverCert, key: p.serverKey, ca: p.ca } }],
      },
      // p-3 has no password: certificate only.
      devices: [...(base.devices ?? []), { id: "p-3", model: "ec200" }],
    });
    const url = `mqtts://127.0.0.1:${port(gw, 0)}`;
    const ca = readFileSync(p.ca);
    const withCert = (cn: string, untrusted = false) => {
      const c = p.client(cn, { untrusted });
      return { ca, cert: readFileSync(c.cert), key: readFileSync(c.key) };
    };
    // Certificate CN = the device id: no password.
    const p1 = await client(url, { ...withCert("p-1"), username: "p-1", clientId: "ec200-p-1" });
    await p1.publishAsync("devices/ec200/p-1/up", pendantMsg(1, null), { qos: 1 });
    // Without a username the certificate's name is the account.
    const p3 = await client(url, { ...withCert("p-3"), clientId: "ec200-p-3" });
    expect(p3.connected).toBe(true);
    // A certificate of another device, or from another CA, needs the password.
    expect(await refusal(url, { ...withCert("p-1"), username: "p-2", clientId: "ec200-p-2" })).toMatch(
      /Bad username or password/i,
    );
    expect(await refusal(url, { ...withCert("p-2", true), username: "p-2", clientId: "ec200-p-2" })).toMatch(
      /Bad username or password/i,
    );
    const p2 = await client(url, {
      ...withCert("p-1"),
      username: "p-2",
      password: "pw-p2",
      clientId: "ec200-p-2",
    });
    expect(p2.connected).toBe(true);
    // A certificate does not lift the client id rule.
    expect(await refusal(url, { ...withCert("p-3"), clientId: "ec200-p-1" })).toMatch(/Identifier rejected/i);
    // Without any certificate, a password login works on the same listener.
    const ops = await client(url, { ca, username: OPS.name, password: OPS.password, clientId: "ops-tls" });
    expect(ops.connected).toBe(true);
  });

  it("a certificate file that cannot be read stops the start, naming the listener and the file", async () => {
    const p = pki();
    const missing = `${p.dir}/nowhere.crt`;
    const started = startGateway({
      config: {
        ...testConfig(),
        mqtt: {
          listeners: [
            { host: "127.0.0.1", port: 0 },
            { host: "127.0.0.1", port: 0, tls: { cert: missing, key: p.serverKey } },
          ],
        },
        storage: { enabled: false },
      },
    });
    await expect(started).rejects.toThrow(
      `mqtt.listeners[1] (mqtts://127.0.0.1:0): cannot read TLS certificate ${missing}`,
    );
  });

  it("refuses TLS below 1.2", async () => {
    const p = pki();
    const gw = await start({
      ...testConfig(),
      mqtt: { listeners: [{ host: "127.0.0.1", port: 0, tls: { cert: p.serverCert, key: p.serverKey } }] },
    });
    const outcome = await new Promise<string>((resolve) => {
      const s = tlsConnect({
        host: "127.0.0.1",
        port: port(gw, 0),
        ca: readFileSync(p.ca),
        minVersion: "TLSv1.1",
        maxVersion: "TLSv1.1",
      });
      s.once("secureConnect", () => {
        s.destroy();
        resolve("connected");
      });
      s.once("error", (err) => resolve(err.message));
    });
    expect(outcome).not.toBe("connected");
  });
});

describe("failed TLS handshakes", () => {
  it("are counted as connection/tls-handshake and logged with their code, on every TLS listener", async () => {
    const p = pki();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const tls = { cert: p.serverCert, key: p.serverKey, ca: p.ca };
    const withLog = await startGateway({
      config: {
        ...testConfig(),
        storage: { enabled: false },
        mqtt: {
          listeners: [
            { host: "127.0.0.1", port: 0, tls },
            { host: "127.0.0.1", port: 0, transport: "websocket" as const, tls },
          ],
          deviceListener: { host: "127.0.0.1", port: 0, tls },
        },
      },
      logger: createLogger({ level: "warn", format: "json", destination: sink }),
    });
    gateways.push(withLog);
    const ports = [port(withLog, 0), port(withLog, 1), withLog.broker.deviceListenerPort ?? 0];
    const handshakeFailures = () => withLog.stats().counters.rejections.connection?.["tls-handshake"] ?? 0;
    // A client that does not trust the gateway's certificate (a wrong CA, an expired one): it hangs up.
    const untrusting = (to: number) =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({ host: "127.0.0.1", port: to });
        s.once("secureConnect", () => {
          s.destroy();
          resolve("connected");
        });
        s.once("error", (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      });
    // Plain MQTT into TLS.
    const plain = (to: number) =>
      new Promise<void>((resolve) => {
        const s = netConnect(to, "127.0.0.1", () =>
          s.write(Buffer.from([0x10, 0x0c, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 0])),
        );
        s.on("error", () => {});
        s.once("close", () => resolve());
      });
    for (const to of ports) {
      expect(await untrusting(to)).not.toBe("connected");
      await plain(to);
    }
    // A handshake that completes is not one.
    const ok = await new Promise<boolean>((resolve, reject) => {
      const s = tlsConnect({ host: "127.0.0.1", port: ports[0] as number, ca: readFileSync(p.ca) }, () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", reject);
    });
    expect(ok).toBe(true);
    const deadline = Date.now() + 5000;
    while (handshakeFailures() < 6 && Date.now() < deadline) await sleep(10);
    expect(handshakeFailures()).toBe(6);
    const warnings = lines.filter((l) => l.includes("TLS handshake failed")).map((l) => JSON.parse(l));
    // One line per address and minute: all of these came from 127.0.0.1.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ who: "127.0.0.1", reason: "tls-handshake" });
    expect(typeof warnings[0].code).toBe("string");
  });
});

describe("certificates re-read on reload", () => {
  it("new connections get the renewed certificate; open ones stay; unreadable files keep the old one", async () => {
    const p = pki();
    const config = {
      ...testConfig(),
      mqtt: {
        listeners: [
          { host: "127.0.0.1", port: 0, tls: { cert: p.serverCert, key: p.serverKey } },
          {
            host: "127.0.0.1",
            port: 0,
            transport: "websocket" as const,
            tls: { cert: p.serverCert, key: p.serverKey },
          },
        ],
      },
    };
    const gw = await start(config);
    const ca = readFileSync(p.ca);
    const serial = (i: number) =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: "127.0.0.1", port: port(gw, i), ca }, () => {
          resolve(s.getPeerCertificate().serialNumber);
          s.destroy();
        });
        s.once("error", reject);
      });
    const before = await serial(0);
    const open = await client(`mqtts://127.0.0.1:${port(gw, 0)}`, {
      ca,
      username: OPS.name,
      password: OPS.password,
      clientId: "ops-stays",
    });
    const openWs = await client(`wss://127.0.0.1:${port(gw, 1)}/mqtt`, {
      ca,
      username: "ops2",
      password: "ops2-pw",
      clientId: "ops2-stays",
    });
    let drops = 0;
    for (const c of [open, openWs]) c.on("close", () => drops++);

    const renewed = p.renewServer();
    const r = await gw.reload(validateConfig({ ...config, storage: { enabled: false } }, "test"));
    expect(r).toMatchObject({ result: "applied", certificates: { reloaded: 2, failed: [] } });
    const after = await serial(0);
    expect(after).not.toBe(before);
    expect(renewed.toLowerCase()).toContain(after.toLowerCase());
    expect(await serial(1)).toBe(after);
    await open.publishAsync(`linli/${SITE}/ack/none`, "{}", { qos: 1 });
    await openWs.publishAsync(`linli/${SITE}/ack/none`, "{}", { qos: 1 });
    expect(drops).toBe(0);

    // A broken key file: the reload reports it, the listener keeps serving the certificate it has.
    writeFileSync(p.serverKey, "not a key\n");
    const broken = await gw.reload(validateConfig({ ...config, storage: { enabled: false } }, "test"));
    expect(broken).toMatchObject({ result: "applied", certificates: { reloaded: 0 } });
    expect(broken.result === "applied" && broken.certificates.failed).toHaveLength(2);
    expect(await serial(0)).toBe(after);
  });
});

describe("hashed and plain-text passwords", () => {
  it("a hashed password logs in; plain ones are warned about once at start, naming accounts, never secrets", async () => {
    const opsHash = await hashPassword(OPS.password, { log2N: 10 });
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const config = validateConfig(
      {
        ...testConfig(),
        operators: [{ name: OPS.name, password: opsHash }],
        devices: [{ id: "p-1", model: "ec200", password: "pw-p1" }],
        households: [],
        storage: { enabled: false },
      },
      "test",
    );
    const gw = await Gateway.start({
      config,
      logger: createLogger({ level: "info", format: "json", destination: sink }),
    });
    gateways.push(gw);
    const url = `mqtt://127.0.0.1:${gw.mqttPort}`;
    const ops = await client(url, { username: OPS.name, password: OPS.password, clientId: "ops-1" });
    expect(ops.connected).toBe(true);
    expect(await refusal(url, { username: OPS.name, password: "ops-pw ", clientId: "ops-2" })).toMatch(
      /Bad username or password/i,
    );
    const log = lines.join("");
    const warnings = lines.filter((l) => l.includes("plain-text passwords"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("p-1");
    expect(warnings[0]).not.toContain(OPS.name);
    for (const secret of ["pw-p1", OPS.password, opsHash, opsHash.split("$")[5] as string])
      expect(log).not.toContain(secret);
  });
});

describe("client certificates over secure WebSocket from a web page", () => {
  // A browser presents an operator's installed client certificate to any page's
  // `new WebSocket("wss://gateway/mqtt")`, and a CONNECT without a password would then log that
  // page in as the operator (read the alerts, acknowledge them): cross-site WebSocket hijacking.
  it("a certificate counts only for requests without a foreign Origin", async () => {
    const p = pki();
    const gw = await start({
      ...testConfig(),
      mqtt: {
        listeners: [
          {
            host: "127.0.0.1",
            port: 0,
            transport: "websocket" as const,
            tls: { cert: p.serverCert, key: p.serverKey, ca: p.ca },
          },
        ],
      },
    });
    const url = `wss://127.0.0.1:${port(gw, 0)}/mqtt`;
    const c = p.client(OPS.name);
    const opts = (origin?: string): IClientOptions => ({
      ca: readFileSync(p.ca),
      cert: readFileSync(c.cert),
      key: readFileSync(c.key),
      username: OPS.name,
      clientId: `${OPS.name}-${origin === undefined ? "tool" : "page"}`,
      wsOptions: origin === undefined ? {} : { headers: { origin } },
    });
    // A tool (no Origin) and the gateway's own origin: the certificate logs the operator in.
    const tool = await client(url, opts());
    expect(tool.connected).toBe(true);
    await tool.endAsync();
    const same = await client(url, opts(`https://127.0.0.1:${port(gw, 0)}`));
    expect(same.connected).toBe(true);
    await same.endAsync();
    // Another site's page: the certificate counts for nothing; without the password, refused.
    expect(await refusal(url, opts("https://evil.example"))).toMatch(/Bad username or password/i);
    // With the password, any origin may log in (a console served from elsewhere).
    const withPassword = await client(url, { ...opts("https://console.example"), password: OPS.password });
    expect(withPassword.connected).toBe(true);
  });
});
