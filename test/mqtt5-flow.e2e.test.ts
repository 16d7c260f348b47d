/**
 * MQTT 5 flow control and wills, on both listeners (aedes' port via gateway/broker/mqtt5.ts, and
 * the device listener's worker): the server sends no more unacknowledged QoS 1 and QoS 2
 * PUBLISHes than the client's Receive Maximum (§3.3.4, MQTT-3.3.4-7/-9), and a DISCONNECT with
 * reason 0x04 "Disconnect with Will Message" publishes the will (§3.14.2.1). Raw MQTT 5 packets
 * on loopback: the client acknowledges only when the test says.
 */
import type mqttPacket from "mqtt-packet";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import {
  clientIdFor,
  connect,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  type TestClient,
  testConfig,
} from "./support/harness.js";
import { type RawV5, rawV5Client } from "./support/raw-v5.js";

const DOWN = "devices/ec200/p-1/down";
const UP = "devices/ec200/p-1/up";

for (const listener of ["main", "device"] as const) {
  describe(`MQTT 5 on the ${listener} listener`, () => {
    let gw: Gateway | null = null;
    const raws: RawV5[] = [];
    const clients: TestClient[] = [];

    afterEach(async () => {
      for (const r of raws.splice(0)) r.destroy();
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw?.stop();
      gw = null;
    });

    async function setup() {
      gw = await startGateway(
        listener === "device"
          ? {
              config: testConfig({
                mqtt: {
                  listeners: [{ host: "127.0.0.1", port: 0 }],
                  deviceListener: { host: "127.0.0.1", port: 0 },
                },
              }),
            }
          : {},
      );
      const ops = await connect(gw, OPS.name, OPS.password);
      clients.push(ops);
      expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
      const port = listener === "device" ? gw.broker.deviceListenerPort : gw.mqttPort;
      if (port === null) throw new Error("no port");
      return { gw, ops, port };
    }

    async function pendant(
      port: number,
      props: mqttPacket.IConnectPacket["properties"],
      will?: mqttPacket.IConnectPacket["will"],
    ) {
      const g = gw as Gateway;
      const r = await rawV5Client(
        port,
        { clientId: clientIdFor(g, "p-1"), username: "p-1", password: "pw-p1" },
        props,
        will,
      );
      raws.push(r);
      return r;
    }

    it("sends no more unacknowledged QoS 1 downlinks than the device's Receive Maximum; the next goes at its PUBACK", async () => {
      const { ops, port } = await setup();
      const p = await pendant(port, { receiveMaximum: 1 });
      p.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: DOWN, qos: 1 }] });
      await p.waitFor((x) => x.cmd === "suback");
      // Two alerts of this pendant, both acknowledged by an operator: two `ack_call` downlinks.
      p.send({
        cmd: "publish",
        topic: UP,
        payload: pendantMsg(1, "press"),
        qos: 1,
        messageId: 2,
        dup: false,
        retain: false,
      });
      p.send({
        cmd: "publish",
        topic: UP,
        payload: pendantMsg(2, "fall"),
        qos: 1,
        messageId: 3,
        dup: false,
        retain: false,
      });
      const call = (await ops.waitFor((x) => x.topic.includes("/alerts/p1/EMERGENCY_CALL/"))).json();
      const fall = (await ops.waitFor((x) => x.topic.includes("/alerts/p1/FALL_DETECTED/"))).json();
      await ops.publish(`linli/${SITE}/ack/${call.id}`, JSON.stringify({ by: "Wang Li" }));
      await ops.publish(`linli/${SITE}/ack/${fall.id}`, JSON.stringify({ by: "Wang Li" }));
      const first = (await p.waitFor((x) => x.cmd === "publish")) as mqttPacket.IPublishPacket;
      expect(first.qos).toBe(1);
      await sleep(500);
      const downs = () => p.got.filter((x) => x.cmd === "publish") as mqttPacket.IPublishPacket[];
      expect(downs()).toHaveLength(1);
      p.send({ cmd: "puback", messageId: first.messageId, reasonCode: 0 });
      const until = Date.now() + 3000;
      while (downs().length < 2 && Date.now() < until) await sleep(10);
      expect(downs()).toHaveLength(2);
      expect(
        downs()
          .map((d) => JSON.parse(d.payload.toString()).alertId)
          .sort(),
      ).toEqual([call.id, fall.id].sort());
      expect(p.closed()).toBe(false);
    });

    it("a DISCONNECT with reason 0x04 publishes the will; reason 0x00 does not", async () => {
      const { ops, port } = await setup();
      const will = (seq: number) => ({
        topic: UP,
        payload: Buffer.from(pendantMsg(seq, "press")),
        qos: 1 as const,
        retain: false,
      });
      const polite = await pendant(port, {}, will(8));
      polite.send({ cmd: "disconnect", reasonCode: 0 });
      await sleep(300);
      expect(ops.on("/alerts/p1/EMERGENCY_CALL/p-1")).toHaveLength(0);
      const withWill = await pendant(port, {}, will(9));
      withWill.send({ cmd: "disconnect", reasonCode: 0x04 });
      const m = await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
      expect(m.json()).toMatchObject({ code: "EMERGENCY_CALL", deviceId: "p-1" });
    });
  });
}
