/**
 * Conditions a sample decides by itself (no setting, no history): a bit, an equality or an
 * inequality. Thresholds need the device's settings and memory (limits.ts, evaluate.ts).
 */
import type { DeclaredSample } from "../sample.js";
import type { Condition, ConditionPart } from "../schema.js";
import { type Alarm, single } from "./codes.js";

export const bitOf = (s: DeclaredSample, point: string, bit: string | number): boolean => {
  const v = s.v[point];
  if (typeof v === "object" && v !== null) return (v as Record<string, boolean>)[bit as string] === true;
  return typeof v === "number" && typeof bit === "number" && Math.floor(v / 2 ** bit) % 2 === 1;
};

/** A bit or (in)equality; a point without a value (never received) is neither equal nor unequal. */
export const holds = (w: Condition | ConditionPart, s: DeclaredSample): boolean | null => {
  const point = w.point!;
  if (w.bit !== undefined) return bitOf(s, point, w.bit);
  if (w.equals !== undefined) return s.v[point] === w.equals;
  if (w.notEquals !== undefined) return s.v[point] !== undefined && s.v[point] !== w.notEquals;
  return null;
};

/** Conditions that need no setting or history: bits and (in)equality (for the lane); null for others. */
export const raw = (a: Alarm, s: DeclaredSample): boolean | null => {
  const w = single(a);
  return w === null ? null : holds(w, s);
};

/** A single `above` / `below` condition: one with a limit and a deadband. */
export const isThreshold = (a: Alarm) => {
  const w = single(a);
  return w !== null && w.bit === undefined && w.equals === undefined && w.notEquals === undefined;
};
