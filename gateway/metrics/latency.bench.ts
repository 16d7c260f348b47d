/**
 * Micro-benchmark behind the figure in latency.ts: the per-entry cost of
 * recording a latency with `LatencyHistogram.record` against prom-client's
 * `Histogram.observe` with a lane label. Run: `npm run build && node dist/gateway/metrics/latency.bench.js`.
 */
import { Histogram, Registry } from "prom-client";
import { LATENCY_BUCKETS_SECONDS, LatencyHistogram } from "./latency.js";

const N = 10_000_000;
const LANES = ["p1", "alert", "telemetry"] as const;
// Latencies spread over the buckets (0.02 ms .. ~8 s), precomputed so only the recording is timed.
const samples = new Float64Array(4096);
for (let i = 0; i < samples.length; i++) samples[i] = 0.02 * 1.003 ** (i % 4096);

function time(label: string, fn: (i: number) => void): number {
  for (let i = 0; i < N / 10; i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / N;
  console.log(`${label.padEnd(44)} ${ns.toFixed(1)} ns/record`);
  return ns;
}

const own = new LatencyHistogram(3);
time("LatencyHistogram.record(lane, ms)", (i) => own.record(i % 3, samples[i & 4095] as number));

const prom = new Histogram({
  name: "bench_latency_seconds",
  help: "bench",
  labelNames: ["lane"],
  buckets: [...LATENCY_BUCKETS_SECONDS],
  registers: [new Registry()],
});
time("prom-client Histogram.observe({ lane }, s)", (i) =>
  prom.observe({ lane: LANES[i % 3] as string }, (samples[i & 4095] as number) / 1000),
);
