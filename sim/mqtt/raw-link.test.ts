import mqttPacket from "mqtt-packet";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FrameReader, RawLink } from "./raw-link.js";
import { startTestBroker, type TestBroker } from "./test-broker.js";

describe("the frame reader", () => {
  it("splits packets at every split of the stream, remaining lengths of 1 to 3 bytes", () => {
    const packets = [
      mqttPacket.generate({ cmd: "puback", messageId: 7 }),
      mqttPacket.generate({
        cmd: "publish",
        topic: "a/b",
        payload: Buffer.alloc(300, 1),
        qos: 0,
        retain: false,
        dup: false,
      }),
      mqttPacket.generate({
        cmd: "publish",
        topic: "c",
        payload: Buffer.alloc(20_000, 2),
        qos: 1,
        messageId: 9,
        retain: false,
        dup: false,
      }),
      mqttPacket.generate({ cmd: "pingresp" }),
    ];
    const stream = Buffer.concat(packets);
    for (const step of [1, 2, 3, 7, 1000, stream.length]) {
      const seen: string[] = [];
      const r = new FrameReader((first, buf, start, end) =>
        seen.push(`${first >> 4}:${end - start}:${end > start ? buf[end - 1] : "-"}`),
      );
      for (let i = 0; i < stream.length; i += step) r.push(stream.subarray(i, i + step));
      expect(seen).toEqual(["4:2:7", "3:305:1", "3:20005:2", "13:0:-"]);
    }
  });

  it("refuses a remaining length longer than 4 bytes", () => {
    const r = new FrameReader(() => undefined);
    expect(() => r.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/remaining length/);
  });
});

describe("the raw link against a real broker", () => {
  let tb: TestBroker;
  const links: RawLink[] = [];
  beforeEach(async () => {
    tb = await startTestBroker({ authenticate: (u, p) => p === `pw-${u}` });
  });
  afterEach(async () => {
    await Promise.all(links.splice(0).map((l) => l.end()));
    await tb.close();
  });
  const connect = async (user: string, password = `pw-${user}`) => {
    const link = await RawLink.connect(tb.url, { clientId: `c-${user}`, username: user, password });
    links.push(link);
    return link;
  };

  it("publishes at QoS 0 and 1, counts PUBACKs, and a subscriber reads both (and acknowledges QoS 1)", async () => {
    const sub = await connect("sub");
    const got: { topic: string; payload: Buffer }[] = [];
    sub.onPublish = (topic, payload) => got.push({ topic, payload: Buffer.from(payload) });
    expect(await sub.subscribe("up/#")).toBe(1);
    const pub = await connect("pub");
    let acks = 0;
    pub.onAck = () => acks++;
    const big = Buffer.alloc(20_000, 0x61);
    pub.publish(Buffer.from("up/1"), Buffer.from("small"), 0);
    pub.publish(Buffer.from("up/2"), big, 1);
    pub.publish(Buffer.from("up/3"), Buffer.from("last"), 1);
    const at = await tb.waitFor(3);
    expect(at.map((r) => [r.topic, r.qos, r.clientId])).toEqual([
      ["up/1", 0, "c-pub"],
      ["up/2", 1, "c-pub"],
      ["up/3", 1, "c-pub"],
    ]);
    for (let i = 0; i < 200 && (got.length < 3 || acks < 2); i++) await new Promise((r) => setTimeout(r, 10));
    expect(acks).toBe(2);
    expect(got.map((m) => m.topic)).toEqual(["up/1", "up/2", "up/3"]);
    expect(got[1]?.payload.equals(big)).toBe(true);
    expect(got[2]?.payload.toString()).toBe("last");
  });

  it("writes an urgent PUBLISH, and what the turn queued before it, at once; the rest at the turn's end", async () => {
    const pub = await connect("pub");
    const socket = (pub as unknown as { socket: import("node:net").Socket }).socket;
    pub.publish(Buffer.from("up/1"), Buffer.from("reading"), 0);
    expect(socket.writableCorked).toBe(1);
    pub.publish(Buffer.from("up/2"), Buffer.from("press"), 0, true);
    expect(socket.writableCorked).toBe(0);
    pub.publish(Buffer.from("up/3"), Buffer.from("reading"), 0);
    expect(socket.writableCorked).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(socket.writableCorked).toBe(0);
    const at = await tb.waitFor(3);
    expect(at.map((r) => r.topic)).toEqual(["up/1", "up/2", "up/3"]);
  });

  it("rejects a refused login with the CONNACK code", async () => {
    await expect(connect("x", "wrong")).rejects.toThrow(/CONNACK 4/);
  });
});
