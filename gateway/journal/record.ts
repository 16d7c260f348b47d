/**
 * Record framing, shared by segment files and snapshots:
 *
 *   u32 LE body length | u32 LE CRC-32C of the body | body
 *   body = u8 op | u16 LE key length | key (UTF-8) | value (CBOR, cbor-x; empty for a delete)
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

export const OP_PUT = 1;
export const OP_DELETE = 2;
/** Snapshot only: first record, value = { v, seq }. */
export const OP_SNAP_BEGIN = 3;
/** Snapshot only: last record, value = { records }. A snapshot without it is incomplete. */
export const OP_SNAP_END = 4;

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

/** Calls onRecord for each valid record from the start of buf; stops at the first damage. */
export function scan(
  buf: Buffer,
  onRecord: (op: number, key: string, value: Buffer) => void,
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
    if (keyEnd > bodyEnd || op < OP_PUT || op > maxOp) return { validEnd: pos, damage: "bad body" };
    onRecord(op, buf.toString("utf8", bodyStart + FIXED_BODY, keyEnd), buf.subarray(keyEnd, bodyEnd));
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
  if (op < OP_PUT || op > maxOp) return 0;
  const keyLen = buf.readUInt16LE(bodyStart + 1);
  if (keyLen > MAX_KEY_BYTES || bodyStart + FIXED_BODY + keyLen > bodyEnd) return 0;
  if (op === OP_DELETE && bodyStart + FIXED_BODY + keyLen !== bodyEnd) return 0;
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

/** Each whole record's [start, end) in `buf`, from the framing itself (tools and tests that cut or flip records). */
export function recordBounds(buf: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = 0;
  scan(
    buf,
    (_op, key, value) => {
      const end = at + framedSize(Buffer.byteLength(key), value.length);
      out.push([at, end]);
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
  onRecord: (op: number, key: string, value: Buffer) => void,
  maxOp = OP_DELETE,
): SegmentScan {
  const skipped: SkippedRegion[] = [];
  let pos = 0;
  const end = buf.length;
  for (;;) {
    const res = scan(buf.subarray(pos), onRecord, maxOp);
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
    skipped.push({ start: bad, end: next, records, reason: res.damage });
    pos = next;
  }
}
