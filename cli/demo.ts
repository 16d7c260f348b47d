/**
 * The `npm start` demo: a simulated community on loopback, composed with the
 * gateway at the top (the simulator and the gateway never import each other's
 * internals). Demo credentials only: a real site provisions secrets per device.
 */

import { createServer } from "node:net";
import { type Clock, type ClockTimer, systemClock } from "../core/index.js";
import type { ConfigInput } from "../gateway/index.js";
import {
  communityDevices,
  createCommunity,
  demoCredentials,
  Gd2,
  STATION_UNITS,
  type Stations,
  TANK_UNIT,
} from "../sim/index.js";

export const DEMO_SITE = "demo";
export const DEMO_OPERATOR = { name: "operator", password: "demo-operator" };
/** Not emulated: the pendant a newcomer presses by hand with mosquitto_pub (README). */
export const HAND_PENDANT = { id: "demo-pendant", password: "demo-pendant" };
export const DEMO_HOUSEHOLDS = 24;
/** Gas detectors in the first households' kitchens (GD-2); the first one closes its valve from the gateway too. */
export const GAS_KITCHENS = 4;
const kitchenId = (household: string) => `kitchen-${household}`;
/** Where the demo serves the operators' console (`--console-port` moves it). */
export const DEMO_CONSOLE_PORT = 8180;
const SEED = 451;
/**
 * The demo's pace. Everything shows within minutes (the first call within 15 s, the resident
 * who stays in at 5 min, a station or kiosk event every few minutes, a gas leak at 20 min, the
 * first cover removed, battery low and base-station outage within 30 min) but
 * a 10-minute window holds about 5 new alerts on average, under half the ISA-18.2 flood
 * threshold (more than 10): an alert flood happens now and then, and ends.
 * cli/demo-pace.test.ts measures it against a real gateway.
 */
export const DEMO_PACE = {
  /** Presses, long presses and falls across the community per minute: one every 5 min. */
  alarmsPerMinute: 0.2,
  /** Door outings per resident per simulated day: enough that nobody but the resident who stays in is quiet for a day. */
  doorOutingsPerDay: 8,
  /** Share of outings with the door held open past its hold time (DOOR_HELD_OPEN): with 8 a day, 1 in 100. */
  heldOpenFraction: 0.01,
  /**
   * Community-wide per hour: a sensor cover removed (TAMPER), a battery low (BATTERY_LOW), a base
   * station losing its uplink (half of them with a press while down: a late EMERGENCY_CALL). About
   * 1.5 alerts an hour in all (before: 3, 3 and 6, about 1.5 in every 10 minutes).
   */
  tampersPerHour: 0.5,
  lowBatteryPerHour: 0.5,
  backlogsPerHour: 1,
  /** ...the first of each within 30 min of the start, so a newcomer sees them all. */
  firstIncidentsWithinMs: 30 * 60_000,
  /** A station or kiosk event every 5 min on average (6 of 7 kinds raise an alert). */
  stationEventEveryMs: 5 * 60_000,
  /** The leaking kitchen; the others cook every 3 min (no alert). */
  gasLeakEveryMs: 20 * 60_000,
  cookingEveryMs: 3 * 60_000,
  /** Real time per simulated day. */
  dayLengthMs: 20 * 60_000,
  /** One simulated day (24 h, the gateway's default) for everybody... */
  welfarePeriod: "20m",
  /** ...and a quarter of a day for the resident who lives alone and stays in, so her check shows at 5 min. */
  staysInWelfarePeriod: "5m",
} as const;

/** Where the demo serves /metrics when the port is free (the documented default). */
export const DEMO_METRICS_PORT = 9464;

/**
 * The demo is a site in Shanghai with Chinese names: what operators there
 * read. Six flats per building, two per floor; the first household (the
 * README's demo-pendant) is "1号楼 101室", 张阿姨. Phone numbers are
 * fictitious (0000 exchange).
 */
const SURNAMES = ["张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙"];
const TITLES = ["阿姨", "大爷", "奶奶", "爷爷"];
export function demoHousehold(i: number) {
  const building = Math.floor(i / 6) + 1;
  const floor = Math.floor((i % 6) / 2) + 1;
  const room = `${floor}0${(i % 2) + 1}室`;
  return {
    name: `${building}号楼 ${room}`,
    address: `上海市 邻里路 88 号 邻里小区 ${building}号楼`,
    room,
    residentName: `${SURNAMES[i % SURNAMES.length]}${TITLES[i % TITLES.length]}`,
    contactPhone: `021-0000 ${String(1000 + i).padStart(4, "0")}`,
  };
}

/**
 * The demo's metrics port: `--metrics-port` when given (a port taken is then an error, as asked),
 * else 9464 if it is free, else a free port, so `npm start` runs beside another exporter on 9464.
 */
export async function demoMetricsPort(
  requested: number | undefined,
  host = "127.0.0.1",
  preferred = DEMO_METRICS_PORT,
): Promise<number> {
  if (requested !== undefined) return requested;
  const free = await new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(preferred, host, () => probe.close(() => resolve(true)));
  });
  return free ? preferred : 0;
}

/** The demo's Modbus devices, placed where the simulated stations and kiosks are. */
function modbusDevices(stations: Stations | null): Pick<ConfigInput, "buses" | "devices"> {
  if (!stations) return { buses: [], devices: [] };
  return {
    buses: [
      {
        id: "rs485-1",
        type: "rtu",
        // With socat the gateway opens a real tty; otherwise the CLI hands it an in-memory line.
        path: stations.ttyPath ?? "memory:demo-rs485",
        baudRate: 9600,
        parity: "even",
      },
    ],
    devices: [
      ...STATION_UNITS.map((unit) => ({
        id: `fire-station-${unit}`,
        name: `微型消防站 ${unit}`,
        location: `${unit}号楼 北侧`,
        model: "mfs8" as const,
        bus: "rs485-1",
        unit,
        pollInterval: "2s",
      })),
      // The fire-water tank's level sensor shares the stations' bus (LV-4 datasheet).
      {
        id: "fire-tank-1",
        name: "消防水箱液位计",
        location: "1号楼 屋顶水箱间",
        model: "lv4" as const,
        bus: "rs485-1",
        unit: TANK_UNIT,
        pollInterval: "1s",
      },
      ...stations.kioskPorts.map((port, i) => ({
        id: `kiosk-${i + 1}`,
        name: `自助服务终端 ${i + 1}`,
        location: "社区服务中心 大厅",
        model: "gk3" as const,
        host: "127.0.0.1",
        port,
        pollInterval: "5s",
        openingHours: "00:00-23:59",
      })),
    ],
  };
}

export function demoConfig(
  port: number,
  stations: Stations | null = null,
  metricsPort = DEMO_METRICS_PORT,
): ConfigInput {
  const modbus = modbusDevices(stations);
  const table = communityDevices({ households: DEMO_HOUSEHOLDS, seed: SEED, credentials: demoCredentials });
  return {
    site: { id: DEMO_SITE, name: "邻里演示小区（模拟）", timezone: "Asia/Shanghai", locale: "zh-CN" },
    mqtt: { listeners: [{ host: "127.0.0.1", port }] },
    // The demo's one operator shows every action (docs/security.md "Operator roles").
    operators: [{ ...DEMO_OPERATOR, role: "supervisor" }],
    households: table.households.map((h, i) => ({
      id: h.id,
      ...demoHousehold(i),
      // A resident at risk who lives alone: a care provider sets her a shorter welfare period.
      ...(h.silent ? { welfare: { period: DEMO_PACE.staysInWelfarePeriod } } : {}),
    })),
    devices: [
      ...table.devices.map((d) =>
        d.model === "ec200"
          ? {
              id: d.id,
              name: "紧急呼叫器",
              location: "随身佩戴",
              model: "ec200" as const,
              password: d.password,
              household: d.household,
              heartbeatInterval: d.heartbeatIntervalS,
            }
          : {
              id: d.id,
              name: "入户门磁",
              location: "入户门",
              model: "ds10" as const,
              password: d.password,
              household: d.household,
              heartbeatInterval: d.heartbeatIntervalS,
              // The demo's day lasts 20 minutes: scale the hold time like the heartbeats.
              holdOpenTime: "60s",
            },
      ),
      {
        id: HAND_PENDANT.id,
        name: "演示呼叫器",
        location: "随身佩戴",
        model: "ec200",
        password: HAND_PENDANT.password,
        household: table.households[0]?.id,
        heartbeatInterval: "12h",
      },
      ...table.households.slice(0, GAS_KITCHENS).map((h, i) => ({
        id: kitchenId(h.id),
        model: "gd2" as const,
        password: demoCredentials(kitchenId(h.id)),
        household: h.id,
        name: "燃气报警器",
        location: "厨房",
        heartbeatInterval: "60s",
        autoShutOff: i === 0,
      })),
      ...(modbus.devices ?? []),
    ],
    buses: modbus.buses,
    // The demo's simulated day is 20 minutes long: a welfare period of one day (the gateway's default 24 h).
    alerts: { welfarePeriod: DEMO_PACE.welfarePeriod },
    log: { level: "info", format: "auto" },
    metrics: { host: "127.0.0.1", port: metricsPort },
    // The operators' console, on this machine only (console.host: 0.0.0.0 opens it to the LAN).
    console: { enabled: true, host: "127.0.0.1", port: DEMO_CONSOLE_PORT },
  };
}

/** The demo community, its kitchens and their day; `clock` for tests (a FakeClock). */
export function startDemoCommunity(port: number, clock: Clock = systemClock) {
  const brokerUrl = `mqtt://127.0.0.1:${port}`;
  const community = createCommunity({
    brokerUrl,
    households: DEMO_HOUSEHOLDS,
    seed: SEED,
    site: DEMO_SITE,
    credentials: demoCredentials,
    clock,
    eventRate: DEMO_PACE.alarmsPerMinute,
    dayLengthMs: DEMO_PACE.dayLengthMs,
    firstIncidentsWithinMs: DEMO_PACE.firstIncidentsWithinMs,
    rates: {
      doorOutingsPerDay: DEMO_PACE.doorOutingsPerDay,
      heldOpenFraction: DEMO_PACE.heldOpenFraction,
      tampersPerHour: DEMO_PACE.tampersPerHour,
      lowBatteryPerHour: DEMO_PACE.lowBatteryPerHour,
      backlogsPerHour: DEMO_PACE.backlogsPerHour,
    },
  });
  const kitchens = communityDevices({ households: DEMO_HOUSEHOLDS, seed: SEED, credentials: demoCredentials })
    .households.slice(0, GAS_KITCHENS)
    .map((h) => {
      const id = kitchenId(h.id);
      return new Gd2({ deviceId: id, brokerUrl, password: demoCredentials(id), valveTravelMs: 5_000, clock });
    });
  // One timer per repeating job (two), and one airing: bounded.
  const timers = new Set<ClockTimer>();
  let airing: ClockTimer | null = null;
  const every = (ms: number, fn: () => void) => {
    const loop = () => {
      const t = clock.setTimeout(() => {
        timers.delete(t);
        fn();
        loop();
      }, ms);
      t.unref();
      timers.add(t);
    };
    loop();
  };
  return {
    ...community,
    /** The community, the gas detectors, and a kitchen day: cooking now and then, a real leak every 20 minutes. */
    async start() {
      const started = await community.start();
      const gas = await Promise.allSettled(kitchens.map((k) => k.start()));
      gas.forEach((r, i) => {
        if (r.status === "rejected")
          started.failed.push({ id: kitchens[i]?.deviceId ?? "?", error: String(r.reason) });
      });
      const [leaky, ...cooks] = kitchens;
      every(DEMO_PACE.cookingEveryMs, () => {
        for (const k of cooks) k.cooking();
      });
      // A leak: the detector closes its own valve, the gateway sends valve_close too (autoShutOff); aired a minute later.
      // One airing at a time (a leak every 20 min, aired after 1): a handle, not a list that grows forever.
      every(DEMO_PACE.gasLeakEveryMs, () => {
        leaky?.leak();
        if (airing !== null) clock.clearTimeout(airing);
        airing = clock.setTimeout(() => {
          airing = null;
          leaky?.ventilate();
        }, 60_000);
        airing.unref();
      });
      return {
        ...started,
        connected: started.connected + gas.filter((r) => r.status === "fulfilled").length,
      };
    },
    async stop() {
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
      if (airing !== null) clock.clearTimeout(airing);
      airing = null;
      await Promise.all([community.stop(), ...kitchens.map((k) => k.stop())]);
    },
  };
}
