/** Field checks shared by the MQTT device profiles. Each returns an error text or null. */

const UINT32_MAX = 0xffff_ffff;

export function asObject(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

/** CBOR may carry a uint64 as a bigint; epoch milliseconds fit a double exactly. */
export function asInteger(value: unknown): number | null {
  if (typeof value === "number") return Number.isInteger(value) ? value : null;
  if (typeof value === "bigint" && value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(value);
  return null;
}

export function checkUint32(obj: Record<string, unknown>, field: string): string | null {
  const v = asInteger(obj[field]);
  return v === null || v < 0 || v > UINT32_MAX ? `${field} must be an integer 0..2^32-1` : null;
}

export function checkIntRange(
  obj: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): string | null {
  const v = asInteger(obj[field]);
  return v === null || v < min || v > max ? `${field} must be an integer ${min}..${max}` : null;
}

/** The header every MQTT datasheet message carries: seq (uint32) and ts (epoch ms, 0 when the clock is lost). */
export function checkHeader(obj: Record<string, unknown>): string | null {
  const ts = asInteger(obj.ts);
  return checkUint32(obj, "seq") ?? (ts === null || ts < 0 ? "ts must be a non-negative integer" : null);
}
