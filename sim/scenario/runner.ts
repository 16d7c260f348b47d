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
import { setMaxListeners } from "node:events";
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
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
  POWER_CUT_OUTAGE_MS,
  POWER_FAIL_AFTER_MS,
  type Scenario,
  ScenarioError,
  WINTER_COOLING_C_PER_MIN,
  WINTER_HEATER_C_PER_MIN,
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
  /** Timers and "now" of the run (a fake one in unit tests). Default the system clock. */
  clock?: Clock;
}

export interface RunStats {
  incidents: number;
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
  "tank-winter": "none",
  "tank-freeze": "FREEZE_RISK",
  "power-cut": "POWER_FAIL",
};

/** GD-2 datasheet: "a GAS_LEAK whose valve is not `closed` within 20 s" is GAS_VALVE_NOT_CLOSED. */
const VALVE_NOT_CLOSED_AFTER_MS = 20_000;
/** LV-4 datasheet: WATER_LEVEL_LOW once the level is under the reserve, "held 30 s". */
const LEVEL_LOW_HELD_MS = 30_000;
/** LV-4 datasheet: WATER_LEVEL_CRITICAL under 30 % of the tank height. */
const CRITICAL_SHARE = 0.3;
/** LV-4 datasheet: FREEZE_RISK once the water is "under 4.0 °C for 10 minutes". */
const FREEZE_BELOW_C = 4.0;
const FREEZE_HELD_MS = 600_000;
/** How far ahead a freezing night is forecast (a heater that loses by 0.01 °C/min still gets there). */
const FREEZE_HORIZON_MS = 24 * 3_600_000;
/** A detector back from a power cut must have a reading accepted (ts 0, mains false) within this. */
const READING_WITHIN_MS = 15_000;
/** Cooking: the pan heats for this long before `lel` reaches its peak (compressed from the datasheet's minutes). */
const COOKING_RAMP_MS = 10_000;

/**
 * How long stopping waits for what was under way (a device reconnecting after churn) and each
 * end-of-run restore: a gateway that does not answer must not hold the report back.
 */
export const RESTORE_WITHIN_MS = 15_000;

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
  private readonly rng: Random;
  private readonly used = new Set<string>();
  private readonly restores: Array<() => unknown> = [];
  /** Aborted by stop(): every wait of every phase ends at once (the phase then winds down). */
  private readonly abort = new AbortController();
  private readonly clock: Clock;
  private readonly running = new Set<Promise<unknown>>();
  private t0 = 0;
  private stopped = false;
  currentPhase = 0;

  constructor(private readonly o: RunnerOptions) {
    this.rng = seededRandom(deriveSeed(o.seed, `scenario:${o.scenario.name}`));
    this.clock = o.clock ?? systemClock;
    // One listener per pending wait: thousands of devices churned or incidents spread at once.
    setMaxListeners(0, this.abort.signal);
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
      // Silent for 3 heartbeat intervals is DEVICE_LOST (datasheet); the last heartbeat before
      // the cut may be an interval old, so an outage of 2 intervals or more may be lost.
      if (p.do === "power-cut") {
        const outage = p.outage ?? POWER_CUT_OUTAGE_MS;
        for (const id of pool) {
          const hb = (fleet.specs.get(id)?.heartbeatIntervalS ?? 60) * 1000;
          if (outage >= 2 * hb)
            throw new ScenarioError(
              `${s.name}: phases.${i} (power-cut): an outage of ${outage / 1000} s on ${id} (heartbeat every ${hb / 1000} s) may be DEVICE_LOST (3 intervals): keep it under ${(2 * hb) / 1000} s`,
            );
        }
      }
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
      case "power-cut":
        return "GD-2";
      case "tank-drawdown":
      case "tank-glitch":
      case "tank-fault":
      case "tank-winter":
      case "tank-freeze":
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
      case "power-cut":
        return ids("gd2");
      case "tank-drawdown":
      case "tank-glitch":
      case "tank-fault":
      case "tank-winter":
      case "tank-freeze":
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
        e.dueAt = Math.max(e.dueAt, this.now());
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
        this.after(offset, async () => {
          this.stats.incidents++;
          const at = this.now();
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
                void this.after(p.offlineFor, () => pendant.goOnline());
                // Stopped before its uplink is back: it must not stay away.
                this.restores.push(() => pendant.goOnline());
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
              if (p.ventilateAfter !== undefined)
                void this.after(p.ventilateAfter, () => {
                  gd2.jamValve(false);
                  gd2.ventilate();
                });
              // End of run: airing at 2 %LEL/s takes up to 20 s and the run ends first, leaving
              // the last alarm `high` (GAS_LEAK active). The gas is gone at once, and the
              // restore waits until the detector's `alarm` of level none is sent.
              this.restores.push(() => {
                gd2.jamValve(false);
                gd2.stopScenario();
                return gd2.setLel(0);
              });
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
              if (p.ventilateAfter !== undefined) void this.after(p.ventilateAfter, () => gd2.ventilate());
              this.restores.push(() => {
                gd2.stopScenario();
                return gd2.setLel(0);
              });
              break;
            }
            case "valve-fault": {
              // The valve reports `fault` (its motor): the next heartbeat says so.
              const gd2 = device as Gd2;
              const before = gd2.valve;
              this.expectFor(p, label, id, at, at);
              gd2.setValveFault(true);
              void gd2.heartbeat();
              // The motor works again and the valve is where it was (open, in most kitchens).
              this.restores.push(() => {
                gd2.setValveFault(false, before === "open" ? "open" : "closed");
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
            case "tank-winter":
            case "tank-freeze": {
              // A winter night (LV-4 datasheet): the water cools, the heater switches on at 4 °C.
              // tank-winter: it keeps up, the water stays at 4-5 °C and nothing may be raised.
              // tank-freeze: it cannot (or gives no heat), the water goes under 4.0 °C and
              // FREEZE_RISK is due 10 minutes after the sensor first reads under 4.0 °C (when the
              // gateway can first see it; forecast with the emulator's own model of the night).
              const tank = fleet.tanks.get(id);
              if (!tank) break;
              const before = tank.getTemperature();
              const cooling = p.cooling ?? WINTER_COOLING_C_PER_MIN;
              const heater = p.heater ?? (p.do === "tank-winter" ? WINTER_HEATER_C_PER_MIN : 0);
              if (p.from !== undefined) tank.setTemperature(p.from);
              if (p.do === "tank-freeze") {
                const coldAfter = tank.winterForecast(FREEZE_BELOW_C, cooling, heater, FREEZE_HORIZON_MS);
                if (coldAfter === null)
                  this.stats.errors.push(
                    `${label} on ${id}: the water does not go under ${FREEZE_BELOW_C} °C within ${FREEZE_HORIZON_MS / 3_600_000} h at these rates`,
                  );
                else this.expectFor(p, label, id, at, at + coldAfter + FREEZE_HELD_MS);
              } else this.expectFor(p, label, id, at, at);
              tank.winterNight(cooling, heater);
              // Morning: the night ends and the water is as warm as it was (FREEZE_RISK clears at 5 °C).
              this.restores.push(() => {
                tank.endWinter();
                tank.setTemperature(before);
              });
              break;
            }
            case "power-cut": {
              // GD-2 datasheet: "heartbeats stop for a minute, then come back with `ts` 0 and
              // `mains` false". Shorter than 3 heartbeat intervals: no DEVICE_LOST (any would be
              // unexpected). The readings with ts 0 must be accepted (a telemetry reading with
              // no device time, mains false), and POWER_FAIL is due 10 minutes after the detector
              // is back on battery, if the mains stays off that long.
              const gd2 = device as Gd2;
              const outage = p.outage ?? POWER_CUT_OUTAGE_MS;
              const back = at + outage;
              const onBatteryFor = p.duration === undefined ? Number.POSITIVE_INFINITY : p.duration - outage;
              this.expectFor(p, label, id, at, back + POWER_FAIL_AFTER_MS, [
                onBatteryFor > POWER_FAIL_AFTER_MS ? "POWER_FAIL" : "none",
              ]);
              this.o.matcher.expectReading({
                incident: label,
                model: "gd2",
                key: id,
                what: "hb with ts 0 and mains false accepted",
                after: back,
                dueBy: back + READING_WITHIN_MS,
                test: (r) =>
                  r.deviceTime === null &&
                  r.quality === "device-clock-invalid" &&
                  (r.metrics as { mains?: { value?: unknown } } | undefined)?.mains?.value === false,
              });
              void gd2.powerCut(outage);
              const restored = () => {
                // The mains and the building's network are back: the clock is set again.
                gd2.timeServerReached();
                gd2.mainsRestored();
                return gd2.heartbeat();
              };
              if (p.duration !== undefined) this.after(p.duration, restored);
              this.restores.push(restored);
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
        }),
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
    const start = this.now();
    return new Promise<void>((resolve) => {
      const tick = () => {
        if (this.stopped) return resolve();
        const due = dueBy(this.now() - start);
        for (; next < due; next++) {
          const d = devices[k++ % devices.length] as MqttDevice;
          this.stats.loadOffered++;
          if (!d.online) {
            this.stats.loadSkippedOffline++;
            continue;
          }
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
        void this.sleep(5).then((due) => (due ? tick() : resolve()));
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
          chosen.map(async (d) => {
            if (!(await this.sleep(rng() * spread))) return;
            this.stats.churned++;
            await d.goOffline();
            // Stopped while it is away: it comes back now, as the site was found.
            await this.sleep(down);
            await within(d.goOnline(), RESTORE_WITHIN_MS);
          }),
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
    this.stopped = true;
    this.abort.abort();
    await within(Promise.all([...this.running]), RESTORE_WITHIN_MS);
  }
}

/** `p`, or undefined once `ms` of real time have passed (a device or gateway that does not answer). */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
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
