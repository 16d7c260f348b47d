/**
 * Scenario (a), the baseline: the same device clients and payloads -> a plain
 * embedded aedes broker (same TCP_NODELAY listener, no gateway logic) -> one
 * subscriber on the device topics. What the broker alone costs, measured in
 * the same run as the gateway so the ratio compares like with like.
 */
import { type PointResult, pointOptions, runPoint } from "./harness.js";
import type { CommonOptions } from "./options.js";

export function runBaseline(rate: number, c: CommonOptions): Promise<PointResult> {
  return runPoint(pointOptions("baseline", "baseline", rate, c));
}
