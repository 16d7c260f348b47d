/**
 * Field checks shared by the MQTT device profiles. Each returns the problem
 * or null: `bad-field` when the value has the wrong type, `out-of-range` when
 * it is an integer outside the datasheet's range.
 */

import { type Rejection, reject } from "../core/index.js";

const UINT32_MAX = 0xffff_ffff;
/**
 * Datasheets: `ts` is a uint64 of epoch ms, "may be skewed or zero". A JSON
 * number is exact only up to 2^53-1 (RFC 7493 §2.2): above it the value is a
 * valid uint64 the gateway cannot read exactly, so it is taken as an invalid
 * device clock (`deviceClock`), never as a reason to refuse the message.
 */
export const TS_MAX = Number.MAX_SAFE_INTEGER;
const UINT64_MAX = (1n << 64n) - 1n;
/** 2^64-1 as a JSON number decodes to 2^64, the nearest double: still the datasheet's uint64. */
const UINT64_MAX_DOUBLE = 2 ** 64;

/**
 * A field's problem: `bad-field` (wrong type, or absent), `out-of-range`, or `missing` (a side
 * field not sent, `sideField`), in the one refusal shape.
 */
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
  if (raw === undefined) return reject("bad-field", `${field} is missing (an integer ${range})`);
  const v = asInteger(raw);
  if (v === null) {
    if (typeof raw === "bigint" || (typeof raw === "number" && Number.isInteger(raw)))
      return reject("out-of-range", `${field} ${show(raw)} is outside ${range}`);
    return reject("bad-field", `${field} must be an integer ${range}`);
  }
  return v < min || v > max ? reject("out-of-range", `${field} ${v} is outside ${range}`) : null;
}

/** `ts` a uint64 (datasheets), or the problem: `bad-field` when not an integer, `out-of-range` beyond uint64. */
export function checkTs(obj: Record<string, unknown>): FieldProblem | null {
  const raw = obj.ts;
  const range = "0..2^64-1 (uint64 epoch ms)";
  if (raw === undefined) return reject("bad-field", `ts is missing (an integer ${range})`);
  if (typeof raw === "bigint")
    return raw >= 0n && raw <= UINT64_MAX ? null : reject("out-of-range", `ts ${raw} is outside ${range}`);
  if (typeof raw !== "number" || !Number.isInteger(raw))
    return reject("bad-field", `ts must be an integer ${range}`);
  return raw >= 0 && raw <= UINT64_MAX_DOUBLE
    ? null
    : reject("out-of-range", `ts ${raw} is outside ${range}`);
}

/** The device clock from a `ts`: itself when exact (0..2^53-1), else 0, the datasheets' "no valid clock". */
export function deviceClock(raw: unknown): number {
  const v = asInteger(raw);
  return v !== null && v >= 0 && v <= TS_MAX ? v : 0;
}

/** The header every MQTT datasheet message carries: seq (uint32) and ts (uint64 epoch ms, 0 when the clock is lost). */
export function checkHeader(obj: Record<string, unknown>): FieldProblem | null {
  return checkIntRange(obj, "seq", 0, UINT32_MAX, "0..2^32-1 (uint32)") ?? checkTs(obj);
}

/** `seq` alone: what identifies a message (re-sends, order), so a message without a valid one is refused. */
export function checkSeq(obj: Record<string, unknown>): FieldProblem | null {
  return checkIntRange(obj, "seq", 0, UINT32_MAX, "0..2^32-1 (uint32)");
}

/**
 * A side field (battery, signal, device clock) of a message whose point is
 * elsewhere (a press, a fall, a tamper): its problem never refuses the
 * message (a gateway for emergency calls must not drop a press for a battery
 * reading); the field is left out and the problem counted as `field-...`.
 */
export interface DroppedField {
  field: string;
  /** `field-out-of-range`, `field-bad-type` or `field-missing` (not sent at all), the counters' reason. */
  reason: "field-out-of-range" | "field-bad-type" | "field-missing";
  detail: string;
}

/** The problem of a side field as a dropped field, or null when it is fine. */
export function dropped(field: string, problem: FieldProblem | null): DroppedField | null {
  if (problem === null) return null;
  return {
    field,
    reason:
      problem.reason === "out-of-range"
        ? "field-out-of-range"
        : problem.reason === "missing"
          ? "field-missing"
          : "field-bad-type",
    detail: problem.detail,
  };
}

/**
 * A side field not carried at all (a `null` is carried, of the wrong type): `missing`, counted as
 * `field-missing`, not as a field of the wrong type. The datasheets say every message has `ts` and
 * `bat` (and the EC-200's `rssi`), so one without it is a device fault of its own.
 */
export function missingField(obj: Record<string, unknown>, field: string): FieldProblem | null {
  return obj[field] === undefined ? reject("missing", `${field} is missing`) : null;
}

/** No field dropped: shared, so that a clean message allocates no list. */
export const NO_DROPS: readonly DroppedField[] = Object.freeze([]);

/** The side fields' problems, as dropped fields. */
export function sideFields(checks: readonly (readonly [string, FieldProblem | null])[]): DroppedField[] {
  const out: DroppedField[] = [];
  for (const [field, problem] of checks) {
    const d = dropped(field, problem);
    if (d !== null) out.push(d);
  }
  return out;
}

export function badField(detail: string): FieldProblem {
  return reject("bad-field", detail);
}

/** An essential field's refusal (`bad-field`), saying so when the message does not carry it at all. */
export function badFieldOf(obj: Record<string, unknown>, field: string, must: string): FieldProblem {
  return reject(
    "bad-field",
    obj[field] === undefined ? `${field} is missing (${must})` : `${field} must be ${must}`,
  );
}
