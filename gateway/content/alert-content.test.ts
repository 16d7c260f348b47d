import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { Alert, type AlertSubject, type Transition } from "../alerts/alert.js";
import { AlertEngine } from "../alerts/engine.js";
import { validateConfig } from "../config/load.js";
import type { Config, ConfigInput } from "../config/schema.js";
import { MISBEHAVING_CAUSES } from "../device-rate.js";
import { TimerWheel } from "../time/timer-wheel.js";
import { AlertContentBuilder } from "./alert-content.js";

const RAISED = Date.UTC(2026, 11, 2, 14, 15, 3, 120); // 22:15:03.120 in Shanghai

function config(extra: Partial<ConfigInput> = {}, locale: "zh-CN" | "en" = "zh-CN"): Config {
  return validateConfig(
    {
      site: { id: "s1", timezone: "Asia/Shanghai", locale },
      households: [
        {
          id: "hh-1",
          name: "1号楼 101室",
          address: "和平路 88 号 幸福小区",
          room: "101室",
          residentName: "张阿姨",
          contactPhone: "+86 138 0013 8000",
        },
        { id: "hh-2" },
      ],
      devices: [
        {
          id: "p-1",
          model: "ec200",
          password: "x",
          household: "hh-1",
          name: "紧急呼叫器",
          location: "卧室床头",
        },
        { id: "p-2", model: "ec200", password: "x", household: "hh-2" },
      ],
      ...extra,
    },
    "(test)",
  );
}

const pendant: AlertSubject = { id: "p-1", model: "ec200", household: "hh-1" };

function alert(subject: AlertSubject = pendant, code: Alert["code"] = "EMERGENCY_CALL", test = false) {
  return new Alert("a1", code, 1, "s1", subject, RAISED, "t", ["press"], false, test, {});
}

describe("alert content", () => {
  it("names, place, message and action in zh-CN, times on the site's clock", () => {
    const b = new AlertContentBuilder(() => config());
    expect(b.describe(alert(), "raised")).toEqual({
      householdName: "1号楼 101室",
      address: "和平路 88 号 幸福小区",
      room: "101室",
      residentName: "张阿姨",
      contactPhone: "+86 138 0013 8000",
      deviceName: "紧急呼叫器",
      location: "卧室床头",
      message: "紧急呼叫：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）",
      action: "立即致电住户；无人接听或情况紧急时派人上门，必要时拨打 120。",
      locale: "zh-CN",
      raisedAtLocal: "2026-12-02T22:15:03.120+08:00",
      updatedAtLocal: "2026-12-02T22:15:03.120+08:00",
      ackedAtLocal: null,
      clearedAtLocal: null,
      escalationNextAtLocal: null,
    });
  });

  it("each transition says what happened; escalations say for how long", () => {
    const b = new AlertContentBuilder(() => config());
    const a = alert();
    a.acknowledge(RAISED + 60_000, "duty-desk", null);
    const acked = b.describe(a, "acknowledged");
    expect(acked.message).toBe("紧急呼叫：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）；已由 duty-desk 确认");
    expect(acked.ackedAtLocal).toBe("2026-12-02T22:16:03.120+08:00");
    const esc = b.describe(alert(), "escalated", { level: 2, unacknowledgedForMs: 180_000 });
    expect(esc.message).toMatch(/；3 分钟无人确认，第 2 次升级$/);
    const s = alert();
    s.shelvedBy = "night-shift";
    s.shelvedUntil = Date.UTC(2026, 11, 2, 14, 30);
    expect(b.describe(s, "shelved").message).toMatch(/；已由 night-shift 搁置至 22:30$/);
    // A second press of a call is "again"; a condition whose live readings changed is not.
    const call = alert();
    call.windowUntil = RAISED + 60_000;
    call.count = 2;
    expect(b.describe(call, "repeated").message).toMatch(/；再次发生（共 2 次）$/);
    const tamper = alert(pendant, "TAMPER");
    expect(b.describe(tamper, "changed").message).toMatch(/；情况有变化$/);
    expect(b.describe(tamper, "changed").message).not.toContain("再次发生");
    const en = new AlertContentBuilder(() => config({}, "en"));
    expect(en.describe(tamper, "changed").message).toMatch(/ — situation changed$/);
    // A change journaled before topics 0.12.0 as `repeated` is republished with the same words.
    expect(b.describe(tamper, "repeated").message).toMatch(/；情况有变化$/);
  });

  it("an unanswered call or fall says its call window ended, not that it is back to normal", () => {
    const zh = new AlertContentBuilder(() => config());
    const en = new AlertContentBuilder(() => config({}, "en"));
    for (const code of ["EMERGENCY_CALL", "FALL_DETECTED"] as const) {
      const call = alert(pendant, code);
      call.windowUntil = RAISED + 60_000; // raised as an event (AlertContext.raise)
      expect(call.clear(RAISED + 60_000)).toBe("cleared");
      expect(zh.describe(call, "cleared").message).toMatch(
        /张阿姨，紧急呼叫器（卧室床头）；呼叫窗口已结束，仍无人确认$/,
      );
      expect(en.describe(call, "cleared").message).toMatch(/ — call window over, still not acknowledged$/);
    }
    // The engine's call window ends the same way (the rules raise a call as an event).
    const clock = new FakeClock();
    const changes: Array<[Alert, Transition]> = [];
    const engine = new AlertEngine("s1", clock, new TimerWheel(clock), {
      alertChanged: (a, t) => changes.push([a, t]),
    });
    engine.contextFor(pendant).raise("FALL_DETECTED", { priority: 1, causes: ["fall"], windowMs: 60_000 });
    clock.advance(61_000);
    const [fall, t] = changes.find(([, t]) => t === "cleared") as [Alert, Transition];
    expect(fall.state).toBe("cleared-unacknowledged");
    expect(zh.describe(fall, t).message).toMatch(/^疑似跌倒：.*；呼叫窗口已结束，仍无人确认$/);
    // A condition that went away did return to normal.
    const tamper = alert(pendant, "TAMPER");
    tamper.clear(RAISED + 60_000);
    expect(zh.describe(tamper, "cleared").message).toMatch(/；已恢复正常，待确认$/);
    expect(en.describe(tamper, "cleared").message).toMatch(/ — back to normal, to be acknowledged$/);
  });

  it("an alert closed because its device or household left the configuration says so, not just 已结束", () => {
    const zh = new AlertContentBuilder(() => config());
    const en = new AlertContentBuilder(() => config({}, "en"));
    const clock = new FakeClock();
    const closed: Alert[] = [];
    const engine = new AlertEngine("s1", clock, new TimerWheel(clock), {
      alertChanged: (a, t) => {
        if (t === "closed") closed.push(a);
      },
    });
    const household: AlertSubject = { id: "hh-1", model: "household", household: "hh-1" };
    const door: AlertSubject = { id: "d-1", model: "ds10", household: "hh-1" };
    engine.contextFor(pendant).raise("EMERGENCY_CALL", { priority: 1, causes: ["press"], windowMs: 60_000 });
    engine.contextFor(household).condition("WELFARE_CHECK", true, { priority: 2 });
    engine.contextFor(door).condition("TAMPER", true, { priority: 2 });
    // An unanswered call of a removed pendant: not to be read as handled.
    engine.closeSubject("p-1", "device removed from the configuration");
    engine.closeSubject("hh-1", "household removed from the configuration");
    engine.closeSubject("d-1", "device model changed in the configuration (now gd2)", "gd2");
    const [call, welfare, tamper] = closed as [Alert, Alert, Alert];
    expect(zh.describe(call, "closed").message).toBe(
      "紧急呼叫：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）；已结束：设备已从站点配置中删除",
    );
    expect(en.describe(call, "closed").message).toMatch(
      / — closed: the device was removed from the site configuration$/,
    );
    expect(zh.describe(welfare, "closed").message).toMatch(/；已结束：住户已从站点配置中删除$/);
    expect(en.describe(welfare, "closed").message).toMatch(
      / — closed: the household was removed from the site configuration$/,
    );
    // The new model as operators call it.
    expect(zh.describe(tamper, "closed").message).toMatch(/；已结束：站点配置中该设备已更换为燃气报警器$/);
    expect(en.describe(tamper, "closed").message).toMatch(
      / — closed: the device was replaced in the site configuration \(now gas detector\)$/,
    );
    // CONFIG_REFUSED closed by a valid file: the configuration corrected, in either language.
    const gateway: AlertSubject = { id: "gateway", model: "gateway", household: null };
    engine.contextFor(gateway).condition("CONFIG_REFUSED", true, { priority: 2 });
    engine.closeCode("gateway", "CONFIG_REFUSED", "valid site file applied: site.yaml", {
      corrected: "reload",
    });
    const refused = closed[3] as Alert;
    expect(zh.describe(refused, "closed").message).toMatch(/；已结束：配置已修正并重新加载$/);
    expect(en.describe(refused, "closed").message).toMatch(
      / — closed: the configuration was corrected and reloaded$/,
    );
    // Closed because the gateway started with a valid file: no reload happened, and it says so.
    engine.contextFor(gateway).condition("CONFIG_REFUSED", true, { priority: 2 });
    engine.closeCode("gateway", "CONFIG_REFUSED", "valid site file applied: site.yaml", {
      corrected: "start",
    });
    const atStart = closed[4] as Alert;
    expect(zh.describe(atStart, "closed").message).toMatch(/；已结束：配置已修正，网关已重新启动$/);
    expect(en.describe(atStart, "closed").message).toMatch(
      / — closed: the configuration was corrected and the gateway restarted$/,
    );
    // Any other close still reads as before.
    const acked = alert(pendant, "TAMPER");
    acked.acknowledge(RAISED, "ops", null, "ops");
    acked.clear(RAISED + 1000);
    expect(zh.describe(acked, "closed").message).toMatch(/；已结束$/);
  });

  it("English site; where nothing is configured, what the ids are; a test alert says so", () => {
    const b = new AlertContentBuilder(() => config({}, "en"));
    const c = b.describe(
      alert({ id: "p-2", model: "ec200", household: "hh-2" }, "BATTERY_LOW", true),
      "raised",
    );
    expect(c).toMatchObject({
      householdName: null,
      residentName: null,
      contactPhone: null,
      deviceName: null,
      location: null,
      locale: "en",
      message: "[TEST] Battery low: pendant p-2 at household hh-2",
    });
    const welfare = b.describe(
      alert({ id: "hh-1", model: "household", household: "hh-1" }, "WELFARE_CHECK"),
      "raised",
    );
    expect(welfare).toMatchObject({ householdName: "1号楼 101室", deviceName: null });
    expect(welfare.message).toBe("No activity: 1号楼 101室, 张阿姨");
    const gw = b.describe(
      alert({ id: "gateway", model: "gateway", household: null }, "STORAGE_DEGRADED"),
      "raised",
    );
    // Its title names the gateway: no place after it ("Gateway storage failing: the gateway").
    expect(gw.message).toBe("Gateway storage failing");
  });

  it("the detail that matters is shown (battery, pressure)", () => {
    const b = new AlertContentBuilder(() => config());
    const a = new Alert("a2", "BATTERY_LOW", 4, "s1", pendant, RAISED, "t", [], false, false, {
      battery: 12,
    });
    expect(b.describe(a, "raised").message).toBe(
      "电池电量低（剩余 12%）：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）",
    );
  });

  it("the gateway's damage at start says how much, in both languages", () => {
    const subject: AlertSubject = { id: "gateway", model: "gateway", household: null };
    const a = new Alert("a4", "STORAGE_DAMAGED_AT_START", 2, "s1", subject, RAISED, "t", [], false, false, {
      kinds: "corrupt-record,missing-segments",
      bytes: 4096,
      missingSegments: 2,
    });
    const zh = new AlertContentBuilder(() => config()).describe(a, "raised");
    expect(zh.message).toContain("网关存储数据受损（4096 字节损坏，2 个数据文件缺失）");
    expect(zh.action).toContain("核对");
    const en = new AlertContentBuilder(() => config({}, "en")).describe(a, "raised");
    expect(en.message).toContain(
      "Gateway storage damaged at start (4096 bytes damaged, 2 journal files missing)",
    );
    // Raised as a record (no condition to go away): cleared at once, it waits for an acknowledgement,
    // with no call window and nothing "back to normal".
    a.windowUntil = RAISED;
    expect(a.clear(RAISED + 1)).toBe("cleared");
    const zhCleared = new AlertContentBuilder(() => config()).describe(a, "cleared").message;
    expect(zhCleared).toMatch(/；已记录，待确认$/);
    expect(zhCleared).not.toMatch(/呼叫窗口|已恢复正常/);
    const enCleared = new AlertContentBuilder(() => config({}, "en")).describe(a, "cleared").message;
    expect(enCleared).toMatch(/ — recorded, awaiting acknowledgement$/);
  });

  it("a misbehaving device's message says which limits it keeps hitting, in both languages", () => {
    const [rate, share, alertShare] = MISBEHAVING_CAUSES;
    const misbehaving = (causes: string[]) =>
      new Alert("a5", "DEVICE_MISBEHAVING", 3, "s1", pendant, RAISED, "t", causes, false, false, {});
    const zh = new AlertContentBuilder(() => config());
    const en = new AlertContentBuilder(() => config({}, "en"));
    expect(zh.describe(misbehaving([share]), "raised").message).toBe(
      "设备发送异常（积压的一级消息超过其份额）：1号楼 101室 张阿姨，紧急呼叫器（卧室床头）",
    );
    expect(zh.describe(misbehaving([rate, share]), "changed").message).toMatch(
      /^设备发送异常（超过消息速率、积压的一级消息超过其份额）：/,
    );
    expect(zh.describe(misbehaving([share]), "raised").action).toContain("一级消息");
    expect(en.describe(misbehaving([rate, share]), "raised").message).toMatch(
      /^Device sending too fast \(over its message rate, over its share of the P1 lane\): /,
    );
    expect(en.describe(misbehaving([share]), "raised").action).toContain("messages beyond its share");
    // The alert lane's share (any model: a GD-2 flooding replies), worded in Chinese too.
    expect(zh.describe(misbehaving([alertShare]), "raised").message).toMatch(
      /^设备发送异常（积压的告警消息超过其份额）：/,
    );
    expect(en.describe(misbehaving([alertShare]), "raised").message).toMatch(
      /^Device sending too fast \(over its share of the alert lane\): /,
    );
  });

  it("a model's own words for a shared code win over the catalogue's (GD-2 FAULT), others keep the catalogue's", () => {
    const b = new AlertContentBuilder(() =>
      config({
        devices: [
          { id: "k-1", model: "gd2", password: "x", household: "hh-1", name: "燃气报警器", location: "厨房" },
          { id: "p-1", model: "ec200", password: "x", household: "hh-1" },
        ],
      }),
    );
    const kitchen: AlertSubject = { id: "k-1", model: "gd2", household: "hh-1" };
    const gd2Fault = new Alert("a3", "FAULT", 2, "s1", kitchen, RAISED, "t", ["sensor fault"], false, false, {
      fault: 2,
    });
    const raised = b.describe(gd2Fault, "raised");
    expect(raised.message).toBe("燃气报警器故障（传感器故障）：1号楼 101室 张阿姨，燃气报警器（厨房）");
    expect(raised.action).toMatch(/^报警器可能无法检测燃气或关闭阀门/);
    const power = b.describe(
      new Alert("a4", "POWER_FAIL", 3, "s1", kitchen, RAISED, "t", [], false, false, {}),
      "raised",
    );
    expect(power.message).toMatch(/^燃气报警器断电：/);
    // An EC-200 has no words of its own for BATTERY_LOW: the catalogue's, with its detail.
    const battery = new Alert("a5", "BATTERY_LOW", 4, "s1", pendant, RAISED, "t", [], false, false, {
      battery: 9,
    });
    expect(b.describe(battery, "raised").message).toMatch(/^电池电量低（剩余 9%）：/);
  });

  it("the action is configurable per code; a reload's new names show in the next message", () => {
    let running = config({ alerts: { actions: { EMERGENCY_CALL: "先打给家属，再上门。" } } });
    const b = new AlertContentBuilder(() => running);
    expect(b.describe(alert(), "raised").action).toBe("先打给家属，再上门。");
    expect(b.describe(alert(pendant, "FALL_DETECTED"), "raised").action).toMatch(/^立即致电住户确认/);
    running = config({
      households: [{ id: "hh-1", name: "2号楼 202室", residentName: "李大爷" }, { id: "hh-2" }],
      devices: [{ id: "p-1", model: "ec200", password: "x", household: "hh-1" }],
    });
    expect(b.describe(alert(), "raised")).toMatchObject({
      householdName: "2号楼 202室",
      residentName: "李大爷",
      contactPhone: null,
      message: "紧急呼叫：2号楼 202室 李大爷，紧急呼叫器 p-1",
    });
  });
});

describe("what the fire stations, kiosks, tanks and gas detectors say (the operators' guide)", () => {
  const site = (locale: "zh-CN" | "en" = "zh-CN") =>
    config(
      {
        buses: [{ id: "b1", type: "rtu", path: "/dev/null" }],
        devices: [
          { id: "k-1", model: "gk3", name: "自助服务终端 1", location: "大厅", host: "127.0.0.1", port: 502 },
          { id: "f-1", model: "mfs8", name: "微型消防站 1", bus: "b1", unit: 4 },
          { id: "t-1", model: "lv4", name: "消防水箱液位计", bus: "b1", unit: 3 },
          { id: "g-1", model: "gd2", password: "x", household: "hh-1", name: "燃气报警器" },
          { id: "p-1", model: "ec200", password: "x", household: "hh-1", name: "紧急呼叫器" },
        ],
      },
      locale,
    );
  const on = (
    id: string,
    model: AlertSubject["model"],
    code: Alert["code"],
    causes: string[],
    household: string | null = null,
    detail: Alert["detail"] = {},
  ) => new Alert("a1", code, 3, "s1", { id, model, household }, RAISED, "t", causes, false, false, detail);

  it("a kiosk's or a tank's FAULT names what failed; a kiosk's is not about fire equipment", () => {
    const zh = new AlertContentBuilder(() => site());
    const kiosk = zh.describe(on("k-1", "gk3", "FAULT", ["printer fault", "network uplink fault"]), "raised");
    expect(kiosk.message).toBe("设备故障（打印机故障、网络中断）：自助服务终端 1（大厅）");
    expect(kiosk.action).toBe("通知维保单位检修。");
    const tank = zh.describe(on("t-1", "lv4", "FAULT", ["sensor fault: supply voltage low"]), "raised");
    expect(tank.message).toBe("设备故障（传感器故障：供电电压过低）：消防水箱液位计");
    expect(tank.action).toBe("通知维保单位检修；故障期间派人查看水位。");
    expect(zh.describe(on("t-1", "lv4", "FAULT", ["sensor fault: code 9"]), "raised").message).toMatch(
      /（传感器故障：故障码 9）/,
    );
    const en = new AlertContentBuilder(() => site("en"));
    expect(en.describe(on("k-1", "gk3", "FAULT", ["touch screen fault"]), "raised").message).toBe(
      "Device fault (touch screen fault): 自助服务终端 1 (大厅)",
    );
    // A kiosk's cabinet has no resident to call: the contractor is asked.
    const cabinet = zh.describe(on("k-1", "gk3", "TAMPER", ["cabinet door open"]), "raised");
    expect(cabinet.message).toBe("设备外壳被打开（机柜门打开）：自助服务终端 1（大厅）");
    expect(cabinet.action).toBe("联系维保确认是否在检修，否则派人查看。");
  });

  it("a gas leak says the detector's alarm, the peak, the gateway's shut-off and the valve; a detector's FAULT what failed", () => {
    const zh = new AlertContentBuilder(() => site());
    const leak = (detail: Alert["detail"]) =>
      zh.describe(on("g-1", "gd2", "GAS_LEAK", ["detector alarm high"], "hh-1", detail), "raised").message;
    expect(leak({ level: "high", peakLel: 23, valve: "moving", autoShutOff: true })).toBe(
      "燃气泄漏（报警器高浓度报警，最高 23 %LEL，网关已发送关阀命令，阀门动作中）：1号楼 101室 张阿姨，燃气报警器",
    );
    expect(leak({ level: "none", peakLel: 12, valve: "open" })).toMatch(
      /^燃气泄漏（最高 12 %LEL，阀门未关闭）：/,
    );
    // Queued for a detector that is away: not said as sent (in both languages).
    expect(
      leak({ level: "high", peakLel: 23, valve: "open", autoShutOff: true, autoShutOffQueued: true }),
    ).toMatch(
      /^燃气泄漏（报警器高浓度报警，最高 23 %LEL，关阀命令尚未送达：报警器未连接，将在其重新连接后发送，阀门未关闭）：/,
    );
    expect(
      new AlertContentBuilder(() => site("en")).describe(
        on("g-1", "gd2", "GAS_LEAK", [], "hh-1", {
          level: "high",
          valve: "open",
          autoShutOff: true,
          autoShutOffQueued: true,
        }),
        "raised",
      ).message,
    ).toMatch(/valve_close not delivered yet: the detector is not connected, sent when it reconnects/);
    // A leak the detector's alarm raised while its sensor was in fault: its figure, said doubtful; none at all, left out.
    expect(leak({ level: "high", peakLel: 40, peakLelSuspect: true, valve: "open" })).toMatch(
      /^燃气泄漏（报警器高浓度报警，最高 40 %LEL（传感器故障中，读数存疑），阀门未关闭）：/,
    );
    expect(leak({ level: "high", peakLel: "unknown", valve: "open" })).toMatch(
      /^燃气泄漏（报警器高浓度报警，阀门未关闭）：/,
    );
    const fault = zh.describe(
      on("g-1", "gd2", "FAULT", ["sensor end of life", "cannot detect gas"], "hh-1", { fault: 1 }),
      "raised",
    );
    expect(fault.message).toMatch(/^燃气报警器故障（传感器寿命到期、无法检测燃气）：/);
    const en = new AlertContentBuilder(() => site("en"));
    expect(
      en.describe(
        on("g-1", "gd2", "GAS_LEAK", [], "hh-1", { level: "low", peakLel: 11, valve: "closed" }),
        "raised",
      ).message,
    ).toMatch(/^Gas leak \(detector alarm low, peak 11 %LEL, valve closed\): /);
  });

  it("a fire station names its empty brackets; a critically low tank its limit", () => {
    const zh = new AlertContentBuilder(() => site());
    expect(
      zh.describe(on("f-1", "mfs8", "EXTINGUISHER_MISSING", ["bracket 2", "bracket 5"]), "raised").message,
    ).toBe("灭火器不在位（2、5 号支架空）：微型消防站 1");
    const low = on("t-1", "lv4", "WATER_LEVEL_CRITICAL", [], null, { limitMm: 1200, tankHeightMm: 4000 });
    expect(zh.describe(low, "raised").message).toBe(
      "消防水箱水位严重不足（低于 1200 mm，即水箱高度的 30%）：消防水箱液位计",
    );
    const en = new AlertContentBuilder(() => site("en"));
    expect(en.describe(on("f-1", "mfs8", "EXTINGUISHER_MISSING", ["bracket 2"]), "raised").message).toBe(
      "Extinguisher missing (bracket 2 empty): 微型消防站 1",
    );
  });

  it("an alert released after a flood says so in the words of the console and the guide (告警洪峰)", () => {
    const zh = new AlertContentBuilder(() => site());
    const held = on("f-1", "mfs8", "EXTINGUISHER_MISSING", []);
    expect(zh.describe(held, "flood-released").message).toBe(
      "灭火器不在位：微型消防站 1；告警洪峰结束后补发",
    );
  });

  it("DEVICE_LOST says what is at stake for the model: a fire station cannot alarm, a gas leak goes unseen", () => {
    const zh = new AlertContentBuilder(() => site());
    const lost = (id: string, model: AlertSubject["model"], household: string | null = null) =>
      zh.describe(on(id, model, "DEVICE_LOST", ["silent"], household), "raised").action;
    expect(lost("f-1", "mfs8")).toBe("检查总线接线和面板电源；失联期间该消防站无法报警，请加强人工巡查。");
    expect(lost("g-1", "gd2", "hh-1")).toBe("检查报警器电源和网络；失联期间无法发现燃气泄漏，请致电住户。");
    expect(lost("k-1", "gk3")).toBe("检查终端电源和网络。");
    expect(lost("t-1", "lv4")).toBe("检查液位计电源和 RS-485 线路。");
    expect(lost("p-1", "ec200", "hh-1")).toBe(
      "检查设备电源和网络；住户设备失联时致电住户，确认其安全并安排检修。",
    );
    const en = new AlertContentBuilder(() => site("en"));
    expect(en.describe(on("f-1", "mfs8", "DEVICE_LOST", ["silent"]), "raised").action).toMatch(
      /cannot raise an alarm/,
    );
    // The site's own words for the code still win.
    const own = config({ alerts: { actions: { DEVICE_LOST: "通知值班电工。" } } });
    expect(
      new AlertContentBuilder(() => own).describe(on("p-1", "ec200", "DEVICE_LOST", []), "raised").action,
    ).toBe("通知值班电工。");
  });
});

describe("people and places in the config", () => {
  it("bad values are named by field; a bad phone is not echoed", () => {
    const bad = (extra: Partial<ConfigInput>) => () => config(extra);
    const hh = (h: Record<string, unknown>) => ({ households: [{ id: "hh-1", ...h }, { id: "hh-2" }] });
    expect(bad(hh({ contactPhone: "call me 555" }))).toThrow(
      /households\[0\]\.contactPhone: must be a phone number/,
    );
    expect(bad(hh({ contactPhone: "call me 555" }))).toThrow(/^(?![\s\S]*call me 555)/);
    expect(bad(hh({ name: "a\nb" }))).toThrow(/households\[0\]\.name: must be one line/);
    expect(bad({ alerts: { actions: { NOT_A_CODE: "x" } as never } })).toThrow(/alerts\.actions/);
    expect(() => validateConfig({ site: { id: "s1", locale: "fr" as never } }, "(test)")).toThrow(
      /site\.locale/,
    );
    expect(config().site.locale).toBe("zh-CN");
    for (const ok of ["13800138000", "+86 138-0013-8000", "021-6234 5678 转 123", "(021) 62345678"])
      expect(() => config(hh({ contactPhone: ok })), ok).not.toThrow();
  });
});
