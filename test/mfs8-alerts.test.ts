/**
 * The MFS-8 rules run through the real alert engine: what an operator sees
 * when faults overlap (one FAULT at the highest live priority) and when the
 * cause of HYDRANT_PRESSURE_LOW changes (causes and detail stay live).
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { Mfs8Settings } from "../devices/mfs8.js";
import { type Mfs8Sample, type Mfs8State, mfs8, STATUS } from "../devices/mfs8.js";
import type { DeviceSettings } from "../devices/profile.js";
import type { Alert, AlertSubject, Transition } from "../gateway/alerts/alert.js";
import { AlertEngine } from "../gateway/alerts/engine.js";
import { validateConfig } from "../gateway/config/load.js";
import { AlertContentBuilder } from "../gateway/content/alert-content.js";
import { DeviceRuleContext } from "../gateway/rule-context.js";
import { TimerWheel } from "../gateway/time/timer-wheel.js";

const settings = { minPressureMpa: 0.15, extinguisherGraceMs: 120_000 } as DeviceSettings & Mfs8Settings;
const panel: AlertSubject = { id: "fire-a", model: "mfs8", household: null };

interface Seen {
  id: string;
  topic: string;
  t: Transition;
  state: string;
  priority: number;
  causes: string[];
  detail: Record<string, unknown>;
  reason: string;
  alert: Alert;
}

function setup() {
  const clock = new FakeClock();
  const seen: Seen[] = [];
  const engine = new AlertEngine("s", clock, new TimerWheel(clock), {
    alertChanged: (a, t, ev) =>
      seen.push({
        id: a.id,
        topic: a.topic,
        t,
        state: a.state,
        priority: a.priority,
        causes: [...a.causes],
        detail: { ...a.detail },
        reason: ev.reason,
        alert: a,
      }),
  });
  const st: Mfs8State = mfs8.initialState();
  const rules = new DeviceRuleContext<AlertSubject>(() => false);
  const sample = (over: Partial<Mfs8Sample>): Mfs8Sample => ({
    firmware: "2.3",
    uptime: 1,
    status: 0,
    smoke: 0,
    temperature: 21.5,
    pressure: 0.32,
    present: 0x1f,
    slots: 5,
    faultCode: 0,
    events: 0,
    ...over,
  });
  const poll = (over: Partial<Mfs8Sample>) => {
    clock.advance(2000);
    mfs8.rules(sample(over), st, settings, rules.for(panel, engine.contextFor(panel)));
  };
  return { engine, seen, poll };
}

const B = (...bits: number[]) => bits.reduce((s, b) => s | (1 << b), 0);

describe("MFS-8 FAULT: one alert per panel at the highest priority of its live causes", () => {
  it("a pump fault while a detector fault is open is published at P2; the P3 alert closes", () => {
    const { engine, seen, poll } = setup();
    poll({ status: B(STATUS.detectorFault), faultCode: 1 });
    expect(seen.at(-1)).toMatchObject({
      t: "raised",
      priority: 3,
      topic: "linli/s/alerts/p3/FAULT/fire-a",
      causes: ["detector fault: smoke head dirty"],
    });
    const p3 = seen.at(-1)!.id;
    poll({ status: B(STATUS.detectorFault, STATUS.pumpFault), faultCode: 1 });
    const [closed, raised] = seen.slice(-2);
    expect(closed).toMatchObject({ id: p3, t: "closed", state: "closed", reason: "priority now P2" });
    expect(raised).toMatchObject({
      t: "raised",
      priority: 2,
      topic: "linli/s/alerts/p2/FAULT/fire-a",
      causes: ["pump fault", "detector fault: smoke head dirty"],
    });
    expect(engine.openAlerts().map((a) => [a.code, a.priority])).toEqual([["FAULT", 2]]);
  });

  it("while the pump fault remains the alert stays open; it clears only when no cause is left", () => {
    const { engine, seen, poll } = setup();
    poll({ status: B(STATUS.detectorFault, STATUS.pumpFault), faultCode: 1 });
    const p2 = seen.at(-1)!;
    expect(p2).toMatchObject({ t: "raised", priority: 2 });
    // The detector fault goes: the pump bit is still set, so the P2 stays active with the live cause.
    poll({ status: B(STATUS.pumpFault), faultCode: 0 });
    expect(seen.at(-1)).toMatchObject({ id: p2.id, t: "changed", priority: 2, causes: ["pump fault"] });
    expect(engine.find("fire-a", "FAULT")?.conditionActive).toBe(true);
    poll({ status: B(STATUS.pumpFault), faultCode: 0 });
    expect(seen.at(-1)!.t).toBe("changed");
    poll({ status: 0 });
    expect(seen.at(-1)).toMatchObject({ id: p2.id, t: "cleared", state: "cleared-unacknowledged" });
  });

  it("the pump fault alone is P2 and its clearing clears it; a battery fault alone is P3", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.pumpFault) });
    expect(seen.at(-1)).toMatchObject({ t: "raised", priority: 2, causes: ["pump fault"] });
    poll({ status: 0 });
    expect(seen.at(-1)).toMatchObject({ t: "cleared", priority: 2 });
    poll({ status: B(STATUS.batteryFault) });
    expect(seen.at(-2)).toMatchObject({ t: "closed", priority: 2, reason: "priority now P3" });
    expect(seen.at(-1)).toMatchObject({ t: "raised", priority: 3, causes: ["battery fault"] });
  });

  it("when only the detector fault is left the P2 closes and a P3 takes its place", () => {
    const { engine, seen, poll } = setup();
    poll({ status: B(STATUS.detectorFault, STATUS.pumpFault), faultCode: 2 });
    poll({ status: B(STATUS.detectorFault), faultCode: 2 });
    expect(seen.slice(-2).map((s) => [s.t, s.priority])).toEqual([
      ["closed", 2],
      ["raised", 3],
    ]);
    expect(seen.at(-1)!.causes).toEqual(["detector fault: heat sensor open circuit"]);
    expect(engine.openAlerts()).toHaveLength(1);
  });
});

describe("HYDRANT_PRESSURE_LOW: causes and detail describe the live condition", () => {
  it("panel bit at 0.32 MPa, then the bit clears and the pressure falls to 0.10", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.pressureLow), pressure: 0.32 });
    expect(seen.at(-1)).toMatchObject({ t: "raised", causes: ["panel"], detail: { pressure: 0.32 } });
    poll({ status: 0, pressure: 0.1 });
    expect(seen.at(-1)).toMatchObject({
      t: "changed",
      causes: ["below 0.15 MPa"],
      detail: { pressure: 0.1 },
    });
    // Nothing changed: nothing published.
    const n = seen.length;
    poll({ status: 0, pressure: 0.1 });
    expect(seen).toHaveLength(n);
    poll({ status: B(STATUS.pressureLow), pressure: 0.1 });
    expect(seen.at(-1)).toMatchObject({ t: "changed", causes: ["panel", "below 0.15 MPa"] });
  });

  it("reactivated after a clear, the alert names only the causes live now", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.pressureLow), pressure: 0.32 });
    poll({ status: 0, pressure: 0.32 });
    expect(seen.at(-1)!.t).toBe("cleared");
    poll({ status: 0, pressure: 0.12 });
    expect(seen.at(-1)).toMatchObject({
      t: "reactivated",
      causes: ["below 0.15 MPa"],
      detail: { pressure: 0.12 },
    });
  });
});

describe("what operators read: the cause that tripped it, with its reading", () => {
  const words = (locale: "zh-CN" | "en") => {
    const config = validateConfig(
      {
        site: { id: "s", locale },
        buses: [{ id: "rs485-1", type: "rtu", path: "memory:test" }],
        devices: [
          {
            id: "fire-a",
            model: "mfs8",
            bus: "rs485-1",
            unit: 2,
            name: "微型消防站 2",
            location: "2号楼 北侧",
          },
        ],
      },
      "(test)",
    );
    const b = new AlertContentBuilder(() => config);
    return (s: Seen) => b.describe(s.alert, s.t).message;
  };

  it("a smoke alarm names the smoke and its obscuration, not the temperature", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.smoke), smoke: 1.8, temperature: 21.5 });
    expect(seen.at(-1)).toMatchObject({ causes: ["smoke"], detail: { smoke: 1.8, temperature: 21.5 } });
    expect(words("zh-CN")(seen.at(-1)!)).toBe("火警（烟感 1.8 %/m）：微型消防站 2（2号楼 北侧）");
    expect(words("en")(seen.at(-1)!)).toBe("Fire alarm (smoke 1.8 %/m): 微型消防站 2 (2号楼 北侧)");
  });

  it("heat names the temperature, the call point has no reading; every live cause is named", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.heat), temperature: 61.2 });
    expect(words("zh-CN")(seen.at(-1)!)).toMatch(/^火警（温感 61.2 °C）：/);
    poll({ status: B(STATUS.heat, STATUS.callPoint, STATUS.smoke), smoke: 2.5, temperature: 63 });
    expect(words("zh-CN")(seen.at(-1)!)).toMatch(/^火警（烟感 2.5 %\/m、温感 63 °C、手动报警）：/);
    expect(words("en")(seen.at(-1)!)).toMatch(
      /^Fire alarm \(smoke 2.5 %\/m, heat 63 °C, manual call point\): /,
    );
    const { seen: manual, poll: press } = setup();
    press({ status: B(STATUS.callPoint) });
    expect(words("zh-CN")(manual.at(-1)!)).toMatch(/^火警（手动报警）：/);
  });

  it("a pump or battery fault is named, not read as fault code 0; a detector fault names its code", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.pumpFault) });
    expect(words("zh-CN")(seen.at(-1)!)).toMatch(/^设备故障（水泵故障）：/);
    expect(words("en")(seen.at(-1)!)).toMatch(/^Device fault \(pump fault\): /);
    poll({ status: B(STATUS.pumpFault, STATUS.detectorFault, STATUS.batteryFault), faultCode: 1 });
    expect(words("zh-CN")(seen.at(-1)!)).toMatch(
      /^设备故障（水泵故障、电池故障、探测器故障：烟感探头脏污）：/,
    );
    expect(words("en")(seen.at(-1)!)).toMatch(
      /^Device fault \(pump fault, battery fault, detector fault: smoke head dirty\): /,
    );
  });

  it("a FAULT closed because its priority changed says so and points to the new alert, not 'closed'", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.detectorFault), faultCode: 1 });
    poll({ status: B(STATUS.detectorFault, STATUS.pumpFault), faultCode: 1 });
    const [closed, raised] = seen.slice(-2);
    expect(words("zh-CN")(closed!)).toBe(
      "设备故障（探测器故障：烟感探头脏污）：微型消防站 2（2号楼 北侧）；已结束：情况变化，优先级改为 P2，由新告警接替，请处理新告警",
    );
    expect(words("en")(closed!)).toMatch(
      /: 微型消防站 2 \(2号楼 北侧\) — closed: the condition changed to priority P2, see the new alert that replaces this one$/,
    );
    expect(words("zh-CN")(raised!)).toMatch(
      /^设备故障（水泵故障、探测器故障：烟感探头脏污）：微型消防站 2（2号楼 北侧）$/,
    );
    // Back to P3 when the pump fault goes: the P2 says the same.
    poll({ status: B(STATUS.detectorFault), faultCode: 1 });
    expect(words("zh-CN")(seen.at(-2)!)).toMatch(
      /已结束：情况变化，优先级改为 P3，由新告警接替，请处理新告警$/,
    );
  });

  it("low pressure says whether the panel's own signal or the minimum tripped it", () => {
    const { seen, poll } = setup();
    poll({ status: B(STATUS.pressureLow), pressure: 0.32 });
    expect(words("zh-CN")(seen.at(-1)!)).toMatch(/^消防水压不足（面板低压报警，当前 0.32 MPa）：/);
    expect(words("en")(seen.at(-1)!)).toMatch(
      /^Hydrant pressure low \(panel's low-pressure signal, now 0.32 MPa\): /,
    );
    poll({ status: 0, pressure: 0.1 });
    expect(words("zh-CN")(seen.at(-1)!)).toMatch(/^消防水压不足（0.1 MPa）：/);
  });
});
