/**
 * Field checks shared by the MQTT device profiles. Each returns the problem
 * or null: `bad-field` when the value has the wrong type, `out-of-range` when
 * it is an integer outside the datasheet's range.
 */

import { type Rejection, reject } from "../core/index.js";

const UINT32_MAX = 0xffff_ffff;
/**
 * Datasheets: `ts` is a uint64 of epoch ms. A JSON number is exact only up to
 * 2^53-1 (RFC 7493 §2.2), and so is a double after decoding: above it two
 * timestamps cannot be told apart, so that is the ceiling (the year 285,616).
 */
export const TS_MAX = Number.MAX_SAFE_INTEGER;

/** A field's problem: `bad-field` (wrong type) or `out-of-range`, in the one refusal shape. */
export type FieldProblem = Rejection;

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

function show(value: unknown): string {
  return typeof value === "bigint" ? `${value}` : String(value);
}

/**
 * An integer field within [min, max]. `range` names the range in the detail
 * (e.g. "0..2^32-1"). A bigint beyond 2^53-1 is an integer out of range.
 */
export function checkIntRange(
  obj: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
  range = `${min}..${max}`,
): FieldProblem | null {
  const raw = obj[field];
  const v = asInteger(raw);
  if (v === null) {
    if (typeof raw === "bigint" || (typeof raw === "number" && Number.isInteger(raw)))
      return reject("out-of-range", `${field} ${show(raw)} is outside ${range}`);
    return reject("bad-field", `${field} must be an integer ${range}`);
  }
  return v < min || v > max ? reject("out-of-range", `${field} ${v} is outside ${range}`) : null;
}

/** The header every MQTT datasheet message carries: seq (uint32) and ts (epoch ms, 0 when the clock is lost). */
export function checkHeader(obj: Record<string, unknown>): FieldProblem | null {
  return (
    checkIntRange(obj, "seq", 0, UINT32_MAX, "0..2^32-1 (uint32)") ??
    checkIntRange(obj, "ts", 0, TS_MAX, "0..2^53-1 (epoch ms)")
  );
}

export function badField(detail: string): FieldProblem {
  return reject("bad-field", detail);
}
