/**
 * The scalar values of a few named top-level fields of a JSON object or CBOR map payload (or, in
 * JSON, dotted paths into nested objects), without decoding the rest: what the device listener's worker thread needs to tell telemetry from what may
 * be an alert (devices' `telemetryWhen`), without cbor-x (a megabyte of that thread's heap).
 *
 * The answer must agree with what decodePayload (JSON.parse, cbor-x) gives the same field, or be
 * "not known": a field whose value is not a scalar reads as NOT_SCALAR, and a payload this reader
 * does not take whole (indefinite lengths, non-text keys, tags at the top, trailing bytes, more than
 * MAX_DEPTH levels) reads as not a map. The caller treats "not known" as "maybe an alert".
 * Duplicate keys: the last one counts, as in JSON.parse and cbor-x. A dotted field in CBOR is not
 * read (it names no top-level key): the caller must not ask for one.
 */
import type { PayloadEncoding } from "./sniff.js";

/** A field whose value is an array, a map, bytes, a tag or an unusual simple value. */
export const NOT_SCALAR: unique symbol = Symbol("not a scalar");
export type TopLevelValue = string | number | boolean | null | undefined | typeof NOT_SCALAR;

const MAX_DEPTH = 16;

/**
 * Fills `out[i]` with the value of `fields[i]` (undefined when absent). False when the payload is
 * not an object / map this reader takes whole; `out` is then unspecified.
 */
export function readTopLevel(
  payload: Buffer,
  encoding: PayloadEncoding,
  fields: readonly string[],
  out: TopLevelValue[],
): boolean {
  for (let i = 0; i < fields.length; i++) out[i] = undefined;
  return encoding === "json" ? readJson(payload, fields, out) : readCbor(payload, fields, out);
}

function readJson(payload: Buffer, fields: readonly string[], out: TopLevelValue[]): boolean {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch {
    return false;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  for (let i = 0; i < fields.length; i++) {
    const v = fieldAt(value, fields[i] as string);
    out[i] =
      v === undefined ||
      v === null ||
      typeof v === "string" ||
      typeof v === "number" ||
      typeof v === "boolean"
        ? v
        : NOT_SCALAR;
  }
  return true;
}

/**
 * A field or a dotted path into decoded JSON objects (`data.alarm`); undefined where a step is not
 * an object. Declared profiles read their fields with it (devices/declared/compile.ts), so the
 * worker's reading and theirs are one.
 */
export function fieldAt(obj: object, path: string): unknown {
  // A plain key (nearly every field) without splitting: this runs per field per message.
  if (!path.includes(".")) return (obj as Record<string, unknown>)[path];
  let x: unknown = obj;
  for (const k of path.split(".")) {
    if (typeof x !== "object" || x === null) return undefined;
    x = (x as Record<string, unknown>)[k];
  }
  return x;
}

/** Reader state: one payload at a time (the worker is one thread), so no object per call. */
let buf: Buffer = Buffer.alloc(0);
let pos = 0;
/** The last head's argument (a length, a count or an integer); -1 after an unreadable head. */
let arg = 0;

function readCbor(payload: Buffer, fields: readonly string[], out: TopLevelValue[]): boolean {
  buf = payload;
  pos = 0;
  try {
    const ib = payload[0];
    if (ib === undefined || ib >> 5 !== 5 || !head()) return false;
    const pairs = arg;
    for (let p = 0; p < pairs; p++) {
      // Keys: text only (cbor-x turns other keys into strings, which this reader does not match).
      if (pos >= buf.length || (buf[pos] as number) >> 5 !== 3 || !head()) return false;
      const keyStart = pos;
      const keyEnd = pos + arg;
      if (keyEnd > buf.length) return false;
      pos = keyEnd;
      const i = fieldIndex(fields, keyStart, keyEnd);
      if (i < 0) {
        if (!skip(0)) return false;
      } else {
        const v = scalar();
        if (v === FAILED) return false;
        out[i] = v;
      }
    }
    return pos === buf.length;
  } finally {
    buf = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);
const FAILED: unique symbol = Symbol("unreadable");

function fieldIndex(fields: readonly string[], start: number, end: number): number {
  const n = end - start;
  next: for (let i = 0; i < fields.length; i++) {
    const f = fields[i] as string;
    // Field names are ASCII (the datasheets'): a byte per character.
    if (f.length !== n) continue;
    for (let k = 0; k < n; k++) if (f.charCodeAt(k) !== buf[start + k]) continue next;
    return i;
  }
  return -1;
}

/** Reads an item's head at pos into `arg`; false for indefinite or reserved lengths and truncation. */
function head(): boolean {
  const ai = (buf[pos] as number) & 31;
  pos++;
  if (ai < 24) {
    arg = ai;
    return true;
  }
  const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0;
  if (size === 0 || pos + size > buf.length) return false;
  if (size === 8) {
    const hi = buf.readUInt32BE(pos);
    // Beyond 2^53 a JavaScript number is not exact: not read.
    if (hi >= 0x200000) return false;
    arg = hi * 0x100000000 + buf.readUInt32BE(pos + 4);
  } else arg = size === 1 ? (buf[pos] as number) : size === 2 ? buf.readUInt16BE(pos) : buf.readUInt32BE(pos);
  pos += size;
  return true;
}

/** A value item: its scalar value, NOT_SCALAR (skipped), or FAILED. */
function scalar(): TopLevelValue | typeof FAILED {
  if (pos >= buf.length) return FAILED;
  const ib = buf[pos] as number;
  const major = ib >> 5;
  const ai = ib & 31;
  if (major === 7) {
    pos++;
    switch (ai) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 25:
        if (pos + 2 > buf.length) return FAILED;
        pos += 2;
        return half(buf.readUInt16BE(pos - 2));
      case 26:
        if (pos + 4 > buf.length) return FAILED;
        pos += 4;
        return buf.readFloatBE(pos - 4);
      case 27:
        if (pos + 8 > buf.length) return FAILED;
        pos += 8;
        return buf.readDoubleBE(pos - 8);
      default:
        pos--;
        return skip(0) ? NOT_SCALAR : FAILED;
    }
  }
  if (major === 0 || major === 1 || major === 3) {
    if (!head()) return FAILED;
    if (major === 0) return arg;
    if (major === 1) return -1 - arg;
    if (pos + arg > buf.length) return FAILED;
    pos += arg;
    return buf.toString("utf8", pos - arg, pos);
  }
  return skip(0) ? NOT_SCALAR : FAILED;
}

/** Steps over one item of any kind; false when it cannot be read. */
function skip(depth: number): boolean {
  if (depth > MAX_DEPTH || pos >= buf.length) return false;
  const major = (buf[pos] as number) >> 5;
  const ai = (buf[pos] as number) & 31;
  if (major === 7) {
    pos++;
    const size = ai < 24 ? 0 : ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : -1;
    if (size < 0 || pos + size > buf.length) return false;
    pos += size;
    return true;
  }
  if (!head()) return false;
  switch (major) {
    case 0:
    case 1:
      return true;
    case 2:
    case 3:
      if (pos + arg > buf.length) return false;
      pos += arg;
      return true;
    case 4:
    case 5: {
      const items = major === 5 ? 2 * arg : arg;
      for (let k = 0; k < items; k++) if (!skip(depth + 1)) return false;
      return true;
    }
    default:
      // A tag: the item it marks.
      return skip(depth + 1);
  }
}

/** IEEE 754 half precision (RFC 8949 Appendix D). */
function half(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const v =
    exp === 0
      ? mant * 2 ** -24
      : exp !== 31
        ? (mant + 1024) * 2 ** (exp - 25)
        : mant === 0
          ? Infinity
          : Number.NaN;
  return h & 0x8000 ? -v : v;
}
