/**
 * Runs a scenario's phases against an attached fleet: injects incidents
 * (each registered with the matcher as the alert it must cause), offers load
 * with the devices' own messages (open loop: message k is due at
 * t0 + k / rate, never paced by acknowledgements), and disturbs the site
 * (connection churn, clock skew, a gateway restart). Every choice of device
 * and time comes from the seed.
 *
 * Incidents are undone at the end (tamper covers back, doors closed, panels
 * reset, buses answering again), so a site is left as it was found.
 */
import type { Fleet, MqttDevice } from "../fleet.js";
import type { Ds10 } from "../mqtt/ds10.js";
import type { Ec200 } from "../mqtt/ec200.js";
import { GD2_LOW_SET_POINT, type Gd2 } from "../mqtt/gd2.js";
import { deriveSeed, type Random, randomInt, seededRandom } from "../mqtt/random.js";
import type { SiteModel } from "../site.js";
import type { AlertMatcher, Expectation } from "./matcher.js";
import {
  type DisturbancePhase,
  type IncidentPhase,
  isIncident,
  isLoad,
  type LoadPhase,
  type Phase,
  type Scenario,
  ScenarioError,
} from "./schema.js";

export interface GatewayControl {
  restart(): Promise<void>;
}

export interface RunnerOptions {
  scenario: Scenario;
  site: SiteModel;
  fleet: Fleet;
  matcher: AlertMatcher;
  seed: number;
  gateway?: GatewayControl;
}

export interface RunStats {
  incidents: number;
  loadSent: number;
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
 * What each incident must cause, from the datasheets' "alerts the gateway is expected to raise"
 * tables (the codes are the contract; how the gateway decides is its business). tank-drawdown
 * depends on how far the tank falls: see `drawdownCodes`.
 */
const DEFAULT_CODE: Record<IncidentPhase["do"], string | "none"> = {
  press: "EMERGENCY_CALL",
  "long-press": "EMERGENCY_CALL",
  fall: "FALL_DETECTED",
  tamper: "TAMPER",
  "door-held-open": "DOOR_HELD_OPEN",
  "low-battery": "BATTERY_LOW",
  bounce: "none",
  fire: "FIRE_ALARM",
  "gas-leak": "GAS_LEAK",
  cooking: "none",
  "jammed-valve": "GAS_LEAK",
  "valve-fault": "FAULT",
  "tank-drawdown": "WATER_LEVEL_LOW",
  "tank-glitch": "none",
  "tank-fault": "FAULT",
  "bus-silent": "DEVICE_LOST",
  "hydrant-pressure-low": "HYDRANT_PRESSURE_LOW",
  "kiosk-tamper": "TAMPER",
  vandalism: "VANDALISM",
  "paper-low": "PAPER_LOW",
  "battery-change": "none",
};

/** GD-2 datasheet: "a GAS_LEAK whose valve is not `closed` within 20 s" is GAS_VALVE_NOT_CLOSED. */
const VALVE_NOT_CLOSED_AFTER_MS = 20_000;
/** LV-4 datasheet: WATER_LEVEL_LOW once the level is under the reserve, "held 30 s". */
const LEVEL_LOW_HELD_MS = 30_000;
/** LV-4 datasheet: WATER_LEVEL_CRITICAL under 30 % of the tank height. */
const CRITICAL_SHARE = 0.3;
/** Cooking: the pan heats for this long before `lel` reaches its peak (compressed from the datasheet's minutes). */
const COOKING_RAMP_MS = 10_000;

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

export class ScenarioRunner {
  readonly stats: RunStats = {
    incidents: 0,
    loadSent: 0,
    malformedSent: 0,
    churned: 0,
    skewed: 0,
    restarts: 0,
    awayAtIncident: 0,
    errors: [],
    phases: [],
  };
  private readonly rng: Random;
  private readonly used = new Set<string>();
  private readonly restores: Array<() => unknown> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private t0 = 0;
  private stopped = false;
  currentPhase = 0;

  constructor(private readonly o: RunnerOptions) {
    this.rng = seededRandom(deriveSeed(o.seed, `scenario:${o.scenario.name}`));
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
    if (site.households.length < s.minHouseholds && site.source.startsWith("--scale"))
      throw new ScenarioError(
        `${s.name} needs at least ${s.minHouseholds} households (--scale ${s.minHouseholds})`,
      );
    for (const [i, p] of s.phases.entries()) {
      if (!isIncident(p)) continue;
      const pool = this.pool(p);
      if (pool.length === 0)
        throw new ScenarioError(
          `${s.name}: phases.${i} (${p.do}) needs ${this.modelOf(p)} devices and the site (${site.source}) has none attached`,
        );
    }
    if (fleet.mqtt.size === 0 && s.phases.some((p) => isLoad(p)))
      throw new ScenarioError(`${s.name}: load phases need MQTT devices and the site has none`);
  }

  private modelOf(p: IncidentPhase): string {
    switch (p.do) {
      case "press":
      case "long-press":
      case "fall":
        return "EC-200";
      case "tamper":
      case "door-held-open":
      case "bounce":
        return "DS-10";
      case "low-battery":
      case "battery-change":
        return "EC-200 or DS-10";
      case "fire":
      case "hydrant-pressure-low":
        return "MFS-8";
      case "kiosk-tamper":
      case "vandalism":
      case "paper-low":
        return "GK-3";
      case "gas-leak":
      case "cooking":
      case "jammed-valve":
      case "valve-fault":
        return "GD-2";
      case "tank-drawdown":
      case "tank-glitch":
      case "tank-fault":
        return "LV-4";
      case "bus-silent":
        return "RTU bus";
    }
  }

  /** Candidate target ids for an incident. */
  private pool(p: IncidentPhase): string[] {
    const { fleet } = this.o;
    if (p.targets) return p.targets;
    const ids = (model: "ec200" | "ds10" | "gd2") => fleet.ofModel(model).map((x) => x.spec.id);
    switch (p.do) {
      case "press":
      case "long-press":
      case "fall":
        return ids("ec200");
      case "tamper":
      case "door-held-open":
      case "bounce":
        return ids("ds10");
      case "low-battery":
      case "battery-change":
        return [...ids("ec200"), ...ids("ds10")];
      case "fire":
      case "hydrant-pressure-low":
        return [...fleet.panels.keys()];
      case "kiosk-tamper":
      case "vandalism":
      case "paper-low":
        return [...fleet.kiosks.keys()];
      case "gas-leak":
      case "cooking":
      case "jammed-valve":
      case "valve-fault":
        return ids("gd2");
      case "tank-drawdown":
      case "tank-glitch":
      case "tank-fault":
        return [...fleet.tanks.keys()];
      case "bus-silent":
        return [...fleet.busSlaves.keys()];
    }
  }

  /** `count` distinct targets, seeded, preferring ones no earlier incident used (so alerts do not merge). */
  private pick(p: IncidentPhase): string[] {
    const pool = this.pool(p);
    const shuffled = [...pool];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j] as string, shuffled[i] as string];
    }
    const fresh = shuffled.filter((id) => !this.used.has(id));
    const chosen = [...fresh, ...shuffled.filter((id) => this.used.has(id))].slice(0, p.count);
    for (const id of chosen) this.used.add(id);
    return chosen;
  }

  private after(ms: number, fn: () => unknown): void {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        if (this.stopped) return;
        const r = Promise.resolve()
          .then(fn)
          .catch(() => {});
        this.running.add(r);
        void r.finally(() => this.running.delete(r));
      },
      Math.max(0, ms),
    );
    this.timers.add(t);
  }

  /** Runs every phase; resolves when the last one has finished (not including the settle wait). */
  async run(): Promise<void> {
    const { scenario } = this.o;
    this.t0 = Date.now();
    this.o.matcher.begin(this.t0);
    const ends: Promise<void>[] = [];
    for (const [i, p] of scenario.phases.entries()) {
      ends.push(
        new Promise<void>((resolve) =>
          this.after(p.at, async () => {
            this.currentPhase = Math.max(this.currentPhase, i + 1);
            this.stats.phases.push({ do: p.do, at: p.at, startedMs: Date.now() - this.t0 });
            try {
              await this.runPhase(p, i);
            } finally {
              resolve();
            }
          }),
        ),
      );
    }
    await Promise.all(ends);
    await Promise.all([...this.running]);
  }

  elapsedMs(): number {
    return this.t0 === 0 ? 0 : Date.now() - this.t0;
  }

  private runPhase(p: Phase, index: number): Promise<void> | void {
    if (isIncident(p)) return this.incident(p, index);
    if (isLoad(p)) return this.load(p);
    return this.disturb(p as DisturbancePhase);
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
      named === undefined ? (defaults ?? [DEFAULT_CODE[p.do]]) : typeof named === "string" ? [named] : named;
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
        e.dueAt = Math.max(e.dueAt, Date.now());
      });
    }
    this.o.matcher.expect(e);
  }

  private async incident(p: IncidentPhase, index: number): Promise<void> {
    const { fleet } = this.o;
    const targets = this.pick(p);
    const done: Promise<unknown>[] = [];
    targets.forEach((id, k) => {
      const offset = targets.length > 1 ? (p.within * k) / (targets.length - 1) : 0;
      const label = `phases.${index}:${p.do}#${k + 1}`;
      done.push(
        new Promise<void>((resolve) =>
          this.after(offset, async () => {
            this.stats.incidents++;
            const at = Date.now();
            const device = fleet.mqtt.get(id);
            switch (p.do) {
              case "press":
              case "long-press":
              case "fall": {
                const pendant = device as Ec200;
                const act = () =>
                  p.do === "press" ? pendant.press() : p.do === "fall" ? pendant.fall() : pendant.longPress();
                if (p.offlineFor !== undefined) {
                  await pendant.goOffline({ lostAck: true });
                  this.expectFor(p, label, id, at, at + p.offlineFor);
                  void act();
                  this.after(p.offlineFor, () => pendant.goOnline());
                } else {
                  this.expectFor(p, label, id, at, at);
                  void act();
                }
                if (p.double) this.after(randomInt(this.rng, 1_000, 4_000), () => act());
                break;
              }
              case "tamper": {
                const door = device as Ds10;
                this.expectFor(p, label, id, at, at);
                void door.tamper(true);
                this.restores.push(() => door.tamper(false));
                break;
              }
              case "door-held-open": {
                const door = device as Ds10;
                const hold = (fleet.specs.get(id)?.holdOpenTimeS ?? 600) * 1000;
                this.expectFor(p, label, id, at, at + hold);
                void door.open();
                this.restores.push(() => door.close());
                break;
              }
              case "bounce": {
                const door = device as Ds10;
                this.expectFor(p, label, id, at, at);
                void door.bounce().then(() => door.close());
                break;
              }
              case "low-battery": {
                const d = device as MqttDevice;
                this.expectFor(p, label, id, at, at);
                if ("lowBattery" in d) void d.lowBattery();
                this.restores.push(() => {
                  d.setBattery(100);
                  return d.heartbeat();
                });
                break;
              }
              case "battery-change": {
                // New batteries: the device clock restarts at 0 until it is set again (datasheet).
                const d = device as MqttDevice;
                this.expectFor(p, label, id, at, at);
                void d.batteryChange("zero");
                this.restores.push(() => d.resync());
                break;
              }
              case "fire": {
                const panel = fleet.panels.get(id);
                this.expectFor(p, label, id, at, at);
                panel?.raiseSmoke(2.5);
                this.restores.push(() => {
                  panel?.clearAir();
                  panel?.reset();
                });
                break;
              }
              case "hydrant-pressure-low": {
                const panel = fleet.panels.get(id);
                this.expectFor(p, label, id, at, at);
                panel?.setPressure(0.08);
                this.restores.push(() => panel?.setPressure(0.32));
                break;
              }
              case "kiosk-tamper":
              case "vandalism":
              case "paper-low": {
                const kiosk = fleet.kiosks.get(id);
                this.expectFor(p, label, id, at, at);
                if (p.do === "kiosk-tamper") {
                  kiosk?.openDoor();
                  this.restores.push(() => kiosk?.closeDoor());
                } else if (p.do === "vandalism") {
                  kiosk?.tilt(true);
                  this.restores.push(() => kiosk?.tilt(false));
                } else {
                  kiosk?.setPaper(5);
                  this.restores.push(() => kiosk?.setPaper(100));
                }
                break;
              }
              case "gas-leak":
              case "jammed-valve": {
                // The datasheet's leak: 2 %LEL a second to 40; the detector closes its valve on
                // its own alarm (at its low set-point), and a site with automatic shut-off has
                // the gateway send valve_close too. A jammed valve answers `ok` and never moves.
                const gd2 = device as Gd2;
                const rate = p.rate ?? 2;
                const leakAt = at + Math.ceil(GD2_LOW_SET_POINT / rate) * 1000;
                if (p.do === "jammed-valve") {
                  gd2.jamValve(true);
                  this.expectFor(
                    p,
                    label,
                    id,
                    at,
                    { GAS_LEAK: leakAt, GAS_VALVE_NOT_CLOSED: leakAt + VALVE_NOT_CLOSED_AFTER_MS },
                    ["GAS_LEAK", "GAS_VALVE_NOT_CLOSED"],
                  );
                } else this.expectFor(p, label, id, at, leakAt);
                gd2.leak(rate, p.peak ?? 40);
                const air = () => {
                  gd2.jamValve(false);
                  gd2.ventilate();
                };
                if (p.ventilateAfter !== undefined) this.after(p.ventilateAfter, air);
                this.restores.push(air);
                break;
              }
              case "cooking": {
                // Minutes of cooking pressed into seconds: the heartbeat the detector sends while
                // the pan is on goes out at the peak, so the gateway does see the gas, and must stay quiet.
                const gd2 = device as Gd2;
                const peak = p.peak ?? 4.5;
                const hold = p.duration ?? 20_000;
                this.expectFor(p, label, id, at, at);
                gd2.cooking(peak, hold, COOKING_RAMP_MS);
                this.after(COOKING_RAMP_MS + 1_500, () => gd2.heartbeat());
                if (p.ventilateAfter !== undefined) this.after(p.ventilateAfter, () => gd2.ventilate());
                this.restores.push(() => gd2.ventilate());
                break;
              }
              case "valve-fault": {
                // The valve reports `fault` (its motor): the next heartbeat says so.
                const gd2 = device as Gd2;
                this.expectFor(p, label, id, at, at);
                gd2.setValveFault(true);
                void gd2.heartbeat();
                this.restores.push(() => {
                  gd2.setValveFault(false);
                  return gd2.heartbeat();
                });
                break;
              }
              case "tank-drawdown": {
                const tank = fleet.tanks.get(id);
                if (!tank) break;
                const rate = p.rate ?? 30;
                const height = tank.tankHeightMm;
                const from = tank.getLevel();
                const to = drawdownTarget(p.to, height);
                const reserve = tank.setPoints().low;
                const critical = CRITICAL_SHARE * height;
                const reach = (mm: number) => at + (Math.max(0, from - mm) / rate) * 1000;
                this.expectFor(
                  p,
                  label,
                  id,
                  at,
                  {
                    WATER_LEVEL_LOW: reach(reserve) + LEVEL_LOW_HELD_MS,
                    WATER_LEVEL_CRITICAL: reach(critical),
                  },
                  drawdownCodes(to, reserve, critical),
                );
                tank.drawDown(rate, to);
                if (p.refillAfter !== undefined)
                  this.after(reach(to) - at + p.refillAfter, () => tank.refill(rate));
                this.restores.push(() => tank.refill(rate));
                break;
              }
              case "tank-glitch": {
                // A failing pressure cell: single polls read 0 or 65535 mm. The datasheet wants a
                // quality flag, not a level alert.
                const tank = fleet.tanks.get(id);
                this.expectFor(p, label, id, at, at);
                for (let g = 0; g < (p.glitches ?? 3); g++) {
                  const value = this.rng() < 0.5 ? 0 : 0xffff;
                  this.after(g * 1_000, () => tank?.glitch(value));
                }
                break;
              }
              case "tank-fault": {
                const tank = fleet.tanks.get(id);
                this.expectFor(p, label, id, at, at);
                tank?.setFault(p.fault ?? 1);
                if (p.duration !== undefined) this.after(p.duration, () => tank?.setFault(0));
                this.restores.push(() => tank?.setFault(0));
                break;
              }
              case "bus-silent": {
                const slaves = fleet.busSlaves.get(id) ?? [];
                const devices = this.o.site.rtu.filter((d) => d.bus === id);
                for (const d of devices) this.expectFor(p, `${label}:${d.id}`, d.id, at, at);
                for (const s of slaves) s.faults.silent = true;
                const back = () => {
                  for (const s of slaves) s.faults.silent = false;
                };
                this.restores.push(back);
                if (p.duration) this.after(p.duration, back);
                break;
              }
            }
            resolve();
          }),
        ),
      );
    });
    await Promise.all(done);
  }

  /** Open-loop load with the devices' own heartbeats, some replaced by malformed payloads. */
  private load(p: LoadPhase): Promise<void> {
    const devices = [...this.o.fleet.mqtt.values()];
    const rng = seededRandom(deriveSeed(this.o.seed, `load:${p.at}:${p.do}`));
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
    const start = Date.now();
    return new Promise<void>((resolve) => {
      const tick = () => {
        if (this.stopped) return resolve();
        const due = dueBy(Date.now() - start);
        for (; next < due; next++) {
          const d = devices[k++ % devices.length] as MqttDevice;
          if (!d.online) continue;
          if (p.malformed > 0 && rng() < p.malformed) {
            const make = MALFORMED[Math.floor(rng() * MALFORMED.length)] as (r: Random) => Buffer;
            void d.publishRaw(make(rng));
            this.stats.malformedSent++;
          } else {
            void d.heartbeat();
          }
          this.stats.loadSent++;
        }
        if (next >= total) return resolve();
        const t = setTimeout(tick, 5);
        this.timers.add(t);
      };
      tick();
    });
  }

  private async disturb(p: DisturbancePhase): Promise<void> {
    const devices = [...this.o.fleet.mqtt.values()];
    const rng = seededRandom(deriveSeed(this.o.seed, `disturb:${p.at}:${p.do}`));
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
          chosen.map(
            (d) =>
              new Promise<void>((resolve) =>
                this.after(rng() * spread, async () => {
                  this.stats.churned++;
                  await d.goOffline();
                  this.after(down, async () => {
                    await d.goOnline();
                    resolve();
                  });
                }),
              ),
          ),
        );
        break;
      }
      case "clock-skew": {
        for (const d of sample(p.share ?? 0)) {
          d.resync(p.skewMs);
          this.stats.skewed++;
          this.restores.push(() => d.resync(0));
        }
        break;
      }
      case "gateway-restart": {
        // A gateway that does not come back fails the run by name, not as a list of missing alerts.
        try {
          await this.o.gateway?.restart();
          this.stats.restarts++;
        } catch (err) {
          this.stats.errors.push(`gateway restart: ${err instanceof Error ? err.message : String(err)}`);
        }
        break;
      }
      case "upstream-outage":
        // Refused in check(): the simulator cannot reach the upstream broker.
        break;
    }
  }

  /** Undoes the incidents (covers back, doors closed, panels reset, buses answering). */
  async restore(): Promise<void> {
    for (const r of this.restores.splice(0)) {
      try {
        await r();
      } catch {
        // A device that went away cannot be restored; the gateway will say so.
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.running]);
  }
}

/** tank-drawdown's `to`: mm, or a share of the tank height ("25%"); default half the tank. */
export function drawdownTarget(to: number | string | undefined, heightMm: number): number {
  if (to === undefined) return Math.round(heightMm / 2);
  if (typeof to === "number") return to;
  return Math.round((Number(to.slice(0, -1)) / 100) * heightMm);
}

/**
 * The alerts a tank drawn down to `to` mm must cause (LV-4 datasheet): WATER_LEVEL_LOW under the
 * reserve (the sensor's low set-point), WATER_LEVEL_CRITICAL too under 30 % of the height.
 */
export function drawdownCodes(to: number, reserveMm: number, criticalMm: number): string[] {
  const codes: string[] = [];
  if (to < reserveMm) codes.push("WATER_LEVEL_LOW");
  if (to < criticalMm) codes.push("WATER_LEVEL_CRITICAL");
  return codes.length > 0 ? codes : ["none"];
}
