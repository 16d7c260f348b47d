/**
 * JSON or CBOR, told apart as the datasheets say: the MQTT 5 content-type
 * property when present, else the first byte (`{` is JSON; a CBOR map starts
 * with a byte from 0xA0 to 0xBF).
 */
import { decode as cborDecode } from "cbor-x";
import { type PayloadEncoding, sniffEncoding } from "./sniff.js";

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
