/**
 * Load phases: the devices' own heartbeats offered open loop (message k is due at t0 + k / rate,
 * never paced by acknowledgements), some replaced by malformed payloads.
 */
import type { MqttDevice } from "../fleet.js";
import { deriveSeed, type Random, seededRandom } from "../mqtt/random.js";
import type { LoadPhase } from "./schema.js";

/** Payloads a broken or hostile device might send: each must be rejected and counted, nothing raised. */
const MALFORMED: ReadonlyArray<(rng: Random) => Buffer> = [
  () => Buffer.from('{"t":"evt","seq":'),
  () => Buffer.from('{"t":"evt","seq":"one","ts":"now","evt":"press"}'),
  () => Buffer.from('{"t":"explode","seq":1,"ts":1}'),
  () => Buffer.from([0xa6, 0x61, 0x74, 0x63, 0x65]),
  (rng) => Buffer.from(Array.from({ length: 32 }, () => Math.floor(rng() * 256))),
  () => Buffer.alloc(4096, 0x7b),
  () => Buffer.from("[]"),
];

/** The run's counts a load phase adds to (RunStats). */
export interface LoadCounts {
  loadOffered: number;
  loadSent: number;
  loadSkippedOffline: number;
  malformedSent: number;
}

export interface LoadRun {
  /** The MQTT devices of the fleet, in the order the load goes round them. */
  devices: readonly MqttDevice[];
  /** The run's seed (the phase draws its own stream from it). */
  seed: number;
  /** The phase's index in the scenario: two phases alike (same `at` and `do`) draw apart. */
  phase: number;
  stats: LoadCounts;
  now(): number;
  /** Resolves true after `ms`, or false as soon as the run is stopped. */
  sleep(ms: number): Promise<boolean>;
  /** Aborted when the run is stopped: the load ends there. */
  signal: AbortSignal;
}

/** Offers one load phase; resolves when its messages have all fallen due, or the run is stopped. */
export function offerLoad(p: LoadPhase, run: LoadRun): Promise<void> {
  const { devices, stats } = run;
  const rng = seededRandom(deriveSeed(run.seed, `load:${run.phase}:${p.do}`));
  let total: number;
  let rateAt: (tMs: number) => number;
  let durationMs: number;
  if (p.do === "burst") {
    total = p.count as number;
    durationMs = Math.max(1, p.within as number);
    rateAt = () => (total * 1000) / durationMs;
  } else {
    durationMs = p.duration as number;
    const from = p.rate as number;
    const to = p.do === "ramp" ? (p.to as number) : from;
    rateAt = (t) => from + ((to - from) * t) / durationMs;
    total = Math.round(((from + to) / 2) * (durationMs / 1000));
  }
  // Cumulative count due by time t: integral of the rate (linear for a ramp).
  const dueBy = (t: number) => {
    const tt = Math.min(t, durationMs);
    return Math.min(total, Math.floor(((rateAt(0) + rateAt(tt)) / 2) * (tt / 1000)) + 1);
  };
  let next = 0;
  let k = Math.floor(rng() * devices.length);
  const start = run.now();
  return new Promise<void>((resolve) => {
    const tick = () => {
      if (run.signal.aborted) return resolve();
      const due = dueBy(run.now() - start);
      for (; next < due; next++) {
        const d = devices[k++ % devices.length] as MqttDevice;
        stats.loadOffered++;
        if (!d.online) {
          stats.loadSkippedOffline++;
          continue;
        }
        if (p.malformed > 0 && rng() < p.malformed) {
          const make = MALFORMED[Math.floor(rng() * MALFORMED.length)] as (r: Random) => Buffer;
          void d.publishRaw(make(rng));
          stats.malformedSent++;
        } else {
          void d.heartbeat();
        }
        stats.loadSent++;
      }
      if (next >= total) return resolve();
      void run.sleep(5).then((due) => (due ? tick() : resolve()));
    };
    tick();
  });
}
