import { describe, expect, it } from "vitest";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/lanes.js";
import type { AlertCode } from "../core/model.js";
import { SiteTime } from "../core/site-time.js";
import { type Ds10Sample, ds10 } from "./ds10.js";
import { type Ec200Sample, ec200 } from "./ec200.js";
import { type AlertOptions, type ConditionOptions, isRejection, type RuleContext } from "./profile.js";

const settings = {
  heartbeatIntervalMs: 300_000,
  holdOpenMs: 600_000,
  emergencyCallWindowMs: 60_000,
  batteryLowPercent: 15,
  batteryClearPercent: 20,
  contactDebounceMs: 200,
  pollIntervalMs: 0,
  minPressureMpa: 0,
  extinguisherGraceMs: 0,
  outOfServiceAfterMs: 0,
  openingHours: { from: 0, to: 0 },
  siteTime: new SiteTime("UTC"),
};

class RecordingContext implements RuleContext {
  now = 1_000_000;
  calls: string[] = [];
  opts: Array<AlertOptions | ConditionOptions> = [];
  raise(code: AlertCode, opts: AlertOptions & { windowMs: number }): void {
    this.calls.push(`raise ${code}${opts.urgent ? " urgent" : ""}`);
    this.opts.push(opts);
  }
  condition(code: AlertCode, active: boolean, opts: ConditionOptions): void {
    this.calls.push(`${code} ${active ? "on" : "off"}`);
    this.opts.push(opts);
  }
  markCancelled(codes: readonly AlertCode[]): number {
    this.calls.push(`cancel ${codes.join(",")}`);
    return 1;
  }
  confirmDelivered(alertId: string): void {
    this.calls.push(`delivered ${alertId}`);
  }
  command(): boolean {
    return false;
  }
}

describe("EC-200 profile", () => {
  it("decodes the datasheet example", () => {
    const s = ec200.parse(
      JSON.parse('{"t":"evt","seq":1042,"ts":1763798400123,"evt":"press","bat":87,"rssi":-71}'),
    );
    expect(s).toEqual({
      t: "evt",
      seq: 1042,
      ts: 1763798400123,
      evt: "press",
      bat: 87,
      rssi: -71,
      ackd: null,
    });
    expect(ec200.lane(s as Ec200Sample)).toBe(LANE_P1);
  });

  it("accepts a uint64 ts as a bigint (CBOR)", () => {
    const s = ec200.parse({ t: "hb", seq: 4294967295, ts: 1763798400123n, bat: 50, rssi: -90 });
    expect(isRejection(s)).toBe(false);
    expect((s as Ec200Sample).ts).toBe(1763798400123);
  });

  it.each([
    [{ t: "evt", seq: 1, ts: 1, evt: "press", bat: 87 }, /rssi/],
    [{ t: "evt", seq: -1, ts: 1, evt: "press", bat: 87, rssi: -7 }, /seq/],
    [{ t: "evt", seq: 2 ** 32, ts: 1, evt: "press", bat: 87, rssi: -7 }, /seq/],
    [{ t: "evt", seq: 1, ts: 1, evt: "panic", bat: 87, rssi: -7 }, /evt/],
    [{ t: "evt", seq: 1, ts: 1, evt: "press", bat: 101, rssi: -7 }, /bat/],
    [{ t: "status", seq: 1, ts: 1, bat: 1, rssi: -7 }, /t must/],
    [[1, 2], /not a map/],
  ])("refuses %j", (value, why) => {
    const r = ec200.parse(value);
    expect(isRejection(r)).toBe(true);
    expect((r as { detail: string }).detail).toMatch(why);
  });

  it.each([
    ["ts 1e308", { ts: 1e308 }, /ts 1e\+308 is outside 0\.\.2\^53-1/],
    ["ts 2^53", { ts: 2 ** 53 }, /ts/],
    ["ts as a uint64 bigint beyond 2^53-1", { ts: 2n ** 60n }, /ts 1152921504606846976 is outside/],
    ["ts -1", { ts: -1 }, /ts -1 is outside/],
    ["seq 2^32", { seq: 2 ** 32 }, /seq 4294967296 is outside 0\.\.2\^32-1/],
    ["seq -1", { seq: -1 }, /seq/],
    ["bat 101", { bat: 101 }, /bat 101 is outside 0\.\.100/],
    ["bat -1", { bat: -1 }, /bat/],
    ["rssi 1", { rssi: 1 }, /rssi 1 is outside -120\.\.0/],
    ["rssi -121", { rssi: -121 }, /rssi/],
  ])("refuses %s as out-of-range (datasheet ranges)", (_, field, why) => {
    const r = ec200.parse({ t: "evt", seq: 1, ts: 1, evt: "press", bat: 87, rssi: -71, ...field });
    expect(r).toMatchObject({ rejected: true, reason: "out-of-range" });
    expect((r as { detail: string }).detail).toMatch(why);
  });

  it.each([
    ["ts 1.5", { ts: 1.5 }],
    ["ts a string", { ts: "1763798400123" }],
    ["bat a float", { bat: 87.5 }],
    ["rssi null", { rssi: null }],
  ])("refuses %s as bad-field (not an integer)", (_, field) => {
    const r = ec200.parse({ t: "evt", seq: 1, ts: 1, evt: "press", bat: 87, rssi: -71, ...field });
    expect(r).toMatchObject({ rejected: true, reason: "bad-field" });
  });

  it("accepts every bound of the datasheet ranges", () => {
    for (const extra of [
      { seq: 0, ts: 0, bat: 0, rssi: -120 },
      { seq: 2 ** 32 - 1, ts: Number.MAX_SAFE_INTEGER, bat: 100, rssi: 0 },
    ]) {
      expect(isRejection(ec200.parse({ t: "hb", ...extra }))).toBe(false);
    }
  });

  it("maps events to alerts and lanes per the datasheet", () => {
    const rules = (evt: string, extra = {}) => {
      const ctx = new RecordingContext();
      const s = ec200.parse({ t: "evt", seq: 1, ts: 1, evt, bat: 80, rssi: -60, ...extra }) as Ec200Sample;
      ec200.rules(s, ec200.initialState(), settings, ctx);
      return { calls: ctx.calls, lane: ec200.lane(s) };
    };
    expect(rules("press")).toEqual({ calls: ["raise EMERGENCY_CALL"], lane: LANE_P1 });
    expect(rules("long_press")).toEqual({ calls: ["raise EMERGENCY_CALL urgent"], lane: LANE_P1 });
    expect(rules("fall")).toEqual({ calls: ["raise FALL_DETECTED"], lane: LANE_P1 });
    expect(rules("cancel")).toEqual({ calls: ["cancel EMERGENCY_CALL,FALL_DETECTED"], lane: LANE_P1 });
    expect(rules("low_battery").lane).toBe(LANE_ALERT);
    expect(rules("press", { ackd: "abc" }).calls).toEqual(["raise EMERGENCY_CALL", "delivered abc"]);
  });

  it("BATTERY_LOW under 15 %, cleared only at 20 % (no flapping at the threshold)", () => {
    const ctx = new RecordingContext();
    const state = ec200.initialState();
    for (const bat of [16, 14, 15, 14, 19, 20, 14]) {
      ec200.rules(
        ec200.parse({ t: "hb", seq: 1, ts: 1, bat, rssi: -60 }) as Ec200Sample,
        state,
        settings,
        ctx,
      );
    }
    expect(ctx.calls).toEqual(["BATTERY_LOW on", "BATTERY_LOW off", "BATTERY_LOW on"]);
  });

  it("a heartbeat is telemetry and not resident activity", () => {
    const s = ec200.parse({ t: "hb", seq: 1, ts: 1, bat: 80, rssi: -60 }) as Ec200Sample;
    expect(ec200.lane(s)).toBe(LANE_TELEMETRY);
    expect(ec200.isActivity(s)).toBe(false);
  });
});

describe("DS-10 profile", () => {
  const msg = (contact: string, ts: number, extra = {}) =>
    ds10.parse({ t: "state", seq: 1, ts, contact, tamper: false, bat: 64, ...extra }) as Ds10Sample;

  it("decodes the datasheet example", () => {
    expect(
      ds10.parse(
        JSON.parse('{"t":"state","seq":77,"ts":1763798400456,"contact":"open","tamper":false,"bat":64}'),
      ),
    ).toEqual({ t: "state", seq: 77, ts: 1763798400456, contact: "open", tamper: false, bat: 64 });
  });

  it("refuses a bad contact value and a non-boolean tamper", () => {
    expect(
      isRejection(ds10.parse({ t: "state", seq: 1, ts: 1, contact: "ajar", tamper: false, bat: 1 })),
    ).toBe(true);
    expect(isRejection(ds10.parse({ t: "state", seq: 1, ts: 1, contact: "open", tamper: 1, bat: 1 }))).toBe(
      true,
    );
  });

  it("refuses ts, seq and bat outside the datasheet's ranges as out-of-range", () => {
    const base = { t: "state", seq: 1, ts: 1, contact: "open", tamper: false, bat: 64 };
    for (const field of [{ ts: 1e308 }, { ts: -5 }, { seq: 2 ** 32 }, { bat: 101 }, { bat: -1 }]) {
      expect(ds10.parse({ ...base, ...field })).toMatchObject({ rejected: true, reason: "out-of-range" });
    }
    expect(
      isRejection(ds10.parse({ ...base, seq: 2 ** 32 - 1, ts: Number.MAX_SAFE_INTEGER, bat: 100 })),
    ).toBe(false);
  });

  it("a bouncing contact (open/closed/open within 200 ms) is one opening with one hold timer", () => {
    const ctx = new RecordingContext();
    const state = ds10.initialState();
    ds10.rules(msg("closed", 1000), state, settings, ctx);
    ds10.rules(msg("open", 5000), state, settings, ctx);
    const firstOpen = state.openSince;
    ctx.now += 150;
    ds10.rules(msg("closed", 5080), state, settings, ctx);
    ds10.rules(msg("open", 5150), state, settings, ctx);
    expect(state.openings).toBe(1);
    expect(ctx.calls).toEqual(["DOOR_HELD_OPEN on", "DOOR_HELD_OPEN off", "DOOR_HELD_OPEN on"]);
    expect((ctx.opts[2] as ConditionOptions).since).toBe(firstOpen);
    expect((ctx.opts[2] as ConditionOptions).onDelayMs).toBe(600_000);
    // A real second opening later counts.
    ds10.rules(msg("closed", 9000), state, settings, ctx);
    ds10.rules(msg("open", 20000), state, settings, ctx);
    expect(state.openings).toBe(2);
  });

  it("tamper raises TAMPER (P2) and clears; the lane is the alert lane", () => {
    const ctx = new RecordingContext();
    const state = ds10.initialState();
    const s = msg("closed", 1, { tamper: true });
    ds10.rules(s, state, settings, ctx);
    expect(ds10.lane(s)).toBe(LANE_ALERT);
    ds10.rules(msg("closed", 2), state, settings, ctx);
    expect(ctx.calls).toEqual(["TAMPER on", "TAMPER off"]);
    expect(ctx.opts[0]?.priority).toBe(2);
  });

  it("a state change is resident activity, a heartbeat is not", () => {
    expect(ds10.isActivity(msg("open", 1))).toBe(true);
    const hb = ds10.parse({ t: "hb", seq: 1, ts: 1, contact: "open", tamper: false, bat: 64 }) as Ds10Sample;
    expect(ds10.isActivity(hb)).toBe(false);
    expect(ds10.lane(hb)).toBe(LANE_TELEMETRY);
  });
});
