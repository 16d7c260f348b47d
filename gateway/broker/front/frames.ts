/**
 * Whole MQTT packets out of a connection's bytes (MQTT 3.1.1 §2.2: a fixed-header byte, then the
 * remaining length in one to four bytes of 7 bits each, then that many bytes), with the size rule
 * of the operators' port (limits.ts FrameGuard) applied before a packet's body is read.
 *
 * Framing here, rather than in a parser per connection: the device front end parses each whole
 * packet with one mqtt-packet parser shared by every connection, so a connection holds at most a
 * partial packet's bytes and not a parser of its own (an EventEmitter and a BufferListStream, a
 * full Duplex stream: about 1.5 KB of heap per connection, measured with 10,000 connections).
 */

export type FrameRefusal = "packet-too-large" | "connect-too-large" | "malformed-header" | "not-connect";

const CONNECT = 1;
const MAX_LENGTH_BYTES = 4;

/** What splitPackets found: whole packets up to `end`, or the reason to close the connection. */
export interface Framing {
  /** Offset after the last whole packet (the rest is a packet still arriving). */
  end: number;
  refusal: FrameRefusal | null;
  /** With a refusal: the length the packet announced. */
  announced: number;
}

/**
 * Calls `packet(start, end)` for every whole packet in `buf` (offsets into it), in order.
 * `limit`: the largest remaining length allowed; `loggedIn` false: the first packet must be a
 * CONNECT and an oversized one is "connect-too-large". Stops at the first packet refused, after
 * the whole packets before it.
 */
export function splitPackets(
  buf: Buffer,
  limit: number,
  loggedIn: boolean,
  firstPacket: boolean,
  packet: (start: number, end: number) => void,
  out: Framing,
): Framing {
  let i = 0;
  let first = firstPacket;
  const n = buf.length;
  out.refusal = null;
  out.announced = 0;
  while (i + 1 < n) {
    const type = (buf[i] as number) >> 4;
    if (!loggedIn && first && type !== CONNECT) return refuse(out, i, "not-connect", 0);
    let length = 0;
    let multiplier = 1;
    let at = i + 1;
    let complete = false;
    for (let k = 0; k < MAX_LENGTH_BYTES && at < n; k++) {
      const b = buf[at++] as number;
      length += (b & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b & 0x80) === 0) {
        complete = true;
        break;
      }
      if (k === MAX_LENGTH_BYTES - 1) return refuse(out, i, "malformed-header", length);
    }
    // Already over the limit with length bytes still to come: no need to wait for them.
    if (length > limit) return refuse(out, i, loggedIn ? "packet-too-large" : "connect-too-large", length);
    if (!complete || at + length > n) break;
    packet(i, at + length);
    first = false;
    i = at + length;
  }
  out.end = i;
  return out;
}

function refuse(out: Framing, end: number, reason: FrameRefusal, announced: number): Framing {
  out.end = end;
  out.refusal = reason;
  out.announced = announced;
  return out;
}
