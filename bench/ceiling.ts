/**
 * The ceiling suite (`npm run bench -- --suite ceiling`): what each side
 * sustains, not how it does at fixed rates.
 *
 * 1. the bare broker's and the gateway's sustained ceilings, each by the search of
 *    ceiling-search.ts over offered rates, judged by the existing sustained
 *    criterion (bench/gateway.ts); the two searches run interleaved, probe by probe,
 *    so the machine's drift touches both alike; each probe is a fresh child for
 *    `probeS` seconds of load (default 5);
 * 2. broker and gateway at 50 % and 80 % of the broker's ceiling (full duration),
 *    P1 p99 of both;
 * 3. the gateway at twice its own ceiling (overload): alerts lost, P1 p99;
 * 4. 10,000 devices each on its own MQTT connection (bench/connections.ts, one
 *    QoS 1 heartbeat each): the gateway's RSS (`connectedDevicesRssMb`).
 * The figures and verdicts: ceiling-report.ts.
 */
import { disturbedPct } from "./accounting.js";
import { runBaseline } from "./baseline.js";
import {
  type CeilingInput,
  type CeilingProbe,
  type CeilingSummary,
  ceilingSummary,
  type LoadPoint,
  loadPairs,
  pooledPairs,
} from "./ceiling-report.js";
import {
  DEFAULT_SEARCH,
  describeRate,
  nextProbe,
  type Probe,
  type SearchOptions,
  type SearchState,
} from "./ceiling-search.js";
import { type ConnectionsOptions, type ConnectionsResult, measureConnections } from "./connections.js";
import { runGateway, sustainedVerdict } from "./gateway.js";
import { type PointResult, pointOptions, runPoint } from "./harness.js";
import type { CommonOptions } from "./options.js";
import { runOverload } from "./overload.js";

export interface CeilingOptions {
  /** Seconds of load per search probe (the load points and overload use `common.durationS`). */
  probeS: number;
  search: SearchOptions;
  overload: boolean;
  /** The floor (bench/floor.ts) at the 50 % and overload rates, beside the gateway. */
  floor: boolean;
  /** Devices each on its own connection for the connected-devices point; 0: not run. */
  connectedDevices: number;
  /**
   * Broker / gateway pairs at 50 % and 80 % of the broker's ceiling, interleaved: one point's P1
   * p99 moved 0.7x-2.2x between runs; the pairs' samples are pooled per side (ceiling-report.ts).
   */
  loadPairs: number;
}

export const DEFAULT_CEILING: CeilingOptions = {
  probeS: 5,
  search: { ...DEFAULT_SEARCH, start: 5_000 },
  overload: true,
  floor: true,
  connectedDevices: 10_000,
  loadPairs: 3,
};

type Done = Extract<SearchState, { done: true }>;

export async function runCeilingSuite(
  o: CeilingOptions,
  common: CommonOptions,
  log: (s: string) => void,
  progress: (r: PointResult) => void,
): Promise<{ input: CeilingInput; summary: CeilingSummary }> {
  const probeCommon: CommonOptions = {
    ...common,
    durationS: o.probeS,
    warmupS: Math.min(common.warmupS, o.probeS / 2),
  };
  const sides = {
    broker: { history: [] as Probe[], result: null as Done | null, run: runBaseline },
    gateway: { history: [] as Probe[], result: null as Done | null, run: runGateway },
  };
  const probes: CeilingProbe[] = [];
  log(
    `ceiling search: ${o.probeS} s per probe, start ${o.search.start} msg/s, double/halve then bisect to ` +
      `${o.search.resolution * 100} %, rates in steps of ${o.search.step}, at most ${o.search.maxProbes} probes per side; ` +
      `a rate is decided by a majority of up to ${o.search.votes} probes, a failure below a sustained rate probed again`,
  );
  while (!sides.broker.result || !sides.gateway.result) {
    for (const side of ["broker", "gateway"] as const) {
      const s = sides[side];
      if (s.result) continue;
      const next = nextProbe(s.history, o.search);
      if (next.done) {
        s.result = next;
        log(
          `  ${side} ceiling: ${next.ceiling} msg/s (${next.why}; lowest failing rate ${next.failedAt ?? "none"})`,
        );
        continue;
      }
      const point = await s.run(next.next, probeCommon);
      progress(point);
      const v = sustainedVerdict(point);
      s.history.push({ rate: next.next, sustained: v.sustained });
      probes.push({ side, rate: next.next, sustained: v.sustained, reasons: v.reasons, point });
      log(
        `    ${side} probe ${next.next}/s: ${v.sustained ? "sustained" : `not sustained (${v.reasons.join("; ")})`}` +
          ` [${describeRate(s.history, next.next, o.search)}]`,
      );
    }
  }
  const broker = sides.broker.result as Done;
  const gateway = sides.gateway.result as Done;

  const loads: LoadPoint[] = [];
  if (broker.ceiling > 0) {
    for (const share of [0.5, 0.8]) {
      const rate = Math.max(
        o.search.step,
        Math.round((share * broker.ceiling) / o.search.step) * o.search.step,
      );
      log(`  ${share * 100} % of the broker's ceiling: ${rate} msg/s`);
      const pairs: Array<{ broker: PointResult; gateway: PointResult }> = [];
      for (let k = 0; k < Math.max(1, o.loadPairs); k++) {
        const b = await runBaseline(rate, common);
        progress(b);
        const g = await runGateway(rate, common);
        progress(g);
        pairs.push({ broker: b, gateway: g });
      }
      const [first, ...more] = pairs as [(typeof pairs)[number], ...typeof pairs];
      loads.push({ share, rate, ...first, more });
    }
  }
  let overload: PointResult | null = null;
  if (o.overload) {
    // Without a gateway ceiling, twice the lowest rate the search may probe.
    const rate = 2 * (gateway.ceiling > 0 ? gateway.ceiling : o.search.min);
    log(`  overload, 2x the gateway's ceiling: ${rate} msg/s`);
    overload = await runOverload(rate, common);
    progress(overload);
  }
  let floor: CeilingInput["floor"];
  if (o.floor) {
    const runFloor = async (rate: number | undefined, what: string) => {
      if (rate === undefined) return null;
      log(`  the floor (bench/floor.ts) ${what}: ${rate} msg/s`);
      const r = await runPoint(pointOptions("gateway", "floor", rate, common));
      progress(r);
      return r;
    };
    floor = {
      at50: await runFloor(loads.find((l) => l.share === 0.5)?.rate, "at 50 % of the broker's ceiling"),
      overload: await runFloor(overload?.offeredRate, "at the overload rate"),
    };
  }
  const input: CeilingInput = {
    broker,
    gateway,
    probes,
    loads,
    overload,
    ...(floor ? { floor } : {}),
    ...(await connectedDevicesPoint(
      o.connectedDevices,
      log,
      measureConnections,
      common.deviceListener === true,
    )),
  };
  return { input, summary: ceilingSummary(input) };
}

/**
 * The load on the connected devices: a heartbeat per device per minute (the issue's "realistic
 * rate"; the EC-200 datasheet's default is one per 300 s) and 10 presses a second, enough presses
 * in 30 s (300) for a p99 that is not the largest sample.
 */
export const CONNECTED_LOAD = { seconds: 30, pressesPerSecond: 10 } as const;

/**
 * The connected-devices point: `devices` connections, one device each, one QoS 1 heartbeat each
 * (bench/connections.ts), the journal on as a site runs by default (it adds its live map and
 * code: ~3 MB at 10,000 devices), then CONNECTED_LOAD on them with P1 timed; its RSS is the gateway's
 * after the last connection or after the load, whichever is higher (two full GCs before each).
 * A failed measurement is reported, not fatal: the other figures of the run stand.
 */
export async function connectedDevicesPoint(
  devices: number,
  log: (s: string) => void,
  measure: (o: ConnectionsOptions) => Promise<ConnectionsResult> = measureConnections,
  /** The devices on the gateway's device listener (a worker thread) rather than aedes. */
  deviceListener = false,
): Promise<Pick<CeilingInput, "connected" | "connectedReason">> {
  if (devices <= 0) return { connected: null, connectedReason: "not run (--connected-devices 0)" };
  log(
    `  ${devices} devices each on its own connection${deviceListener ? " to the device listener" : ""}, one QoS 1 heartbeat each, journal on: gateway RSS`,
  );
  try {
    const r = await measure({
      connections: devices,
      step: devices,
      registered: devices,
      publish: true,
      storage: true,
      deviceListener,
      realistic: CONNECTED_LOAD,
    });
    const last = r.rows[r.rows.length - 1];
    if (last === undefined || last.connections !== devices || last.clients !== devices)
      return {
        connected: null,
        connectedReason: `measurement incomplete: ${last?.clients ?? 0} of ${devices} connected`,
      };
    const base = r.rows[0];
    log(
      `    RSS ${last.rssMb.toFixed(1)} MB (${base?.rssMb.toFixed(1) ?? "-"} MB before the first connection), ` +
        `heap used ${last.heapUsedMb.toFixed(1)} MB, ${last.bytesPerConn.toFixed(0)} B RSS per connection`,
    );
    const l = r.realistic;
    if (l !== null)
      log(
        `    then ${l.seconds} s at a site's rate (${l.heartbeats} heartbeats, ${l.presses} presses): ` +
          `${l.alerts} alerts, ${l.missing} missing, P1 p50 ${l.p1P50Ms?.toFixed(2) ?? "-"} ms, ` +
          `p99 ${l.p1P99Ms?.toFixed(2) ?? "-"} ms; RSS after ${l.after.rssMb.toFixed(1)} MB`,
      );
    return {
      connected: {
        rssMb: Math.max(last.rssMb, l?.after.rssMb ?? 0),
        devices,
        load:
          l === null
            ? null
            : {
                seconds: l.seconds,
                presses: l.presses,
                alertsMissing: l.missing,
                p1P50Ms: l.p1P50Ms,
                p1P99Ms: l.p1P99Ms,
              },
      },
      connectedReason: "",
    };
  } catch (err) {
    return { connected: null, connectedReason: `measurement failed: ${(err as Error).message}` };
  }
}

/** The ceiling suite's JSON: the issue's figures at the top level, then the detail. */
export function ceilingJson(
  input: CeilingInput,
  summary: CeilingSummary,
  o: CeilingOptions,
  gatewayDevices: "aedes" | "device-listener" = "aedes",
) {
  return {
    ...summary,
    /** Where the gateway's devices connected: aedes' listener, or the device listener (a worker thread). */
    gatewayDevices,
    /** Broker / gateway pairs run at each of the 50 % and 80 % points. */
    loadPairs: o.loadPairs,
    ceilingSearch: {
      probeSeconds: o.probeS,
      options: o.search,
      broker: input.broker,
      gateway: input.gateway,
      probes: input.probes.map((p) => ({
        side: p.side,
        rate: p.rate,
        sustained: p.sustained,
        notSustainedBecause: p.reasons,
        otherCpuPct: p.point.otherCpuPct,
        stealPct: p.point.stealPct,
        achievedRate: p.point.achievedRate,
        p1P99Ms: p.point.latency.p1.p99Ms,
        messagesP99Ms: p.point.latency.messages.p99Ms,
        conflated: p.point.messages.conflated,
        cpuPct: p.point.server.cpuPct,
      })),
    },
    loadPoints: input.loads,
    overload: input.overload,
    floorPoints: input.floor ?? null,
  };
}

/** The suite's figures, printed (absolute rates for information only). */
export function printCeiling(log: (s: string) => void, s: CeilingSummary, x: CeilingInput): void {
  const f = (v: number | null, d = 2) => (v === null ? "-" : v.toFixed(d));
  log("Ceiling search probes (sustained criterion as printed below; other or steal above 20 %: disturbed)");
  for (const p of x.probes)
    log(
      `  ${p.side.padEnd(7)} ${String(p.rate).padStart(6)}/s  ${p.sustained ? "yes" : "no "}  ` +
        `achieved ${Math.round(p.point.achievedRate)}/s, msgs p99 ${f(p.point.latency.messages.p99Ms)} ms, ` +
        `P1 p99 ${f(p.point.latency.p1.p99Ms)} ms, conflated ${p.point.messages.conflated}, ` +
        `CPU ${f(p.point.server.cpuPct, 0)} %, other ${f(p.point.otherCpuPct, 0)} %, steal ${f(p.point.stealPct, 0)} %`,
    );
  log("");
  log(
    `ceilings (absolute rates: for information only, machines of this kind differ by 2x): ` +
      `broker ${s.brokerCeiling} msg/s (${x.broker.why}), gateway ${s.gatewayCeiling} msg/s (${x.gateway.why}); ` +
      `gateway / broker = ${f(s.ceilingRatio)}`,
  );
  for (const l of x.loads) {
    const pairs = loadPairs(l);
    const pooledNote =
      pairs.length > 1
        ? `pooled over ${pooledPairs(l).length} of ${pairs.length} pairs (each pair's ratio ` +
          `${pairs.map((q) => f(ratioOf(p1Of(q.gateway), p1Of(q.broker)))).join(" ")}): `
        : "";
    const broker = l.share === 0.5 ? s.brokerP1P99At50Ms : s.brokerP1P99At80Ms;
    const gateway = l.share === 0.5 ? s.p1P99At50Ms : s.p1P99At80Ms;
    const atConsole = l.share === 0.5 ? s.consoleP1P99At50Ms : s.consoleP1P99At80Ms;
    log(
      `  at ${l.share * 100} % of the broker's ceiling (${l.rate} msg/s): ${pooledNote}P1 p99 broker ${f(broker)} ms, ` +
        `gateway ${f(gateway)} ms, ratio ${f(ratioOf(gateway, broker))}x; ` +
        `gateway at the operator console ${f(atConsole)} ms ` +
        `(disturbed up to ${f(Math.max(...pairs.map((q) => Math.max(disturbedPct(q.broker), disturbedPct(q.gateway)))), 0)} %)`,
    );
  }
  if (x.overload)
    log(
      `  overload ${x.overload.offeredRate} msg/s: alerts lost ${s.overloadAlertsLost} of ${x.overload.alerts.sent}, ` +
        `P1 p99 ${f(s.overloadP1P99Ms)} ms (at the operator console ${f(s.overloadConsoleP1P99Ms)} ms), ` +
        `telemetry conflated ${x.overload.messages.conflated}, offered ${Math.round(x.overload.generator.sendRate)} msg/s ` +
        `(disturbed ${f(disturbedPct(x.overload), 0)} %)`,
    );
  if (x.floor)
    log(
      `  the floor (bench/floor.ts, one thread, no broker; information) at the operator console: P1 p99 ` +
        `${f(s.floorConsoleP1P99At50Ms)} ms at 50 %, ${f(s.floorOverloadConsoleP1P99Ms)} ms at the overload rate ` +
        `(${f(ratioOf(s.floorOverloadConsoleP1P99Ms, s.consoleP1P99At50Ms))}x the gateway's 50 % value)`,
    );
  log(`  telemetry conflated at or below the gateway's ceiling: ${s.telemetryConflatedBelowCeiling}`);
}

const p1Of = (r: PointResult) => (r.latency.p1.count > 0 ? r.latency.p1.p99Ms : null);
const ratioOf = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);
