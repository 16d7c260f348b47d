/**
 * The demo community for `npm start` (README, "Try it"): households of elderly
 * residents, each with an EC-200 pendant and a DS-10 on the front door,
 * behaving as the datasheets' "worth simulating" notes say, time-compressed so
 * that a newcomer sees an alert within a minute.
 *
 * The device table is a pure function of the seed (`communityDevices`), so the
 * CLI can generate the gateway's demo configuration from the same list the
 * simulator runs. Behaviour timing is seeded too, but interleaves with real
 * network I/O, so only the table is reproducible byte for byte.
 */
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import type { Encoding } from "../mqtt/codec.js";
import { Ds10 } from "../mqtt/ds10.js";
import { Ec200 } from "../mqtt/ec200.js";
import { deriveSeed, exponentialMs, type Random, randomInt, seededRandom } from "../mqtt/random.js";

/**
 * Demo credentials convention: the password of device `<id>` is `demo-<id>`
 * (e.g. `pendant-01` / `demo-pendant-01`). For the loopback demo and tests
 * only; a real site provisions a secret per device at installation.
 */
export function demoCredentials(deviceId: string): string {
  return `demo-${deviceId}`;
}

export type DeviceModel = "ec200" | "ds10";

/** One device as the gateway's configuration needs it. */
export interface DeviceDefinition {
  id: string;
  model: DeviceModel;
  household: string;
  password: string;
  /** Heartbeat period the device runs with (datasheet default x heartbeatScale), seconds. */
  heartbeatIntervalS: number;
  encoding: Encoding;
  /** 1.x sends JSON, 2.x sends CBOR (datasheet). */
  firmware: string;
  /** Device clock minus wall clock, ms. */
  clockSkewMs: number;
}

export interface HouseholdDefinition {
  id: string;
  pendant: string;
  door: string;
  /** The resident who does not go out: no door or button activity, heartbeats only (welfare check). */
  silent: boolean;
}

export interface CommunityTableOptions {
  /** Default 24: enough households for every behaviour to show within minutes. */
  households?: number;
  seed?: number;
  credentials?: (deviceId: string) => string;
  /** Heartbeat intervals = datasheet defaults (300 s, 3600 s) x this. Default 0.1 (30 s, 360 s) for the demo. */
  heartbeatScale?: number;
}

export interface BehaviourRates {
  /** Door outings per household per simulated day (each is an open and a close). Default 4. */
  doorOutingsPerDay: number;
  /** Door activity at night (22:00-07:00) relative to the day. Default 0.1. */
  nightFactor: number;
  /** Share of door openings with a bouncing contact. Default 0.15. */
  bounceFraction: number;
  /** Share of door openings held open for `heldOpenMs`. Default 0.05. */
  heldOpenFraction: number;
  heldOpenMs: number;
  /** Share of presses followed by a second press within a few seconds. Default 0.25. */
  doublePressFraction: number;
  /** Share of presses and falls cancelled by the resident within 30 s. Default 0.2. */
  cancelFraction: number;
  /**
   * Community-wide, per real hour (the first of the three alerting kinds comes sooner:
   * `firstIncidentsWithinMs`). Defaults: 1 battery change, 1 uplink outage (half of them with a
   * press while it is down: an EMERGENCY_CALL from the backlog), 0.5 tamper (TAMPER), 0.5 low
   * battery (BATTERY_LOW): about 1.5 alerts an hour, 0.25 in 10 minutes.
   */
  batteryChangesPerHour: number;
  backlogsPerHour: number;
  tampersPerHour: number;
  lowBatteryPerHour: number;
}

export const DEFAULT_RATES: BehaviourRates = {
  doorOutingsPerDay: 4,
  nightFactor: 0.1,
  bounceFraction: 0.15,
  heldOpenFraction: 0.05,
  heldOpenMs: 90_000,
  doublePressFraction: 0.25,
  cancelFraction: 0.2,
  // Before December 2026: 6, 6, 3 and 3 an hour, about 1.5 alerts in every 10 minutes from these
  // alone on top of the calls: more than a believable site (a cover removed or a battery low is a
  // few times a month per community), and a demo's alert list filled with them.
  batteryChangesPerHour: 1,
  backlogsPerHour: 1,
  tampersPerHour: 0.5,
  lowBatteryPerHour: 0.5,
};

/** Alarm events (press, long press, fall) per minute across the community by default: one every 5 min. */
export const DEFAULT_EVENT_RATE = 0.2;
/** The first tamper, low battery and uplink outage each come within this long by default. */
export const DEFAULT_FIRST_INCIDENTS_WITHIN_MS = 30 * 60_000;

export interface CommunityOptions extends CommunityTableOptions {
  brokerUrl: string;
  /** Site id, for the caller's configuration and logs. Default `demo`. */
  site?: string;
  clock?: Clock;
  /**
   * Alarm events (press, long press, fall) per minute across the community. Default 0.2: one
   * every 5 min (before December 2026: 2, one every 30 s).
   */
  eventRate?: number;
  /** The first alarm comes no later than this after start, default 15 s. */
  firstAlarmWithinMs?: number;
  /**
   * The first tamper, low battery and uplink outage (with a press while it is down) each come no
   * later than this after start, default 30 min; then at their rates (`rates`), so each shows early
   * however slow its rate.
   */
  firstIncidentsWithinMs?: number;
  /** Real milliseconds per simulated day, default 20 min. */
  dayLengthMs?: number;
  /** Simulated hour at start, default 8. */
  startHour?: number;
  rates?: Partial<BehaviourRates>;
  /**
   * Device ids kept in the table (so the gateway is configured for them) but not
   * emulated, e.g. the pendant a newcomer presses by hand with mosquitto_pub: two
   * clients with the same client id would keep taking the session from each other.
   */
  exclude?: readonly string[];
  /** What the residents did (for a demo console). */
  onActivity?: (a: Activity) => void;
}

export interface Activity {
  at: number;
  household: string;
  deviceId: string;
  action: string;
}

export interface CommunityTable {
  households: HouseholdDefinition[];
  devices: DeviceDefinition[];
}

export interface Community extends CommunityTable {
  site: string;
  emulators: Map<string, Ec200 | Ds10>;
  /** Connects every device and starts the residents' day. Failed connections are reported, not thrown. */
  start(): Promise<{ connected: number; failed: Array<{ id: string; error: string }> }>;
  stop(): Promise<void>;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** The device table, a pure function of the options (same seed, same table). */
export function communityDevices(opts: CommunityTableOptions = {}): CommunityTable {
  const n = opts.households ?? 24;
  if (!Number.isInteger(n) || n < 1) throw new RangeError("households must be a positive integer");
  const seed = opts.seed ?? 1;
  const rng = seededRandom(deriveSeed(seed, "table"));
  const credentials = opts.credentials ?? demoCredentials;
  const scale = opts.heartbeatScale ?? 0.1;
  const width = Math.max(2, String(n).length);
  // One resident does not go out; never the first household, which the README presses by hand.
  const silentIndex = n > 1 ? randomInt(rng, 2, n) : 0;
  const households: HouseholdDefinition[] = [];
  const devices: DeviceDefinition[] = [];
  const skew = () => {
    const r = rng();
    if (r < 0.1) return randomInt(rng, -300_000, 300_000); // a badly set clock, minutes off
    return randomInt(rng, -2_000, 2_000);
  };
  for (let i = 1; i <= n; i++) {
    const hh = `hh-${pad(i, width)}`;
    const pendant = `pendant-${pad(i, width)}`;
    const door = `door-${pad(i, width)}`;
    households.push({ id: hh, pendant, door, silent: i === silentIndex });
    for (const [id, model, hb] of [
      [pendant, "ec200", 300],
      [door, "ds10", 3600],
    ] as const) {
      const cbor = rng() < 0.4;
      devices.push({
        id,
        model,
        household: hh,
        password: credentials(id),
        heartbeatIntervalS: Math.max(1, Math.round(hb * scale)),
        encoding: cbor ? "cbor" : "json",
        firmware: cbor
          ? `2.${randomInt(rng, 0, 3)}.${randomInt(rng, 0, 9)}`
          : `1.${randomInt(rng, 4, 9)}.${randomInt(rng, 0, 9)}`,
        clockSkewMs: skew(),
      });
    }
  }
  return { households, devices };
}

export function createCommunity(opts: CommunityOptions): Community {
  const table = communityDevices(opts);
  const clock = opts.clock ?? systemClock;
  const seed = opts.seed ?? 1;
  const rates: BehaviourRates = { ...DEFAULT_RATES, ...opts.rates };
  const dayLengthMs = opts.dayLengthMs ?? 20 * 60_000;
  const startHour = opts.startHour ?? 8;
  const eventRate = opts.eventRate ?? DEFAULT_EVENT_RATE;
  const firstIncidentsWithinMs = opts.firstIncidentsWithinMs ?? DEFAULT_FIRST_INCIDENTS_WITHIN_MS;
  const emulators = new Map<string, Ec200 | Ds10>();
  const timers = new Set<ClockTimer>();
  let running = false;
  let startedAt = 0;

  const excluded = new Set(opts.exclude ?? []);
  for (const d of table.devices) {
    if (excluded.has(d.id)) continue;
    const random = seededRandom(deriveSeed(seed, `device:${d.id}`));
    const common = {
      deviceId: d.id,
      brokerUrl: opts.brokerUrl,
      password: d.password,
      encoding: d.encoding,
      clock,
      clockSkewMs: d.clockSkewMs,
      initialSeq: randomInt(random, 1, 50_000),
      battery: randomInt(random, 40, 100),
      heartbeatIntervalMs: d.heartbeatIntervalS * 1000,
      // Phase offsets so the fleet's heartbeats do not fire in step (DESIGN).
      heartbeatPhaseMs: Math.round(random() * d.heartbeatIntervalS * 1000) + 1,
      random,
    };
    emulators.set(d.id, d.model === "ec200" ? new Ec200(common) : new Ds10(common));
  }

  const pendantOf = (h: HouseholdDefinition) => emulators.get(h.pendant) as Ec200 | undefined;
  const doorOf = (h: HouseholdDefinition) => emulators.get(h.door) as Ds10 | undefined;
  const active = table.households.filter((h) => !h.silent);
  const activePendants = active.filter((h) => pendantOf(h));
  const note = (household: string, deviceId: string, action: string) =>
    opts.onActivity?.({ at: clock.now(), household, deviceId, action });

  /** Runs `fn` after `ms` unless stopped; timers are tracked so stop() clears them all. */
  const after = (ms: number, fn: () => void) => {
    const t = clock.setTimeout(
      () => {
        timers.delete(t);
        if (running) fn();
      },
      Math.max(0, ms),
    );
    timers.add(t);
  };

  const pick = <T>(rng: Random, xs: readonly T[]): T | undefined => xs[Math.floor(rng() * xs.length)];

  const hourMs = dayLengthMs / 24;
  const simulatedHour = (at: number) => (startHour + ((at - startedAt) / dayLengthMs) * 24) % 24;

  /**
   * Time to a resident's next outing: a Poisson process whose rate drops at night
   * (22:00-07:00), integrated across the day/night boundaries. Drawing one delay
   * with the rate of the moment would carry a night's rate (a mean of days) into
   * the next morning: most residents then stayed in past the welfare period.
   */
  const nextOutingMs = (rng: Random): number => {
    const dayRate = rates.doorOutingsPerDay / dayLengthMs;
    let need = exponentialMs(rng, 1);
    let t = clock.now();
    // Bounded: a week of segments; with no outings at all the resident waits that long.
    for (let i = 0; i < 14; i++) {
      const h = simulatedHour(t);
      const night = h >= 22 || h < 7;
      const toBoundaryH = night ? (h >= 22 ? 31 - h : 7 - h) : 22 - h;
      const segMs = Math.max(1, toBoundaryH * hourMs);
      const rate = dayRate * (night ? rates.nightFactor : 1);
      if (rate * segMs >= need) return t + need / rate - clock.now();
      need -= rate * segMs;
      t += segMs;
    }
    return t - clock.now();
  };

  // A resident's day: the door opens and closes a few times, rarely at night.
  const doorLoop = (h: HouseholdDefinition, rng: Random) => {
    after(nextOutingMs(rng), () => {
      const door = doorOf(h);
      if (door?.contact === "closed") {
        const bounce = rng() < rates.bounceFraction;
        note(h.id, h.door, bounce ? "door opens (bouncing contact)" : "door opens");
        void (bounce ? door.bounce() : door.open());
        const held = rng() < rates.heldOpenFraction;
        after(held ? rates.heldOpenMs : randomInt(rng, 2_000, 10_000), () => {
          note(h.id, h.door, "door closes");
          void door.close();
        });
      }
      doorLoop(h, rng);
    });
  };

  // Presses, long presses and falls across the community, some double, some cancelled.
  const alarmLoop = (rng: Random, first: boolean) => {
    const mean = 60_000 / eventRate;
    const firstWithin = opts.firstAlarmWithinMs ?? 15_000;
    const delay = first ? (0.3 + 0.7 * rng()) * Math.min(mean, firstWithin) : exponentialMs(rng, mean);
    after(delay, () => {
      const h = pick(rng, activePendants);
      const p = h && pendantOf(h);
      if (h && p) {
        const r = rng();
        if (r < 0.55) {
          note(h.id, h.pendant, "button pressed");
          void p.press();
          if (rng() < rates.doublePressFraction) {
            after(randomInt(rng, 1_000, 5_000), () => {
              note(h.id, h.pendant, "button pressed again");
              void p.press();
            });
          }
        } else if (r < 0.7) {
          note(h.id, h.pendant, "button held (long press)");
          void p.longPress();
        } else {
          note(h.id, h.pendant, "fall detected");
          void p.fall();
        }
        if (rng() < rates.cancelFraction) {
          after(randomInt(rng, 5_000, 25_000), () => {
            note(h.id, h.pendant, "resident cancels");
            void p.cancel();
          });
        }
      }
      alarmLoop(rng, false);
    });
  };

  /**
   * A community-wide Poisson process of `perHour` real-time occurrences; with `firstWithinMs`, the
   * first one comes within that long (as the first alarm does), the rest at the rate. `fn` is
   * told whether it is the first.
   */
  const every = (perHour: number, rng: Random, fn: (first: boolean) => void, firstWithinMs?: number) => {
    if (!(perHour > 0)) return;
    const mean = 3_600_000 / perHour;
    const loop = (first: boolean) =>
      after(
        first && firstWithinMs !== undefined
          ? (0.3 + 0.7 * rng()) * Math.min(mean, firstWithinMs)
          : exponentialMs(rng, mean),
        () => {
          fn(first);
          loop(false);
        },
      );
    loop(true);
  };

  const startBehaviours = () => {
    if (rates.doorOutingsPerDay > 0)
      for (const h of active.filter((x) => doorOf(x)))
        doorLoop(h, seededRandom(deriveSeed(seed, `door:${h.id}`)));
    if (eventRate > 0) alarmLoop(seededRandom(deriveSeed(seed, "alarms")), true);
    const rng = seededRandom(deriveSeed(seed, "incidents"));
    const all = [...emulators.values()];
    every(
      rates.lowBatteryPerHour,
      rng,
      () => {
        const d = pick(rng, all);
        if (!d) return;
        note(householdOf(d.deviceId), d.deviceId, "battery low");
        void d.lowBattery();
      },
      firstIncidentsWithinMs,
    );
    every(rates.batteryChangesPerHour, rng, () => {
      // Prefer a device whose battery is actually low.
      const d = all.find((x) => x.battery < 15) ?? pick(rng, all);
      if (!d) return;
      const reset = rng() < 0.5 ? "zero" : "far-past";
      note(householdOf(d.deviceId), d.deviceId, `battery changed, clock reset (${reset})`);
      void d.batteryChange(reset);
      after(randomInt(rng, 30_000, 90_000), () => {
        note(householdOf(d.deviceId), d.deviceId, "clock resynchronised");
        d.resync();
      });
    });
    every(
      rates.backlogsPerHour,
      rng,
      (first) => {
        const h = pick(rng, activePendants);
        const p = h && pendantOf(h);
        if (!h || !p) return;
        note(h.id, h.pendant, "base station loses its uplink");
        void p.goOffline({ lostAck: rng() < 0.5 });
        // The first outage always has its press (a call arriving late from the backlog shows it).
        if (rng() < 0.5 || first) {
          after(randomInt(rng, 2_000, 8_000), () => {
            note(h.id, h.pendant, "button pressed while the uplink is down");
            void p.press();
          });
        }
        after(randomInt(rng, 15_000, 40_000), () => {
          note(h.id, h.pendant, "uplink back, backlog re-sent");
          void p.goOnline();
        });
      },
      firstIncidentsWithinMs,
    );
    every(
      rates.tampersPerHour,
      rng,
      () => {
        const h = pick(
          rng,
          table.households.filter((x) => doorOf(x)),
        );
        const door = h && doorOf(h);
        if (!h || !door) return;
        note(h.id, h.door, "sensor cover removed");
        void door.tamper(true);
        after(randomInt(rng, 20_000, 60_000), () => {
          note(h.id, h.door, "sensor cover replaced");
          void door.tamper(false);
        });
      },
      firstIncidentsWithinMs,
    );
  };

  const householdOf = (deviceId: string) => table.devices.find((d) => d.id === deviceId)?.household ?? "";

  return {
    ...table,
    site: opts.site ?? "demo",
    emulators,
    async start() {
      if (running) return { connected: emulators.size, failed: [] };
      running = true;
      startedAt = clock.now();
      const results = await Promise.allSettled([...emulators.values()].map((e) => e.start()));
      const failed: Array<{ id: string; error: string }> = [];
      const ids = [...emulators.keys()];
      results.forEach((r, i) => {
        if (r.status === "rejected") failed.push({ id: ids[i] ?? "?", error: String(r.reason) });
      });
      if (running) startBehaviours();
      return { connected: results.length - failed.length, failed };
    },
    async stop() {
      running = false;
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
      await Promise.all([...emulators.values()].map((e) => e.stop()));
    },
  };
}
