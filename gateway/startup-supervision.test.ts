/**
 * A device that nothing would ever call lost must stop the gateway at start,
 * never run silently: polled devices are watched by missed polls on a bus,
 * MQTT devices by their heartbeat timer.
 */
import { describe, expect, it } from "vitest";
import { PROFILES } from "../devices/index.js";
import { validateConfig } from "./config/load.js";
import { unsupervised } from "./gateway.js";
import { Registry } from "./registry.js";

const config = validateConfig(
  {
    site: { id: "s1" },
    buses: [{ id: "rs485-1", type: "rtu", path: "/dev/null" }],
    devices: [
      { id: "k-1", model: "gd2", password: "pw" },
      { id: "fs-1", model: "mfs8", bus: "rs485-1", unit: 1 },
      { id: "kiosk-1", model: "gk3", host: "127.0.0.1" },
    ],
  },
  "test",
);
const registry = () => new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });

describe("start-up: every device is supervised", () => {
  it("names the polled devices that no bus polls", () => {
    const none = { polls: () => false };
    expect(unsupervised(registry(), none)).toEqual(["fs-1 (mfs8)", "kiosk-1 (gk3)"]);
  });

  it("is satisfied when each polled device has its bus and each MQTT device its heartbeat", () => {
    const reg = registry();
    expect(unsupervised(reg, { polls: (d) => d.profile.transport === "modbus" })).toEqual([]);
    expect(reg.devices.get("k-1")?.supervisedByHeartbeat).toBe(true);
  });

  it("config check refuses a configured model whose profile could not be polled or supervised", () => {
    const gd2 = PROFILES.find((p) => p.model === "gd2");
    if (!gd2) throw new Error("gd2 not registered");
    const saved = gd2.interval;
    // As a declarative (YAML) profile could be written: no interval, so no heartbeat supervision.
    (gd2 as { interval: string }).interval = "";
    try {
      expect(() =>
        validateConfig(
          {
            site: { id: "s1" },
            devices: [{ id: "k-1", model: "gd2", password: "pw", heartbeatInterval: "60s" }],
          },
          "site.yaml",
        ),
      ).toThrow(
        /site\.yaml: devices\[0\]\.model: device model "gd2": no default heartbeat interval, so it could not be supervised/,
      );
    } finally {
      (gd2 as { interval: string }).interval = saved;
    }
  });
});
