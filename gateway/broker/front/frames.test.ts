import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { type Framing, splitPackets } from "./frames.js";

const connect = mqttPacket.generate({
  cmd: "connect",
  protocolId: "MQTT",
  protocolVersion: 4,
  clean: true,
  clientId: "ec200-p-1",
  keepalive: 60,
  username: "p-1",
  password: Buffer.from("pw"),
});
const publish = (payload: string) =>
  mqttPacket.generate({
    cmd: "publish",
    topic: "devices/ec200/p-1/up",
    payload: Buffer.from(payload),
    qos: 1,
    messageId: 7,
    retain: false,
    dup: false,
  });
const pingreq = mqttPacket.generate({ cmd: "pingreq" });

function split(buf: Buffer, limit = 1000, loggedIn = true, first = false) {
  const packets: Buffer[] = [];
  const out: Framing = { end: 0, refusal: null, announced: 0 };
  splitPackets(buf, limit, loggedIn, first, (s, e) => packets.push(buf.subarray(s, e)), out);
  return { packets, ...out };
}

describe("splitPackets: whole MQTT packets out of a connection's bytes", () => {
  it("splits back-to-back packets exactly at their boundaries", () => {
    const a = publish("x".repeat(10));
    const b = publish("y".repeat(200)); // remaining length > 127: two length bytes
    const r = split(Buffer.concat([a, pingreq, b]));
    expect(r.packets).toEqual([a, pingreq, b]);
    expect(r.end).toBe(a.length + pingreq.length + b.length);
    expect(r.refusal).toBeNull();
  });

  it("stops before a packet still arriving, at every possible cut", () => {
    const a = publish("hello");
    const b = publish("z".repeat(300));
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const r = split(all.subarray(0, cut));
      const whole = cut >= all.length ? 2 : cut >= a.length ? 1 : 0;
      expect(r.packets.length, `cut ${cut}`).toBe(whole);
      expect(r.end, `cut ${cut}`).toBe(whole === 2 ? all.length : whole === 1 ? a.length : 0);
    }
  });

  it("refuses a packet over the limit from its header, before its body has arrived", () => {
    const big = publish("q".repeat(2000));
    const r = split(big.subarray(0, 4), 1000);
    expect(r.refusal).toBe("packet-too-large");
    expect(r.announced).toBeGreaterThan(1000);
    expect(r.packets).toHaveLength(0);
  });

  it("before login: the first packet must be a CONNECT, and an oversized CONNECT is connect-too-large", () => {
    expect(split(pingreq, 1000, false, true).refusal).toBe("not-connect");
    expect(split(connect, 10, false, true).refusal).toBe("connect-too-large");
    const ok = split(Buffer.concat([connect, publish("a")]), 1000, false, true);
    expect(ok.packets).toHaveLength(2);
    expect(ok.refusal).toBeNull();
  });

  it("refuses a remaining length of more than four bytes", () => {
    const r = split(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 2 ** 30);
    expect(r.refusal).toBe("malformed-header");
  });

  it("hands the packets before a refused one to the caller", () => {
    const a = publish("fine");
    const r = split(Buffer.concat([a, publish("n".repeat(500))]), 100);
    expect(r.packets).toEqual([a]);
    expect(r.refusal).toBe("packet-too-large");
    expect(r.end).toBe(a.length);
  });
});
