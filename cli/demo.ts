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
  STATION_UNITS,
  type Stations,
  TANK_UNIT,
} from "../sim/index.js";

export const DEMO_SITE = "demo";
export const DEMO_OPERATOR = { name: "operator", password: "demo-operator" };
/** Not emulated: the pendant a newcomer presses by hand with mosquitto_pub (README). */
export const HAND_PENDANT = { id: "demo-pendant", password: "demo-pendant" };
export const DEMO_HOUSEHOLDS = 24;
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
      // The fire-water tank's level sensor shares the stations' bus (LV-4 datasheet).
      { id: "fire-tank-1", model: "lv4" as const, bus: "rs485-1", unit: TANK_UNIT, pollInterval: "1s" },
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
      ...(modbus.devices ?? []),
    ],
    buses: modbus.buses,
    // The demo's simulated day is 20 minutes long: a welfare period of half a day.
    alerts: { welfarePeriod: "10m" },
    log: { level: "info", format: "auto" },
  };
}

export function startDemoCommunity(port: number) {
  const community = createCommunity({
    brokerUrl: `mqtt://127.0.0.1:${port}`,
    households: DEMO_HOUSEHOLDS,
    seed: SEED,
    site: DEMO_SITE,
    credentials: demoCredentials,
  });
  return community;
}
