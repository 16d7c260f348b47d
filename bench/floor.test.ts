import { encode } from "cbor-x";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { type FloorServer, publishTo, startFloor } from "./floor.js";

const received = (client: mqtt.MqttClient, n: number): Promise<Array<[string, string]>> =>
  new Promise((resolve) => {
    const got: Array<[string, string]> = [];
    client.on("message", (topic, payload) => {
      got.push([topic, payload.toString()]);
      if (got.length === n) resolve(got);
    });
  });

const connect = async (port: number, clientId: string): Promise<mqtt.MqttClient> => {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0, protocolVersion: 4 });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
  });
  return c;
};

describe("bench/floor: the least a server does for a gateway point", () => {
  let floor: FloorServer | null = null;
  const clients: mqtt.MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await floor?.stop();
    floor = null;
  });

  it("frames a PUBLISH whose length needs two bytes", () => {
    const frame = publishTo("t/x", "a".repeat(200));
    expect([...frame.subarray(0, 3)]).toEqual([0x30, 0xcd, 0x01]); // 205 = 0x4d + 1 * 128
    expect(frame.readUInt16BE(3)).toBe(3);
    expect(frame.toString("latin1", 5, 8)).toBe("t/x");
    expect(frame.length).toBe(3 + 205);
  });

  it("acknowledges uplinks and forwards presses as alerts and readings with their device time", async () => {
    floor = await startFloor("s1");
    const console_ = await connect(floor.port, "console");
    const everything = await connect(floor.port, "everything");
    const device = await connect(floor.port, "pendant");
    clients.push(console_, everything, device);
    await console_.subscribeAsync("linli/s1/alerts/p1/#", { qos: 1 });
    await everything.subscribeAsync("linli/s1/#", { qos: 1 });
    const atConsole = received(console_, 2);
    const atEverything = received(everything, 4);

    const topic = "devices/ec200/pendant-7/up";
    // QoS 1: the publishes resolve only once the floor's PUBACKs arrive.
    await device.publishAsync(
      topic,
      JSON.stringify({ t: "evt", seq: 1, ts: 1_700_000_000_123, evt: "press" }),
      {
        qos: 1,
      },
    );
    await device.publishAsync(topic, encode({ t: "hb", seq: 2, ts: 1_700_000_000_456, bat: 90 }), { qos: 0 });
    await device.publishAsync(topic, encode({ t: "evt", seq: 3, ts: 1_700_000_000_789, evt: "press" }), {
      qos: 1,
    });
    await device.publishAsync(topic, JSON.stringify({ t: "hb", seq: 4, bat: 90 }), { qos: 1 });

    const alerts = [
      [
        "linli/s1/alerts/p1/EMERGENCY_CALL/pendant-7",
        '{"code":"EMERGENCY_CALL","count":1,"transition":"raised"}',
      ],
      [
        "linli/s1/alerts/p1/EMERGENCY_CALL/pendant-7",
        '{"code":"EMERGENCY_CALL","count":2,"transition":"repeated"}',
      ],
    ];
    expect(await atConsole).toEqual(alerts);
    // Within one read a press goes at once and the readings after the read: compare as sets.
    expect((await atEverything).sort()).toEqual(
      [
        ...alerts,
        ["linli/s1/telemetry/pendant-7", '{"deviceTime":1700000000456}'],
        ["linli/s1/telemetry/pendant-7", '{"deviceTime":null}'],
      ].sort(),
    );
  });
});
