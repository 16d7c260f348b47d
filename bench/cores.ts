/**
 * MEASUREMENT HARNESS (npm run bench:cores): does using the second core pay, and
 * which split? In one run, each design as a fresh server child (bench/server.ts),
 * the same open-loop load, subscriber and accounting as the ceiling suite
 * (bench/harness.ts), judged by the same sustained criterion (bench/gateway.ts):
 *
 *   baseline         (a) the bare aedes broker
 *   gateway          (b) the real gateway, one thread (as bench/gateway.ts)
 *   inline           (b') aedes + the stand-in pipeline, one thread (bench/split/)
 *   worker-pipeline  (c) aedes in main; the stand-in pipeline in a worker; SAB rings both ways
 *   worker-io        (d) device sockets in a worker (minimal MQTT front end); pipeline + aedes in main
 *   worker-io-decode (e) as (d), the stand-in pipeline in the worker too; main only publishes
 *   worker-relay     (f) device sockets in main, their bytes relayed through a SAB ring to a worker
 *                    that parses MQTT; acks back through a ring; pipeline + aedes in main
 *
 * 1. A short ceiling search per design (bench/ceiling-search.ts; the designs probed
 *    round-robin so the machine's drift touches all alike): `--probe-duration` s per
 *    probe, at most `--max-probes` probes, ONE probe decides a rate (not the suite's
 *    majority of three: a reading in a few minutes, not a verdict).
 * 2. Every design at one common rate (`--common-rate`, full `--duration`): P1 p99,
 *    CPU per message of the process and of its busiest thread, and the rate that
 *    thread's CPU per message would allow on a core of its own (1e6 / us per message),
 *    which does not depend on the load generator sharing the machine.
 * Other processes' CPU is printed beside every figure; ratios are to (a) in the same run.
 *
 *   npm run bench:cores -- [--probe-duration 3] [--max-probes 5] [--start 10000]
 *     [--common-rate 10000] [--duration 4] [--designs baseline,gateway,...] [--json FILE]
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { nextProbe, type Probe, type SearchOptions } from "./ceiling-search.js";
import { sustainedVerdict } from "./gateway.js";
import { type PointResult, pointOptions, runPoint } from "./harness.js";
import { otherLoad } from "./machine-load.js";
import { type CommonOptions, HARNESS_LOAD } from "./options.js";
import type { ServerMode } from "./server.js";

const DESIGNS: readonly ServerMode[] = [
  "baseline",
  "gateway",
  "inline",
  "worker-pipeline",
  "worker-io",
  "worker-io-decode",
  "worker-relay",
];
const LABEL: Record<string, string> = {
  baseline: "(a) bare aedes",
  gateway: "(b) gateway, 1 thread",
  inline: "(b') stand-in, 1 thread",
  "worker-pipeline": "(c) pipeline in worker",
  "worker-io": "(d) device I/O in worker",
  "worker-io-decode": "(e) I/O + decode in worker",
  "worker-relay": "(f) MQTT in worker, sockets relayed",
};

const { values } = parseArgs({
  options: {
    "probe-duration": { type: "string", default: "3" },
    "max-probes": { type: "string", default: "5" },
    start: { type: "string", default: "10000" },
    "common-rate": { type: "string", default: "10000" },
    duration: { type: "string", default: "4" },
    designs: { type: "string", default: DESIGNS.join(",") },
    json: { type: "string" },
  },
});
const num = (k: keyof typeof values) => Number(values[k]);
const designs = String(values.designs)
  .split(",")
  .filter((d): d is ServerMode => (DESIGNS as readonly string[]).includes(d));
const common: CommonOptions = { ...HARNESS_LOAD, durationS: num("duration") };
const probeCommon: CommonOptions = { ...common, durationS: num("probe-duration"), warmupS: 1 };
const search: SearchOptions = {
  start: num("start"),
  min: 1_000,
  max: 80_000,
  step: 1_000,
  resolution: 0.15,
  maxProbes: num("max-probes"),
  votes: 1,
};

const log = (s: string) => process.stdout.write(`${s}\n`);
const run = (mode: ServerMode, rate: number, c: CommonOptions) =>
  runPoint({
    ...pointOptions(mode === "gateway" ? "gateway" : "baseline", mode, rate, c),
    quietWaitMs: 10_000,
  });
/** A point whose server died (e.g. a stack overflow under overload) is a failed probe, not the end of the run. */
async function tryRun(mode: ServerMode, rate: number, c: CommonOptions): Promise<PointResult | Error> {
  try {
    return await run(mode, rate, c);
  } catch (err) {
    return err as Error;
  }
}
const f = (v: number | null | undefined, d = 0) =>
  v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(d);

interface DesignResult {
  design: ServerMode;
  probes: Array<{ rate: number; sustained: boolean; reasons: string[]; otherPct: number; cpuPct: number }>;
  ceiling: number;
  failedAt: number | null;
  why: string;
  common: PointResult | null;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  log(
    `bench:cores (measurement harness) ${new Date().toISOString()}, other load now ${f(await otherLoad(1000))} %`,
  );
  log(
    `ceiling search per design: ${search.maxProbes} probes of ${probeCommon.durationS} s from ${search.start}/s, ` +
      `one probe decides a rate; then all at ${num("common-rate")}/s for ${common.durationS} s`,
  );
  const results = new Map<ServerMode, DesignResult>();
  const history = new Map<ServerMode, Probe[]>();
  for (const d of designs) {
    results.set(d, { design: d, probes: [], ceiling: 0, failedAt: null, why: "", common: null });
    history.set(d, []);
  }
  const open = new Set(designs);
  while (open.size > 0) {
    for (const d of designs) {
      if (!open.has(d)) continue;
      const h = history.get(d) as Probe[];
      const r = results.get(d) as DesignResult;
      const next = nextProbe(h, search);
      if (next.done) {
        Object.assign(r, { ceiling: next.ceiling, failedAt: next.failedAt, why: next.why });
        open.delete(d);
        continue;
      }
      const p = await tryRun(d, next.next, probeCommon);
      if (p instanceof Error) {
        h.push({ rate: next.next, sustained: false });
        r.probes.push({ rate: next.next, sustained: false, reasons: [p.message], otherPct: 0, cpuPct: 0 });
        log(`  ${LABEL[d]?.padEnd(26)} ${String(next.next).padStart(6)}/s no  (failed: ${p.message})`);
        continue;
      }
      const v = sustainedVerdict(p);
      h.push({ rate: next.next, sustained: v.sustained });
      r.probes.push({
        rate: next.next,
        sustained: v.sustained,
        reasons: v.reasons,
        otherPct: p.otherCpuPct,
        cpuPct: p.server.cpuPct,
      });
      log(
        `  ${LABEL[d]?.padEnd(26)} ${String(next.next).padStart(6)}/s ${v.sustained ? "yes" : "no "} ` +
          `achieved ${f(p.achievedRate)}/s, p99 msgs ${f(p.latency.messages.p99Ms, 1)} ms P1 ${f(p.latency.p1.p99Ms, 1)} ms, ` +
          `server CPU ${f(p.server.cpuPct)} %${threadText(p)}, runner ${f(p.runnerCpuPct)} %, other ${f(p.otherCpuPct)} %` +
          (v.sustained ? "" : ` (${v.reasons.join("; ")})`),
      );
    }
  }
  const rate = num("common-rate");
  log(`common rate ${rate}/s, ${common.durationS} s each:`);
  for (const d of designs) {
    const p = await tryRun(d, rate, common);
    if (p instanceof Error) {
      log(`  ${LABEL[d]?.padEnd(26)} failed: ${p.message}`);
      continue;
    }
    (results.get(d) as DesignResult).common = p;
    log(
      `  ${LABEL[d]?.padEnd(26)} P1 p99 ${f(p.latency.p1.p99Ms, 2)} ms, msgs p99 ${f(p.latency.messages.p99Ms, 2)} ms, ` +
        `server CPU ${f(p.server.cpuPct)} %${threadText(p)}, other ${f(p.otherCpuPct)} %, ` +
        `${sustainedVerdict(p).sustained ? "sustained" : `NOT sustained: ${sustainedVerdict(p).reasons.join("; ")}`}`,
    );
  }

  const base = results.get("baseline");
  const baseCeiling = base?.ceiling ?? 0;
  const baseCommon = base?.common ?? null;
  log("");
  log(
    "| design | ceiling msg/s (search) | ratio to (a) | server CPU us/msg | busiest thread us/msg | " +
      "rate the busiest thread allows | ratio to (a) | CPU % main / worker / other threads | P1 p99 ms | other load % |",
  );
  log("|---|---|---|---|---|---|---|---|---|---|");
  const rows = [];
  for (const d of designs) {
    const r = results.get(d) as DesignResult;
    const p = r.common;
    const cpuPerMsg = p && p.achievedRate > 0 ? (p.server.cpuPct * 1e4) / p.achievedRate : null;
    const busiest = p ? busiestThreadPct(p) : null;
    const busiestPerMsg =
      p && busiest !== null && p.achievedRate > 0 ? (busiest * 1e4) / p.achievedRate : null;
    const allows = busiestPerMsg ? 1e6 / busiestPerMsg : null;
    const baseAllows =
      baseCommon && baseCommon.achievedRate > 0
        ? 1e6 / ((baseCommon.server.cpuPct * 1e4) / baseCommon.achievedRate)
        : null;
    const others = [...r.probes.map((x) => x.otherPct), p?.otherCpuPct ?? 0];
    const row = {
      design: d,
      ceiling: r.ceiling,
      ceilingBracket: `${r.ceiling}${r.failedAt ? ` (failed ${r.failedAt})` : ""}`,
      ceilingRatio: baseCeiling > 0 ? r.ceiling / baseCeiling : null,
      cpuUsPerMsg: cpuPerMsg,
      busiestThreadUsPerMsg: busiestPerMsg,
      busiestThreadAllows: allows,
      allowsRatio: allows && baseAllows ? allows / baseAllows : null,
      threads: p?.server.threads ?? null,
      serverCpuPct: p?.server.cpuPct ?? null,
      p1P99Ms: p?.latency.p1.p99Ms ?? null,
      otherLoadPct: { min: Math.min(...others), max: Math.max(...others) },
      probes: r.probes,
      commonPoint: p && {
        achievedRate: p.achievedRate,
        sustained: sustainedVerdict(p),
        messagesP99Ms: p.latency.messages.p99Ms,
        runnerCpuPct: p.runnerCpuPct,
        otherCpuPct: p.otherCpuPct,
      },
    };
    rows.push(row);
    const t = p?.server.threads;
    log(
      `| ${LABEL[d]} | ${row.ceilingBracket} | ${f(row.ceilingRatio, 2)} | ${f(cpuPerMsg, 1)} | ${f(busiestPerMsg, 1)} | ` +
        `${f(allows)} | ${f(row.allowsRatio, 2)} | ${t ? `${f(t.mainPct)} / ${f(t.workerPct)} / ${f(t.otherPct)}` : `${f(p?.server.cpuPct)} (process)`} | ` +
        `${f(row.p1P99Ms, 2)} | ${f(row.otherLoadPct.min)}-${f(row.otherLoadPct.max)} |`,
    );
  }
  log(
    `(a) and (b) report the process's CPU only (one JS thread plus GC helpers): its busiest thread is taken as the whole process. ` +
      `Took ${f((performance.now() - t0) / 1000)} s.`,
  );
  if (values.json)
    writeFileSync(
      values.json,
      `${JSON.stringify({ at: new Date().toISOString(), search, common, commonRate: rate, rows }, null, 2)}\n`,
    );
}

function threadText(p: PointResult): string {
  const t = p.server.threads;
  return t ? ` (main ${f(t.mainPct)} / worker ${f(t.workerPct)} / other threads ${f(t.otherPct)})` : "";
}

/** CPU % of the busiest JS thread; without per-thread figures, the whole process. */
function busiestThreadPct(p: PointResult): number {
  const t = p.server.threads;
  return t ? Math.max(t.mainPct, t.workerPct ?? 0) : p.server.cpuPct;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
