/**
 * Record framing, shared by segment files and snapshots:
 *
 *   u32 LE body length | u32 LE CRC-32C of the body | body
 *   body = u8 op | u16 LE key length | key (UTF-8) | value (CBOR, cbor-x; empty for a delete)
 *   pair = u8 op (5) | u16 LE key length | key | u32 LE value length | value
 *                    | u16 LE key length | key | value (to the end of the body)
 *
 *   synced = u8 op (6) | u16 LE key length (0) | u48 LE offset
 *
 * A synced record (since 2026-12-07) says that the segment holding it was durable (fdatasync'd)
 * up to the offset when it was appended: the journal writes one before the first record after
 * each sync that moved that offset. Recovery needs it to tell the damage a power cut leaves in
 * the unsynced tail from damage in synced data (recovery.ts "A hole in the unsynced tail").
 *
 * A pair (since 2026-12-06) puts two keys in one record: a press's alert state and its device's
 * seq record, one framing, one CRC and one write instead of two records; a torn tail keeps both or
 * neither. Replay reads it as the two puts in order. A version before it refuses a directory
 * holding one (format.ts: a record kind it does not know).
 *
 * A record whose length is out of bounds, whose body runs past the end of the data, or whose
 * CRC does not match is damage. scan() (snapshots: all or nothing) stops there. scanSegment()
 * (segments) skips it and resynchronises at the next valid record, so a corrupt record in the
 * middle costs that record, not everything after it; damage with no valid record after it is the
 * tail (a power cut tears the tail; a zero-filled tail reads as length 0, which is invalid).
 * CRC-32C: crc.ts (slicing-by-8 in JavaScript).
 */
import { crc32cOf } from "./crc.js";
import { MAX_KNOWN_OP } from "./format.js";

export const HEADER_BYTES = 8;
const FIXED_BODY = 3; // op + key length
/** A pair's first value length field. */
const PAIR_LEN = 4;

export const OP_PUT = 1;
export const OP_DELETE = 2;
/** Snapshot only: first record, value = { v, seq }. */
export const OP_SNAP_BEGIN = 3;
/** Snapshot only: last record, value = { records }. A snapshot without it is incomplete. */
export const OP_SNAP_END = 4;
/** Segments only: two puts in one record (the pair layout above). */
export const OP_PUT_PAIR = 5;
/** Segments only: the segment was durable up to the offset in its value (the synced layout above). */
export const OP_SYNCED = 6;
const SYNCED_VALUE = 6;
/** Framed size of a synced record. */
export const SYNCED_BYTES = HEADER_BYTES + FIXED_BODY + SYNCED_VALUE;

export const MAX_KEY_BYTES = 4096;
/** A record larger than this is refused on write and read as damage on replay. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Framed size of a record. */
export function framedSize(keyBytes: number, valueBytes: number): number {
  return HEADER_BYTES + FIXED_BODY + keyBytes + valueBytes;
}

/** Frames one record into a fresh buffer; it lives until written (the live map keeps a copy). */
export function frame(op: number, key: string, value: Uint8Array | null): Buffer {
  const keyLen = Buffer.byteLength(key, "utf8");
  if (keyLen > MAX_KEY_BYTES) throw new RangeError(`journal key longer than ${MAX_KEY_BYTES} bytes`);
  const valLen = value === null ? 0 : value.length;
  if (FIXED_BODY + keyLen + valLen > MAX_BODY_BYTES) {
    throw new RangeError(`journal record larger than ${MAX_BODY_BYTES} bytes`);
  }
  // Pooled (a slice of Node's 8 KiB slab for small records): nothing keeps it after its write.
  const buf = Buffer.allocUnsafe(framedSize(keyLen, valLen));
  frameInto(buf, 0, op, key, keyLen, value);
  return buf;
}

/**
 * Frames a pair (OP_PUT_PAIR): two puts in one record, into a fresh buffer. Returns it with the
 * offsets of both values (the live map keeps each value's bytes under its key).
 */
export function framePair(
  key1: string,
  value1: Uint8Array,
  key2: string,
  value2: Uint8Array,
): { rec: Buffer; at1: number; at2: number } {
  const len1 = Buffer.byteLength(key1, "utf8");
  const len2 = Buffer.byteLength(key2, "utf8");
  if (len1 > MAX_KEY_BYTES || len2 > MAX_KEY_BYTES)
    throw new RangeError(`journal key longer than ${MAX_KEY_BYTES} bytes`);
  const bodyLen = FIXED_BODY + len1 + PAIR_LEN + value1.length + 2 + len2 + value2.length;
  if (bodyLen > MAX_BODY_BYTES) throw new RangeError(`journal record larger than ${MAX_BODY_BYTES} bytes`);
  const buf = Buffer.allocUnsafe(HEADER_BYTES + bodyLen);
  const body = HEADER_BYTES;
  buf.writeUInt32LE(bodyLen, 0);
  buf[body] = OP_PUT_PAIR;
  let at = body + 1;
  buf.writeUInt16LE(len1, at);
  at += 2;
  at += buf.write(key1, at, len1, "utf8");
  buf.writeUInt32LE(value1.length, at);
  at += PAIR_LEN;
  const at1 = at;
  buf.set(value1, at);
  at += value1.length;
  buf.writeUInt16LE(len2, at);
  at += 2;
  at += buf.write(key2, at, len2, "utf8");
  const at2 = at;
  buf.set(value2, at);
  buf.writeUInt32LE(crc32cOf(buf, body, body + bodyLen), 4);
  return { rec: buf, at1, at2 };
}

/** Frames a synced record: its segment durable up to `offset`. */
export function frameSynced(offset: number): Buffer {
  const buf = Buffer.allocUnsafe(SYNCED_BYTES);
  const body = HEADER_BYTES;
  buf.writeUInt32LE(FIXED_BODY + SYNCED_VALUE, 0);
  buf[body] = OP_SYNCED;
  buf.writeUInt16LE(0, body + 1);
  buf.writeUIntLE(offset, body + FIXED_BODY, SYNCED_VALUE);
  buf.writeUInt32LE(crc32cOf(buf, body, body + FIXED_BODY + SYNCED_VALUE), 4);
  return buf;
}

/** The offset a synced record's value (as scan() hands it on) says its segment was durable to. */
export function syncedOffset(value: Buffer): number {
  return value.readUIntLE(0, SYNCED_VALUE);
}

/**
 * The second key of a pair whose body spans [bodyStart, bodyEnd): [key1End+value, key2 start, key2
 * end], or null when the lengths do not fit the body (damage).
 */
function pairParts(buf: Buffer, bodyStart: number, bodyEnd: number): [number, number, number] | null {
  const key1End = bodyStart + FIXED_BODY + buf.readUInt16LE(bodyStart + 1);
  if (key1End + PAIR_LEN > bodyEnd) return null;
  const value1End = key1End + PAIR_LEN + buf.readUInt32LE(key1End);
  if (value1End + 2 > bodyEnd) return null;
  const key2Len = buf.readUInt16LE(value1End);
  if (key2Len > MAX_KEY_BYTES || value1End + 2 + key2Len > bodyEnd) return null;
  return [value1End, value1End + 2, value1End + 2 + key2Len];
}

/**
 * Which ops a scan accepts: `maxOp` OP_DELETE reads a segment (put, delete, pair, synced),
 * OP_SNAP_END a snapshot (put, delete, begin, end).
 */
function opAllowed(op: number, maxOp: number): boolean {
  return op === OP_PUT_PAIR || op === OP_SYNCED ? maxOp === OP_DELETE : op >= OP_PUT && op <= maxOp;
}

/** A synced record's body is exactly its op, an empty key and its offset. */
function syncedBodyOk(bodyStart: number, bodyEnd: number, keyLen: number): boolean {
  return keyLen === 0 && bodyEnd - bodyStart === FIXED_BODY + SYNCED_VALUE;
}

/**
 * Frames a record at pos in buf (room checked by the caller); returns the end offset. A string
 * value is the value's bytes as a one-byte (latin1) string, as the journal keeps them.
 */
export function frameInto(
  buf: Buffer,
  pos: number,
  op: number,
  key: string,
  keyLen: number,
  value: Uint8Array | string | null,
): number {
  const valLen = value === null ? 0 : value.length;
  const bodyLen = FIXED_BODY + keyLen + valLen;
  const body = pos + HEADER_BYTES;
  buf.writeUInt32LE(bodyLen, pos);
  buf[body] = op;
  buf.writeUInt16LE(keyLen, body + 1);
  buf.write(key, body + FIXED_BODY, keyLen, "utf8");
  if (typeof value === "string") buf.write(value, body + FIXED_BODY + keyLen, valLen, "latin1");
  else if (value !== null) buf.set(value, body + FIXED_BODY + keyLen);
  buf.writeUInt32LE(crc32cOf(buf, body, body + bodyLen), pos + 4);
  return body + bodyLen;
}

/** Offset of the value inside a framed record. */
export function valueOffset(buf: Buffer): number {
  return 11 + buf.readUInt16LE(9);
}

export interface ScannedRecord {
  op: number;
  key: string;
  /** View into the scanned buffer (copy it to keep it beyond the buffer's life). */
  value: Buffer;
}

export interface ScanResult {
  /** End of the valid prefix. */
  validEnd: number;
  /** Why the scan stopped before the end of the data, or null when all of it was valid. */
  damage: string | null;
  /**
   * The scan stopped at a whole record (CRC valid) of a kind this version does not know: written
   * by a newer format, not damage (format.ts).
   */
  newerOp?: number;
}

/**
 * Calls onRecord for each valid record from the start of buf; stops at the first damage. A pair is
 * handed on as its two puts (op OP_PUT), in order; `end` is the end of the record in buf.
 */
export function scan(
  buf: Buffer,
  onRecord: (op: number, key: string, value: Buffer, end: number) => void,
  maxOp = OP_SNAP_END,
): ScanResult {
  let pos = 0;
  const end = buf.length;
  while (pos < end) {
    if (end - pos < HEADER_BYTES) return { validEnd: pos, damage: "short header" };
    const bodyLen = buf.readUInt32LE(pos);
    if (bodyLen < FIXED_BODY || bodyLen > MAX_BODY_BYTES) return { validEnd: pos, damage: "bad length" };
    const bodyStart = pos + HEADER_BYTES;
    const bodyEnd = bodyStart + bodyLen;
    if (bodyEnd > end) return { validEnd: pos, damage: "short record" };
    if (crc32cOf(buf, bodyStart, bodyEnd) !== buf.readUInt32LE(pos + 4))
      return { validEnd: pos, damage: "bad CRC" };
    const op = buf[bodyStart]!;
    const keyLen = buf.readUInt16LE(bodyStart + 1);
    const keyEnd = bodyStart + FIXED_BODY + keyLen;
    if (op > MAX_KNOWN_OP) return { validEnd: pos, damage: `record kind ${op} unknown`, newerOp: op };
    if (keyEnd > bodyEnd || !opAllowed(op, maxOp)) return { validEnd: pos, damage: "bad body" };
    if (op === OP_SYNCED && !syncedBodyOk(bodyStart, bodyEnd, keyLen))
      return { validEnd: pos, damage: "bad body" };
    if (op === OP_PUT_PAIR) {
      const parts = pairParts(buf, bodyStart, bodyEnd);
      if (parts === null) return { validEnd: pos, damage: "bad body" };
      const [value1End, key2Start, key2End] = parts;
      onRecord(
        OP_PUT,
        buf.toString("utf8", bodyStart + FIXED_BODY, keyEnd),
        buf.subarray(keyEnd + PAIR_LEN, value1End),
        bodyEnd,
      );
      onRecord(OP_PUT, buf.toString("utf8", key2Start, key2End), buf.subarray(key2End, bodyEnd), bodyEnd);
    } else
      onRecord(
        op,
        buf.toString("utf8", bodyStart + FIXED_BODY, keyEnd),
        buf.subarray(keyEnd, bodyEnd),
        bodyEnd,
      );
    pos = bodyEnd;
  }
  return { validEnd: pos, damage: null };
}

/** Length of the valid record at pos (header included), or 0 when none starts there. */
function validAt(buf: Buffer, pos: number, maxOp: number): number {
  const end = buf.length;
  if (end - pos < HEADER_BYTES) return 0;
  const bodyLen = buf.readUInt32LE(pos);
  if (bodyLen < FIXED_BODY || bodyLen > MAX_BODY_BYTES) return 0;
  const bodyStart = pos + HEADER_BYTES;
  const bodyEnd = bodyStart + bodyLen;
  if (bodyEnd > end) return 0;
  // The cheap checks before the CRC: a forward search over garbage computes few CRCs.
  const op = buf[bodyStart]!;
  if (!opAllowed(op, maxOp)) return 0;
  const keyLen = buf.readUInt16LE(bodyStart + 1);
  if (keyLen > MAX_KEY_BYTES || bodyStart + FIXED_BODY + keyLen > bodyEnd) return 0;
  if (op === OP_DELETE && bodyStart + FIXED_BODY + keyLen !== bodyEnd) return 0;
  if (op === OP_PUT_PAIR && pairParts(buf, bodyStart, bodyEnd) === null) return 0;
  if (op === OP_SYNCED && !syncedBodyOk(bodyStart, bodyEnd, keyLen)) return 0;
  if (crc32cOf(buf, bodyStart, bodyEnd) !== buf.readUInt32LE(pos + 4)) return 0;
  return bodyEnd - pos;
}

/** Bytes skipped in the middle of a segment: valid records before and after them. */
export interface SkippedRegion {
  start: number;
  end: number;
  /** 1 when the damaged record's length was intact (exactly it was skipped); null when unknown. */
  records: number | null;
  reason: string;
}

export interface SegmentScan {
  /** Damaged regions with a valid record after them, in order. */
  skipped: SkippedRegion[];
  /** End of the last valid record: what follows it (if anything) is a damaged tail. */
  validEnd: number;
  /** Why the bytes after validEnd are damage; null when the data ends with a valid record. */
  tailDamage: string | null;
  /** A whole record of a kind this version does not know stopped the scan (ScanResult.newerOp). */
  newerOp?: number;
}

/**
 * Each whole record's [start, end) in `buf`, from the framing itself (tools and tests that cut or
 * flip records); synced records too unless `synced` is false.
 */
export function recordBounds(buf: Buffer, synced = true): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = 0;
  scan(
    buf,
    (op, _key, _value, end) => {
      if (end === at) return; // a pair's second put
      if (synced || op !== OP_SYNCED) out.push([at, end]);
      at = end;
    },
    OP_DELETE,
  );
  return out;
}

/**
 * Every valid record of a segment, in order. A damaged record is skipped: when its length field
 * is intact (the record after it validates) exactly that record, otherwise up to the next offset
 * where a header and its CRC validate (a false match there needs a 1 in 2^32 CRC collision on
 * bytes that also pass the op and key checks). Damage with no valid record after it is the tail.
 */
export function scanSegment(
  buf: Buffer,
  onRecord: (op: number, key: string, value: Buffer, end: number) => void,
  maxOp = OP_DELETE,
  /** Called for each skipped region, before the records after it. */
  onSkip?: (region: SkippedRegion) => void,
): SegmentScan {
  const skipped: SkippedRegion[] = [];
  let pos = 0;
  const end = buf.length;
  for (;;) {
    const from = pos;
    const res = scan(buf.subarray(pos), (op, key, value, end) => onRecord(op, key, value, from + end), maxOp);
    const bad = pos + res.validEnd;
    if (res.damage === null) return { skipped, validEnd: bad, tailDamage: null };
    if (res.newerOp !== undefined)
      return { skipped, validEnd: bad, tailDamage: res.damage, newerOp: res.newerOp };
    let next = -1;
    let records: number | null = null;
    if (end - bad >= HEADER_BYTES) {
      const claimed = bad + HEADER_BYTES + buf.readUInt32LE(bad);
      if (claimed > bad + HEADER_BYTES && claimed < end && validAt(buf, claimed, maxOp) > 0) {
        next = claimed;
        records = 1;
      }
    }
    for (let at = bad + 1; next < 0 && at + HEADER_BYTES <= end; at++) {
      if (validAt(buf, at, maxOp) > 0) next = at;
    }
    if (next < 0) return { skipped, validEnd: bad, tailDamage: res.damage };
    const region = { start: bad, end: next, records, reason: res.damage };
    skipped.push(region);
    onSkip?.(region);
    pos = next;
  }
}
