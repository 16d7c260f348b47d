/**
 * JSON or CBOR, told apart as the datasheets say: the MQTT 5 content-type
 * property when present, else the first byte (`{` is JSON; a CBOR map starts
 * with a byte from 0xA0 to 0xBF).
 */
import { addExtension, decode as cborDecode, Tag } from "cbor-x";
import { type PayloadEncoding, sniffEncoding } from "./sniff.js";

/**
 * Tag 1 (epoch-based date, RFC 8949 §3.4.2) holds an integer or a float, and a device may write
 * its epoch as a uint64 (`ts`, datasheets). cbor-x's own tag 1 reader throws on a uint64 (a
 * bigint: "Cannot mix BigInt"), which refused a well-formed pendant press as `malformed`. The same
 * reading without the throw: a Date for any number, the bare tag for anything else. Either way the
 * field is not the datasheet's type, so a profile drops it or refuses it by its own rules.
 * cbor-x keeps one tag table per process; this entry only replaces a throw. Decoding only: without
 * a `Class` cbor-x's addExtension leaves encoding alone (its typings ask for both).
 */
const epochDate = {
  tag: 1,
  decode: (epochSeconds: unknown): Date | Tag =>
    typeof epochSeconds === "number" || typeof epochSeconds === "bigint"
      ? new Date(Math.round(Number(epochSeconds) * 1000))
      : new Tag(epochSeconds, 1),
};
addExtension(epochDate as unknown as Parameters<typeof addExtension>[0]);

/**
 * Tags 2 and 3 (unsigned and negative bignum, RFC 8949 §3.4.3) hold a byte string. cbor-x's
 * readers take any content and read what is not a byte string as no bytes: tag 2 around the
 * integer 5 (or an array, a text) was the bignum 0, tag 3 around a text -1, so a `seq` so written
 * passed as 0: a silently wrong value. The same reading for a byte string; anything else stays
 * the bare tag, not the datasheet's type (a side field dropped, an essential one refused).
 */
function bignum(tag: 2 | 3) {
  return {
    tag,
    decode: (bytes: unknown): bigint | Tag => {
      if (!(bytes instanceof Uint8Array)) return new Tag(bytes, tag);
      const n =
        bytes.length === 0
          ? 0n
          : BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`);
      return tag === 2 ? n : -1n - n;
    },
  };
}
addExtension(bignum(2) as unknown as Parameters<typeof addExtension>[0]);
addExtension(bignum(3) as unknown as Parameters<typeof addExtension>[0]);

export { type PayloadEncoding, sniffEncoding };

export type DecodeResult =
  | { ok: true; value: unknown; encoding: PayloadEncoding }
  | { ok: false; reason: "empty" | "unknown-encoding" | "malformed"; detail: string };

export function decodePayload(payload: Buffer, contentType?: string): DecodeResult {
  if (payload.length === 0) return { ok: false, reason: "empty", detail: "empty payload" };
  const encoding = sniffEncoding(payload, contentType);
  if (encoding === null) {
    return {
      ok: false,
      reason: "unknown-encoding",
      detail: `first byte 0x${(payload[0] as number).toString(16).padStart(2, "0")} is neither '{' (JSON) nor a CBOR map (0xA0-0xBF)`,
    };
  }
  try {
    const value = encoding === "json" ? JSON.parse(payload.toString("utf8")) : cborDecode(payload);
    return { ok: true, value, encoding };
  } catch (err) {
    return { ok: false, reason: "malformed", detail: `${encoding}: ${(err as Error).message}` };
  }
}
