/**
 * MQTT 5 devices on the main listeners (gateway/broker/mqtt5.ts): the datasheets' "MQTT 3.1.1 or 5"
 * on aedes' port, as on the device listener. Real sockets on loopback: mqtt.js with
 * protocolVersion 5, mosquitto_pub -V mqttv5 as an EC-200 base station, and raw MQTT 5 packets.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Encoder } from "cbor-x";
import mqtt from "mqtt";
import mqttPacket from "mqtt-packet";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { clientIdFor, connect, OPS, pendantMsg, SITE, startGateway, TestClient } from "./support/harness.js";

const cbor = new Encoder({ useRecords: false, variableMapSize: true });

function haveMosquittoPub(): boolean {
  try {
    return execFileSync("sh", ["-c", "command -v mosquitto_pub"]).length > 0;
  } catch {
    return false;
  }
}

describe("MQTT 5 devices on the main listeners", () => {
  let gw: Gateway;
  let ops: TestClient;
  const clients: TestClient[] = [];

  beforeEach(async () => {
    gw = await startGateway();
    ops = await connect(gw, OPS.name, OPS.password); // MQTT 3.1.1, as before
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
    clients.push(ops);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw.stop();
  });

  async function v5Device(id: string, pw: string, extra: mqtt.IClientOptions = {}) {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, {
      username: id,
      password: pw,
      clientId: clientIdFor(gw, id),
      reconnectPeriod: 0,
      connectTimeout: 2000,
      protocolVersion: 5,
      ...extra,
    });
    const c = new TestClient(client);
    clients.push(c);
    return c;
  }

  it("a v5 pendant's JSON and CBOR presses (content type) are acknowledged and raise P1; its downlink arrives as v5", async () => {
    const p = await v5Device("p-1", "pw-p1");
    const ack = (await p.client.publishAsync("devices/ec200/p-1/up", pendantMsg(1, "press"), {
      qos: 1,
      properties: { contentType: "application/json" },
    })) as mqttPacket.IPubackPacket | undefined;
    expect(ack?.reasonCode ?? 0).toBe(0);
    const alert = (await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`)).json();
    expect(alert).toMatchObject({ code: "EMERGENCY_CALL", deviceId: "p-1" });
    const fall = cbor.encode({ t: "evt", seq: 2, ts: Date.now(), evt: "fall", bat: 80, rssi: -60 });
    await p.client.publishAsync("devices/ec200/p-1/up", fall, {
      qos: 1,
      properties: { contentType: "application/cbor" },
    });
    await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/FALL_DETECTED/p-1`);
    // SUBACK and the downlink PUBLISH in MQTT 5 form (mqtt.js would not read 3.1.1 ones here).
    expect(await p.subscribe("devices/ec200/p-1/down")).toBe(1);
    await ops.publish(`linli/${SITE}/ack/${alert.id}`, JSON.stringify({ by: "Wang Li" }));
    const down = await p.waitFor((x) => x.topic === "devices/ec200/p-1/down");
    expect(down.json()).toEqual({ cmd: "ack_call", alertId: alert.id });
    // A 3.1.1 pendant beside it, unchanged.
    const p2 = await connect(gw, "p-2", "pw-p2");
    clients.push(p2);
    await p2.publish("devices/ec200/p-2/up", pendantMsg(1, "press"));
    await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-2`);
  });

  it("a downlink over the device's own Maximum Packet Size is not sent to it (§3.1.2.11.4)", async () => {
    const p = await v5Device("p-1", "pw-p1", { properties: { maximumPacketSize: 40 } });
    expect(await p.subscribe("devices/ec200/p-1/down")).toBe(1);
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const alert = (await ops.waitFor((x) => x.topic.includes("/alerts/p1/"))).json();
    await ops.publish(`linli/${SITE}/ack/${alert.id}`, JSON.stringify({ by: "Wang Li" }));
    // The acknowledgement republishes the alert (next rev); the downlink goes at the same time.
    await ops.waitFor((x) => x.topic.includes("/alerts/p1/") && x.json().rev !== alert.rev);
    await new Promise((r) => setTimeout(r, 300));
    expect(p.on("/down")).toEqual([]);
    expect(p.client.connected).toBe(true);
  });

  it("a v5 will with its content type is taken in when the device is lost", async () => {
    const p = await v5Device("p-1", "pw-p1", {
      will: {
        topic: "devices/ec200/p-1/up",
        payload: Buffer.from(
          cbor.encode({ t: "evt", seq: 9, ts: Date.now(), evt: "press", bat: 80, rssi: -60 }),
        ),
        qos: 1,
        retain: false,
        properties: { contentType: "application/cbor", willDelayInterval: 60 },
      },
    });
    p.client.stream.destroy();
    await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
  });

  it("operators keep MQTT 3.1.1: a v5 console login is answered 0x84", async () => {
    const err = await mqtt
      .connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, {
        username: OPS.name,
        password: OPS.password,
        clientId: clientIdFor(gw, OPS.name),
        reconnectPeriod: 0,
        connectTimeout: 2000,
        protocolVersion: 5,
      })
      .then(
        (c) => {
          clients.push(new TestClient(c));
          return null;
        },
        (e: { code?: number }) => e,
      );
    expect(err?.code).toBe(0x84);
    expect(gw.counters.rejected("operator", "mqtt5-devices-only")).toBe(1);
  });

  /** The packets the gateway sends on a raw MQTT 5 connection after `bytes`, until it closes. */
  async function rawV5(bytes: Buffer[]): Promise<mqttPacket.Packet[]> {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const got: mqttPacket.Packet[] = [];
    parser.on("packet", (p) => got.push(p));
    const s = net.connect(gw.mqttPort, "127.0.0.1");
    s.on("data", (d) => parser.parse(d));
    s.on("error", () => {});
    await new Promise<void>((r) => s.once("connect", () => r()));
    for (const b of bytes) s.write(b);
    await new Promise<void>((r) => {
      s.once("close", () => r());
      setTimeout(() => {
        s.destroy();
        r();
      }, 2000);
    });
    return got;
  }

  const v5 = { protocolVersion: 5 } as const;
  const login = (properties: mqttPacket.IConnectPacket["properties"] = {}) =>
    mqttPacket.generate(
      {
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 5,
        clean: true,
        clientId: "ec200-p-1",
        keepalive: 60,
        username: "p-1",
        password: Buffer.from("pw-p1"),
        properties,
      },
      v5,
    );

  it("states its packet limit, refuses a topic alias with DISCONNECT 0x94 and enhanced authentication with 0x8C", async () => {
    const alias = mqttPacket.generate(
      {
        cmd: "publish",
        topic: "devices/ec200/p-1/up",
        payload: pendantMsg(1, null),
        qos: 0,
        dup: false,
        retain: false,
        properties: { topicAlias: 1 },
      },
      v5,
    );
    const got = await rawV5([login({ sessionExpiryInterval: 300 }), alias]);
    // No session is kept for a device: the expiry it asked for is answered 0.
    expect(got[0]).toMatchObject({ cmd: "connack", reasonCode: 0, sessionPresent: false });
    expect((got[0] as mqttPacket.IConnackPacket).properties?.sessionExpiryInterval).toBe(0);
    expect((got[0] as mqttPacket.IConnackPacket).properties?.maximumPacketSize).toBeGreaterThan(100);
    expect(got[1]).toMatchObject({ cmd: "disconnect", reasonCode: 0x94 });
    expect(gw.counters.rejected("ec200", "protocol-violation")).toBe(1);
    // A SUBSCRIBE without a topic filter (§3.8.3-3; 3 bytes with its property length): closed unanswered.
    const noFilter = await rawV5([login(), Buffer.from([0x82, 0x03, 0x00, 0x01, 0x00])]);
    expect(noFilter.map((p) => p.cmd)).toEqual(["connack"]);
    expect(gw.counters.rejected("ec200", "malformed-packet")).toBe(1);
    const auth = await rawV5([login({ authenticationMethod: "SCRAM-SHA-1" })]);
    expect(auth).toMatchObject([{ cmd: "connack", reasonCode: 0x8c }]);
  });

  it.skipIf(!haveMosquittoPub())(
    "mosquitto_pub -V mqttv5 as an EC-200 base station: JSON and CBOR presses with content type, PUBACK and P1",
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "linli-v5-"));
      try {
        const cborFile = path.join(dir, "press.cbor");
        writeFileSync(
          cborFile,
          cbor.encode({ t: "evt", seq: 2, ts: Date.now(), evt: "fall", bat: 80, rssi: -60 }),
        );
        const pub = (contentType: string, payload: string[]) =>
          new Promise<string>((resolve, reject) =>
            execFile(
              "mosquitto_pub",
              [
                ...["-h", "127.0.0.1", "-p", String(gw.mqttPort), "-V", "mqttv5", "-q", "1", "-d"],
                ...["-i", "ec200-p-1", "-u", "p-1", "-P", "pw-p1", "-t", "devices/ec200/p-1/up"],
                ...["-D", "publish", "content-type", contentType, ...payload],
              ],
              { timeout: 5000 },
              (err, stdout) => (err ? reject(err) : resolve(stdout)),
            ),
          );
        const json = await pub("application/json", ["-m", pendantMsg(1, "press")]);
        expect(json).toMatch(/received PUBACK \(Mid: 1, RC:0\)/);
        await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
        const bin = await pub("application/cbor", ["-f", cborFile]);
        expect(bin).toMatch(/received PUBACK \(Mid: 1, RC:0\)/);
        await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/FALL_DETECTED/p-1`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
