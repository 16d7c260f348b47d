/**
 * Scenario (c), overload: twice the highest rate the gateway sustained in (b).
 * Telemetry may be conflated (the gateway counts what it replaced); what must
 * hold is that no alert is lost and P1 latency stays low.
 */
import { type PointResult, runPoint } from "./harness.js";
import type { CommonOptions } from "./options.js";

/** Twice the highest sustained rate; if none was sustained, twice the lowest rate tried. */
export function overloadRate(maxSustained: number, rates: readonly number[]): number {
  return 2 * (maxSustained > 0 ? maxSustained : Math.min(...rates));
}

export function runOverload(rate: number, c: CommonOptions): Promise<PointResult> {
  return runPoint({
    scenario: "overload",
    mode: "gateway",
    rate,
    durationS: c.durationS,
    warmupS: c.warmupS,
    connections: c.connections,
    registered: c.registered,
    alarmFraction: c.alarmFraction,
    seed: c.seed,
    quietPct: c.quietPct,
    ...(c.profileDir ? { cpuProfDir: c.profileDir } : {}),
  });
}
