/**
 * A minimal MQTT 3.1.1 client over plain TCP for load (load.ts `raw: true`)
 * and for the bench's subscriber: CONNECT, SUBSCRIBE, PUBLISH at QoS 0 and 1,
 * PUBACK, DISCONNECT. Nothing else: no reconnect, no keep-alive (0), no
 * retained or will, no QoS 2, no MQTT 5.
 *
 * Why by hand: at 30,000 msg/s the bench's own process (load generator and
 * subscriber on mqtt.js) needed 25-29 us of CPU a message, more than the bare
 * broker it measures (a CPU profile: mqtt.js, its `debug` calls, mqtt-packet,
 * bl, and writev with a piece per field of every packet). On a two-core machine
 * that core is taken from the gateway's second thread, and the generator could
 * not offer more than ~55,000/s. Here a PUBLISH is one buffer, a turn's
 * publishes on one connection go out in one writev, and an incoming PUBLISH is
 * read in place. CONNECT and SUBSCRIBE are written by mqtt-packet (once per
 * connection).
 */
import net from "node:net";
import mqttPacket from "mqtt-packet";

export interface RawConnectOptions {
  clientId: string;
  username: string;
  password: string;
  connectTimeoutMs?: number;
}

/** MQTT packet types (high nibble of the first byte). */
const CONNACK = 2;
const PUBLISH = 3;
const PUBACK = 4;
const SUBACK = 9;

/**
 * Splits a byte stream into MQTT packets: `onPacket(first byte, body, start, end)` with the body
 * a view of the read (valid during the call only). Partial packets wait for the next read.
 */
export class FrameReader {
  private rest: Buffer | null = null;
  constructor(private readonly onPacket: (first: number, buf: Buffer, start: number, end: number) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let i = 0;
    const n = buf.length;
    while (i < n) {
      if (n - i < 2) break;
      // Remaining length: 1 to 4 bytes, 7 bits each (MQTT 3.1.1 §2.2.3).
      let len = 0;
      let mul = 1;
      let j = i + 1;
      let complete = false;
      for (let k = 0; k < 4 && j < n; k++, j++) {
        const b = buf[j] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          j++;
          break;
        }
      }
      if (!complete) {
        if (j - i - 1 >= 4) throw new Error("malformed remaining length");
        break;
      }
      if (n - j < len) break;
      this.onPacket(buf[i] as number, buf, j, j + len);
      i = j + len;
    }
    if (i < n) this.rest = Buffer.from(buf.subarray(i));
  }
}

/** One connection. `onPublish` and `onAck` are set by the user before traffic flows. */
export class RawLink {
  connected = false;
  /** A PUBACK arrived (for a QoS 1 PUBLISH this link sent). */
  onAck: () => void = () => undefined;
  /** A PUBLISH arrived (topic, payload view valid during the call; QoS 1 is acknowledged by the link). */
  onPublish: (topic: string, payload: Buffer) => void = () => undefined;
  /** The connection closed or failed after it was up. */
  onClose: (err: Error | null) => void = () => undefined;
  private nextId = 1;
  private corked = false;
  private readonly reader: FrameReader;
  private subacked: ((granted: number) => void) | null = null;
  private connacked: ((code: number) => void) | null = null;

  private constructor(private readonly socket: net.Socket) {
    this.reader = new FrameReader((first, buf, start, end) => this.packet(first, buf, start, end));
    socket.on("data", (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    socket.on("close", () => {
      const was = this.connected;
      this.connected = false;
      if (was) this.onClose(null);
    });
    socket.on("error", () => undefined); // "close" follows
  }

  /** Connects and logs in; rejects on a refusal (CONNACK code), a socket error or the timeout. */
  static connect(url: string, o: RawConnectOptions): Promise<RawLink> {
    const u = new URL(url);
    if (u.protocol !== "mqtt:" && u.protocol !== "tcp:")
      throw new Error(`raw link: plain TCP only, not ${url}`);
    const socket = net.createConnection({ host: u.hostname || "127.0.0.1", port: Number(u.port || 1883) });
    socket.setNoDelay(true);
    const link = new RawLink(socket);
    return new Promise<RawLink>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`raw link ${o.clientId}: no CONNACK in time`));
      }, o.connectTimeoutMs ?? 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once("error", fail);
      link.connacked = (code) => {
        clearTimeout(timer);
        socket.off("error", fail);
        if (code !== 0) {
          socket.destroy();
          reject(new Error(`raw link ${o.clientId}: connection refused (CONNACK ${code})`));
          return;
        }
        link.connected = true;
        resolve(link);
      };
      socket.once("connect", () => {
        socket.write(
          mqttPacket.generate({
            cmd: "connect",
            protocolId: "MQTT",
            protocolVersion: 4,
            clean: true,
            keepalive: 0,
            clientId: o.clientId,
            username: o.username,
            password: Buffer.from(o.password),
          }),
        );
      });
    });
  }

  /** Subscribes to one filter at QoS 1; resolves with the granted QoS (128: refused). */
  subscribe(filter: string): Promise<number> {
    return new Promise((resolve) => {
      this.subacked = resolve;
      this.socket.write(
        mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] }),
      );
    });
  }

  /**
   * Queues a PUBLISH on the connection's own write; what one turn of the event loop queues goes
   * out in one writev. `topic` is the topic's UTF-8 bytes. `now`: the connection's queued bytes and
   * this PUBLISH are written at once, as a device that has one urgent message sends it.
   */
  publish(topic: Buffer, payload: Buffer, qos: 0 | 1, now = false): void {
    const body = 2 + topic.length + (qos === 1 ? 2 : 0) + payload.length;
    const lenBytes = body < 128 ? 1 : body < 16_384 ? 2 : body < 2_097_152 ? 3 : 4;
    const frame = Buffer.allocUnsafe(1 + lenBytes + body);
    frame[0] = 0x30 | (qos << 1);
    let i = 1;
    let v = body;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v > 0) b |= 0x80;
      frame[i++] = b;
    } while (v > 0);
    frame.writeUInt16BE(topic.length, i);
    i += 2;
    topic.copy(frame, i);
    i += topic.length;
    if (qos === 1) {
      frame.writeUInt16BE(this.nextId, i);
      i += 2;
      this.nextId = this.nextId === 0xffff ? 1 : this.nextId + 1;
    }
    payload.copy(frame, i);
    this.write(frame);
    // The uncork already scheduled for this turn then finds nothing corked, which is harmless.
    if (now) this.uncork();
  }

  /** Sends DISCONNECT and closes; resolves when the socket is closed. */
  end(): Promise<void> {
    const s = this.socket;
    if (s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const guard = setTimeout(() => s.destroy(), 2_000);
      s.once("close", () => {
        clearTimeout(guard);
        resolve();
      });
      this.connected = false;
      s.end(Buffer.from([0xe0, 0x00]));
    });
  }

  /** Closes at once. */
  destroy(): void {
    this.connected = false;
    this.socket.destroy();
  }

  private write(frame: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(uncork, this);
    }
    this.socket.write(frame);
  }

  uncork(): void {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  }

  private packet(first: number, buf: Buffer, start: number, end: number): void {
    switch (first >> 4) {
      case PUBACK:
        this.onAck();
        return;
      case PUBLISH: {
        const qos = (first >> 1) & 3;
        const topicLen = buf.readUInt16BE(start);
        const topicEnd = start + 2 + topicLen;
        const topic = buf.toString("utf8", start + 2, topicEnd);
        let p = topicEnd;
        if (qos > 0) {
          const id = buf.readUInt16BE(p);
          p += 2;
          const ack = Buffer.allocUnsafe(4);
          ack[0] = 0x40;
          ack[1] = 2;
          ack.writeUInt16BE(id, 2);
          this.write(ack);
        }
        this.onPublish(topic, buf.subarray(p, end));
        return;
      }
      case CONNACK:
        this.connacked?.(buf[start + 1] as number);
        this.connacked = null;
        return;
      case SUBACK:
        this.subacked?.(buf[start + 2] as number);
        this.subacked = null;
        return;
      default:
        return; // PINGRESP and the like: nothing to do
    }
  }
}

function uncork(link: RawLink): void {
  link.uncork();
}
