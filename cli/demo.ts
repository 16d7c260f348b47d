/**
 * The `npm start` demo: a simulated community on loopback, composed with the
 * gateway at the top (the simulator and the gateway never import each other's
 * internals). Demo credentials only: a real site provisions secrets per device.
 */

import type { ConfigInput } from "../gateway/index.js";
import {
  communityDevices,
  createCommunity,
  demoCredentials,
  Gd2,
  STATION_UNITS,
  type Stations,
} from "../sim/index.js";

export const DEMO_SITE = "demo";
export const DEMO_OPERATOR = { name: "operator", password: "demo-operator" };
/** Not emulated: the pendant a newcomer presses by hand with mosquitto_pub (README). */
export const HAND_PENDANT = { id: "demo-pendant", password: "demo-pendant" };
export const DEMO_HOUSEHOLDS = 24;
/** Gas detectors in the first households' kitchens (GD-2); the first one closes its valve from the gateway too. */
export const GAS_KITCHENS = 4;
const kitchenId = (household: string) => `kitchen-${household}`;
const SEED = 451;

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
        model: "mfs8" as const,
        bus: "rs485-1",
        unit,
        pollInterval: "2s",
      })),
      ...stations.kioskPorts.map((port, i) => ({
        id: `kiosk-${i + 1}`,
        model: "gk3" as const,
        host: "127.0.0.1",
        port,
        pollInterval: "5s",
        openingHours: "00:00-23:59",
      })),
    ],
  };
}

export function demoConfig(port: number, stations: Stations | null = null): ConfigInput {
  const modbus = modbusDevices(stations);
  const table = communityDevices({ households: DEMO_HOUSEHOLDS, seed: SEED, credentials: demoCredentials });
  return {
    site: { id: DEMO_SITE, name: "Demo community (simulated)" },
    mqtt: { listeners: [{ host: "127.0.0.1", port }] },
    operators: [DEMO_OPERATOR],
    households: table.households.map((h) => ({ id: h.id })),
    devices: [
      ...table.devices.map((d) =>
        d.model === "ec200"
          ? {
              id: d.id,
              model: "ec200" as const,
              password: d.password,
              household: d.household,
              heartbeatInterval: d.heartbeatIntervalS,
            }
          : {
              id: d.id,
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
        heartbeatInterval: "60s",
        autoShutOff: i === 0,
      })),
      ...(modbus.devices ?? []),
    ],
    buses: modbus.buses,
    // The demo's simulated day is 20 minutes long: a welfare period of half a day.
    alerts: { welfarePeriod: "10m" },
    log: { level: "info", format: "auto" },
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
      every(10 * 60_000, () => {
        leaky?.leak();
        const t = setTimeout(() => leaky?.ventilate(), 60_000);
        t.unref();
        timers.push(t);
      });
      return {
        ...started,
        connected: started.connected + gas.filter((r) => r.status === "fulfilled").length,
      };
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.length = 0;
      await Promise.all([community.stop(), ...kitchens.map((k) => k.stop())]);
    },
  };
}
