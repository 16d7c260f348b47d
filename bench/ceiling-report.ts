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
  broker: PointResult;
  gateway: PointResult;
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

export function ceilingSummary(x: CeilingInput): CeilingSummary {
  const at = (share: number) => x.loads.find((l) => l.share === share);
  const gwPoints = [
    ...x.probes.filter((p) => p.side === "gateway").map((p) => p.point),
    ...x.loads.map((l) => l.gateway),
  ];
  const conflated = gwPoints
    .filter((p) => p.offeredRate <= x.gateway.ceiling)
    .reduce((s, p) => s + p.messages.conflated, 0);
  const all = [
    ...x.probes.map((p) => p.point),
    ...x.loads.flatMap((l) => [l.broker, l.gateway]),
    ...(x.overload ? [x.overload] : []),
  ];
  const g50 = p1(at(0.5)?.gateway);
  const g80 = p1(at(0.8)?.gateway);
  const b80 = p1(at(0.8)?.broker);
  return {
    brokerCeiling: x.broker.ceiling,
    gatewayCeiling: x.gateway.ceiling,
    ceilingRatio: x.broker.ceiling > 0 ? x.gateway.ceiling / x.broker.ceiling : null,
    p1P99At50Ms: g50,
    brokerP1P99At50Ms: p1(at(0.5)?.broker),
    p1P99At80Ms: g80,
    brokerP1P99At80Ms: b80,
    p1RatioAt80: ratio(g80, b80),
    overloadRate: x.overload?.offeredRate ?? null,
    overloadAlertsLost: x.overload ? alertsLost(x.overload) : null,
    overloadP1P99Ms: p1(x.overload ?? undefined),
    consoleP1P99At50Ms: consoleP1(at(0.5)?.gateway),
    consoleP1P99At80Ms: consoleP1(at(0.8)?.gateway),
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
  const n80 = l80 ? noisy([l80.broker, l80.gateway]) : "";
  out.push({
    name: `P1 p99 at 80 % of the broker's ceiling <= ${T.maxP1RatioAt80}x the broker's`,
    measured: l80
      ? `at ${l80.rate} msg/s: ${f(s.p1P99At80Ms)} ms / ${f(s.brokerP1P99At80Ms)} ms = ${f(s.p1RatioAt80)}x${n80}`
      : "not measured (no broker ceiling)",
    pass: s.p1RatioAt80 === null || n80 ? null : s.p1RatioAt80 <= T.maxP1RatioAt80,
  });

  const l50 = x.loads.find((l) => l.share === 0.5);
  const nOver = x.overload ? noisy([x.overload, ...(l50 ? [l50.gateway] : [])]) : "";
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
