/**
 * Reading the one field a receipt needs from a payload without decoding the
 * rest: the subscriber's receive loop is hot.
 */

const JSON_SEQ = Buffer.from('"seq":');
const CBOR_SEQ = Buffer.from([0x63, 0x73, 0x65, 0x71]); // text(3) "seq"
/** In an EC-200 uplink: the resident pressed the button. */
export const PRESS = Buffer.from("press");
const DEVICE_TIME = Buffer.from('"deviceTime":');

function digitsAt(b: Buffer, i: number): number {
  let v = 0;
  let any = false;
  for (; i < b.length; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
    any = true;
  }
  return any ? v : -1;
}

/** `seq` of a datasheet uplink, JSON or CBOR, without decoding the rest (the receive loop is hot). */
export function readSeq(p: Buffer): number {
  if (p[0] === 0x7b) {
    const i = p.indexOf(JSON_SEQ);
    return i < 0 ? -1 : digitsAt(p, i + JSON_SEQ.length);
  }
  const i = p.indexOf(CBOR_SEQ);
  if (i < 0) return -1;
  const j = i + CBOR_SEQ.length;
  const h = p[j];
  if (h === undefined || h >> 5 !== 0) return -1; // major type 0: unsigned integer (RFC 8949 §3.1)
  const ai = h & 0x1f;
  if (ai < 24) return ai;
  if (ai === 24) return p[j + 1] ?? -1;
  if (ai === 25) return p.length >= j + 3 ? p.readUInt16BE(j + 1) : -1;
  if (ai === 26) return p.length >= j + 5 ? p.readUInt32BE(j + 1) : -1;
  return -1;
}

/** `deviceTime` of a gateway telemetry message; -1 when null or absent. */
export function readDeviceTime(p: Buffer): number {
  const i = p.indexOf(DEVICE_TIME);
  return i < 0 ? -1 : digitsAt(p, i + DEVICE_TIME.length);
}
