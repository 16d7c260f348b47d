import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { type FastPublish, readFastPublish } from "./fast-publish.js";

const TOPIC = "devices/ec200/p-1/up";
const out: FastPublish = { qos: 0, retain: false, messageId: 0, payloadStart: 0 };

function publish(opts: {
  topic?: string;
  qos?: 0 | 1 | 2;
  retain?: boolean;
  payload?: Buffer;
  messageId?: number;
}) {
  const qos = opts.qos ?? 1;
  return mqttPacket.generate({
    cmd: "publish",
    topic: opts.topic ?? TOPIC,
    payload: opts.payload ?? Buffer.from('{"t":"hb"}'),
    qos,
    retain: opts.retain ?? false,
    dup: false,
    messageId: qos > 0 ? (opts.messageId ?? 7) : undefined,
  });
}

/** What mqtt-packet's parser makes of the same bytes. */
function parsed(bytes: Buffer): mqttPacket.IPublishPacket {
  const p = mqttPacket.parser({ protocolVersion: 4 });
  let got: mqttPacket.Packet | null = null;
  p.on("packet", (x) => {
    got = x;
  });
  p.parse(bytes);
  return got as unknown as mqttPacket.IPublishPacket;
}

describe("readFastPublish: a v3.1.1 PUBLISH on the connection's own topic, read in place", () => {
  it("agrees with mqtt-packet on QoS, retain, message id and payload, at every length class", () => {
    for (const size of [0, 1, 100, 127 - 26, 200, 16_383, 16_384, 70_000]) {
      for (const qos of [0, 1] as const)
        for (const retain of [false, true]) {
          const payload = Buffer.alloc(size, 0x61);
          const bytes = publish({ qos, retain, payload, messageId: 65_535 });
          expect(readFastPublish(bytes, 0, bytes.length, TOPIC, out)).toBe(true);
          const p = parsed(bytes);
          expect(out.qos).toBe(p.qos);
          expect(out.retain).toBe(p.retain);
          expect(out.messageId).toBe(qos === 1 ? p.messageId : 0);
          expect(Buffer.from(bytes.subarray(out.payloadStart)).equals(p.payload as Buffer)).toBe(true);
        }
    }
  });

  it("leaves everything else to the parser", () => {
    const read = (b: Buffer, topic = TOPIC) => readFastPublish(b, 0, b.length, topic, out);
    expect(read(publish({ topic: "devices/ec200/p-2/up" }))).toBe(false);
    expect(read(publish({ topic: "devices/ec200/p-1/upx" }))).toBe(false);
    expect(read(publish({ qos: 2 }))).toBe(false);
    const qos3 = Buffer.from(publish({}));
    qos3[0] = (qos3[0] as number) | 0x06;
    expect(read(qos3)).toBe(false);
    expect(read(mqttPacket.generate({ cmd: "pingreq" }))).toBe(false);
    const whole = publish({});
    for (let cut = 1; cut < whole.length; cut++) expect(read(whole.subarray(0, cut))).toBe(false);
    expect(read(Buffer.concat([whole, Buffer.from([0])]))).toBe(false);
    // A topic beyond ASCII is compared by the parser.
    expect(read(publish({ topic: "设备/up" }), "设备/up")).toBe(false);
    // §2.3.1-1: QoS 1 with packet identifier 0 is malformed, the parser's path refuses it.
    const zeroId = Buffer.from(publish({ qos: 1 }));
    zeroId.writeUInt16BE(0, 2 + 2 + TOPIC.length);
    expect(read(zeroId)).toBe(false);
    expect(read(publish({ qos: 1, messageId: 1 }))).toBe(true);
  });

  it("reads a packet in the middle of a larger buffer (a socket read of several)", () => {
    const a = publish({ payload: Buffer.from("first") });
    const b = publish({ payload: Buffer.from("second"), qos: 0, retain: true });
    const buf = Buffer.concat([a, b]);
    expect(readFastPublish(buf, a.length, buf.length, TOPIC, out)).toBe(true);
    expect(out).toMatchObject({ qos: 0, retain: true, messageId: 0 });
    expect(buf.toString("utf8", out.payloadStart, buf.length)).toBe("second");
    expect(readFastPublish(buf, 0, a.length, TOPIC, out)).toBe(true);
    expect(buf.toString("utf8", out.payloadStart, a.length)).toBe("first");
  });
});
