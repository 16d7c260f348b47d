/**
 * The `npm start` demo: a simulated community on loopback, composed with the
 * gateway at the top (the simulator and the gateway never import each other's
 * internals). Demo credentials only: a real site provisions secrets per device.
 */

import { createServer } from "node:net";
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
    households: table.households.map((h, i) => ({ id: h.id, ...demoHousehold(i) })),
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
    // The demo's simulated day is 20 minutes long: a welfare period of half a day.
    alerts: { welfarePeriod: "10m" },
    log: { level: "info", format: "auto" },
    metrics: { host: "127.0.0.1", port: metricsPort },
    // The operators' console, on this machine only (console.host: 0.0.0.0 opens it to the LAN).
    console: { enabled: true, host: "127.0.0.1", port: DEMO_CONSOLE_PORT },
  };
}

export function startDemoCommunity(port: number) {
  const brokerUrl = `mqtt://127.0.0.1:${port}`;
  const community = createCommunity({
    brokerUrl,
    households: DEMO_HOUSEHOLDS,
    seed: SEED,
    site: DEMO_SITE,
    credentials: demoCredentials,
  });
  const kitchens = communityDevices({ households: DEMO_HOUSEHOLDS, seed: SEED, credentials: demoCredentials })
    .households.slice(0, GAS_KITCHENS)
    .map((h) => {
      const id = kitchenId(h.id);
      return new Gd2({ deviceId: id, brokerUrl, password: demoCredentials(id), valveTravelMs: 5_000 });
    });
  const timers: NodeJS.Timeout[] = [];
  let airing: NodeJS.Timeout | null = null;
  const every = (ms: number, fn: () => void) => {
    const t = setInterval(fn, ms);
    t.unref();
    timers.push(t);
  };
  return {
    ...community,
    /** The community, the gas detectors, and a kitchen day: cooking now and then, a real leak every 10 minutes. */
    async start() {
      const started = await community.start();
      const gas = await Promise.allSettled(kitchens.map((k) => k.start()));
      gas.forEach((r, i) => {
        if (r.status === "rejected")
          started.failed.push({ id: kitchens[i]?.deviceId ?? "?", error: String(r.reason) });
      });
      const [leaky, ...cooks] = kitchens;
      every(3 * 60_000, () => {
        for (const k of cooks) k.cooking();
      });
      // A leak: the detector closes its own valve, the gateway sends valve_close too (autoShutOff); aired a minute later.
      // One airing at a time (a leak every 10 min, aired after 1): a handle, not a list that grows forever.
      every(10 * 60_000, () => {
        leaky?.leak();
        if (airing !== null) clearTimeout(airing);
        airing = setTimeout(() => {
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
      for (const t of timers) clearInterval(t);
      timers.length = 0;
      if (airing !== null) clearTimeout(airing);
      airing = null;
      await Promise.all([community.stop(), ...kitchens.map((k) => k.stop())]);
    },
  };
}
