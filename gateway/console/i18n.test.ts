/**
 * The console's own words for an alert's escalation and count read as a sentence in both
 * languages, in the operators' guide's terms ("第 2 次升级"): before, "升级: 3 级" and
 * "Escalation: 3 level", "count: 3".
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { PROFILES } from "../../devices/index.js";
import { LV4_FAULTS } from "../../devices/lv4.js";
import { FAULT_CODES as MFS8_FAULTS } from "../../devices/mfs8.js";
import { validateConfig } from "../config/load.js";
import type { ConfigInput } from "../config/schema.js";
import { AlertContentBuilder } from "../content/alert-content.js";

interface I18n {
  STRINGS: Record<"zh-CN" | "en", Record<string, unknown>>;
  textWith: (lang: string, key: string, n: number) => string;
}

describe("console alert meta texts", () => {
  it("escalation level and count", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { STRINGS, textWith } = (await import(url)) as I18n;
    expect(textWith("zh-CN", "escalationLevel", 3)).toBe("第 3 次升级");
    expect(textWith("en", "escalationLevel", 3)).toBe("Escalation level 3");
    expect(STRINGS["zh-CN"].count).toBe("次数");
    expect(STRINGS.en.count).toBe("Count");
  });

  it("names every built-in device command in both languages (a result read 'valve_close')", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { commandName, COMMAND_NAMES } = (await import(url)) as {
      commandName: (lang: string, command: string) => string;
      COMMAND_NAMES: Record<string, Record<string, string>>;
    };
    // The generated table of docs/topics.md "Device commands" (npm run docs, from devices/).
    const table = readFileSync(path.resolve("docs/topics.md"), "utf8").split("<!-- generated: commands")[1];
    const commands = new Set(
      [...(table?.split("<!-- end: commands")[0] ?? "").matchAll(/^\| [A-Z0-9-]+ +\| `(\w+)`/gm)].map(
        (m) => m[1] as string,
      ),
    );
    expect(commands.size).toBeGreaterThan(10);
    for (const c of commands) {
      expect(commandName("zh-CN", c), c).toMatch(/[\u4e00-\u9fff]/);
      expect(COMMAND_NAMES.en?.[c], c).toBeTruthy();
    }
    expect(commandName("zh-CN", "valve_close")).toBe("关闭燃气阀");
    // A YAML profile's own command: as it is called.
    expect(commandName("zh-CN", "flush_tank")).toBe("flush_tank");
  });

  it("names each command as its model's profile does, which the gateway's failure messages say (the page cannot import them)", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { COMMAND_NAMES } = (await import(url)) as {
      COMMAND_NAMES: Record<string, Record<string, string>>;
    };
    const fromProfiles: Record<string, Record<string, string>> = { "zh-CN": {}, en: {} };
    for (const p of PROFILES)
      for (const [c, spec] of Object.entries(
        p.commands as Record<string, { names?: Record<"zh-CN" | "en", string> }>,
      ))
        for (const lang of ["zh-CN", "en"] as const) {
          const name = spec.names?.[lang];
          expect(name, `${p.model} ${c} ${lang}`).toBeTruthy();
          // One name per command across models (the console's table is by command).
          const seen = fromProfiles[lang] as Record<string, string>;
          expect(seen[c] ?? name, `${p.model} ${c}`).toBe(name);
          seen[c] = name as string;
        }
    expect(COMMAND_NAMES).toEqual(fromProfiles);
  });

  it("a fire station's and a tank's fault code read as its meaning, not a number", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { metricLabel } = (await import(url)) as {
      metricLabel: (lang: string, model: string, key: string, metric: { value: unknown }) => string;
    };
    expect(metricLabel("zh-CN", "mfs8", "faultCode", { value: 3 })).toBe("故障代码 压力传感器故障");
    expect(metricLabel("zh-CN", "lv4", "faultCode", { value: 4 })).toBe("故障代码 供电电压过低");
    expect(metricLabel("en", "lv4", "faultCode", { value: 1 })).toBe("Fault code pressure cell open circuit");
    expect(metricLabel("zh-CN", "mfs8", "faultCode", { value: 0 })).toBe("故障代码 无");
    expect(metricLabel("zh-CN", "mfs8", "faultCode", { value: 9 })).toBe("故障代码 9");
  });

  it("names each model as the operators' guide does (its section headings)", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { STRINGS } = (await import(url)) as I18n;
    const headings = readFileSync("docs/operator-guide.zh-CN.md", "utf8")
      .split("\n")
      .filter((l) => l.startsWith("### "))
      .join("\n");
    const models = STRINGS["zh-CN"].models as Record<string, string>;
    for (const [model, name] of Object.entries(models)) expect(headings, model).toContain(name);
  });

  it("the console's fault-code words in English are the profiles' meanings (the page cannot import them)", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { metricLabel } = (await import(url)) as {
      metricLabel: (lang: string, model: string, key: string, metric: { value: unknown }) => string;
    };
    for (const [model, table] of [
      ["mfs8", MFS8_FAULTS],
      ["lv4", LV4_FAULTS],
    ] as const) {
      for (const [code, meaning] of Object.entries(table)) {
        expect(metricLabel("en", model, "faultCode", { value: Number(code) }), `${model} ${code}`).toBe(
          `Fault code ${meaning}`,
        );
        expect(metricLabel("zh-CN", model, "faultCode", { value: Number(code) })).not.toBe(
          `故障代码 ${code}`,
        );
      }
    }
  });

  it("names an unnamed household or device as the gateway's messages do (住户 hh-1, 燃气报警器 g-1), never by its bare id", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { householdLabel, deviceLabel } = (await import(url)) as {
      householdLabel: (lang: string, id: string, name?: string | null) => string;
      deviceLabel: (lang: string, id: string, name?: string | null, model?: string) => string;
    };
    const binding = (model: string, unit: number) =>
      model === "mfs8" || model === "lv4"
        ? { bus: "b1", unit }
        : model === "gk3"
          ? { host: "127.0.0.1", port: 502 }
          : { password: "x" };
    for (const locale of ["zh-CN", "en"] as const) {
      const config = validateConfig(
        {
          site: { id: "s1", timezone: "Asia/Shanghai", locale },
          buses: [{ id: "b1", type: "rtu", path: "/dev/null" }],
          households: [{ id: "hh-1" }],
          devices: PROFILES.map((p, i) => ({
            id: `${p.model}-1`,
            model: p.model,
            ...binding(p.model, i + 1),
          })),
        } as ConfigInput,
        "(test)",
      );
      const gateway = new AlertContentBuilder(() => config);
      expect(householdLabel(locale, "hh-1", null)).toBe(gateway.nameHousehold("hh-1"));
      expect(householdLabel(locale, "hh-1", null)).not.toBe("hh-1");
      for (const p of PROFILES) {
        const id = `${p.model}-1`;
        expect(deviceLabel(locale, id, null, p.model), id).toBe(gateway.nameDevice(id));
        expect(deviceLabel(locale, id, null, p.model), id).toBe(`${p.names?.[locale]} ${id}`);
      }
      // A YAML profile's model has no name of its own: the word for a device.
      expect(deviceLabel(locale, "pump-1", null, "pump9")).toBe(
        locale === "en" ? "device pump-1" : "设备 pump-1",
      );
    }
    expect(householdLabel("zh-CN", "hh-1", "1号楼 101室")).toBe("1号楼 101室");
    expect(deviceLabel("en", "g-1", "Kitchen detector", "gd2")).toBe("Kitchen detector");
  });
});
