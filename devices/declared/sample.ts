/**
 * What a declared profile's rules read: the decoded sample and the device's settings. Their own
 * module so the rules (rules/) and the transports (compile.ts) share them without a cycle.
 */
import type { PointValue } from "../modbus-decode.js";

/** What a declared profile's rules see: the decoded points (or JSON fields) by name. */
export interface DeclaredSample {
  v: Readonly<Record<string, PointValue | boolean>>;
  seq: number;
  ts: number | null;
}

/** A declared profile's device-level settings for the rules (`devices[].settings`). */
export interface DeclaredSettings {
  params: Readonly<Record<string, number>>;
}
