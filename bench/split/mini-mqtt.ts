/**
 * MEASUREMENT HARNESS ONLY: the answers of the harness's minimal MQTT 3.1.1 front ends
 * (io-worker.ts, relay-worker.ts): no authentication, every subscription granted QoS 0.
 */
import mqttPacket from "mqtt-packet";
import { parseUplinkTopic } from "./stand-in.js";

export const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
export const PINGRESP = Buffer.from([0xd0, 0x00]);

/** The PUBACK a PUBLISH needs (QoS 1), or null (QoS 0). */
export function pubackFor(packet: { qos: number; messageId?: number | undefined }): Buffer | null {
  const id = packet.messageId;
  return packet.qos === 1 && id !== undefined ? Buffer.from([0x40, 0x02, id >> 8, id & 0xff]) : null;
}

/** The SUBACK of a SUBSCRIBE. */
export function subackFor(packet: {
  messageId?: number | undefined;
  subscriptions: readonly unknown[];
}): Buffer {
  return mqttPacket.generate({
    cmd: "suback",
    messageId: packet.messageId as number,
    granted: packet.subscriptions.map(() => 0),
  });
}

export interface MiniConnection {
  /** Bytes for the client (gathered and written by the caller). */
  reply(bytes: Buffer): void;
  /**
   * A PUBLISH on a device uplink topic (model index, device id); `ack` (null for QoS 0) is to be
   * replied once the message is taken. A PUBLISH on any other topic is acknowledged at once.
   */
  uplink(model: number, deviceId: string, payload: Buffer, ack: Buffer | null): void;
  /** DISCONNECT (optional: without it the socket's own end closes the connection). */
  disconnect?(): void;
}

/** Answers one parsed packet as the harness's front ends do. */
export function answerPacket(packet: mqttPacket.Packet, c: MiniConnection): void {
  switch (packet.cmd) {
    case "connect":
      c.reply(CONNACK);
      break;
    case "publish": {
      const ack = pubackFor(packet);
      const t = parseUplinkTopic(packet.topic);
      if (t) c.uplink(t[0], t[1], packet.payload as Buffer, ack);
      else if (ack) c.reply(ack);
      break;
    }
    case "subscribe":
      c.reply(subackFor(packet));
      break;
    case "pingreq":
      c.reply(PINGRESP);
      break;
    case "disconnect":
      c.disconnect?.();
      break;
  }
}
