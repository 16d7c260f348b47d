/** Tables and target verdicts for bench/run.ts. */
import type { LatencySummary, PointResult } from "./harness.js";

export interface RatePoint {
  rate: number;
  baseline: PointResult;
  gateway: PointResult;
  sustained: boolean;
  reasons: string[];
}

export interface Target {
  name: string;
  measured: string;
  /** null: not measured in this run (e.g. the rate was not in --rates). */
  pass: boolean | null;
}

function table(log: (s: string) => void, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  log(line(header));
  log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) log(line(r));
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(2));
const lat = (l: LatencySummary) =>
  l.count === 0 ? ["-", "-", "-", "-"] : [ms(l.p50Ms), ms(l.p99Ms), ms(l.p999Ms), ms(l.maxMs)];

function ordered(points: RatePoint[], overload: PointResult | null): PointResult[] {
  const out: PointResult[] = [];
  for (const p of points) out.push(p.baseline, p.gateway);
  if (overload) out.push(overload);
  return out;
}

export function printTables(
  log: (s: string) => void,
  points: RatePoint[],
  overload: PointResult | null,
): void {
  const all = ordered(points, overload);
  const sustained = new Map(points.map((p) => [p.gateway, p.sustained]));
  log("Accounting (msgs: every device message; for the gateway, its telemetry publishes)");
  table(
    log,
    [
      "scenario",
      "offered/s",
      "sent/s",
      "achieved/s",
      "msgs sent",
      "lost",
      "dup",
      "conflated",
      "presses",
      "alerts lost",
      "alerts dup",
      "gen late",
      "CPU %",
      "RSS idle",
      "RSS end",
      "peak RSS",
      "runner %",
      "other %",
      "sustained",
    ],
    all.map((r) => [
      r.scenario,
      String(r.offeredRate),
      String(Math.round(r.generator.sendRate)),
      String(Math.round(r.achievedRate)),
      String(r.messages.sent),
      String(r.messages.lost),
      String(r.messages.duplicated + r.messages.unexpected),
      r.mode === "gateway" ? String(r.messages.conflated) : "-",
      String(r.alerts.sent),
      String(r.alerts.lost),
      String(r.alerts.duplicated + r.alerts.unexpected),
      String(r.generator.late),
      r.server.cpuPct.toFixed(0),
      r.server.readyRssMb.toFixed(0),
      r.server.rssMb.toFixed(0),
      r.server.maxRssMb.toFixed(0),
      r.runnerCpuPct.toFixed(0),
      r.otherCpuPct.toFixed(0),
      sustained.has(r) ? (sustained.get(r) ? "yes" : "no") : "",
    ]),
  );
  log("");
  log("Latency, ms (send -> subscriber; msgs: baseline all messages / gateway telemetry;");
  log("             P1: baseline press messages / gateway EMERGENCY_CALL alert updates)");
  table(
    log,
    [
      "scenario",
      "offered/s",
      "msgs p50",
      "p99",
      "p99.9",
      "max",
      "P1 p50",
      "p99",
      "p99.9",
      "max",
      "P1 n",
      "loop p99",
      "emitter q",
      "full GCs",
      "GC max",
    ],
    all.map((r) => [
      r.scenario,
      String(r.offeredRate),
      ...lat(r.latency.messages),
      ...lat(r.latency.p1),
      String(r.latency.p1.count),
      r.server.eventLoopP99Ms.toFixed(1),
      String(r.server.emitterQueueMax),
      String(r.server.gc.major),
      r.server.gc.maxPauseMs.toFixed(1),
    ]),
  );
  const noisy = all.filter((r) => r.otherCpuPct > 20);
  if (noisy.length > 0) {
    log("");
    log(
      `noise: other processes used > 20% of a core during ${noisy.map((r) => `${r.scenario} ${r.offeredRate}/s`).join(", ")}; ` +
        "those figures are disturbed",
    );
  }
  const failing = points.filter((p) => !p.sustained);
  if (failing.length > 0) {
    log("");
    for (const p of failing) log(`not sustained at ${p.rate}/s: ${p.reasons.join("; ")}`);
  }
}

export function targets(points: RatePoint[], overload: PointResult | null): Target[] {
  const out: Target[] = [];
  const at10k = points.find((p) => p.rate === 10_000);
  if (at10k) {
    const base = at10k.baseline.latency.messages.p99Ms;
    const p1 = at10k.gateway.latency.p1.p99Ms;
    const ratio = base > 0 ? p1 / base : Number.POSITIVE_INFINITY;
    out.push({
      name: "at 10,000 msg/s gateway P1 alert p99 <= 1.5x baseline p99",
      measured: `${p1.toFixed(2)} ms / ${base.toFixed(2)} ms = ${ratio.toFixed(2)}x`,
      pass: ratio <= 1.5 && at10k.gateway.latency.p1.count > 0,
    });
  } else
    out.push({
      name: "at 10,000 msg/s P1 p99 <= 1.5x baseline",
      measured: "10000 not in --rates",
      pass: null,
    });

  const at20k = points.find((p) => p.rate === 20_000);
  if (at20k) {
    const g = at20k.gateway;
    const nothingLost =
      g.messages.lost === 0 &&
      g.messages.duplicated === 0 &&
      g.alerts.lost === 0 &&
      g.alerts.duplicated === 0;
    out.push({
      name: "sustains 20,000 msg/s with nothing lost (conflated counts as lost)",
      measured:
        `achieved ${Math.round(g.achievedRate)}/s, telemetry lost ${g.messages.lost} ` +
        `(conflated ${g.messages.conflated}), alerts lost ${g.alerts.lost}` +
        (at20k.sustained ? "" : ` [${at20k.reasons.join("; ")}]`),
      pass: at20k.sustained && nothingLost,
    });
  } else out.push({ name: "sustains 20,000 msg/s", measured: "20000 not in --rates", pass: null });

  if (overload) {
    const lost = overload.alerts.lost;
    const p99 = overload.latency.p1.p99Ms;
    out.push({
      name: `overload (${overload.offeredRate} msg/s): zero alerts lost and P1 p99 < 20 ms`,
      measured:
        `alerts lost ${lost} of ${overload.alerts.sent}, P1 p99 ${p99.toFixed(2)} ms, ` +
        `telemetry conflated ${overload.messages.conflated}, unexplained telemetry loss ${overload.messages.unexplainedLoss}`,
      pass: lost === 0 && overload.alerts.unexpected === 0 && p99 < 20 && overload.latency.p1.count > 0,
    });
  } else out.push({ name: "overload", measured: "skipped (--no-overload)", pass: null });

  const gws = [...points.map((p) => p.gateway), ...(overload ? [overload] : [])];
  if (gws.length > 0) {
    const peak = Math.max(...gws.map((g) => g.server.maxRssMb));
    const idle = Math.max(...gws.map((g) => g.server.readyRssMb));
    const registered = gws[0]?.server.gateway?.registered ?? 0;
    out.push({
      name: `gateway RSS < 150 MB with ${registered} registered devices`,
      measured: `peak ${peak.toFixed(0)} MB over all gateway points incl. overload (${idle.toFixed(0)} MB once started, before load)`,
      pass: peak < 150 && registered >= 10_000,
    });
  }
  return out;
}
