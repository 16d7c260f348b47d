/**
 * MEASUREMENT HARNESS ONLY (npm run bench:floor): the least a server can do for the gateway's
 * points, to tell what this machine and the bench's own load generator allow from what the
 * gateway costs. One thread and one port, no broker: MQTT 3.1.1 packets cut by the device
 * listener's framing (frames.ts) and read by hand, CONNACK, SUBACK, PUBACK and PINGRESP answered,
 * no authentication, no journal. Each device uplink is forwarded at once, in the gateway's topic
 * shapes, so the bench's subscriber and console account for it as they do for the gateway:
 *
 * - a press (the bytes "press" in the payload) as an EMERGENCY_CALL alert on
 *   `linli/<site>/alerts/p1/EMERGENCY_CALL/<device>`, `count` the device's presses so far;
 * - anything else as `{"deviceTime":<ts>}` on `linli/<site>/telemetry/<device>` to subscribers of
 *   something other than alerts (the payload's `ts` read as the gateway's peek reads fields).
 *
 * What it leaves out is everything the gateway is for: decoding, rules, the alert lifecycle,
 * conflation, priority between lanes. Its figures are a floor, not a design.
 */
import net from "node:net";
import { publishFrame } from "../gateway/broker/direct-fanout.js";
import { type Framing, splitPackets } from "../gateway/broker/front/frames.js";
import { readTopLevel, sniffEncoding, type TopLevelValue } from "../protocols/threads.js";

const PRESS = Buffer.from("press");
const UPLINK_PREFIX = "devices/";
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);

const PUBLISH = 3;
const CONNECT = 1;
const SUBSCRIBE = 8;
const PINGREQ = 12;
const DISCONNECT = 14;

export interface FloorServer {
  port: number;
  stop(): Promise<void>;
}

/** A QoS 0 PUBLISH of `payload` on `topic`, framed by the gateway's own writer (direct-fanout.ts). */
export function publishTo(topic: string, payload: string): Buffer {
  const length = Buffer.byteLength(topic);
  const prefixed = Buffer.allocUnsafe(2 + length);
  prefixed.writeUInt16BE(length, 0);
  prefixed.write(topic, 2);
  return publishFrame(prefixed, payload, 0);
}

export async function startFloor(site: string): Promise<FloorServer> {
  const alertTopic = `linli/${site}/alerts/p1/EMERGENCY_CALL/`;
  const telemetryTopic = `linli/${site}/telemetry/`;
  /** Subscribers of the alert topics (the console) and of anything else (the subscriber of all). */
  const alertSubscribers = new Set<net.Socket>();
  const allSubscribers = new Set<net.Socket>();
  const presses = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const ts: TopLevelValue[] = [undefined];

  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    let rest: Buffer | null = null;
    const acks: number[] = [];
    const readings: Buffer[] = [];
    socket.on("error", () => undefined);
    socket.once("close", () => {
      sockets.delete(socket);
      alertSubscribers.delete(socket);
      allSubscribers.delete(socket);
    });

    const publish = (b: Buffer, at: number, end: number, qos: number): void => {
      const topicLength = b.readUInt16BE(at);
      let p = at + 2 + topicLength;
      if (qos > 0) {
        acks.push(b.readUInt16BE(p));
        p += 2;
      }
      const topic = b.toString("latin1", at + 2, at + 2 + topicLength);
      if (!topic.startsWith(UPLINK_PREFIX)) return;
      const device = topic.slice(topic.indexOf("/", UPLINK_PREFIX.length) + 1, topic.length - 3);
      const payload = b.subarray(p, end);
      if (payload.indexOf(PRESS) >= 0) {
        const count = (presses.get(device) ?? 0) + 1;
        presses.set(device, count);
        const transition = count === 1 ? "raised" : "repeated";
        const frame = publishTo(
          alertTopic + device,
          `{"code":"EMERGENCY_CALL","count":${count},"transition":"${transition}"}`,
        );
        // At once, as the gateway's urgent delivery: a press waits for nothing else of this read.
        for (const s of alertSubscribers) s.write(frame);
        for (const s of allSubscribers) s.write(frame);
        return;
      }
      if (allSubscribers.size === 0) return;
      const encoding = sniffEncoding(payload);
      const deviceTime =
        encoding !== null && readTopLevel(payload, encoding, ["ts"], ts) && typeof ts[0] === "number"
          ? ts[0]
          : null;
      readings.push(publishTo(telemetryTopic + device, `{"deviceTime":${deviceTime}}`));
    };

    const onPacket = (start: number, end: number): void => {
      const b = framingBuffer;
      const first = b[start] as number;
      // The body starts after the remaining length's bytes (the last one has its high bit clear).
      let at = start + 1;
      while (((b[at++] as number) & 0x80) !== 0);
      const type = first >> 4;
      if (type === PUBLISH) publish(b, at, end, (first >> 1) & 3);
      else if (type === CONNECT) socket.write(CONNACK);
      else if (type === SUBSCRIBE) {
        const id = b.readUInt16BE(at);
        const filter = b.toString("utf8", at + 4, at + 4 + b.readUInt16BE(at + 2));
        (filter.includes("/alerts/") ? alertSubscribers : allSubscribers).add(socket);
        socket.write(Buffer.from([0x90, 0x03, id >> 8, id & 0xff, 0x01]));
      } else if (type === PINGREQ) socket.write(PINGRESP);
      else if (type === DISCONNECT) socket.end();
    };
    let framingBuffer: Buffer = Buffer.alloc(0);
    const framing: Framing = { end: 0, refusal: null, announced: 0 };

    socket.on("data", (chunk: Buffer) => {
      const b = rest === null ? chunk : Buffer.concat([rest, chunk]);
      rest = null;
      framingBuffer = b;
      // The gateway's framing (no size limit here: the floor trusts the bench's generator).
      const off = splitPackets(b, Number.MAX_SAFE_INTEGER, true, false, onPacket, framing).end;
      if (off < b.length) rest = Buffer.from(b.subarray(off));
      // One write per read for the PUBACKs, one per subscriber for the readings.
      if (acks.length > 0) {
        const out = Buffer.allocUnsafe(4 * acks.length);
        for (let i = 0; i < acks.length; i++) {
          const id = acks[i] as number;
          out[4 * i] = 0x40;
          out[4 * i + 1] = 0x02;
          out.writeUInt16BE(id, 4 * i + 2);
        }
        acks.length = 0;
        socket.write(out);
      }
      if (readings.length > 0) {
        const out = Buffer.concat(readings);
        readings.length = 0;
        for (const s of allSubscribers) s.write(out);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
