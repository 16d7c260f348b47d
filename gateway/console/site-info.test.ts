/** What the console is told about the site: names, and the titles of a YAML profile's own alert codes. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateConfig } from "../config/load.js";
import { type ConsoleCommand, consoleSiteInfo } from "./site-info.js";

describe("console site info", () => {
  it("names a YAML profile's alert codes by their titles, so the page does not show PUMP_TRIPPED", () => {
    const profile = parse(readFileSync("examples/profiles/template-modbus.yaml", "utf8"));
    const config = validateConfig(
      {
        site: { id: "s1", timezone: "Asia/Shanghai" },
        buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
        deviceProfiles: [profile],
        devices: [{ id: "pump-1", model: "acme-pump", bus: "rs485-1", unit: 3, name: "消防泵" } as never],
      },
      "(test)",
    );
    const info = consoleSiteInfo(config);
    expect(info.codeNames.PUMP_TRIPPED).toBe("水泵保护跳闸");
    expect(Object.keys(info.codeNames).length).toBe(profile.alarms.length);
    expect(info.shelveMaxMs).toBe(8 * 3_600_000);
    expect(info.devices).toEqual([expect.objectContaining({ id: "pump-1", name: "消防泵" })]);
  });

  it("alarms sharing a code: the title one gives, whichever; none given, the code, not the last one's cause", () => {
    const profile = parse(readFileSync("examples/profiles/template-modbus.yaml", "utf8"));
    const info = (title?: string) =>
      consoleSiteInfo(
        validateConfig(
          {
            site: { id: "s1", timezone: "Asia/Shanghai" },
            buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
            deviceProfiles: [
              {
                ...profile,
                alarms: [
                  { code: "PUMP_ALARM", priority: 2, when: { point: "status", bit: "tripped" }, title },
                  {
                    code: "PUMP_ALARM",
                    priority: 2,
                    when: { point: "status", bit: "dryRun" },
                    cause: "dry run",
                  },
                ],
              },
            ],
            devices: [{ id: "pump-1", model: "acme-pump", bus: "rs485-1", unit: 3 } as never],
          },
          "(test)",
        ),
      ).codeNames;
    expect(info("水泵报警")).toEqual({ PUMP_ALARM: "水泵报警" });
    expect(info()).toEqual({ PUMP_ALARM: "PUMP_ALARM" });
  });

  it("offers each device the commands its profile declares: the LV-4's set-points with their range, a YAML profile's confirmed", () => {
    const profile = parse(readFileSync("examples/profiles/template-modbus.yaml", "utf8"));
    const config = validateConfig(
      {
        site: { id: "s1", timezone: "Asia/Shanghai" },
        buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
        deviceProfiles: [profile],
        operators: [
          { name: "boss", password: "boss-pw", role: "supervisor" },
          { name: "desk", password: "desk-pw", role: "responder" },
        ],
        devices: [
          { id: "tank-1", model: "lv4", bus: "rs485-1", unit: 9 } as never,
          { id: "pump-1", model: "acme-pump", bus: "rs485-1", unit: 3 } as never,
        ],
      },
      "(test)",
    );
    const commands = (id: string, who?: string) =>
      consoleSiteInfo(config, who).devices.find((d) => d.id === id)?.commands as
        | Array<{ name: string; confirm: boolean; value: unknown }>
        | undefined;
    // The range devices/commands.ts checks the value against (lv4.ts `min`, `max`); all three
    // confirmed (lv4-water-tank.md: readings not real for 10 s, the sensor's own alarm set-points).
    expect(commands("tank-1", "boss")).toEqual([
      expect.objectContaining({ name: "self_test", confirm: true, value: null }),
      expect.objectContaining({ name: "set_low", confirm: true, value: { min: 100, max: 0xffff } }),
      expect.objectContaining({ name: "set_high", confirm: true, value: { min: 200, max: 0xffff } }),
    ]);
    const yaml = commands("pump-1", "boss") ?? [];
    expect(yaml.map((c) => c.name)).toEqual(Object.keys(profile.commands ?? {}));
    for (const c of yaml) expect(c).toMatchObject({ confirm: true, names: null });
    // A role that may not command devices is offered none.
    expect(commands("tank-1", "desk")).toBeUndefined();
  });

  it("asks to confirm the commands that change things on site: the fire panel's silence, reset and test mode, the kiosk's restart and maintenance", () => {
    const config = validateConfig(
      {
        site: { id: "s1", timezone: "Asia/Shanghai" },
        buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
        operators: [{ name: "boss", password: "boss-pw", role: "supervisor" }],
        devices: [
          { id: "fire-a", model: "mfs8", bus: "rs485-1", unit: 9 } as never,
          { id: "kiosk-1", model: "gk3", host: "127.0.0.1", port: 502 } as never,
          { id: "gas-1", model: "gd2", password: "gas-pw" } as never,
          { id: "gas-2", model: "gd2-yaml", password: "gas-pw" } as never,
        ],
        deviceProfiles: [parse(readFileSync("examples/profiles/gd2.yaml", "utf8"))],
      },
      "(test)",
    );
    const confirmed = (id: string) =>
      Object.fromEntries(
        (
          (consoleSiteInfo(config, "boss").devices.find((d) => d.id === id)?.commands as
            | ConsoleCommand[]
            | undefined) ?? []
        ).map((c) => [c.name, c.confirm]),
      );
    // mfs8-fire-panel.md: the sounder stops, latched alarms clear, test mode pages no one; back to normal is sent unasked.
    expect(confirmed("fire-a")).toEqual({ silence: true, reset: true, test_on: true, test_off: false });
    // gk3-kiosk.md: a restart drops the resident's transaction, maintenance takes the kiosk out of service.
    expect(confirmed("kiosk-1")).toEqual({ restart_app: true, maintenance_on: true, maintenance_off: false });
    expect(confirmed("gas-1")).toEqual({ valve_close: true, valve_open: true, self_test: false });
    // The YAML GD-2's valves, `actuates: true` there (and every YAML command, whatever it says).
    expect(confirmed("gas-2")).toEqual({ valve_close: true, valve_open: true, self_test: true });
  });
});
