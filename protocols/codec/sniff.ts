/**
 * JSON or CBOR, told apart as the datasheets say: the MQTT 5 content-type property when present,
 * else the first byte (`{` is JSON; a CBOR map starts with a byte from 0xA0 to 0xBF). A module of
 * its own, without cbor-x: the device listener's worker thread uses it (protocols/threads.ts).
 */
export type PayloadEncoding = "json" | "cbor";

const OPEN_BRACE = 0x7b;
const CBOR_MAP_FIRST = 0xa0;
const CBOR_MAP_LAST = 0xbf;

export function sniffEncoding(payload: Uint8Array, contentType?: string): PayloadEncoding | null {
  if (contentType === "application/json") return "json";
  if (contentType === "application/cbor") return "cbor";
  const first = payload[0];
  if (first === undefined) return null;
  if (first === OPEN_BRACE) return "json";
  if (first >= CBOR_MAP_FIRST && first <= CBOR_MAP_LAST) return "cbor";
  return null;
}
