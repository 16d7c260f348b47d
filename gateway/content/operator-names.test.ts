/**
 * Every operator-facing line that names people, places or devices, enumerated: each model's alert
 * codes (and the gateway's, and a household's), each operator result and named refusal, each
 * device-command failure; in zh-CN and English; on a site that names everything and on one that
 * names nothing. Where nothing is named the line says what an id is ("住户 hh-7 的燃气报警器 gas-7",
 * never "hh-7的gas-7"); English joins a thing and its household with "at", never "X of 1号楼 …".
 */
import { describe, expect, it } from "vitest";
import { SiteTime } from "../../core/index.js";
import { PROFILES } from "../../devices/index.js";
import { Alert, type AlertSubject } from "../alerts/alert.js";
import type { AlertEngine } from "../alerts/engine.js";
import { validateConfig } from "../config/load.js";
import type { Config, ConfigInput } from "../config/schema.js";
import type { RateLimitedLog } from "../log.js";
import type { Publisher } from "../northbound/publisher.js";
import { OperatorCommands, type OpsResult } from "../ops.js";
import type { Registry } from "../registry.js";
import type { Counters } from "../stats.js";
import type { Supervisor } from "../supervision.js";
import { AlertContentBuilder } from "./alert-content.js";
import { commandFailureText } from "./command-text.js";
import { type OpsOutcome, opsOutcomeText } from "./ops-text.js";

type Locale = "zh-CN" | "en";
const LOCALES: Locale[] = ["zh-CN", "en"];
const AT = Date.UTC(2026, 11, 6, 9, 0, 0);

/** One device per built-in model; the residents' devices in household hh-7. */
const DEVICES = [
  { id: "pend-7", model: "ec200", household: "hh-7", name: "随身呼叫器", location: "卧室床头" },
  { id: "door-7", model: "ds10", household: "hh-7", name: "入户门磁", location: "入户门" },
  { id: "gas-7", model: "gd2", household: "hh-7", name: "厨房燃气报警器", location: "厨房" },
  { id: "fire-7", model: "mfs8", name: "1号微型消防站", location: "3号楼大堂" },
  { id: "tank-7", model: "lv4", name: "消防水箱", location: "泵房" },
  { id: "kiosk-7", model: "gk3", name: "1号自助终端", location: "服务中心" },
] as const;
const IDS = ["hh-7", ...DEVICES.map((d) => d.id)];

/** named: every name configured; unnamed: ids only; placed: no names, but the devices' locations. */
type Naming = "named" | "unnamed" | "placed";

function site(locale: Locale, naming: Naming): Config {
  const input: ConfigInput = {
    site: { id: "s1", timezone: "Asia/Shanghai", locale },
    buses: [{ id: "b1", type: "rtu", path: "/dev/null" }],
    households: [
      naming === "named" ? { id: "hh-7", name: "1号楼 101室", residentName: "张阿姨" } : { id: "hh-7" },
    ],
    devices: DEVICES.map((d, i) => {
      const binding =
        d.model === "mfs8" || d.model === "lv4"
          ? { bus: "b1", unit: i + 1 }
          : d.model === "gk3"
            ? { host: "127.0.0.1", port: 502 }
            : { password: "x" };
      return {
        id: d.id,
        model: d.model,
        ...binding,
        ...("household" in d ? { household: d.household } : {}),
        ...(naming === "named" ? { name: d.name } : {}),
        ...(naming === "unnamed" ? {} : { location: d.location }),
      };
    }) as ConfigInput["devices"],
  };
  return validateConfig(input, "(test)");
}

/** Every code a device of `model` can raise, and the gateway's codes about any device. */
function codesOf(model: string): string[] {
  const p = PROFILES.find((x) => x.model === model);
  return [...Object.keys(p?.alerts ?? {}), "DEVICE_LOST", "DEVICE_MISBEHAVING"];
}

function alertOn(subject: AlertSubject, code: string, n: number): Alert {
  const a = new Alert(`a-${n}`, code as Alert["code"], 2, "s1", subject, AT, "t", [], false, false, {});
  a.ackedBy = "duty-desk";
  a.shelvedUntil = AT + 30 * 60_000;
  return a;
}

/** Every alert a site can show: per device and code, the household's welfare check, the gateway's own. */
function allAlerts(): Alert[] {
  const out: Alert[] = [];
  for (const d of DEVICES) {
    const subject: AlertSubject = {
      id: d.id,
      model: d.model,
      household: "household" in d ? d.household : null,
    };
    for (const code of codesOf(d.model)) out.push(alertOn(subject, code, out.length));
  }
  out.push(alertOn({ id: "hh-7", model: "household", household: "hh-7" }, "WELFARE_CHECK", out.length));
  for (const code of ["STORAGE_DEGRADED", "STORAGE_DAMAGED_AT_START", "CONFIG_REFUSED"])
    out.push(alertOn({ id: "gateway", model: "gateway", household: null }, code, out.length));
  return out;
}

/** Operator results and named refusals, through OperatorCommands with the content's names. */
function opsLines(names: AlertContentBuilder, locale: Locale, alerts: Alert[]): string[] {
  const results: OpsResult[] = [];
  const byId = new Map(alerts.map((a) => [a.id, a]));
  const registry = {
    devices: new Map(DEVICES.map((d) => [d.id, { id: d.id }])),
    households: new Map([["hh-7", { id: "hh-7" }]]),
    siteTime: new SiteTime("Asia/Shanghai"),
  } as unknown as Registry;
  const publisher = {
    opsResult: (_op: string, r: OpsResult) => results.push(r),
    deviceService: () => {},
    downlink: () => true,
  } as unknown as Publisher;
  const supervisor = {
    serviceChanged: () => {},
    setAway: (_h: unknown, away: boolean) => ({ state: away ? "away" : "monitored" }),
  } as unknown as Supervisor;
  const run = (engine: object) =>
    new OperatorCommands(
      { byAlertId: (id: string) => byId.get(id), ...engine } as unknown as AlertEngine,
      registry,
      publisher,
      { reject: () => {} } as unknown as Counters,
      { warn: () => {} } as unknown as RateLimitedLog,
      supervisor,
      null,
      null,
      null,
      () => locale,
      names,
    );
  const req = <F>(target: string, fields: F) => ({ operator: "op", target, ref: null, by: "王丽", fields });
  const yes = run({
    acknowledge: (id: string) => ({ ok: true, alert: byId.get(id), transition: "closed" }),
    shelve: (id: string) => ({ ok: true, alert: byId.get(id) }),
    unshelve: (id: string) => ({ ok: true, alert: byId.get(id) }),
    setOutOfService: () => ({ ok: true, alerts: 1 }),
  });
  const no = run({
    acknowledge: () => ({ ok: false, reason: "already-acknowledged" }),
    unshelve: () => ({ ok: false, reason: "not-shelved" }),
    setOutOfService: (_d: unknown, out: boolean) => ({
      ok: false,
      reason: out ? "already-out-of-service" : "already-in-service",
    }),
  });
  for (const a of alerts) {
    for (const ops of [yes, no]) {
      ops.ack(req(a.id, { note: null }));
      ops.unshelve(req(a.id, { reason: null }));
    }
    yes.shelve(req(a.id, { duration: 60_000, reason: null }));
  }
  for (const d of DEVICES)
    for (const ops of [yes, no])
      for (const inService of [true, false]) ops.service(req(d.id, { inService, reason: null }));
  for (const away of [true, false]) yes.away(req("hh-7", { away, until: null, reason: null }));
  return results.map((r) => r.message ?? "");
}

/** Every line an operator can read of this site: alert messages, results, refusals, command failures. */
function everyLine(locale: Locale, naming: Naming): string[] {
  const config = site(locale, naming);
  const b = new AlertContentBuilder(() => config);
  const alerts = allAlerts();
  const lines: string[] = [];
  for (const a of alerts) {
    for (const t of ["raised", "acknowledged", "shelved", "escalated"] as const)
      lines.push(b.describe(a, t, { level: 1, unacknowledgedForMs: 60_000 }).message);
    lines.push(b.nameAlert(a));
    for (const outcome of ["acknowledged", "closed", "already-acknowledged", "shelved", "unshelved"] as const)
      lines.push(opsOutcomeText(locale, outcome, { name: b.nameAlert(a), until: AT }, new SiteTime("UTC")));
  }
  const outcomes: OpsOutcome[] = ["out-of-service", "in-service"];
  for (const d of DEVICES) {
    for (const o of outcomes)
      lines.push(opsOutcomeText(locale, o, { name: b.nameDevice(d.id), alerts: 2 }, new SiteTime("UTC")));
    for (const error of ["timeout", "exception", "transport", "internal", "device-busy", "device-odd"])
      lines.push(commandFailureText(locale, b.nameDevice(d.id), "reset", { error, exception: "X" }));
  }
  lines.push(...opsLines(b, locale, alerts));
  if (process.env.LINLI_DUMP_LINES) console.log([`## ${locale} ${naming}`, ...new Set(lines)].join("\n"));
  return lines.filter((l) => l !== "");
}

/** What may stand before an id: the word saying what it is ("住户 hh-7", "燃气报警器 gas-7"). */
function kindsOf(locale: Locale, id: string): string[] {
  if (id === "hh-7") return [locale === "en" ? "household " : "住户 "];
  const model = DEVICES.find((d) => d.id === id)?.model;
  const p = PROFILES.find((x) => x.model === model);
  return [`${p?.names?.[locale] ?? "?"} `];
}

const HAN = /\p{Script=Han}/u;

/** The ids a line shows bare (not after the word for what they are), or stuck to Chinese characters. */
function badIds(locale: Locale, line: string): string[] {
  const bad: string[] = [];
  for (const id of IDS)
    for (let i = line.indexOf(id); i >= 0; i = line.indexOf(id, i + 1)) {
      const before = line.slice(0, i);
      const after = line[i + id.length] ?? "";
      if (!kindsOf(locale, id).some((k) => before.endsWith(k)) || HAN.test(after))
        bad.push(`${id} in «${line}»`);
    }
  return bad;
}

describe("operator-facing lines name people, places and devices readably (every model and code, zh-CN and en)", () => {
  for (const locale of LOCALES)
    for (const naming of ["unnamed", "placed"] as const)
      it(`${locale}, a site that names nothing${naming === "placed" ? " but locations" : ""}: an id is always said with what it is`, () => {
        const lines = everyLine(locale, naming);
        expect(lines.length).toBeGreaterThan(300);
        expect(lines.flatMap((l) => badIds(locale, l))).toEqual([]);
        // The alert message and the results name a device alike (one way of naming, everywhere).
        const b = new AlertContentBuilder(() => site(locale, naming));
        for (const d of DEVICES) {
          const own = kindsOf(locale, d.id)[0] + d.id;
          expect(b.nameDevice(d.id)).toContain(own);
          if (naming === "placed") expect(b.nameDevice(d.id)).toContain(d.location);
        }
      });

  for (const locale of LOCALES)
    it(`${locale}, a site that names everything: no line shows an id`, () => {
      const lines = everyLine(locale, "named");
      const withIds = lines.filter((l) => IDS.some((id) => l.includes(id)));
      expect(withIds).toEqual([]);
      expect(lines.filter((l) => l.includes("1号楼 101室")).length).toBeGreaterThan(100);
    });

  it("English joins a thing and its household with 'at', never 'X of <household>'; no Chinese joining word", () => {
    for (const naming of ["named", "unnamed", "placed"] as const) {
      const lines = everyLine("en", naming);
      expect(
        lines.filter((l) => / of (1号楼|household |pendant |door sensor |gas detector )/.test(l)),
      ).toEqual([]);
      expect(lines.filter((l) => /的/.test(l))).toEqual([]);
    }
    const b = new AlertContentBuilder(() => site("en", "named"));
    const tamper = allAlerts().find((a) => a.code === "TAMPER" && a.subject.model === "ds10") as Alert;
    expect(b.nameAlert(tamper)).toBe("Device cover opened, 入户门磁 (入户门) at 1号楼 101室, 张阿姨");
    expect(b.nameDevice("gas-7")).toBe("厨房燃气报警器 (厨房) at 1号楼 101室, 张阿姨");
  });

  it("the names in the operators' examples (zh-CN and en, named and unnamed)", () => {
    const zh = new AlertContentBuilder(() => site("zh-CN", "unnamed"));
    const en = new AlertContentBuilder(() => site("en", "unnamed"));
    const all = allAlerts();
    const gasLeak = all.find((a) => a.code === "GAS_LEAK") as Alert;
    const fire = all.find((a) => a.code === "FIRE_ALARM") as Alert;
    expect(zh.nameDevice("gas-7")).toBe("住户 hh-7 的燃气报警器 gas-7");
    expect(en.nameDevice("gas-7")).toBe("gas detector gas-7 at household hh-7");
    expect(zh.nameAlert(gasLeak)).toBe("住户 hh-7 的燃气报警器 gas-7，燃气泄漏");
    expect(en.nameAlert(gasLeak)).toBe("Gas leak, gas detector gas-7 at household hh-7");
    expect(zh.nameAlert(fire)).toBe("微型消防站 fire-7 的火警");
    expect(en.nameAlert(fire)).toBe("Fire alarm at fire station fire-7");
    expect(zh.describe(gasLeak, "raised").message).toMatch(/：住户 hh-7，燃气报警器 gas-7$/);
    expect(en.describe(gasLeak, "raised").message).toMatch(/: gas detector gas-7 at household hh-7$/);
    const named = new AlertContentBuilder(() => site("en", "named"));
    expect(named.describe(gasLeak, "acknowledged").message).toMatch(
      /: 厨房燃气报警器 \(厨房\) at 1号楼 101室, 张阿姨 — acknowledged by duty-desk$/,
    );
  });

  it("a result for a household's device's alert names the device: a pendant's and a door sensor's are told apart", () => {
    const all = allAlerts();
    const of = (model: string, code: string) =>
      all.find((a) => a.code === code && a.subject.model === model) as Alert;
    const zh = new AlertContentBuilder(() => site("zh-CN", "named"));
    const en = new AlertContentBuilder(() => site("en", "named"));
    expect(zh.nameAlert(of("ds10", "TAMPER"))).toBe("1号楼 101室 张阿姨的入户门磁（入户门），设备外壳被打开");
    expect(zh.nameAlert(of("ec200", "BATTERY_LOW"))).toBe(
      "1号楼 101室 张阿姨的随身呼叫器（卧室床头），电池电量低",
    );
    expect(en.nameAlert(of("ec200", "DEVICE_LOST"))).toBe(
      "Device not heard from, 随身呼叫器 (卧室床头) at 1号楼 101室, 张阿姨",
    );
    const unnamed = new AlertContentBuilder(() => site("zh-CN", "unnamed"));
    expect(unnamed.nameAlert(of("ds10", "DEVICE_LOST"))).toBe("住户 hh-7 的门磁 door-7，设备失联");
    // The household's own alert and a device of no household: as before.
    const welfare = all.find((a) => a.code === "WELFARE_CHECK") as Alert;
    expect(zh.nameAlert(welfare)).toBe("1号楼 101室 张阿姨的长时间无活动");
    expect(unnamed.nameAlert(of("mfs8", "FIRE_ALARM"))).toBe("微型消防站 fire-7 的火警");
    // Every device alert of a household: its result names the device, in both languages and namings.
    for (const locale of LOCALES)
      for (const naming of ["named", "unnamed", "placed"] as const) {
        const b = new AlertContentBuilder(() => site(locale, naming));
        for (const a of all.filter((x) => x.subject.household !== null && x.subject.model !== "household"))
          expect(b.nameAlert(a), `${locale} ${naming} ${a.code}`).toContain(b.nameDevice(a.subject.id));
        // The verb first where a refusal names an alert: its title must not run into it.
        const lines = everyLine(locale, naming);
        expect(
          lines.filter((l) => /(打开|未关|失联|异常)(此前已确认|未被搁置)|is not shelved/.test(l)),
        ).toEqual([]);
      }
  });

  it("the gateway's own alerts read as their title, never 'X: the gateway' (every gateway code)", () => {
    const gatewayAlerts = allAlerts().filter((a) => a.subject.model === "gateway");
    expect(gatewayAlerts.length).toBe(3);
    for (const locale of LOCALES) {
      const b = new AlertContentBuilder(() => site(locale, "named"));
      for (const a of gatewayAlerts) {
        const title = b.nameAlert(a);
        expect(title, a.code).toMatch(locale === "en" ? /^Gateway / : /^网关/);
        for (const t of ["raised", "acknowledged", "shelved", "escalated"] as const) {
          const m = b.describe(a, t, { level: 1, unacknowledgedForMs: 60_000 }).message;
          expect(m, `${locale} ${a.code} ${t}`).not.toMatch(/: the gateway|：网关/);
          expect(m.startsWith(title), m).toBe(true);
        }
        expect(b.describe(a, "raised").message).toMatch(new RegExp(`^${title}(\\(|（|$)`));
      }
    }
    const en = new AlertContentBuilder(() => site("en", "named"));
    const zh = new AlertContentBuilder(() => site("zh-CN", "named"));
    const storage = gatewayAlerts.find((a) => a.code === "STORAGE_DEGRADED") as Alert;
    expect(en.describe(storage, "raised").message).toBe("Gateway storage failing");
    expect(en.describe(storage, "acknowledged").message).toBe(
      "Gateway storage failing — acknowledged by duty-desk",
    );
    expect(zh.describe(storage, "acknowledged").message).toBe("网关存储故障；已由 duty-desk 确认");
  });

  it("a command's failure names the command as the console does (打开燃气阀, not valve_open)", () => {
    for (const locale of LOCALES) {
      const b = new AlertContentBuilder(() => site(locale, "named"));
      for (const d of DEVICES) {
        const p = PROFILES.find((x) => x.model === d.model);
        for (const c of Object.keys(p?.commands ?? {})) {
          const name = b.nameCommand(d.id, c);
          expect(name, `${d.model} ${c}`).toBeTruthy();
          const line = commandFailureText(locale, b.nameDevice(d.id), c, { error: "device-busy" }, name);
          expect(line).toContain(name as string);
          expect(line).not.toMatch(new RegExp(`(command|命令) ${c}`));
        }
      }
    }
    const zh = new AlertContentBuilder(() => site("zh-CN", "unnamed"));
    const en = new AlertContentBuilder(() => site("en", "unnamed"));
    expect(
      commandFailureText(
        "zh-CN",
        zh.nameDevice("gas-7"),
        "valve_open",
        { error: "device-busy" },
        zh.nameCommand("gas-7", "valve_open"),
      ),
    ).toBe("住户 hh-7 的燃气报警器 gas-7：命令“打开燃气阀”失败，设备忙，拒绝执行");
    expect(
      commandFailureText(
        "en",
        en.nameDevice("gas-7"),
        "valve_open",
        { error: "device-busy" },
        en.nameCommand("gas-7", "valve_open"),
      ),
    ).toBe(
      'gas detector gas-7 at household hh-7: command "open the gas valve" failed: the device is busy and refused it',
    );
    // A command the model does not have, or a YAML profile's own: said by its name.
    expect(zh.nameCommand("gas-7", "flush_tank")).toBeNull();
    expect(zh.nameCommand("gas-7", "toString")).toBeNull();
    expect(commandFailureText("zh-CN", "泵房", "flush_tank", { error: "timeout" }, null)).toMatch(
      /^泵房：命令 flush_tank 失败，/,
    );
  });
});
