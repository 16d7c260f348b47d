/**
 * Runs a scenario's phases against an attached fleet: injects incidents
 * (each registered with the matcher as the alert it must cause), offers load
 * with the devices' own messages (open loop: message k is due at
 * t0 + k / rate, never paced by acknowledgements), and disturbs the site
 * (connection churn, clock skew, a gateway restart). Every choice of device
 * and time comes from the seed, each phase (and each incident of it) from a stream of its own:
 * what one phase draws, and when, never shifts another's (phases overlap, and a loaded event
 * loop changes the order in which their timers fire).
 *
 * Incidents are undone at the end (tamper covers back, doors closed, panels
 * reset, buses answering again), so a site is left as it was found.
 *
 * This file schedules the phases, stops and restores; what each incident kind
 * needs, causes and undoes is one entry in incidents/ (mqtt.ts, modbus.ts),
 * load phases are load.ts, disturbances disturbances.ts.
 */
import { setMaxListeners } from "node:events";
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import type { Fleet } from "../fleet.js";
import { deriveSeed, type Random, seededRandom } from "../mqtt/random.js";
import type { SiteModel } from "../site.js";
import { overDeviceRate, siteDeviceRates } from "./device-rate.js";
import { disturb, type GatewayControl } from "./disturbances.js";
import { incidentSpec } from "./incidents/index.js";
import type { IncidentContext } from "./incidents/spec.js";
import { offerLoad } from "./load.js";
import type { AlertMatcher, Expectation } from "./matcher.js";
import {
  type DisturbancePhase,
  type IncidentPhase,
  incidentCount,
  isIncident,
  isLoad,
  type Phase,
  type Scenario,
  ScenarioError,
} from "./schema.js";
import { RESTORE_WITHIN_MS, within } from "./within.js";

export type { GatewayControl };

export interface RunnerOptions {
  scenario: Scenario;
  site: SiteModel;
  fleet: Fleet;
  matcher: AlertMatcher;
  seed: number;
  gateway?: GatewayControl;
  /** Timers and "now" of the run (a fake one in unit tests). Default the system clock. */
  clock?: Clock;
  /** The scenario's file and its fields' lines, so a refusal names them as the schema's errors do. */
  source?: { file: string; lineOf?: (path: readonly PropertyKey[]) => number | undefined };
}

export interface RunStats {
  incidents: number;
  /** Of those, incidents that must cause no alert (bouncing contacts, cooking, `expect: none`). */
  quietIncidents: number;
  /** Load messages that fell due (the profile's count, up to where the run got). */
  loadOffered: number;
  loadSent: number;
  /** Load messages due on a device that was disconnected then (churn): neither sent nor queued. */
  loadSkippedOffline: number;
  malformedSent: number;
  churned: number;
  skewed: number;
  restarts: number;
  /** Incidents on a device that was disconnected at the time (their latency counts from its return). */
  awayAtIncident: number;
  /** Disturbances that could not be carried out (a gateway that did not come back): the run fails. */
  errors: string[];
  /** Phase label -> start offset actually reached, ms. */
  phases: Array<{ do: string; at: number; startedMs: number }>;
}

/**
 * Why the site is smaller than the scenario's `minHouseholds` (undefined: it is not), naming the
 * site and both numbers. Asked again before anything is attached (cli.ts): a big fleet need not
 * connect to hear it.
 */
export function tooFewHouseholds(
  s: Pick<Scenario, "name" | "minHouseholds">,
  site: Pick<SiteModel, "source" | "households">,
): string | undefined {
  // The demo attaches one pendant (its household's): a scenario asking for more is refused too.
  const households = site.source === "demo" ? 1 : site.households.length;
  if (s.minHouseholds === undefined || households >= s.minHouseholds) return undefined;
  if (site.source === "demo")
    return `${s.name} needs a site of at least ${s.minHouseholds} households; the demo leaves the simulator one pendant: give --scale ${s.minHouseholds}, or --config FILE of a site that large`;
  if (site.source.startsWith("--scale"))
    return `${s.name} needs at least ${s.minHouseholds} households; ${site.source} has ${households}: give --scale ${s.minHouseholds} or more`;
  return `${s.name} needs at least ${s.minHouseholds} households; ${site.source} has ${households}: run it on a larger site (--scale ${s.minHouseholds} writes one)`;
}

export class ScenarioRunner {
  readonly stats: RunStats = {
    incidents: 0,
    quietIncidents: 0,
    loadOffered: 0,
    loadSent: 0,
    loadSkippedOffline: 0,
    malformedSent: 0,
    churned: 0,
    skewed: 0,
    restarts: 0,
    awayAtIncident: 0,
    errors: [],
    phases: [],
  };
  /** What the incidents' runs (incidents/) may use of this run. */
  private readonly incidents: Omit<IncidentContext, "rng">;
  private readonly used = new Set<string>();
  private readonly restores: Array<() => unknown> = [];
  /** Aborted by stop(): every wait of every phase ends at once (the phase then winds down). */
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  private readonly running = new Set<Promise<unknown>>();
  private t0 = 0;
  currentPhase = 0;

  constructor(private readonly o: RunnerOptions) {
    this.clock = o.clock ?? systemClock;
    // One listener per pending wait: thousands of devices churned or incidents spread at once.
    setMaxListeners(0, this.abort.signal);
    this.incidents = {
      fleet: o.fleet,
      site: o.site,
      matcher: o.matcher,
      error: (message) => this.stats.errors.push(message),
      after: (ms, fn) => this.after(ms, fn),
      expectFor: (p, label, key, at, dueAt, defaults) => this.expectFor(p, label, key, at, dueAt, defaults),
      onRestore: (fn) => this.restores.push(fn),
    };
    this.check();
  }

  /** Refuses up front what this run cannot do, saying how it is run instead. */
  private check(): void {
    const { scenario: s, fleet, site } = this.o;
    if (s.needs.includes("upstream-harness"))
      throw new ScenarioError(
        `${s.name} needs a harness that cuts the gateway's upstream broker (the simulator cannot reach it): ${s.howToRun ?? "see its description"}`,
      );
    if (s.needs.includes("gateway-control") && !this.o.gateway)
      throw new ScenarioError(
        `${s.name} restarts the gateway: run it with --gateway-cmd "linli start --config FILE --data-dir DIR" so the simulator starts the gateway itself${s.howToRun ? ` (${s.howToRun})` : ""}`,
      );
    const small = tooFewHouseholds(s, site);
    if (small !== undefined) throw new ScenarioError(small);
    if (
      s.maxHouseholds !== undefined &&
      site.households.length > s.maxHouseholds &&
      site.source.startsWith("--scale")
    )
      throw new ScenarioError(
        `${s.name} drives every household of at most ${s.maxHouseholds} (--scale ${s.maxHouseholds}); the ${site.households.length - s.maxHouseholds} more would be left alone`,
      );
    for (const [i, p] of s.phases.entries()) {
      if (!isIncident(p)) continue;
      const spec = incidentSpec(p.do);
      const pool = this.pool(p);
      if (pool.length === 0)
        throw new ScenarioError(
          `${s.name}: phases.${i} (${p.do}) needs ${spec.model} devices and the site (${site.source}) has none attached`,
        );
      // Without targets, `count` picks from the site's devices: more than it has would quietly drive fewer.
      if (p.targets === undefined && p.count !== undefined && p.count > pool.length)
        throw new ScenarioError(
          `${this.where(i, "count")}: count ${p.count} is more than the ${pool.length} ${spec.model} the site (${site.source}) has attached: lower count, give targets, or run it on a site with more`,
        );
      const refused = spec.check?.(p, pool, fleet, site);
      if (refused !== undefined) throw new ScenarioError(`${s.name}: phases.${i} (${p.do}): ${refused}`);
    }
    if (fleet.mqtt.size === 0 && s.phases.some((p) => isLoad(p)))
      throw new ScenarioError(`${s.name}: load phases need MQTT devices and the site has none`);
    // The load goes round the devices in turn: each one's share must fit the gateway's rate per device.
    const over = overDeviceRate(
      s.phases.filter((p) => isLoad(p)),
      [...fleet.mqtt.keys()].map((id) => fleet.specs.get(id)?.model ?? ""),
      siteDeviceRates(site.deviceRate),
      {
        site: site.source,
        ...(site.source.startsWith("--scale")
          ? { devicesPerHousehold: fleet.mqtt.size / site.households.length }
          : {}),
      },
    );
    if (over !== undefined) throw new ScenarioError(`${s.name}: ${over}`);
  }

  /** `FILE:LINE: phases.I.FIELD` when the scenario came from a file, else `NAME: phases.I.FIELD`. */
  private where(phase: number, field: string): string {
    const path = ["phases", phase, field];
    const src = this.o.source;
    if (!src) return `${this.o.scenario.name}: ${path.join(".")}`;
    const line = src.lineOf?.(path);
    return `${src.file}${line ? `:${line}` : ""}: ${path.join(".")}`;
  }

  /** Candidate target ids for an incident. */
  private pool(p: IncidentPhase): string[] {
    return p.targets ?? incidentSpec(p.do).pool(this.o.fleet);
  }

  /** A stream of the run's seed for one use (`phase index:what`), independent of every other. */
  private stream(use: string): Random {
    return seededRandom(deriveSeed(this.o.seed, `scenario:${this.o.scenario.name}:${use}`));
  }

  /** incidentCount() distinct targets, seeded, preferring ones no earlier incident used (so alerts do not merge). */
  private pick(p: IncidentPhase, index: number): string[] {
    const pool = this.pool(p);
    const shuffled = [...pool];
    const rng = this.stream(`${index}:targets`);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j] as string, shuffled[i] as string];
    }
    const fresh = shuffled.filter((id) => !this.used.has(id));
    const chosen = [...fresh, ...shuffled.filter((id) => this.used.has(id))].slice(0, incidentCount(p));
    for (const id of chosen) this.used.add(id);
    return chosen;
  }

  /** Resolves true after `ms` on the run's clock, or false as soon as the run is stopped. */
  private sleep(ms: number): Promise<boolean> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = () => {
        this.clock.clearTimeout(t);
        resolve(false);
      };
      const t: ClockTimer = this.clock.setTimeout(
        () => {
          signal.removeEventListener("abort", onAbort);
          resolve(true);
        },
        Math.max(0, ms),
      );
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Runs `fn` after `ms` unless the run is stopped first. Resolves when `fn` has finished, or at
   * once when the wait is cut short by stop(): nothing may wait on a timer that stop() cancelled.
   */
  private after(ms: number, fn: () => unknown): Promise<void> {
    return this.sleep(ms).then((due) => {
      if (!due) return;
      const r = Promise.resolve()
        .then(fn)
        .then(
          () => {},
          () => {},
        );
      this.running.add(r);
      void r.finally(() => this.running.delete(r));
      return r;
    });
  }

  private now(): number {
    return this.clock.now();
  }

  /** Runs every phase; resolves when the last one has finished (not including the settle wait). */
  async run(): Promise<void> {
    const { scenario } = this.o;
    this.t0 = this.now();
    this.o.matcher.begin(this.t0);
    const ends = scenario.phases.map((p, i) =>
      this.after(p.at, async () => {
        this.currentPhase = Math.max(this.currentPhase, i + 1);
        this.stats.phases.push({ do: p.do, at: p.at, startedMs: this.now() - this.t0 });
        await this.runPhase(p, i);
      }),
    );
    await Promise.all(ends);
    await Promise.all([...this.running]);
  }

  elapsedMs(): number {
    return this.t0 === 0 ? 0 : this.now() - this.t0;
  }

  private runPhase(p: Phase, index: number): Promise<void> | void {
    if (isIncident(p)) return this.incident(p, index);
    if (isLoad(p))
      return offerLoad(p, {
        devices: [...this.o.fleet.mqtt.values()],
        seed: this.o.seed,
        phase: index,
        stats: this.stats,
        now: () => this.now(),
        sleep: (ms) => this.sleep(ms),
        signal: this.abort.signal,
      });
    return disturb(p as DisturbancePhase, {
      devices: [...this.o.fleet.mqtt.values()],
      seed: this.o.seed,
      phase: index,
      stats: this.stats,
      gateway: this.o.gateway,
      sleep: (ms) => this.sleep(ms),
      onRestore: (fn) => this.restores.push(fn),
    });
  }

  /**
   * Registers the alert(s) an incident must cause: `p.expect` if the scenario names them, else
   * the datasheet's (`defaults`, or the kind's one code). `dueAt` per code where the datasheet
   * gives that alert a delay of its own (20 s for a valve not closed, 30 s held for a low tank).
   */
  private expectFor(
    p: IncidentPhase,
    label: string,
    key: string,
    at: number,
    dueAt: number | Record<string, number>,
    defaults?: string[],
  ): void {
    const named = p.expect;
    const codes =
      named === undefined
        ? (defaults ?? [incidentSpec(p.do).code])
        : typeof named === "string"
          ? [named]
          : named;
    if (codes.every((code) => code === "none")) this.stats.quietIncidents++;
    for (const code of codes) {
      if (code === "none") continue;
      const due = typeof dueAt === "number" ? dueAt : (dueAt[code] ?? Math.min(...Object.values(dueAt)));
      this.expectOne(p, label, key, code, at, due);
    }
  }

  private expectOne(
    p: IncidentPhase,
    label: string,
    key: string,
    code: string,
    at: number,
    dueAt: number,
  ): void {
    const e: Expectation = {
      incident: label,
      code,
      key,
      at,
      dueAt,
      latencyMaxMs: p.latency ?? this.o.scenario.latency.max,
    };
    // A device that is away (connection churn, a restarting gateway) sends the incident from its
    // backlog when it is back: the gateway's latency counts from then, not from the press.
    const device = this.o.fleet.mqtt.get(key);
    if (device && !device.online && p.offlineFor === undefined) {
      e.awayAtIncident = true;
      this.stats.awayAtIncident++;
      device.once("online", () => {
        e.dueAt = Math.max(e.dueAt, this.now());
      });
    }
    this.o.matcher.expect(e);
  }

  private async incident(p: IncidentPhase, index: number): Promise<void> {
    const spec = incidentSpec(p.do);
    const targets = this.pick(p, index);
    const done: Promise<unknown>[] = [];
    targets.forEach((id, k) => {
      const offset = targets.length > 1 ? (p.within * k) / (targets.length - 1) : 0;
      const label = `phases.${index}:${p.do}#${k + 1}`;
      done.push(
        this.after(offset, () => {
          this.stats.incidents++;
          const ctx = { ...this.incidents, rng: this.stream(`${index}:${k}`) };
          return spec.run(ctx, p, { id, label, at: this.now() });
        }),
      );
    });
    await Promise.all(done);
  }

  /** Undoes the incidents (covers back, doors closed, panels reset, buses answering). */
  async restore(): Promise<void> {
    for (const r of this.restores.splice(0)) {
      try {
        await within(Promise.resolve().then(r), RESTORE_WITHIN_MS);
      } catch {
        // A device that went away cannot be restored; the gateway will say so.
      }
    }
  }

  /**
   * Ends the run: every pending wait resolves at once, and what was under way winds down (churned
   * devices reconnect), bounded. Call restore() after it to undo the incidents.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await within(Promise.all([...this.running]), RESTORE_WITHIN_MS);
  }
}
