/**
 * The `npm start` demo: a simulated community on loopback, composed with the
 * gateway at the top (the simulator and the gateway never import each other's
 * internals). Demo credentials only: a real site provisions secrets per device.
 */
import { communityDevices, createCommunity, demoCredentials } from "../../sim/community/community.js";
import type { ConfigInput } from "../config/schema.js";

export const DEMO_SITE = "demo";
export const DEMO_OPERATOR = { name: "operator", password: "demo-operator" };
/** Not emulated: the pendant a newcomer presses by hand with mosquitto_pub (README). */
export const HAND_PENDANT = { id: "demo-pendant", password: "demo-pendant" };
export const DEMO_HOUSEHOLDS = 24;
const SEED = 451;

export function demoConfig(port: number): ConfigInput {
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
    ],
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
