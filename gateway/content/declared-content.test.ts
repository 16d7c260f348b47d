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
});
