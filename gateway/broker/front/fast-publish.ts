/**
 * The worker's fast path for the packet it reads most: an MQTT 3.1.1 PUBLISH at QoS 0 or 1 on the
 * connection's own uplink topic. Read in place from the whole packet frames.ts hands over: no
 * parser object, no topic string, no payload copy (a view of the socket read). Anything else (MQTT
 * 5 properties, QoS 2 or 3, another topic, an inconsistent length, packet identifier 0) answers false and goes to
 * mqtt-packet's parser, which refuses or handles it as before.
 */

/** What a fast-path PUBLISH carries; one object, reused (the worker is one thread). */
export interface FastPublish {
  qos: 0 | 1;
  retain: boolean;
  messageId: number;
  /** Where the payload starts in the buffer (it runs to the packet's end). */
  payloadStart: number;
}

/**
 * True, with `out` filled, when `buf[start..end)` is a v3.1.1 PUBLISH at QoS 0/1 on exactly `topic`
 * (ASCII). Offsets rather than a view: no object per packet.
 */
export function readFastPublish(
  buf: Uint8Array,
  start: number,
  end: number,
  topic: string,
  out: FastPublish,
): boolean {
  const packet = buf;
  const b0 = packet[start] as number;
  if (b0 >> 4 !== 3) return false;
  const qos = (b0 >> 1) & 3;
  if (qos > 1) return false;
  // Remaining length (§2.2.3): frames.ts checked it, and hands over exactly one packet.
  let i = start + 1;
  let length = 0;
  let multiplier = 1;
  let byte: number;
  do {
    if (i >= end || i > start + 4) return false;
    byte = packet[i++] as number;
    length += (byte & 127) * multiplier;
    multiplier *= 128;
  } while (byte & 128);
  if (i + length !== end || i + 2 > end) return false;
  const topicLength = ((packet[i] as number) << 8) | (packet[i + 1] as number);
  i += 2;
  if (topicLength !== topic.length || i + topicLength > end) return false;
  for (let k = 0; k < topicLength; k++) {
    const c = topic.charCodeAt(k);
    // A topic beyond ASCII is compared by the parser (UTF-8).
    if (c > 127 || packet[i + k] !== c) return false;
  }
  i += topicLength;
  let messageId = 0;
  if (qos === 1) {
    if (i + 2 > end) return false;
    messageId = ((packet[i] as number) << 8) | (packet[i + 1] as number);
    // §2.3.1-1: a QoS 1 PUBLISH with packet identifier 0 is malformed; the parser's path refuses it.
    if (messageId === 0) return false;
    i += 2;
  }
  out.qos = qos === 1 ? 1 : 0;
  out.retain = (b0 & 1) === 1;
  out.messageId = messageId;
  out.payloadStart = i;
  return true;
}
