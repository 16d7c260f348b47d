/**
 * Scenario (c), overload: twice the highest rate the gateway sustained in (b).
 * Telemetry may be conflated (the gateway counts what it replaced); what must
 * hold is that no alert is lost and P1 latency stays low.
 */
import { type PointResult, pointOptions, runPoint } from "./harness.js";
import type { CommonOptions } from "./options.js";

/** Twice the highest sustained rate; if none was sustained, twice the lowest rate tried. */
export function overloadRate(maxSustained: number, rates: readonly number[]): number {
  return 2 * (maxSustained > 0 ? maxSustained : Math.min(...rates));
}

export function runOverload(rate: number, c: CommonOptions): Promise<PointResult> {
  return runPoint(pointOptions("overload", "gateway", rate, c));
}
