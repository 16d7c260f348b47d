/** Operator text for the codes only a YAML device profile declares: the alarm's title and action. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Alert, type AlertSubject } from "../alerts/alert.js";
import { validateConfig } from "../config/load.js";
import { AlertContentBuilder } from "./alert-content.js";

describe("alert content of YAML-described devices", () => {
  const profile = parse(readFileSync("examples/profiles/template-modbus.yaml", "utf8"));
  const config = validateConfig(
    {
      site: { id: "s1", timezone: "Asia/Shanghai" },
      buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
      deviceProfiles: [profile],
      devices: [
        {
          id: "pump-1",
          model: "acme-pump",
          bus: "rs485-1",
          unit: 3,
          name: "消防泵",
          location: "B1 泵房",
        } as never,
      ],
    },
    "(test)",
  );
  const pump: AlertSubject = { id: "pump-1", model: "acme-pump" as never, household: null };
  const make = (code: string) =>
    new Alert("a1", code as never, 2, "s1", pump, Date.UTC(2026, 11, 2, 14, 0), "t", ["x"], false, false, {});

  it("the profile's title and action; a built-in code keeps the catalogue's text", () => {
    const b = new AlertContentBuilder(() => config);
    expect(b.describe(make("PUMP_TRIPPED"), "raised")).toMatchObject({
      message: "水泵保护跳闸：消防泵（B1 泵房）",
      action: "派人到泵房复位热继电器，查明跳闸原因；消防泵不可用期间通知消防值班。",
      deviceName: "消防泵",
    });
    expect(b.describe(make("OVERHEAT"), "raised").message).toMatch(/^机柜温度过高/);
  });

  it("an alarm without title or action: its cause, and a generic action", () => {
    const b = new AlertContentBuilder(() => config);
    const c = b.describe(make("PUMP_DRY_RUN"), "raised");
    expect(c.message).toBe("PUMP_DRY_RUN：消防泵（B1 泵房）");
    expect(c.action).toBe("按该设备的处置规程处理，必要时派人到现场查看。");
  });

  it("alarms sharing a code: the title one of them gives, else the code (not the first one's cause)", () => {
    const shared = (title?: string) =>
      validateConfig(
        {
          site: { id: "s1", timezone: "Asia/Shanghai" },
          buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
          deviceProfiles: [
            {
              ...profile,
              alarms: [
                {
                  code: "PUMP_ALARM",
                  priority: 2,
                  when: { point: "status", bit: "tripped" },
                  cause: "tripped",
                },
                {
                  code: "PUMP_ALARM",
                  priority: 2,
                  when: { point: "status", bit: "dryRun" },
                  cause: "dry run",
                  ...(title ? { title, action: "检查水泵。" } : {}),
                },
              ],
            },
          ],
          devices: [{ id: "pump-1", model: "acme-pump", bus: "rs485-1", unit: 3, name: "消防泵" } as never],
        },
        "(test)",
      );
    expect(new AlertContentBuilder(() => shared()).describe(make("PUMP_ALARM"), "raised").message).toBe(
      "PUMP_ALARM：消防泵",
    );
    const titled = new AlertContentBuilder(() => shared("水泵报警")).describe(make("PUMP_ALARM"), "raised");
    expect([titled.message, titled.action]).toEqual(["水泵报警：消防泵", "检查水泵。"]);
  });

  it("an alarm's peak and command: the peak, and the command sent or waiting, in the detail", () => {
    const gd2 = parse(readFileSync("examples/profiles/gd2.yaml", "utf8"));
    // GAS_LEAK is a built-in code (its shipped text, devices/gd2.ts's, reads the same detail
    // fields); a code only the profile declares is said with the profile's and the gateway's words.
    const renamed = JSON.parse(JSON.stringify(gd2).replaceAll('"GAS_LEAK"', '"GAS_ESCAPE"'));
    const site = (locale: "zh-CN" | "en", doc: Record<string, unknown>, words = true) =>
      validateConfig(
        {
          site: { id: "s1", timezone: "Asia/Shanghai", locale },
          deviceProfiles: [
            words
              ? doc
              : {
                  ...doc,
                  alarms: (doc.alarms as Record<string, unknown>[]).map((a) =>
                    a.command === undefined
                      ? a
                      : { ...a, command: { name: "valve_close", setting: "autoShutOff" } },
                  ),
                },
          ],
          devices: [{ id: "gas-1", model: "gd2-yaml", password: "pw-gas-1", name: "厨房燃气" } as never],
        },
        "(test)",
      );
    const gas: AlertSubject = { id: "gas-1", model: "gd2-yaml" as never, household: null };
    const say = (
      locale: "zh-CN" | "en",
      code: string,
      detail: Record<string, number | string | boolean>,
      words = true,
    ) =>
      new AlertContentBuilder(() => site(locale, code === "GAS_LEAK" ? gd2 : renamed, words)).describe(
        new Alert(
          "a2",
          code as never,
          1,
          "s1",
          gas,
          Date.UTC(2026, 11, 2, 14, 0),
          "t",
          ["x"],
          false,
          false,
          detail,
        ),
        "raised",
      ).message;
    const queued = { peakLel: 12, peakLelSuspect: true, autoShutOff: true, autoShutOffQueued: true };
    const sent = { peakLel: 18.5, autoShutOff: true, autoShutOffQueued: false };
    expect(say("zh-CN", "GAS_LEAK", sent)).toBe("燃气泄漏（最高 18.5 %LEL，网关已发送关阀命令）：厨房燃气");
    expect(say("zh-CN", "GAS_ESCAPE", sent)).toBe("燃气泄漏（最高 18.5 %LEL，网关已发送关阀命令）：厨房燃气");
    expect(say("zh-CN", "GAS_ESCAPE", queued)).toBe(
      "燃气泄漏（最高 12 %LEL（传感器故障中，读数存疑），关阀命令尚未送达：报警器未连接，将在其重新连接后发送）：厨房燃气",
    );
    // No figure yet, no command: nothing to add.
    expect(say("zh-CN", "GAS_ESCAPE", { peakLel: "unknown" })).toBe("燃气泄漏：厨房燃气");
    // Without the profile's own words, the gateway's, naming the command.
    expect(say("zh-CN", "GAS_ESCAPE", sent, false)).toBe(
      "燃气泄漏（最高 18.5 %LEL，网关已发送命令 valve_close）：厨房燃气",
    );
    expect(say("en", "GAS_ESCAPE", { ...queued, peakLelSuspect: false }, false)).toBe(
      "燃气泄漏 (peak 12 %LEL, valve_close not delivered yet: the device is not connected, sent when it reconnects): 厨房燃气",
    );
  });
});
