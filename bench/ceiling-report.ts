/**
 * The ceiling suite's figures and verdicts (pure, unit-tested in
 * ceiling-report.test.ts): ceilings and their ratio, P1 p99 of both sides at
 * 50 % and 80 % of the broker's ceiling, the overload point at twice the
 * gateway's ceiling, telemetry conflated below the gateway's ceiling. Absolute
 * rates are for information only (machines of this kind differ by 2x); the
 * targets are ratios within one run.
 */
import { disturbedPct, NOISY_PCT } from "./accounting.js";
import type { SearchState } from "./ceiling-search.js";
import type { PointResult } from "./harness.js";
import { ratioInterval, samplesOf } from "./interval.js";
import { pooled } from "./latency.js";
import type { Target } from "./report.js";

/** What the ceiling suite must show (the "What it must show"). */
export const CEILING_TARGETS = {
  minCeilingRatio: 1.3,
  maxP1RatioAt80: 1.2,
  /** Overload P1 p99 at most this many times the gateway's P1 p99 at 50 % load. */
  maxOverloadP1Factor: 2,
  maxRssMb: 150,
} as const;

export interface CeilingProbe {
  side: "broker" | "gateway";
  rate: number;
  sustained: boolean;
  reasons: string[];
  point: PointResult;
}

export interface LoadPoint {
  /** Share of the broker's ceiling (0.5, 0.8). */
  share: number;
  rate: number;
  /** The first broker / gateway pair at this rate. */
  broker: PointResult;
  gateway: PointResult;
  /**
   * The pairs after it, interleaved the same way (`--load-pairs`): the P1 figures at this rate are
   * each side's P1 samples of every undisturbed pair pooled, as the journal's pairs are.
   */
  more?: Array<{ broker: PointResult; gateway: PointResult }>;
}

/** The 10,000-connected-devices point (bench/connections.ts); null when not run. */
export interface ConnectedDevices {
  /** The higher of the two readings: after the last connection, and after the realistic load. */
  rssMb: number;
  devices: number;
  /** The realistic load on them (bench/connected-load.ts); null when it was not run. */
  load: {
    seconds: number;
    presses: number;
    alertsMissing: number;
    p1P50Ms: number | null;
    p1P99Ms: number | null;
  } | null;
}

export interface CeilingInput {
  broker: Extract<SearchState, { done: true }>;
  gateway: Extract<SearchState, { done: true }>;
  probes: CeilingProbe[];
  loads: LoadPoint[];
  overload: PointResult | null;
  /**
   * The floor (bench/floor.ts, the least a server can do) at the 50 % rate and at the overload
   * rate, for information: what this machine and the bench's generator allow there.
   */
  floor?: { at50: PointResult | null; overload: PointResult | null };
  connected: ConnectedDevices | null;
  /** Why the connected-devices point is missing (when `connected` is null). */
  connectedReason: string;
}

/** The top-level JSON fields, and the per-figure detail behind them. */
export interface CeilingSummary {
  brokerCeiling: number;
  gatewayCeiling: number;
  /** gateway / broker; null when the broker sustained no rate. */
  ceilingRatio: number | null;
  p1P99At50Ms: number | null;
  brokerP1P99At50Ms: number | null;
  p1P99At80Ms: number | null;
  brokerP1P99At80Ms: number | null;
  /** gateway P1 p99 / broker P1 p99 at 80 % of the broker's ceiling. */
  p1RatioAt80: number | null;
  /**
   * 90 % bootstrap interval of p1RatioAt80 over its pairs (bench/interval.ts): whether the verdict
   * holds with a margin; null with fewer than 2 undisturbed pairs.
   */
  p1RatioAt80Interval: { low: number; high: number } | null;
  /** Broker / gateway pairs pooled at the 50 % and 80 % points (undisturbed ones; all when none is). */
  loadPairsPooled: { at50: number; at80: number };
  overloadRate: number | null;
  /** Presses without their alert at the overload point, at the subscriber or the console (the more). */
  overloadAlertsLost: number | null;
  overloadP1P99Ms: number | null;
  /**
   * The gateway's P1 p99 at an operator console (its own connection, the P1 alert topics only, its
   * own thread: harness.ts, alert-console.ts), at 50 % and 80 % of the broker's ceiling and at
   * the overload point. The overload target is judged on these; the figures above are at the
   * point's subscriber of every topic, which shares the bench's loop with the load generator.
   */
  consoleP1P99At50Ms: number | null;
  consoleP1P99At80Ms: number | null;
  overloadConsoleP1P99Ms: number | null;
  /** The floor's console P1 p99 at the same two rates (information, no target). */
  floorConsoleP1P99At50Ms: number | null;
  floorOverloadConsoleP1P99Ms: number | null;
  /** Telemetry the gateway conflated in its points at or below its ceiling (probes and load points). */
  telemetryConflatedBelowCeiling: number;
  connectedDevicesRssMb: number | null;
  connectedDevicesRssMbReason: string | null;
  /** P1 p99, press to alert, with every device on its own connection at a site's rate. */
  connectedDevicesP1P99Ms: number | null;
  /** Presses of that load whose alert never came. */
  connectedDevicesAlertsMissing: number | null;
  /** Highest other-process load of any point of the suite, % of a core. */
  maxOtherPct: number;
  /** The most the hypervisor took from the machine during a point, % of one core (machine-load.ts). */
  maxStealPct: number;
}

const p1 = (r: PointResult | undefined) => (r && r.latency.p1.count > 0 ? r.latency.p1.p99Ms : null);
const consoleP1 = (r: PointResult | undefined) =>
  r?.console && r.console.p1.count > 0 ? r.console.p1.p99Ms : null;
/** Presses without their alert: at the subscriber, or at the console when there was one (the more). */
const alertsLost = (r: PointResult) => Math.max(r.alerts.lost, r.console?.alerts.lost ?? 0);
const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);

/** Every pair of a load point, the first one included. */
export function loadPairs(l: LoadPoint): Array<{ broker: PointResult; gateway: PointResult }> {
  return [{ broker: l.broker, gateway: l.gateway }, ...(l.more ?? [])];
}

/** The pairs whose figures are pooled: the undisturbed ones, or all of them when none is. */
export function pooledPairs(l: LoadPoint): Array<{ broker: PointResult; gateway: PointResult }> {
  const all = loadPairs(l);
  const quiet = all.filter((x) => Math.max(disturbedPct(x.broker), disturbedPct(x.gateway)) <= NOISY_PCT);
  return quiet.length > 0 ? quiet : all;
}

/** P1 p99 over points: the point's own with one, the pooled samples' with more. */
function pooledP1(ps: PointResult[], at: "subscriber" | "console"): number | null {
  if (ps.length === 1) return at === "console" ? consoleP1(ps[0]) : p1(ps[0]);
  const hs = ps.flatMap((r) =>
    at === "console"
      ? r.console && r.console.p1.count > 0
        ? [r.console.p1Histogram]
        : []
      : [r.latency.p1Histogram],
  );
  if (hs.length === 0) return null;
  const sum = pooled(hs);
  return sum.count > 0 ? sum.p99Ms : null;
}

/** Interval of gateway / broker P1 p99 over the pairs (null with fewer than 2). */
function pairsInterval(pairs: Array<{ broker: PointResult; gateway: PointResult }>) {
  if (pairs.length < 2) return null;
  return ratioInterval(
    pairs.map((x) => ({
      off: samplesOf(x.broker.latency.p1Histogram),
      on: samplesOf(x.gateway.latency.p1Histogram),
    })),
  );
}

export function ceilingSummary(x: CeilingInput): CeilingSummary {
  const at = (share: number) => x.loads.find((l) => l.share === share);
  const gwPoints = [
    ...x.probes.filter((p) => p.side === "gateway").map((p) => p.point),
    ...x.loads.flatMap((l) => loadPairs(l).map((q) => q.gateway)),
  ];
  const conflated = gwPoints
    .filter((p) => p.offeredRate <= x.gateway.ceiling)
    .reduce((s, p) => s + p.messages.conflated, 0);
  const all = [
    ...x.probes.map((p) => p.point),
    ...x.loads.flatMap((l) => loadPairs(l).flatMap((q) => [q.broker, q.gateway])),
    ...(x.overload ? [x.overload] : []),
  ];
  const l50 = at(0.5);
  const l80 = at(0.8);
  const p50 = l50 ? pooledPairs(l50) : [];
  const p80 = l80 ? pooledPairs(l80) : [];
  const side = (ps: typeof p50, s: "broker" | "gateway", where: "subscriber" | "console" = "subscriber") =>
    ps.length === 0
      ? null
      : pooledP1(
          ps.map((q) => q[s]),
          where,
        );
  const g50 = side(p50, "gateway");
  const g80 = side(p80, "gateway");
  const b80 = side(p80, "broker");
  return {
    brokerCeiling: x.broker.ceiling,
    gatewayCeiling: x.gateway.ceiling,
    ceilingRatio: x.broker.ceiling > 0 ? x.gateway.ceiling / x.broker.ceiling : null,
    p1P99At50Ms: g50,
    brokerP1P99At50Ms: side(p50, "broker"),
    p1P99At80Ms: g80,
    brokerP1P99At80Ms: b80,
    p1RatioAt80: ratio(g80, b80),
    p1RatioAt80Interval: pairsInterval(p80),
    loadPairsPooled: { at50: p50.length, at80: p80.length },
    overloadRate: x.overload?.offeredRate ?? null,
    overloadAlertsLost: x.overload ? alertsLost(x.overload) : null,
    overloadP1P99Ms: p1(x.overload ?? undefined),
    consoleP1P99At50Ms: side(p50, "gateway", "console"),
    consoleP1P99At80Ms: side(p80, "gateway", "console"),
    overloadConsoleP1P99Ms: consoleP1(x.overload ?? undefined),
    floorConsoleP1P99At50Ms: consoleP1(x.floor?.at50 ?? undefined),
    floorOverloadConsoleP1P99Ms: consoleP1(x.floor?.overload ?? undefined),
    telemetryConflatedBelowCeiling: conflated,
    connectedDevicesRssMb: x.connected?.rssMb ?? null,
    connectedDevicesRssMbReason: x.connected ? null : x.connectedReason,
    connectedDevicesP1P99Ms: x.connected?.load?.p1P99Ms ?? null,
    connectedDevicesAlertsMissing: x.connected?.load?.alertsMissing ?? null,
    maxOtherPct: Math.max(0, ...all.map((p) => p.otherCpuPct)),
    maxStealPct: Math.max(0, ...all.map((p) => p.stealPct)),
  };
}

/**
 * The verdicts. A figure from points that other processes or the hypervisor's steal disturbed
 * (> NOISY_PCT of a core) is printed with that note and gets no verdict (n/a), as the journal's do.
 */
export function ceilingTargets(s: CeilingSummary, x: CeilingInput): Target[] {
  const T = CEILING_TARGETS;
  const noisy = (ps: PointResult[]) => {
    const worst = Math.max(0, ...ps.map(disturbedPct));
    return worst > NOISY_PCT
      ? ` [disturbed: other processes or steal used up to ${worst.toFixed(0)} % of a core]`
      : "";
  };
  const f = (v: number | null, d = 2) => (v === null ? "-" : v.toFixed(d));
  const out: Target[] = [];

  const probeNote = noisy(x.probes.map((p) => p.point));
  out.push({
    name: `gateway ceiling / broker ceiling >= ${T.minCeilingRatio}`,
    measured:
      `${s.gatewayCeiling} / ${s.brokerCeiling} msg/s = ${f(s.ceilingRatio)}` +
      (x.broker.why === "probe budget spent" || x.gateway.why === "probe budget spent"
        ? " (a bracket was not closed: probe budget spent)"
        : "") +
      probeNote,
    pass: s.ceilingRatio === null || probeNote ? null : s.ceilingRatio >= T.minCeilingRatio,
  });

  const l80 = x.loads.find((l) => l.share === 0.8);
  const n80 = l80 ? noisy(pooledPairs(l80).flatMap((q) => [q.broker, q.gateway])) : "";
  const i80 = s.p1RatioAt80Interval;
  const pairs80 = l80 ? loadPairs(l80).length : 0;
  out.push({
    name: `P1 p99 at 80 % of the broker's ceiling <= ${T.maxP1RatioAt80}x the broker's`,
    measured: l80
      ? `at ${l80.rate} msg/s: ${f(s.p1P99At80Ms)} ms / ${f(s.brokerP1P99At80Ms)} ms = ${f(s.p1RatioAt80)}x` +
        (pairs80 > 1 ? ` (${s.loadPairsPooled.at80} of ${pairs80} pairs pooled)` : "") +
        (i80 === null
          ? ""
          : `; 90 % interval ${f(i80.low)}-${f(i80.high)}x: ${
              i80.high <= T.maxP1RatioAt80
                ? "within the target"
                : i80.low > T.maxP1RatioAt80
                  ? "above the target"
                  : "the target inside it, no margin"
            }`) +
        n80
      : "not measured (no broker ceiling)",
    pass: s.p1RatioAt80 === null || n80 ? null : s.p1RatioAt80 <= T.maxP1RatioAt80,
  });

  const l50 = x.loads.find((l) => l.share === 0.5);
  const nOver = x.overload ? noisy([x.overload, ...(l50 ? pooledPairs(l50).map((q) => q.gateway) : [])]) : "";
  // Judged at the console when the points had one (every gateway point since the console was added).
  const atConsole = s.overloadConsoleP1P99Ms !== null && s.consoleP1P99At50Ms !== null;
  const over = atConsole ? s.overloadConsoleP1P99Ms : s.overloadP1P99Ms;
  const at50 = atConsole ? s.consoleP1P99At50Ms : s.p1P99At50Ms;
  const lost = s.overloadAlertsLost ?? 0;
  out.push({
    name: `at 2x the gateway's ceiling: 0 alerts lost, P1 p99 <= ${T.maxOverloadP1Factor}x its value at 50 % load`,
    measured: x.overload
      ? `${x.overload.offeredRate} msg/s: alerts lost ${lost} of ${x.overload.alerts.sent}, ` +
        `P1 p99 ${f(over)} ms against ${f(at50)} ms at 50 %` +
        (atConsole
          ? ` at the operator console (at the subscriber of every topic: ${f(s.overloadP1P99Ms)} ms against ${f(s.p1P99At50Ms)} ms)`
          : "") +
        `, telemetry conflated ${x.overload.messages.conflated}, offered ${Math.round(x.overload.generator.sendRate)} msg/s${nOver}`
      : "skipped",
    pass:
      !x.overload || nOver || over === null || at50 === null
        ? x.overload && lost > 0
          ? false // a lost alert fails whatever the noise
          : null
        : lost === 0 &&
          x.overload.alerts.unexpected === 0 &&
          (x.overload.console?.alerts.unexpected ?? 0) === 0 &&
          over <= T.maxOverloadP1Factor * at50,
  });

  out.push({
    name: "telemetry conflated below the gateway's ceiling: 0",
    measured: `${s.telemetryConflatedBelowCeiling} (every gateway point at or below ${s.gatewayCeiling} msg/s)`,
    pass: s.gatewayCeiling > 0 ? s.telemetryConflatedBelowCeiling === 0 : null,
  });

  out.push({
    name: `10,000 individually connected devices: RSS < ${T.maxRssMb} MB`,
    measured:
      s.connectedDevicesRssMb === null
        ? `not run: ${s.connectedDevicesRssMbReason ?? ""}`
        : `${s.connectedDevicesRssMb.toFixed(0)} MB with ${x.connected?.devices ?? 0} connections`,
    pass: s.connectedDevicesRssMb === null ? null : s.connectedDevicesRssMb < T.maxRssMb,
  });

  const load = x.connected?.load ?? null;
  out.push({
    name: "10,000 individually connected devices at a site's rate: no alert missing",
    measured:
      load === null
        ? "not run"
        : `${load.presses - load.alertsMissing} of ${load.presses} presses raised their alert in ${load.seconds} s ` +
          `(heartbeat per device per minute); P1 p50 ${load.p1P50Ms?.toFixed(2) ?? "-"} ms, ` +
          `p99 ${load.p1P99Ms?.toFixed(2) ?? "-"} ms`,
    pass: load === null ? null : load.alertsMissing === 0,
  });
  return out;
}
