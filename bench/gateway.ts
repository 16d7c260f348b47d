/**
 * Scenario (b), the gateway: the same clients send datasheet-format EC-200 /
 * DS-10 messages (1 % presses) -> gateway (decode, normalise, ring, alert
 * engine) -> alert and telemetry topics -> one operator subscriber. 10,000
 * devices are registered; only the load connections send.
 */
import { type PointResult, pointOptions, runPoint } from "./harness.js";
import type { CommonOptions } from "./options.js";

/** What "the gateway sustained this rate" means; printed with the results. */
export const SUSTAINED = {
  minAchievedFraction: 0.98,
  maxP99Ms: 100,
  maxMaxMs: 1_000,
  /** Telemetry the gateway conflated by its own policy (and counted), as a fraction of messages. */
  maxConflatedFraction: 0.02,
} as const;

export const SUSTAINED_TEXT =
  `sustained = achieved >= ${SUSTAINED.minAchievedFraction * 100}% of offered; no alert lost or duplicated; ` +
  `no telemetry lost or duplicated except what the gateway itself reports as conflated, at most ` +
  `${SUSTAINED.maxConflatedFraction * 100}% of messages; telemetry and P1 p99 <= ${SUSTAINED.maxP99Ms} ms, ` +
  `max <= ${SUSTAINED.maxMaxMs} ms; and the generator really offered the load (send rate >= ` +
  `${SUSTAINED.minAchievedFraction * 100}% of offered). The 20,000 msg/s target is stricter: nothing lost ` +
  "means nothing conflated either.";

export function sustainedVerdict(r: PointResult): { sustained: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (r.server.crashed !== undefined) reasons.push(`the server crashed (${r.server.crashed})`);
  const min = SUSTAINED.minAchievedFraction * r.offeredRate;
  if (r.generator.sendRate < min)
    reasons.push(`generator offered only ${Math.round(r.generator.sendRate)}/s`);
  if (r.achievedRate < min) reasons.push(`achieved ${Math.round(r.achievedRate)}/s`);
  const m = r.messages;
  if (m.unexplainedLoss > 0) reasons.push(`${m.unexplainedLoss} telemetry lost beyond conflation`);
  if (m.conflated > SUSTAINED.maxConflatedFraction * m.sent)
    reasons.push(`${m.conflated} telemetry conflated (${((100 * m.conflated) / m.sent).toFixed(1)}%)`);
  if (m.duplicated > 0 || m.unexpected > 0) reasons.push(`${m.duplicated} dup, ${m.unexpected} unexpected`);
  if (r.alerts.lost > 0 || r.alerts.duplicated > 0 || r.alerts.unexpected > 0)
    reasons.push(
      `alerts: ${r.alerts.lost} lost, ${r.alerts.duplicated} dup, ${r.alerts.unexpected} unexpected`,
    );
  for (const [name, l] of [
    ["telemetry", r.latency.messages],
    ["P1", r.latency.p1],
  ] as const) {
    if (l.p99Ms > SUSTAINED.maxP99Ms) reasons.push(`${name} p99 ${l.p99Ms.toFixed(1)} ms`);
    if (l.maxMs > SUSTAINED.maxMaxMs) reasons.push(`${name} max ${l.maxMs.toFixed(0)} ms`);
  }
  if (r.receiptOverflow > 0) reasons.push(`${r.receiptOverflow} receipts beyond the log bound`);
  return { sustained: reasons.length === 0, reasons };
}

export function runGateway(rate: number, c: CommonOptions): Promise<PointResult> {
  return runPoint(pointOptions("gateway", "gateway", rate, c));
}
