import { describe, expect, it } from "vitest";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/lanes.js";
import { deviceSchema } from "./config.js";
import { type Gd2Sample, type Gd2Settings, gd2 } from "./gd2.js";
import {
  type ConditionOptions,
  type DeviceSettings,
  INACTIVE,
  isRejection,
  type RuleContext,
} from "./profile.js";
import { siteSettings } from "./test-fixtures.js";

const site = siteSettings({ heartbeatIntervalMs: 60_000 });
/** The rules' settings from a config entry, as the registry derives them. */
const settings = (own: Record<string, unknown> = {}): DeviceSettings & Gd2Settings => ({
  ...site,
  ...gd2.settings(deviceSchema(gd2).parse({ id: "k1", model: "gd2", password: "pw", ...own })),
});

/** Records what the rules asked for, one line per call. */
class Recorder implements RuleContext<string> {
  now = 1_000_000;
  stale = false;
  /** Read when the rules run (one fake time). */
  get readAt(): number {
    return this.now;
  }
  calls: string[] = [];
  last = new Map<string, ConditionOptions>();
  sendOk = true;
  raise(code: string): void {
    this.calls.push(`raise ${code}`);
  }
  condition(code: string, active: boolean, opts: ConditionOptions): void {
    this.calls.push(`${code} ${active ? "on" : "off"}`);
    this.last.set(code, opts);
  }
  markCancelled(): number {
    return 0;
  }
  confirmDelivered(): void {}
  command(name: string): boolean {
    this.calls.push(`command ${name}`);
    return this.sendOk;
  }
  /** The calls that changed something: every condition is reported each sample, so keep the "on"s and commands. */
  ons(): string[] {
    return this.calls.filter((c) => c.endsWith(" on") || c.startsWith("command"));
  }
}

function parse(json: string): Gd2Sample {
  const s = gd2.parse(JSON.parse(json));
  if (isRejection(s)) throw new Error(`${s.reason}: ${s.detail}`);
  return s;
}
const hb = (lel: number, valve = "open", mains = true, fault = 0) =>
  parse(`{"t":"hb","seq":1,"ts":1,"lel":${lel},"valve":"${valve}","mains":${mains},"fault":${fault}}`);
const alarm = (lel: number, level: string, valve: string) =>
  parse(`{"t":"alarm","seq":2,"ts":1,"lel":${lel},"level":"${level}","valve":"${valve}"}`);
const valve = (v: string, cause: string) =>
  parse(`{"t":"valve","seq":3,"ts":1,"valve":"${v}","cause":"${cause}"}`);

describe("GD-2 profile: decoding", () => {
  it("decodes the datasheet example", () => {
    expect(
      gd2.parse(
        JSON.parse('{"t":"alarm","seq":311,"ts":1763798400789,"lel":18.5,"level":"low","valve":"closed"}'),
      ),
    ).toEqual({
      t: "alarm",
      seq: 311,
      ts: 1763798400789,
      lel: 18.5,
      level: "low",
      valve: "closed",
      dropped: [],
    });
  });

  // The clock is a side field, as on the EC-200 and DS-10: a gas alarm is never refused for it.
  it.each([
    ['"1763798400789"', "field-bad-type"],
    ["-5", "field-out-of-range"],
    ["1.5", "field-bad-type"],
    [undefined, "field-missing"],
  ])("an alarm with ts %s is taken in, the clock left out (0) and counted", (ts, reason) => {
    const s = gd2.parse({
      t: "alarm",
      seq: 9,
      ...(ts === undefined ? {} : { ts: JSON.parse(ts) }),
      lel: 30,
      level: "high",
      valve: "open",
    });
    expect(isRejection(s)).toBe(false);
    expect(s).toMatchObject({ t: "alarm", level: "high", ts: 0 });
    expect(gd2.droppedFields?.(s as Gd2Sample)).toEqual([expect.objectContaining({ field: "ts", reason })]);
    expect(gd2.quality?.(s as Gd2Sample, gd2.initialState())).toBe("field-dropped");
  });

  it("decodes heartbeats, valve messages and replies", () => {
    expect(hb(3.5, "open", false, 1)).toMatchObject({ t: "hb", lel: 3.5, mains: false, fault: 1 });
    expect(valve("closed", "manual")).toMatchObject({ t: "valve", valve: "closed", cause: "manual" });
    expect(parse('{"t":"reply","seq":4,"ts":0,"id":"r1","cmd":"valve_close","result":"busy"}')).toMatchObject(
      {
        t: "reply",
        id: "r1",
        cmd: "valve_close",
        result: "busy",
      },
    );
  });

  it.each([
    ['{"t":"hb","seq":1,"ts":1,"lel":"3","valve":"open","mains":true,"fault":0}', "bad-field", /lel/],
    ['{"t":"hb","seq":1,"ts":1,"lel":100.1,"valve":"open","mains":true,"fault":0}', "out-of-range", /lel/],
    ['{"t":"hb","seq":1,"ts":1,"lel":1,"valve":"ajar","mains":true,"fault":0}', "bad-field", /valve/],
    ['{"t":"hb","seq":1,"ts":1,"lel":1,"valve":"open","mains":1,"fault":0}', "bad-field", /mains/],
    ['{"t":"hb","seq":1,"ts":1,"lel":1,"valve":"open","mains":true,"fault":5}', "out-of-range", /fault/],
    ['{"t":"alarm","seq":1,"ts":1,"lel":20,"level":"medium","valve":"open"}', "bad-field", /level/],
    ['{"t":"valve","seq":1,"ts":1,"valve":"open","cause":"wind"}', "bad-field", /cause/],
    ['{"t":"reply","seq":1,"ts":1,"id":"","cmd":"valve_close","result":"ok"}', "bad-field", /id/],
    ['{"t":"reply","seq":1,"ts":1,"id":"a","cmd":"valve_close","result":"maybe"}', "bad-field", /result/],
    ['{"t":"evt","seq":1,"ts":1}', "bad-field", /t must be/],
    // Not sent at all: the refusal says missing, not a value of the wrong type.
    ['{"t":"hb","seq":1,"ts":1,"lel":1,"valve":"open","mains":true}', "bad-field", /^fault is missing/],
    ['{"t":"hb","seq":1,"ts":1,"valve":"open","mains":true,"fault":0}', "bad-field", /^lel is missing/],
    ['{"t":"hb","seq":1,"ts":1,"lel":1,"valve":"open","fault":0}', "bad-field", /^mains is missing/],
    ['{"t":"alarm","seq":1,"ts":1,"lel":20,"valve":"open"}', "bad-field", /^level is missing/],
    ['{"t":"reply","seq":1,"ts":1,"id":"a","result":"ok"}', "bad-field", /^cmd is missing/],
    ['{"seq":1,"ts":1,"lel":1}', "bad-field", /^t is missing/],
    ['{"t":"hb","ts":1,"lel":1,"valve":"open","mains":true,"fault":0}', "bad-field", /^seq is missing/],
    ['{"t":"hb","seq":-1,"ts":1,"lel":1,"valve":"open","mains":true,"fault":0}', "out-of-range", /seq/],
  ])("refuses %s", (json, reason, detail) => {
    const s = gd2.parse(JSON.parse(json));
    expect(isRejection(s)).toBe(true);
    expect(s).toMatchObject({ reason, detail: expect.stringMatching(detail) });
  });

  // Lanes keep order within a lane only: a troubled heartbeat (valve "open") in the alert lane,
  // drained after a newer P1 `valve: closed`, would open the valve again in the rules' state.
  it("lanes: every message that runs the rules in P1 (alarm, valve, troubled heartbeats), replies in the alert lane, calm heartbeats telemetry", () => {
    expect(gd2.lane(alarm(12, "low", "open"))).toBe(LANE_P1);
    expect(gd2.lane(valve("closed", "remote"))).toBe(LANE_P1);
    expect(gd2.lane(hb(6))).toBe(LANE_P1);
    expect(gd2.lane(hb(0, "open", false))).toBe(LANE_P1);
    expect(gd2.lane(hb(0, "fault"))).toBe(LANE_P1);
    expect(gd2.lane(hb(0, "open", true, 2))).toBe(LANE_P1);
    expect(gd2.lane(parse('{"t":"reply","seq":4,"ts":0,"id":"r1","cmd":"self_test","result":"ok"}'))).toBe(
      LANE_ALERT,
    );
    expect(gd2.lane(hb(1.2))).toBe(LANE_TELEMETRY);
  });

  it("activity: only the resident's knob", () => {
    expect(gd2.isActivity(valve("closed", "manual"))).toBe(true);
    expect(gd2.isActivity(valve("closed", "local"))).toBe(false);
    expect(gd2.isActivity(hb(0))).toBe(false);
  });

  it("a reply is a command result; downlinks carry the id", () => {
    expect(
      gd2.reply?.(parse('{"t":"reply","seq":4,"ts":0,"id":"r1","cmd":"valve_open","result":"busy"}')),
    ).toEqual({ id: "r1", command: "valve_open", result: "busy", ok: false });
    expect(gd2.reply?.(hb(0))).toBeNull();
    expect(gd2.commands.valve_close?.message("x7")).toEqual({ cmd: "valve_close", id: "x7" });
    expect(Object.keys(gd2.commands)).toEqual(["valve_close", "valve_open", "self_test"]);
  });
});

describe("GD-2 profile: rules", () => {
  it("cooking (3-6 %LEL) raises nothing", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    for (const lel of [0, 3, 4.5, 6, 4, 1]) gd2.rules(hb(lel), st, settings(), ctx);
    expect(ctx.ons()).toEqual([]);
  });

  it("the detector's alarm is GAS_LEAK P1, one alert per incident naming level and peak; clears under 5 %LEL and level none", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    const s = settings();
    gd2.rules(alarm(10, "low", "moving"), st, s, ctx);
    gd2.rules(alarm(26, "high", "closed"), st, s, ctx);
    gd2.rules(hb(40, "closed"), st, s, ctx);
    expect(ctx.last.get("GAS_LEAK")).toMatchObject({
      priority: 1,
      detail: { level: "high", peakLel: 40, valve: "closed" },
    });
    ctx.calls = [];
    // Under the threshold but the detector still says high: still a leak.
    gd2.rules(hb(4), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK on");
    ctx.calls = [];
    gd2.rules(alarm(4, "none", "closed"), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK off");
  });

  it("a detector alarm under the threshold clears only once lel is under 5 %LEL too (datasheet)", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    const s = settings();
    gd2.rules(alarm(8, "low", "closed"), st, s, ctx);
    expect(ctx.ons()).toEqual(["GAS_LEAK on"]);
    ctx.calls = [];
    gd2.rules(alarm(8, "none", "closed"), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK on");
    expect(ctx.last.get("GAS_LEAK")?.causes).toEqual(["not yet under 5 %LEL"]);
    ctx.calls = [];
    // A valve message carries no lel: the last reading still holds the leak open.
    gd2.rules(valve("closed", "local"), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK on");
    ctx.calls = [];
    gd2.rules(hb(5, "closed"), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK on");
    ctx.calls = [];
    gd2.rules(hb(4.9, "closed"), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK off");
  });

  it("lel at or above the configured threshold in any message is a leak; 5 %LEL is not yet clear", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    const s = settings({ leakThreshold: 8 });
    gd2.rules(hb(7.9), st, s, ctx);
    expect(ctx.ons()).toEqual([]);
    gd2.rules(hb(8), st, s, ctx);
    expect(ctx.ons()).toEqual(["GAS_LEAK on", "GAS_VALVE_NOT_CLOSED on"]);
    expect(ctx.last.get("GAS_LEAK")?.causes).toEqual(["at or above 8 %LEL"]);
    ctx.calls = [];
    gd2.rules(hb(5), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK on");
    // The causes describe the live reading: 5 %LEL is no longer "at or above 8".
    expect(ctx.last.get("GAS_LEAK")?.causes).toEqual(["not yet under 5 %LEL"]);
    ctx.calls = [];
    gd2.rules(hb(4.9), st, s, ctx);
    expect(ctx.calls).toContain("GAS_LEAK off");
  });

  it("a threshold changed by a reload applies from the next message, and back again", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    gd2.rules(hb(9), st, settings({ leakThreshold: 12 }), ctx);
    expect(ctx.ons()).toEqual([]);
    gd2.rules(hb(9), st, settings({ leakThreshold: 8 }), ctx);
    expect(ctx.ons()).toContain("GAS_LEAK on");
    gd2.rules(hb(1), st, settings({ leakThreshold: 8 }), ctx);
    ctx.calls = [];
    gd2.rules(hb(11), st, settings({ leakThreshold: 12 }), ctx);
    expect(ctx.ons()).toEqual([]);
    gd2.rules(hb(11), st, settings(), ctx); // default 10
    expect(ctx.ons()).toContain("GAS_LEAK on");
  });

  it("GAS_VALVE_NOT_CLOSED: 20 s from the start of the leak, off once the valve reports closed", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    gd2.rules(alarm(12, "low", "open"), st, settings(), ctx);
    const opts = ctx.last.get("GAS_VALVE_NOT_CLOSED");
    expect(opts).toMatchObject({ priority: 1, onDelayMs: 20_000, since: ctx.now });
    ctx.now += 5_000;
    ctx.calls = [];
    gd2.rules(valve("closed", "remote"), st, settings(), ctx);
    expect(ctx.calls).toContain("GAS_VALVE_NOT_CLOSED off");
    expect(ctx.calls).toContain("GAS_LEAK on");
  });

  it("automatic shut-off: valve_close sent once per incident and said in the alert; never without the option", () => {
    const off = new Recorder();
    const st0 = gd2.initialState();
    gd2.rules(alarm(12, "low", "open"), st0, settings(), off);
    expect(off.calls.filter((c) => c.startsWith("command"))).toEqual([]);

    const ctx = new Recorder();
    const st = gd2.initialState();
    const s = settings({ autoShutOff: true });
    gd2.rules(alarm(12, "low", "open"), st, s, ctx);
    gd2.rules(alarm(30, "high", "moving"), st, s, ctx);
    expect(ctx.calls.filter((c) => c.startsWith("command"))).toEqual(["command valve_close"]);
    expect(ctx.last.get("GAS_LEAK")).toMatchObject({
      causes: ["detector alarm high", "at or above 10 %LEL", "valve_close sent by the gateway"],
      detail: { autoShutOff: true },
    });
    // A new incident sends again.
    gd2.rules(alarm(0, "none", "closed"), st, s, ctx);
    gd2.rules(valve("open", "manual"), st, s, ctx);
    gd2.rules(alarm(11, "low", "open"), st, s, ctx);
    expect(ctx.calls.filter((c) => c.startsWith("command"))).toHaveLength(2);
  });

  it("a new incident says its own shut-off: false when nothing was sent in it (valve closed, setting off)", () => {
    const ctx = new Recorder();
    const st = gd2.initialState();
    const on = settings({ autoShutOff: true });
    gd2.rules(alarm(12, "low", "open"), st, on, ctx);
    expect(ctx.last.get("GAS_LEAK")?.detail).toMatchObject({ autoShutOff: true, autoShutOffQueued: false });
    ctx.calls = [];
    gd2.rules(alarm(0, "none", "closed"), st, on, ctx);
    expect(ctx.calls).toContain("GAS_LEAK off");
    // The valve still closed: nothing to send, and the alert must not keep the last incident's word.
    gd2.rules(alarm(9, "low", "closed"), st, on, ctx);
    expect(ctx.last.get("GAS_LEAK")?.detail).toMatchObject({ autoShutOff: false, autoShutOffQueued: false });
    // The setting turned off (a reload) before the next incident: nothing sent, none said.
    gd2.rules(alarm(0, "none", "open"), st, on, ctx);
    gd2.rules(alarm(9, "low", "open"), st, settings(), ctx);
    expect(ctx.calls.filter((c) => c.startsWith("command"))).toEqual([]);
    expect(ctx.last.get("GAS_LEAK")?.detail).toMatchObject({ autoShutOff: false, autoShutOffQueued: false });
  });

  it("automatic shut-off not sent while the valve is already closed", () => {
    const ctx = new Recorder();
    gd2.rules(alarm(12, "low", "closed"), gd2.initialState(), settings({ autoShutOff: true }), ctx);
    expect(ctx.calls.filter((c) => c.startsWith("command"))).toEqual([]);
  });

  it("FAULT P2: valve fault, fault 3/4, and the sensor faults 1/2 (cannot detect)", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    gd2.rules(hb(0, "fault"), st, settings(), ctx);
    expect(ctx.last.get("FAULT")).toMatchObject({ priority: 2, causes: ["valve fault"] });
    gd2.rules(hb(0, "closed", true, 3), st, settings(), ctx);
    expect(ctx.last.get("FAULT")?.causes).toEqual(["valve motor fault"]);
    gd2.rules(hb(0, "closed", true, 1), st, settings(), ctx);
    expect(ctx.last.get("FAULT")).toMatchObject({
      priority: 2,
      causes: ["sensor end of life", "cannot detect gas"],
      detail: { fault: 1 },
    });
    ctx.calls = [];
    gd2.rules(hb(0, "closed", true, 0), st, settings(), ctx);
    expect(ctx.calls).toContain("FAULT off");
  });

  it("fault 1 or 2 (the sensor): lel is suspect and neither raises nor clears GAS_LEAK; the detector's own alarm still does", () => {
    for (const code of [1, 2]) {
      const st = gd2.initialState();
      const ctx = new Recorder();
      const s = settings();
      gd2.rules(hb(0, "open", true, code), st, s, ctx);
      expect(gd2.quality?.(hb(0, "open", true, code), st), `fault ${code}`).toBe("suspect");
      // The failing sensor reads 60 %LEL, in a heartbeat and in an alarm message without a level
      // (an alarm carries no `fault`: the last heartbeat's stands).
      gd2.rules(hb(60, "open", true, code), st, s, ctx);
      gd2.rules(alarm(60, "none", "open"), st, s, ctx);
      expect(gd2.quality?.(alarm(60, "none", "open"), st), `fault ${code}`).toBe("suspect");
      expect(ctx.ons(), `fault ${code}`).toEqual(["FAULT on", "FAULT on", "FAULT on"]);
      // A valve message carries no reading: not suspect.
      gd2.rules(valve("open", "manual"), st, s, ctx);
      expect(gd2.quality?.(valve("open", "manual"), st), `fault ${code}`).toBeNull();
      // The sensor is back: believed, and a real 12 %LEL raises.
      gd2.rules(hb(12, "open", true, 0), st, s, ctx);
      expect(gd2.quality?.(hb(12), st)).toBeNull();
      expect(ctx.calls.at(-4)).toBe("GAS_LEAK on");
      expect(ctx.last.get("GAS_LEAK")?.detail).toMatchObject({ peakLel: 12 });
      // Raised, then the sensor fails reading 0: held, and no peak from the failed sensor.
      ctx.calls = [];
      gd2.rules(hb(0, "open", true, code), st, s, ctx);
      gd2.rules(alarm(0, "none", "open"), st, s, ctx);
      gd2.rules(hb(90, "open", true, code), st, s, ctx);
      expect(ctx.calls.filter((c) => c.startsWith("GAS_LEAK"))).toEqual([
        "GAS_LEAK on",
        "GAS_LEAK on",
        "GAS_LEAK on",
      ]);
      expect(ctx.last.get("GAS_LEAK")?.detail).toMatchObject({ peakLel: 12 });
      // A believed reading under 5 %LEL clears it.
      gd2.rules(hb(2, "open", true, 0), st, s, ctx);
      expect(ctx.calls).toContain("GAS_LEAK off");
      // The detector's own alarm is its own word, not a reading: it raises even under a sensor fault.
      gd2.rules(hb(0, "open", true, code), st, s, ctx);
      ctx.calls = [];
      gd2.rules(alarm(0, "high", "open"), st, s, ctx);
      expect(ctx.ons()).toContain("GAS_LEAK on");
    }
  });

  it("a GAS_LEAK the detector's own alarm raised under a sensor fault: peakLel is the alarm's lel, marked suspect, never 0", () => {
    for (const code of [1, 2]) {
      const st = gd2.initialState();
      const ctx = new Recorder();
      const s = settings();
      gd2.rules(hb(0, "open", true, code), st, s, ctx);
      gd2.rules(alarm(18.5, "low", "open"), st, s, ctx);
      expect(ctx.last.get("GAS_LEAK")?.detail, `fault ${code}`).toEqual({
        level: "low",
        peakLel: 18.5,
        peakLelSuspect: true,
        valve: "open",
        autoShutOff: false,
        autoShutOffQueued: false,
      });
      // A higher figure with the next alarm is the peak; a lower one is not.
      gd2.rules(alarm(30, "high", "open"), st, s, ctx);
      gd2.rules(alarm(22, "high", "open"), st, s, ctx);
      expect(ctx.last.get("GAS_LEAK")?.detail).toMatchObject({ peakLel: 30, peakLelSuspect: true });
      // The sensor is back: a believed reading is the peak, not the failing sensor's figure, and
      // the detail says so (false, not left out: the alert keeps a field an update leaves out).
      gd2.rules(hb(12, "open", true, 0), st, s, ctx);
      expect(ctx.last.get("GAS_LEAK")?.detail).toEqual({
        level: "high",
        peakLel: 12,
        peakLelSuspect: false,
        valve: "open",
        autoShutOff: false,
        autoShutOffQueued: false,
      });
    }
    // A leak without any figure (a state restored from a journal that had none): "unknown", not 0.
    const st = gd2.initialState();
    gd2.durable?.restore(st, [2, "low", 0, false, true, null, null, false], 0);
    const ctx = new Recorder();
    gd2.rules(valve("open", "manual"), st, settings(), ctx);
    expect(ctx.last.get("GAS_LEAK")?.detail).toMatchObject({ peakLel: "unknown" });
  });

  it("durable: what decides GAS_LEAK survives a restart (fault, the detector's level, the leak and its peak)", () => {
    const durable = gd2.durable;
    if (durable === undefined) throw new Error("GD-2 keeps its rule state");
    const st = gd2.initialState();
    const ctx = new Recorder();
    const s = settings();
    const fresh = durable.save(gd2.initialState());
    expect(durable.same(st, fresh)).toBe(true);
    gd2.rules(hb(14, "open", true, 0), st, s, ctx);
    gd2.rules(hb(0, "open", true, 2), st, s, ctx);
    const saved = durable.save(st);
    expect(saved).toEqual([2, "none", 14, true, true, 14, null, false]);
    expect(durable.same(st, saved)).toBe(true);
    // The restart: a fresh state with the journaled values; the leak holds, the sensor still in fault.
    const after = gd2.initialState();
    durable.restore(after, structuredClone(saved), 5_000_000);
    expect(after.leakSince).toBe(5_000_000);
    const ctx2 = new Recorder();
    gd2.rules(alarm(0, "none", "open"), after, s, ctx2);
    expect(ctx2.calls).toContain("GAS_LEAK on");
    expect(ctx2.last.get("GAS_LEAK")?.detail).toMatchObject({ peakLel: 14 });
    expect(gd2.quality?.(alarm(0, "none", "open"), after)).toBe("suspect");
    // Values of a wrong type are skipped.
    const odd = gd2.initialState();
    durable.restore(odd, [9, "loud", -1, "x", 1, "y", "z", 0], 0);
    expect(durable.same(odd, fresh)).toBe(true);
  });

  it("fault 3 or 4 (the valve) leaves lel believed", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    gd2.rules(hb(12, "open", true, 3), st, settings(), ctx);
    expect(gd2.quality?.(hb(12, "open", true, 3), st)).toBeNull();
    expect(ctx.ons()).toContain("GAS_LEAK on");
  });

  it("POWER_FAIL P3: mains false for 10 minutes, counted from the first report", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    gd2.rules(hb(0, "open", false), st, settings(), ctx);
    const since = ctx.now;
    ctx.now += 60_000;
    gd2.rules(hb(0, "open", false), st, settings(), ctx);
    expect(ctx.last.get("POWER_FAIL")).toMatchObject({ priority: 3, onDelayMs: 600_000, since });
    ctx.calls = [];
    gd2.rules(hb(0, "open", true), st, settings(), ctx);
    expect(ctx.calls).toContain("POWER_FAIL off");
  });

  it("a quiet heartbeat builds no options: every condition it reports off gets the shared ones", () => {
    const st = gd2.initialState();
    const ctx = new Recorder();
    gd2.rules(hb(0, "open", true), st, settings(), ctx);
    expect(ctx.calls).toEqual(["GAS_LEAK off", "GAS_VALVE_NOT_CLOSED off", "FAULT off", "POWER_FAIL off"]);
    expect(ctx.last.get("GAS_LEAK")).toBe(INACTIVE[1]);
    expect(ctx.last.get("GAS_VALVE_NOT_CLOSED")).toBe(INACTIVE[1]);
    expect(ctx.last.get("FAULT")).toBe(INACTIVE[2]);
    expect(ctx.last.get("POWER_FAIL")).toBe(INACTIVE[3]);
    expect(Object.isFrozen(INACTIVE[1])).toBe(true);
  });

  it("declares every alert code its rules use, with the datasheet's priorities", () => {
    expect(Object.fromEntries(Object.entries(gd2.alerts).map(([c, a]) => [c, a.priority]))).toEqual({
      GAS_LEAK: 1,
      GAS_VALVE_NOT_CLOSED: 1,
      FAULT: 2,
      POWER_FAIL: 3,
    });
    expect(gd2.lostPriority).toBe(2);
  });

  it("config: defaults, and a threshold under the clear point is refused", () => {
    expect(deviceSchema(gd2).parse({ id: "k1", model: "gd2", password: "pw" })).toMatchObject({
      heartbeatInterval: 60_000,
      leakThreshold: 10,
      autoShutOff: false,
    });
    expect(
      deviceSchema(gd2).safeParse({ id: "k1", model: "gd2", password: "pw", leakThreshold: 4 }).success,
    ).toBe(false);
  });
});
