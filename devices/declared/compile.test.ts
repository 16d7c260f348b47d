/**
 * Limits from another point (`{ point, min, max, else }`) and registers read beside the poll
 * (`modbus.reads`), on both transports. The LV-4 suite (test/lv4-behaviour.test.ts) covers the
 * YAML LV-4's set-point end to end.
 */
import { describe, expect, it } from "vitest";
import { SiteTime } from "../../core/index.js";
import type { DeviceSettings, ModbusDeviceProfile, MqttDeviceProfile, RuleContext } from "../profile.js";
import { isRejection } from "../profile.js";
import { compileProfile, type DeclaredSettings } from "./compile.js";
import { declaredProfileSchema } from "./schema.js";

const SETTINGS: DeviceSettings & DeclaredSettings = {
  heartbeatIntervalMs: 0,
  pollIntervalMs: 1000,
  emergencyCallWindowMs: 60_000,
  batteryLowPercent: 15,
  batteryClearPercent: 20,
  contactDebounceMs: 200,
  siteTime: new SiteTime("Asia/Shanghai"),
  params: {},
};

/** A rule context that records the last state of each condition. */
function recorder() {
  const active = new Map<string, boolean>();
  const ctx = {
    now: 0,
    subject: { id: "x", model: "x", household: null },
    condition: (code: string, on: boolean) => active.set(code, on),
    raise: () => {},
    markCancelled: () => 0,
    confirmDelivered: () => {},
    command: () => false,
  } as unknown as RuleContext;
  return { active, ctx };
}

describe("a limit from another point", () => {
  it("an MQTT field as the limit while it is within min..max; absent or out of range, the else limit", () => {
    const profile = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-tank",
        transport: "mqtt",
        mqtt: {
          uplink: "acme/{id}/up",
          fields: [
            { name: "level", path: "level", type: "number" },
            { name: "alarmAt", path: "cfg.alarmAt", type: "number", required: false },
          ],
        },
        alarms: [
          {
            code: "TANK_LOW",
            priority: 2,
            when: { point: "level", below: { point: "alarmAt", min: 10, max: 90, else: 30 } },
          },
        ],
      }),
    ) as MqttDeviceProfile;
    const st = profile.initialState();
    const { active, ctx } = recorder();
    const run = (msg: object) => {
      const s = profile.parse(msg);
      if (isRejection(s)) throw new Error(s.detail);
      profile.rules(s, st, SETTINGS, ctx);
      return active.get("TANK_LOW");
    };
    expect(run({ level: 40, cfg: { alarmAt: 50 } })).toBe(true); // under its own 50
    expect(run({ level: 40 })).toBe(false); // no alarmAt: 30
    expect(run({ level: 25 })).toBe(true);
    expect(run({ level: 25, cfg: { alarmAt: 5 } })).toBe(true); // 5 is out of 10..90: 30
    expect(run({ level: 25, cfg: { alarmAt: 20 } })).toBe(false);
  });

  it("a modbus.reads register: its word decoded as int16 with scale, not read yet: the else limit", () => {
    const profile = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-chiller",
        transport: "modbus",
        modbus: {
          registers: "input",
          points: [{ name: "temperature", address: 0, type: "int16", scale: 0.1 }],
          reads: [{ name: "freezeSetPoint", address: 5, type: "int16", scale: 0.1, every: "1m" }],
        },
        settings: {
          freezeAt: { default: { point: "freezeSetPoint", min: -20, max: 10, else: 2 } },
        },
        alarms: [
          {
            code: "FREEZE_RISK",
            priority: 3,
            when: { point: "temperature", below: { setting: "freezeAt" } },
          },
        ],
      }),
    ) as ModbusDeviceProfile;
    expect(profile.settingReads).toEqual([{ name: "freezeSetPoint", fn: 3, address: 5, refreshMs: 60_000 }]);
    const st = profile.initialState();
    const { active, ctx } = recorder();
    const run = (tenths: number) => {
      const s = profile.decode({ temperature: tenths / 10 });
      if (isRejection(s)) throw new Error(s.detail);
      profile.rules(s, st, SETTINGS, ctx);
      return active.get("FREEZE_RISK");
    };
    expect(run(15)).toBe(true); // 1.5 °C under the fallback 2 °C
    profile.applySetting?.(st, "freezeSetPoint", 0xfff6); // -10 as int16: -1.0 °C
    expect(run(15)).toBe(false);
    expect(run(-15)).toBe(true);
    // A device's own setting still wins over the default.
    const { active: a2, ctx: c2 } = recorder();
    const s = profile.decode({ temperature: 0.5 });
    if (isRejection(s)) throw new Error(s.detail);
    const own: DeviceSettings & DeclaredSettings = { ...SETTINGS, params: { freezeAt: 1 } };
    profile.rules(s, st, own, c2);
    expect(a2.get("FREEZE_RISK")).toBe(true);
  });
});
