/**
 * Payload encoding as the datasheets state it, with the simulator's own tables
 * (DESIGN: the simulator never borrows the gateway's decoding).
 *
 * - JSON (firmware 1.x): UTF-8, keys in the datasheet's order. JSON.stringify
 *   keeps insertion order, so the field tables below fix the byte layout.
 * - CBOR (firmware 2.x): RFC 8949 map with the same keys. cbor-x's default
 *   encoder writes every map with a 16-bit length (0xB9 00 06) and numbers above
 *   2^32 as float64; the datasheet says "a map of 6 pairs (first byte 0xA6)" and
 *   `ts` is uint64, so we use `variableMapSize` (no records extension: plain
 *   maps interoperate, DESIGN) and pass large integers as BigInt (major type 0).
 */
import { Encoder } from "cbor-x";

export type Encoding = "json" | "cbor";

export const CONTENT_TYPE: Record<Encoding, string> = {
  json: "application/json",
  cbor: "application/cbor",
};

/** A flat uplink record: strings, booleans and integers only. */
export type UplinkFields = Record<string, string | number | boolean>;

const cbor = new Encoder({ variableMapSize: true, useRecords: false });

function toCborValue(v: string | number | boolean): string | number | boolean | bigint {
  // Integers beyond uint32 go out as uint64/int64 (0x1B/0x3B), not float64.
  if (typeof v === "number" && Number.isInteger(v) && (v > 0xffffffff || v < -0x100000000)) return BigInt(v);
  return v;
}

/**
 * `decimals`: JSON numbers written with a fixed number of decimals, as a
 * datasheet's "number, one decimal" (GD-2 `lel`: 20 goes out as `20.0`).
 */
export function encodeUplink(
  fields: UplinkFields,
  encoding: Encoding,
  decimals: Readonly<Record<string, number>> = {},
): Buffer {
  if (encoding === "json") {
    const parts = Object.entries(fields).map(([k, v]) => {
      const d = decimals[k];
      const text =
        typeof v === "number" && d !== undefined && Number.isFinite(v) ? v.toFixed(d) : JSON.stringify(v);
      return `${JSON.stringify(k)}:${text}`;
    });
    return Buffer.from(`{${parts.join(",")}}`, "utf8");
  }
  const out: Record<string, string | number | boolean | bigint> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = toCborValue(v);
  return Buffer.from(cbor.encode(out));
}

/** Downlinks are JSON in the datasheet; accept CBOR too (told apart by the first byte, as uplinks). */
export function decodeDownlink(payload: Buffer): Record<string, unknown> | undefined {
  try {
    const first = payload[0];
    if (first === undefined) return undefined;
    const value: unknown =
      first >= 0xa0 && first <= 0xbf ? cbor.decode(payload) : JSON.parse(payload.toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
