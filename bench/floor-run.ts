/**
 * MEASUREMENT HARNESS (npm run bench:floor): the gateway beside the floor (bench/floor.ts: the
 * least a server can do, one thread, no broker) under the same load, generator, subscriber and
 * operator console as the ceiling suite's gateway points. What the floor shows at a rate is what
 * this machine and the bench's own generator allow there; the rest of the gateway's figure is the
 * gateway's.
 *
 * Per pair, every rate on both servers (their order alternating from pair to pair). Printed per
 * point: the console's P1 p50 / p99, the readings' p99 and output, CPU of the server and of the
 * runner, and the time the server's threads spent runnable but waiting for a core. Then per server
 * the median over the pairs, and the P1 p99 at each rate over the one at the first rate (the
 * ceiling suite's overload figure takes its value at 50 % of the broker's ceiling).
 *
 *   npm run bench:floor -- [--rates 20000,120000] [--duration 10] [--pairs 2] [--json FILE]
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type PointResult, pointOptions, runPoint } from "./harness.js";
import { otherLoad } from "./machine-load.js";
import { type CommonOptions, HARNESS_LOAD } from "./options.js";

const { values } = parseArgs({
  options: {
    rates: { type: "string", default: "20000,120000" },
    duration: { type: "string", default: "10" },
    pairs: { type: "string", default: "2" },
    json: { type: "string" },
  },
});
const rates = String(values.rates).split(",").map(Number);
const pairs = Number(values.pairs);
const durationS = Number(values.duration);
if (rates.some((r) => !(r > 0)) || !(pairs >= 1) || !(durationS > 0))
  throw new RangeError("--rates must be positive numbers, --pairs and --duration positive");
const common: CommonOptions = { ...HARNESS_LOAD, durationS, deviceListener: true };
const SERVERS = ["floor", "gateway"] as const;
type Server = (typeof SERVERS)[number];

const log = (s: string) => process.stdout.write(`${s}\n`);
const f = (v: number | null | undefined, d = 1) =>
  v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(d);
/** NaN when there is nothing (every point without a console figure). */
const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface Row {
  server: Server;
  pair: number;
  rate: number;
  sentPerS: number;
  consoleP1P50Ms: number | null;
  consoleP1P99Ms: number | null;
  alertsLost: number;
  readingsP99Ms: number;
  readingsPerS: number;
  conflated: number;
  serverCpuPct: number;
  runnerCpuPct: number;
  mainWaitPct: number | null;
  otherThreadWaitPct: number | null;
  otherLoadPct: number;
}

function row(server: Server, pair: number, r: PointResult): Row {
  return {
    server,
    pair,
    rate: r.offeredRate,
    sentPerS: r.generator.sendRate,
    consoleP1P50Ms: r.console?.p1.p50Ms ?? null,
    consoleP1P99Ms: r.console?.p1.p99Ms ?? null,
    alertsLost: r.console?.alerts.lost ?? r.alerts.lost,
    readingsP99Ms: r.latency.messages.p99Ms,
    readingsPerS: r.achievedRate,
    conflated: r.messages.conflated,
    serverCpuPct: r.server.cpuPct,
    runnerCpuPct: r.runnerCpuPct,
    mainWaitPct: r.server.runqueueWaitPct?.main ?? null,
    otherThreadWaitPct: r.server.runqueueWaitPct?.busiestOther ?? null,
    otherLoadPct: r.otherCpuPct,
  };
}

async function main(): Promise<void> {
  log(
    `bench:floor (measurement harness) ${new Date().toISOString()}, other load now ${f(await otherLoad(1000))} %; ` +
      `rates ${rates.join(", ")}/s, ${durationS} s points, ${pairs} pair(s), the gateway on its device listener, journal off`,
  );
  log(
    "| server | pair | rate/s | sent/s | console P1 p50 / p99 ms | alerts lost | readings p99 ms | readings/s | conflated | server CPU % | runner CPU % | waiting for a core %: main / other thread | other load % |",
  );
  log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  const rows: Row[] = [];
  for (let pair = 1; pair <= pairs; pair++) {
    const order: Server[] = pair % 2 === 1 ? ["floor", "gateway"] : ["gateway", "floor"];
    for (const rate of rates) {
      for (const server of order) {
        const r = row(server, pair, await runPoint(pointOptions("gateway", server, rate, common)));
        rows.push(r);
        log(
          `| ${server} | ${pair} | ${rate} | ${f(r.sentPerS, 0)} | ${f(r.consoleP1P50Ms, 2)} / ${f(r.consoleP1P99Ms, 2)} | ` +
            `${r.alertsLost} | ${f(r.readingsP99Ms)} | ${f(r.readingsPerS, 0)} | ${r.conflated} | ${f(r.serverCpuPct, 0)} | ` +
            `${f(r.runnerCpuPct, 0)} | ${f(r.mainWaitPct, 0)} / ${f(r.otherThreadWaitPct, 0)} | ${f(r.otherLoadPct, 0)} |`,
        );
      }
    }
  }
  log("");
  // Per server, the median over the pairs at each rate, and its ratio to the first rate's.
  const summary: Record<string, Record<string, { consoleP1P99Ms: number; overFirst: number }>> = {};
  for (const server of SERVERS) {
    const p99s = rates.map((rate) =>
      median(
        rows
          .filter((r) => r.server === server && r.rate === rate && r.consoleP1P99Ms !== null)
          .map((r) => r.consoleP1P99Ms as number),
      ),
    );
    const first = p99s[0] as number;
    const byRate: Record<string, { consoleP1P99Ms: number; overFirst: number }> = {};
    rates.forEach((rate, i) => {
      byRate[rate] = { consoleP1P99Ms: p99s[i] as number, overFirst: (p99s[i] as number) / first };
    });
    summary[server] = byRate;
    log(
      `${server}: console P1 p99, median of ${pairs}: ` +
        rates
          .map(
            (rate) =>
              `${rate}/s ${f(byRate[rate]?.consoleP1P99Ms, 2)} ms (${f(byRate[rate]?.overFirst, 2)}x)`,
          )
          .join(", "),
    );
  }
  if (values.json)
    writeFileSync(values.json, `${JSON.stringify({ rates, durationS, pairs, rows, summary }, null, 2)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:floor failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
