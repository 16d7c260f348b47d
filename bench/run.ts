/**
 * `npm run bench`: the pipeline benchmark, one command, one run.
 *
 *   (a) baseline   devices -> plain aedes -> subscriber            (bench/baseline.ts)
 *   (b) gateway    devices -> gateway -> alerts + telemetry -> operator (bench/gateway.ts)
 *   (b') journal   (b) with the durable journal on, sync "batch"    (bench/journal.ts)
 *   (c) overload   2x the highest rate (b) sustained                 (bench/overload.ts)
 *   start-up       Gateway.start() on 10,000 open alerts, 1,000,000 journal records (bench/startup.ts)
 *
 * Options: USAGE below (`npm run bench -- --help` prints it).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";
import { runBaseline } from "./baseline.js";
import { type BusBenchResult, runBusBench } from "./bus.js";
import { ceilingJson, DEFAULT_CEILING, printCeiling, runCeilingSuite } from "./ceiling.js";
import { ceilingTargets } from "./ceiling-report.js";
import { runGateway, SUSTAINED_TEXT, sustainedVerdict } from "./gateway.js";
import type { PointResult } from "./harness.js";
import { journalPointSeconds, runJournal } from "./journal.js";
import { type CommonOptions, type DevicesOn, devicesOn } from "./options.js";
import { overloadRate, runOverload } from "./overload.js";
import {
  type JournalSummary,
  journalSummary,
  journalTargets,
  printJournal,
  printTables,
  type RatePoint,
  type Target,
  targets,
} from "./report.js";
import { runStartupBench, type StartupBenchResult, startupTarget } from "./startup.js";

const USAGE = `usage: npm run bench -- [options]

Options (after \`npm run bench --\`):
  --rates 2000,5000,10000,20000   offered rates, msg/s
  --duration S                    seconds of load per point (default 10)
  --warmup S                      seconds left out of the histograms (default 1)
  --quick                         smoke run: 2 s per point, 0.5 s warm-up
  --connections N                 device connections (default 100)
  --devices N                     devices registered in the gateway (default 10000)
  --seed N                        load generator seed (default 1)
  --json FILE                     write the JSON report
  --profile DIR                   run each gateway child under \`node --cpu-prof\`, profiles into DIR
  --no-overload                   skip (c)
  --no-journal                    skip (b')
  --journal-pairs N               journal off/on pairs per rate, interleaved, every other pair on
                                  first (default 3): the P1 p99 of
                                  each side over all its undisturbed points pooled (a point holds a few
                                  hundred P1 alerts: one point's p99 is its 3rd-5th slowest), with
                                  a 90 % bootstrap interval of on/off from 2 pooled pairs on
  --journal-min-p1 N               P1 alerts in each journal pair point's histogram at least (default 800;
                                  0 with --quick): at low rates those points run longer than --duration
                                  (41 s at 2,000 msg/s, 17 s at 5,000), the gateway point of the rate too
  --journal-sync batch|interval|always  the journal-on points' storage.sync (default batch, the
                                  gateway's default); interval leaves out the group fdatasync a
                                  PUBACK waits for, so its ratio shows what the records cost alone
  --journal-writes auto|pool|loop the journal-on points' write(2): auto (default, the gateway's) on
                                  the event loop while no fdatasync runs, else on the libuv pool;
                                  pool always on the pool (the design before 2026-12-07)
  --journal-loop                  also (b') with the journal's earlier design, write(2) on the
                                  event loop, per rate in the same run (docs/durability.md)
  --no-startup                    skip the start-up benchmark in the pipeline suite
  --startup-alerts N              open alerts (= devices) of the start-up benchmark (default 10000;
                                  1000 with --quick)
  --startup-records N             journal records of the start-up benchmark (default 1000000;
                                  50000 with --quick)
  --max-other-load PCT            before each point wait (max 20 s) until other processes use
                                  less than PCT % of a core (default 25): the machine is shared
  --suite all|pipeline|bus|startup|ceiling which benchmarks (default all); bus = the Modbus bus
                                  benchmark; pipeline = (a) (b) (b') (c) and start-up; startup = start-up
                                  only; ceiling = the ceiling search (bench/ceiling.ts, not in "all")
  --probe-duration S              ceiling suite: seconds of load per search probe (default 5; 2 with --quick)
  --ceiling-start N               ceiling suite: first rate probed, msg/s (default 5000)
  --max-probes N                  ceiling suite: probes per side, repeats included (default 20)
  --connected-devices N           ceiling suite: devices each on its own connection for connectedDevicesRssMb
                                  (bench/connections.ts; default 10000, 0: not run)
  --no-floor                      ceiling suite: skip the floor (bench/floor.ts) at the 50 % and overload rates
  --load-pairs N                  ceiling suite: broker/gateway pairs at 50 % and 80 % of the broker's ceiling,
                                  interleaved (default 3; 1 with --quick): each side's P1 samples pooled, with
                                  a 90 % bootstrap interval of the 80 % ratio
  --devices-on listener|aedes     where the gateway's devices connect: its device listener (mqtt.deviceListener:
                                  their sockets in a worker thread, the gateway's use of the second core) or
                                  aedes' listener (the gateway's default port); default listener in the
                                  ceiling suite, aedes in the others. The subscriber and console stay on
                                  aedes' listener
  --device-listener               the same as --devices-on listener
  --bus-seconds S                 seconds per bus measurement (default 10; 3 with --quick)
  --kiosks N                      Modbus TCP kiosks in the bus benchmark (default 500)

Environment: LINLI_BENCH_NODE_FLAGS="--max-semi-space-size=4" passes V8 flags to the
gateway child (to try heap settings; measured: no effect on peak RSS at 20,000 msg/s).
`;

const { values } = parseArgs({
  options: {
    help: { type: "boolean", short: "h", default: false },
    "device-listener": { type: "boolean", default: false },
    rates: { type: "string", default: "2000,5000,10000,20000" },
    duration: { type: "string" },
    warmup: { type: "string" },
    quick: { type: "boolean", default: false },
    connections: { type: "string", default: "100" },
    devices: { type: "string", default: "10000" },
    "alarm-fraction": { type: "string", default: "0.01" },
    seed: { type: "string", default: "1" },
    json: { type: "string" },
    profile: { type: "string" },
    "no-overload": { type: "boolean", default: false },
    "no-floor": { type: "boolean", default: false },
    "no-journal": { type: "boolean", default: false },
    "journal-pairs": { type: "string" },
    "journal-min-p1": { type: "string" },
    "devices-on": { type: "string" },
    "journal-loop": { type: "boolean", default: false },
    "journal-sync": { type: "string" },
    "journal-writes": { type: "string" },
    "no-startup": { type: "boolean", default: false },
    "startup-alerts": { type: "string" },
    "startup-records": { type: "string" },
    "max-other-load": { type: "string", default: "25" },
    suite: { type: "string", default: "all" },
    "bus-seconds": { type: "string" },
    kiosks: { type: "string", default: "500" },
    "probe-duration": { type: "string" },
    "ceiling-start": { type: "string" },
    "max-probes": { type: "string" },
    "load-pairs": { type: "string" },
    "connected-devices": { type: "string" },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function nonNegative(name: string, v: string | undefined, fallback: number): number {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a whole number >= 0, got ${v}`);
  return n;
}

function positive(name: string, v: string | undefined, fallback: number): number {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--${name} must be a positive number, got ${v}`);
  return n;
}

const rates = (values.rates ?? "")
  .split(",")
  .map((s) => positive("rates", s.trim(), 0))
  .sort((a, b) => a - b);
function journalWritesOption(v: string): "auto" | "pool" | "loop" {
  if (v === "auto" || v === "pool" || v === "loop") return v;
  process.stderr.write(`--journal-writes: auto, pool or loop, not "${v}"\n`);
  process.exit(2);
}
function journalSyncOption(v: string): "batch" | "interval" | "always" {
  if (v === "batch" || v === "interval" || v === "always") return v;
  process.stderr.write(`--journal-sync: batch, interval or always, not "${v}"\n`);
  process.exit(2);
}
function devicesOnOption(): DevicesOn {
  try {
    return devicesOn(values.suite ?? "all", values["devices-on"], values["device-listener"] === true);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}
const durationS = positive("duration", values.duration, values.quick ? 2 : 10);
const journalPairs = Math.round(positive("journal-pairs", values["journal-pairs"], values.quick ? 1 : 3));
const journalMinP1 = nonNegative("journal-min-p1", values["journal-min-p1"], values.quick ? 0 : 800);
const warmupS = Math.min(durationS / 2, positive("warmup", values.warmup, values.quick ? 0.5 : 1));
const common: CommonOptions = {
  durationS,
  warmupS,
  connections: Math.round(positive("connections", values.connections, 100)),
  registered: Math.round(positive("devices", values.devices, 10_000)),
  alarmFraction: positive("alarm-fraction", values["alarm-fraction"], 0.01),
  seed: Math.round(positive("seed", values.seed, 1)),
  quietPct: positive("max-other-load", values["max-other-load"], 25),
  ...(devicesOnOption() === "listener" ? { deviceListener: true } : {}),
  ...(values["journal-sync"] === undefined ? {} : { journalSync: journalSyncOption(values["journal-sync"]) }),
  ...(values["journal-writes"] === undefined
    ? {}
    : { journalWrites: journalWritesOption(values["journal-writes"]) }),
};
if (values.profile) {
  mkdirSync(values.profile, { recursive: true });
  common.profileDir = values.profile;
}
if (common.connections < 100 && !values.quick)
  process.stderr.write("note: the issue asks for at least 100 connections\n");

const log = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number, d = 2) => n.toFixed(d);

function progress(r: PointResult): void {
  const refused = Object.entries(r.server.gateway?.rejections ?? {}).flatMap(([model, reasons]) =>
    Object.entries(reasons).map(([reason, n]) => `${model}/${reason} ${n}`),
  );
  log(
    `  ${r.scenario.padEnd(8)} ${String(r.offeredRate).padStart(6)}/s: achieved ${Math.round(r.achievedRate)}/s, ` +
      `lost ${r.messages.lost} (conflated ${r.messages.conflated}), alerts lost ${r.alerts.lost}, ` +
      `p99 ${fmt(r.latency.messages.p99Ms)} ms, P1 p99 ${fmt(r.latency.p1.p99Ms)} ms` +
      (r.console
        ? ` (at the console ${fmt(r.console.p1.p99Ms)} ms, alerts lost there ${r.console.alerts.lost}${r.console.nice === 0 ? ", console at the default priority" : ""})`
        : "") +
      `, send rate ${Math.round(r.generator.sendRate)}/s, ` +
      `CPU ${fmt(r.server.cpuPct, 0)}%${r.server.threads ? ` (main thread ${fmt(r.server.threads.mainPct, 0)}%)` : ""}, RSS ${fmt(r.server.rssMb, 0)} MB, other load ${fmt(r.otherCpuPct, 0)}%, steal ${fmt(r.stealPct, 0)}% ` +
      `(${fmt(r.elapsedS, 1)} s${r.quiet.waitedMs > 1000 ? `, waited ${fmt(r.quiet.waitedMs / 1000, 1)} s for a quiet machine` : ""})`,
  );
  const handled = r.server.gateway?.p1Handled;
  if (handled && handled.count > 0)
    log(
      `    P1 in the gateway's main thread (press taken in to alert handled): ${fmt((100 * handled.within5Ms) / handled.count, 1)} % ` +
        `within 5 ms, ${fmt((100 * handled.within10Ms) / handled.count, 1)} % within 10 ms of ${handled.count}; ` +
        `main thread preempted ${r.server.loopPreemptedPerS == null ? "-" : fmt(r.server.loopPreemptedPerS, 0)}/s` +
        (r.server.threads?.workerPct != null ? `, worker thread ${fmt(r.server.threads.workerPct, 0)}%` : ""),
    );
  if (r.server.crashed !== undefined) log(`    the server crashed during the point: ${r.server.crashed}`);
  if (refused.length > 0) log(`    gateway refused uplinks: ${refused.join(", ")}`);
  if (r.generator.skippedDisconnected > 0)
    log(`    ${r.generator.skippedDisconnected} messages not sent: their connection was down`);
}

async function startup(): Promise<StartupBenchResult> {
  return runStartupBench(
    {
      alerts: Math.round(positive("startup-alerts", values["startup-alerts"], values.quick ? 1_000 : 10_000)),
      records: Math.round(
        positive("startup-records", values["startup-records"], values.quick ? 50_000 : 1_000_000),
      ),
      quietPct: common.quietPct,
      ...(values.profile ? { profileDir: values.profile } : {}),
    },
    log,
  );
}

function printTargets(heading: string, t: Target[]): void {
  log("");
  log(heading);
  for (const x of t)
    log(`  ${x.pass === null ? "n/a " : x.pass ? "PASS" : "FAIL"}  ${x.name}: ${x.measured}`);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const suite = values.suite ?? "all";
  if (!["all", "pipeline", "bus", "startup", "ceiling"].includes(suite))
    throw new RangeError(`--suite must be all, pipeline, bus, startup or ceiling`);
  if (suite === "ceiling") return ceiling(t0);
  if (suite === "startup") {
    const s = await startup();
    printTargets("target (journal start-up), measured in this run:", [startupTarget(s)]);
    if (values.json) writeFileSync(values.json, `${JSON.stringify({ startup: s }, null, 2)}\n`);
    return;
  }
  let bus: BusBenchResult | null = null;
  if (suite !== "pipeline") {
    log("bus benchmark (Modbus RTU and TCP)");
    bus = await runBusBench(
      {
        seconds: positive("bus-seconds", values["bus-seconds"], values.quick ? 3 : 10),
        kiosks: Math.round(positive("kiosks", values.kiosks, 500)),
      },
      log,
    );
    log("");
    if (suite === "bus") {
      if (values.json) writeFileSync(values.json, `${JSON.stringify({ bus }, null, 2)}\n`);
      return;
    }
  }
  log(
    `linli bench: ${os.cpus().length} cores, node ${process.version}; ${common.connections} connections, ` +
      `${common.registered} registered devices, ${common.alarmFraction * 100}% presses, ` +
      `${common.durationS} s per point (first ${common.warmupS} s not in histograms)`,
  );
  const points: RatePoint[] = [];
  for (const rate of rates) {
    // Interleaved, so slow drift of the machine touches both sides of each ratio alike.
    const baseline = await runBaseline(rate, common);
    progress(baseline);
    // The journal's off/on pairs (the first "off" is this gateway point) run long enough at low
    // rates for enough P1 alerts in each pooled p99 (journalPointSeconds).
    const pair = values["no-journal"]
      ? common
      : { ...common, durationS: journalPointSeconds(rate, common, journalMinP1) };
    const gateway = await runGateway(rate, pair);
    progress(gateway);
    // Right after the journal-off point of the same rate: drift touches both sides of the ratio.
    const journal = values["no-journal"] ? null : await runJournal(rate, pair);
    if (journal) progress(journal);
    const journalLoop = journal && values["journal-loop"] ? await runJournal(rate, pair, "loop") : null;
    if (journalLoop) progress(journalLoop);
    // More off/on pairs: their P1 samples are pooled per side. Every other pair runs "on" first
    // (off on, on off, off on, ...), so a point's place (right after the baseline, after a
    // journal's files were deleted) falls on both sides alike, as slow drift does.
    const morePairs: RatePoint["morePairs"] = [];
    for (let k = 1; journal && k < journalPairs; k++) {
      const onFirst = k % 2 === 1;
      const first = onFirst ? await runJournal(rate, pair) : await runGateway(rate, pair);
      progress(first);
      const second = onFirst ? await runGateway(rate, pair) : await runJournal(rate, pair);
      progress(second);
      morePairs.push(onFirst ? { off: second, on: first } : { off: first, on: second });
    }
    const verdict = sustainedVerdict(gateway);
    const jv = journal ? sustainedVerdict(journal) : null;
    points.push({
      rate,
      baseline,
      gateway,
      ...verdict,
      journal,
      journalSustained: jv ? jv.sustained : null,
      journalReasons: jv ? jv.reasons : [],
      journalLoop,
      morePairs,
    });
  }
  const maxSustained = points.reduce((m, p) => (p.sustained ? Math.max(m, p.rate) : m), 0);
  let overload: PointResult | null = null;
  if (!values["no-overload"]) {
    const rate = overloadRate(maxSustained, rates);
    overload = await runOverload(rate, common);
    progress(overload);
  }
  const journal = journalSummary(points);
  let start: StartupBenchResult | null = null;
  if (!values["no-startup"]) {
    log("");
    start = await startup();
  }

  log("");
  printTables(log, points, overload);
  log("");
  log(SUSTAINED_TEXT);
  log(
    `gateway max sustained rate: ${maxSustained > 0 ? `${maxSustained} msg/s` : "none of the rates tried"}`,
  );
  if (journal) {
    log("");
    printJournal(log, journal, common.journalSync);
  }
  const t = targets(points, overload);
  printTargets("targets (pipeline), measured in this run:", t);
  const t8 = [...journalTargets(journal), ...(start ? [startupTarget(start)] : [])];
  printTargets("targets (journal), measured in this run:", t8);
  log(`\nwhole run: ${fmt((performance.now() - t0) / 1000, 1)} s`);

  if (values.json) {
    writeFileSync(
      values.json,
      `${JSON.stringify(
        { ...jsonReport(points, overload, maxSustained, [...t, ...t8], journal), startup: start, bus },
        null,
        2,
      )}\n`,
    );
    log(`JSON report: ${values.json}`);
  }
}

async function ceiling(t0: number): Promise<void> {
  const o = {
    ...DEFAULT_CEILING,
    probeS: positive("probe-duration", values["probe-duration"], values.quick ? 2 : DEFAULT_CEILING.probeS),
    search: {
      ...DEFAULT_CEILING.search,
      start: Math.round(positive("ceiling-start", values["ceiling-start"], DEFAULT_CEILING.search.start)),
      maxProbes: Math.round(positive("max-probes", values["max-probes"], DEFAULT_CEILING.search.maxProbes)),
    },
    overload: !values["no-overload"],
    floor: !values["no-floor"],
    loadPairs: Math.round(
      positive("load-pairs", values["load-pairs"], values.quick ? 1 : DEFAULT_CEILING.loadPairs),
    ),
    connectedDevices: nonNegative(
      "connected-devices",
      values["connected-devices"],
      DEFAULT_CEILING.connectedDevices,
    ),
  };
  log(
    `linli bench, ceiling suite: ${os.cpus().length} cores, node ${process.version}; ${common.connections} connections, ` +
      `${common.registered} registered devices; load points ${common.durationS} s (first ${common.warmupS} s not in histograms); ` +
      `the gateway's devices on ${common.deviceListener ? "its device listener (a worker thread)" : "aedes' listener"}`,
  );
  const { input, summary } = await runCeilingSuite(o, common, log, progress);
  log("");
  printCeiling(log, summary, input);
  log("");
  log(SUSTAINED_TEXT);
  const t = ceilingTargets(summary, input);
  printTargets("targets (ceilings), measured in this run:", t);
  log(`\nwhole run: ${fmt((performance.now() - t0) / 1000, 1)} s`);
  if (values.json) {
    const report = {
      generatedAt: new Date().toISOString(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "", node: process.version },
      options: common,
      sustainedCriterion: SUSTAINED_TEXT,
      ...ceilingJson(input, summary, o, common.deviceListener ? "device-listener" : "aedes"),
      targets: t,
    };
    writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
    log(`JSON report: ${values.json}`);
  }
}

function jsonReport(
  points: RatePoint[],
  overload: PointResult | null,
  maxSustained: number,
  t: Target[],
  journal: JournalSummary | null,
) {
  const peakRss = Math.max(
    0,
    ...points.map((p) => p.gateway.server.maxRssMb),
    ...points.flatMap((p) => (p.journal ? [p.journal.server.maxRssMb] : [])),
    ...(overload ? [overload.server.maxRssMb] : []),
  );
  return {
    generatedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "", node: process.version },
    options: { rates, ...common },
    sustainedCriterion: SUSTAINED_TEXT,
    gatewayMaxSustainedRate: maxSustained,
    points: points.map((p) => ({
      rate: p.rate,
      baselineP99Ms: p.baseline.latency.messages.p99Ms,
      /** P1 alert p99 (the figure the 1.5x target compares). */
      gatewayP99Ms: p.gateway.latency.p1.p99Ms,
      gatewayTelemetryP99Ms: p.gateway.latency.messages.p99Ms,
      p1OverBaselineP99:
        p.baseline.latency.messages.p99Ms > 0
          ? p.gateway.latency.p1.p99Ms / p.baseline.latency.messages.p99Ms
          : null,
      /** The run's overall figure, repeated per point as the issue asks. */
      gatewayMaxSustainedRate: maxSustained,
      sustained: p.sustained,
      notSustainedBecause: p.reasons,
      baseline: p.baseline,
      gateway: p.gateway,
      /** The gateway with the journal on (null with --no-journal). */
      journal: p.journal,
      journalSustained: p.journalSustained,
    })),
    /** Journal on against off: per rate P1 p99 and ratio, achieved, sustained, syncs, records. */
    journal,
    /** The journal-on points' storage.sync. */
    journalSync: common.journalSync ?? "batch",
    overload,
    overloadRate: overload?.offeredRate ?? null,
    overloadAlertsLost: overload ? overload.alerts.lost : null,
    overloadP1P99Ms: overload ? overload.latency.p1.p99Ms : null,
    overloadConsoleP1P99Ms: overload?.console ? overload.console.p1.p99Ms : null,
    overloadTelemetryConflated: overload ? overload.messages.conflated : null,
    gatewayPeakRssMb: peakRss,
    targets: t,
  };
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
