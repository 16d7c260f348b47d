/**
 * Disturbance phases: connection churn, clock skew, a gateway restart. Which devices, and when,
 * comes from the seed.
 */
import type { MqttDevice } from "../fleet.js";
import { deriveSeed, seededRandom } from "../mqtt/random.js";
import type { DisturbancePhase } from "./schema.js";
import { RESTORE_WITHIN_MS, within } from "./within.js";

export interface GatewayControl {
  restart(): Promise<void>;
}

/** The run's counts a disturbance adds to (RunStats). */
export interface DisturbanceCounts {
  churned: number;
  skewed: number;
  restarts: number;
  errors: string[];
}

export interface DisturbanceRun {
  /** The MQTT devices of the fleet (the ones churned or skewed are drawn from them). */
  devices: readonly MqttDevice[];
  /** The run's seed (the phase draws its own stream from it). */
  seed: number;
  /** The phase's index in the scenario: two phases alike (same `at` and `do`) draw apart. */
  phase: number;
  stats: DisturbanceCounts;
  gateway?: GatewayControl;
  /** Resolves true after `ms`, or false as soon as the run is stopped. */
  sleep(ms: number): Promise<boolean>;
  /** Undoes the disturbance at the end of the run. */
  onRestore(fn: () => unknown): void;
}

/** Carries out one disturbance phase; resolves when it is over (churned devices back). */
export async function disturb(p: DisturbancePhase, run: DisturbanceRun): Promise<void> {
  const { devices, stats } = run;
  const rng = seededRandom(deriveSeed(run.seed, `disturb:${run.phase}:${p.do}`));
  const sample = (share: number) => {
    const n = Math.round(share * devices.length);
    const copy = [...devices];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [copy[i], copy[j]] = [copy[j] as MqttDevice, copy[i] as MqttDevice];
    }
    return copy.slice(0, n);
  };
  switch (p.do) {
    case "churn": {
      const spread = p.duration ?? 10_000;
      const down = p.downFor ?? 3_000;
      const chosen = sample(p.share ?? 0);
      await Promise.all(
        chosen.map(async (d) => {
          if (!(await run.sleep(rng() * spread))) return;
          stats.churned++;
          await d.goOffline();
          // Stopped while it is away: it comes back now, as the site was found.
          await run.sleep(down);
          await within(d.goOnline(), RESTORE_WITHIN_MS);
        }),
      );
      break;
    }
    case "clock-skew": {
      for (const d of sample(p.share ?? 0)) {
        d.resync(p.skewMs);
        stats.skewed++;
        run.onRestore(() => d.resync(0));
      }
      break;
    }
    case "gateway-restart": {
      // A gateway that does not come back fails the run by name, not as a list of missing alerts.
      try {
        await run.gateway?.restart();
        stats.restarts++;
      } catch (err) {
        stats.errors.push(`gateway restart: ${err instanceof Error ? err.message : String(err)}`);
      }
      break;
    }
    case "upstream-outage":
      // Refused in the runner's check: the simulator cannot reach the upstream broker.
      break;
  }
}
