import { describe, expect, it } from "vitest";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/lanes.js";
import type { AlertCode } from "../core/model.js";
import { type Ds10Sample, ds10 } from "./ds10.js";
import { type Ec200Sample, ec200 } from "./ec200.js";
import { type AlertOptions, type ConditionOptions, isRejection, type RuleContext } from "./profile.js";
import { siteSettings } from "./test-fixtures.js";

const settings = { ...siteSettings({ heartbeatIntervalMs: 300_000 }), holdOpenMs: 600_000 };

class RecordingContext implements RuleContext {
  now = 1_000_000;
  stale = false;
  /** Read when the rules run (one fake time). */
  get readAt(): number {
    return this.now;
  }
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
      dropped: [],
    });
    expect(ec200.lane(s as Ec200Sample)).toBe(LANE_P1);
  });

  it("accepts a uint64 ts as a bigint (CBOR)", () => {
    const s = ec200.parse({ t: "hb", seq: 4294967295, ts: 1763798400123n, bat: 50, rssi: -90 });
    expect(isRejection(s)).toBe(false);
    expect((s as Ec200Sample).ts).toBe(1763798400123);
  });

  it.each([
    [{ t: "evt", seq: -1, ts: 1, evt: "press", bat: 87, rssi: -7 }, /seq/],
    [{ t: "evt", seq: 2 ** 32, ts: 1, evt: "press", bat: 87, rssi: -7 }, /seq/],
    [{ t: "evt", ts: 1, evt: "press", bat: 87, rssi: -7 }, /seq/],
    [{ t: "evt", seq: 1, ts: 1, evt: "panic", bat: 87, rssi: -7 }, /evt/],
    [{ t: "status", seq: 1, ts: 1, bat: 1, rssi: -7 }, /t must/],
    [[1, 2], /not a map/],
  ])("refuses %j", (value, why) => {
    const r = ec200.parse(value);
    expect(isRejection(r)).toBe(true);
    expect((r as { detail: string }).detail).toMatch(why);
  });

  it.each([
    ["ts 1e308", { ts: 1e308 }, "ts", "field-out-of-range", /ts 1e\+308 is outside 0\.\.2\^64-1/],
    ["ts -1", { ts: -1 }, "ts", "field-out-of-range", /ts -1 is outside/],
    ["ts 2^64 as a bigint", { ts: 2n ** 64n }, "ts", "field-out-of-range", /ts/],
    ["ts 1.5", { ts: 1.5 }, "ts", "field-bad-type", /ts must be an integer/],
    ["bat 101", { bat: 101 }, "bat", "field-out-of-range", /bat 101 is outside 0\.\.100/],
    ["bat -1", { bat: -1 }, "bat", "field-out-of-range", /bat/],
    ["bat a float", { bat: 87.5 }, "bat", "field-bad-type", /bat/],
    ["rssi 1", { rssi: 1 }, "rssi", "field-out-of-range", /rssi 1 is outside -120\.\.0/],
    ["rssi -121", { rssi: -121 }, "rssi", "field-out-of-range", /rssi/],
    ["rssi null", { rssi: null }, "rssi", "field-bad-type", /rssi/],
    // Not sent at all: missing, not a field of the wrong type (a null is sent, of the wrong type).
    ["no rssi", { rssi: undefined }, "rssi", "field-missing", /^rssi is missing$/],
    ["no bat", { bat: undefined }, "bat", "field-missing", /^bat is missing$/],
    ["no ts", { ts: undefined }, "ts", "field-missing", /^ts is missing$/],
  ])(
    "a press with %s is taken in, the field dropped and named (side field)",
    (_, field, name, reason, why) => {
      const r = ec200.parse({ t: "evt", seq: 1, ts: 1, evt: "press", bat: 87, rssi: -71, ...field });
      expect(isRejection(r)).toBe(false);
      const s = r as Ec200Sample;
      expect(s.evt).toBe("press");
      expect(s.dropped).toEqual([{ field: name, reason, detail: expect.stringMatching(why) }]);
      expect(ec200.droppedFields?.(s)).toBe(s.dropped);
      expect(ec200.quality?.(s, ec200.initialState())).toBe("field-dropped");
      // Dropped, not clamped: absent from the reading (a clamped value would pass for a real one).
      if (name === "ts") expect(ec200.deviceTime(s)).toBe(0);
      else
        expect(Object.keys(ec200.metrics(s, ec200.initialState()))).not.toContain(
          name === "bat" ? "battery" : "rssi",
        );
      const ctx = new RecordingContext();
      ec200.rules(s, ec200.initialState(), settings, ctx);
      // The first reading since a start reports the battery as it is (a restored alert may clear).
      expect(ctx.calls).toEqual(
        name === "bat" ? ["raise EMERGENCY_CALL"] : ["raise EMERGENCY_CALL", "BATTERY_LOW off"],
      );
    },
  );

  it.each([
    ["2^64-1 as a JSON number", JSON.parse('{"ts":18446744073709551615}').ts],
    ["2^53+1 as a CBOR uint64", 2n ** 53n + 1n],
    ["2^60 as a number", 2 ** 60],
  ])("a fall whose ts is a uint64 beyond 2^53-1 (%s) is taken in with an invalid device clock", (_, ts) => {
    const r = ec200.parse({ t: "evt", seq: 6100, ts, evt: "fall", bat: 80, rssi: -60 });
    expect(isRejection(r)).toBe(false);
    const s = r as Ec200Sample;
    // A valid uint64, so nothing is dropped; only not exact, so no clock to trust.
    expect(s.dropped).toEqual([]);
    expect(ec200.deviceTime(s)).toBe(0);
    expect(ec200.quality?.(s, ec200.initialState())).toBeNull();
    const ctx = new RecordingContext();
    ec200.rules(s, ec200.initialState(), settings, ctx);
    expect(ctx.calls).toEqual(["raise FALL_DETECTED", "BATTERY_LOW off"]);
  });

  it("a dropped battery reading leaves BATTERY_LOW as it was", () => {
    const ctx = new RecordingContext();
    const state = ec200.initialState();
    for (const bat of [10, 101, 30]) {
      ec200.rules(
        ec200.parse({ t: "hb", seq: 1, ts: 1, bat, rssi: -60 }) as Ec200Sample,
        state,
        settings,
        ctx,
      );
    }
    expect(ctx.calls).toEqual(["BATTERY_LOW on", "BATTERY_LOW off"]);
  });

  it("accepts every bound of the datasheet ranges", () => {
    for (const extra of [
      { seq: 0, ts: 0, bat: 0, rssi: -120 },
      { seq: 2 ** 32 - 1, ts: Number.MAX_SAFE_INTEGER, bat: 100, rssi: 0 },
    ]) {
      const s = ec200.parse({ t: "hb", ...extra }) as Ec200Sample;
      expect(s.dropped).toEqual([]);
      expect(s.ts).toBe(extra.ts);
    }
  });

  it("maps events to alerts and lanes per the datasheet", () => {
    const rules = (evt: string, extra = {}) => {
      const ctx = new RecordingContext();
      const s = ec200.parse({ t: "evt", seq: 1, ts: 1, evt, bat: 80, rssi: -60, ...extra }) as Ec200Sample;
      const state = ec200.initialState();
      // A reading before: the battery is known, so only the event's own calls follow.
      ec200.rules(
        ec200.parse({ t: "hb", seq: 0, ts: 1, bat: 80, rssi: -60 }) as Ec200Sample,
        state,
        settings,
        ctx,
      );
      ctx.calls.length = 0;
      ec200.rules(s, state, settings, ctx);
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
    // 16 %, the first reading since a start: reported as it is (not low), so a restored alert clears.
    expect(ctx.calls).toEqual(["BATTERY_LOW off", "BATTERY_LOW on", "BATTERY_LOW off", "BATTERY_LOW on"]);
  });

  it("every event is resident activity, low_battery included (datasheets README)", () => {
    for (const evt of ["press", "long_press", "fall", "cancel", "low_battery"]) {
      const s = ec200.parse({ t: "evt", seq: 1, ts: 1, evt, bat: 80, rssi: -60 }) as Ec200Sample;
      expect(ec200.isActivity(s)).toBe(true);
    }
  });

  it("a low_battery event raises BATTERY_LOW even with bat 40; a later reading at 20 % or more clears it", () => {
    const ctx = new RecordingContext();
    const state = ec200.initialState();
    const msg = (extra: object) =>
      ec200.parse({ seq: 1, ts: 1, bat: 40, rssi: -60, ...extra }) as Ec200Sample;
    ec200.rules(msg({ t: "evt", evt: "low_battery" }), state, settings, ctx);
    expect(ctx.calls).toEqual(["BATTERY_LOW on"]);
    ec200.rules(msg({ t: "hb" }), state, settings, ctx);
    expect(ctx.calls).toEqual(["BATTERY_LOW on", "BATTERY_LOW off"]);
  });

  it("stale (a newer message's rules already ran): its battery is left out, its call, fall or cancel still counts", () => {
    const stale = (evt: string | null, bat: number, state = ec200.initialState()) => {
      const ctx = new RecordingContext();
      ctx.stale = true;
      const s = ec200.parse({
        t: evt ? "evt" : "hb",
        seq: 1,
        ts: 1,
        bat,
        rssi: -60,
        ...(evt ? { evt } : {}),
      });
      ec200.rules(s as Ec200Sample, state, settings, ctx);
      return ctx.calls;
    };
    expect(stale("low_battery", 12)).toEqual([]);
    expect(stale("press", 5)).toEqual(["raise EMERGENCY_CALL"]);
    expect(stale("fall", 5)).toEqual(["raise FALL_DETECTED"]);
    expect(stale("cancel", 5)).toEqual(["cancel EMERGENCY_CALL,FALL_DETECTED"]);
    const low = ec200.initialState();
    low.battery.active = true;
    expect(stale("long_press", 90, low)).toEqual(["raise EMERGENCY_CALL urgent"]);
    expect(low.battery.active).toBe(true);
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
    ).toEqual({
      t: "state",
      seq: 77,
      ts: 1763798400456,
      contact: "open",
      tamper: false,
      bat: 64,
      dropped: [],
    });
  });

  it("refuses a bad contact value and a non-boolean tamper", () => {
    expect(
      isRejection(ds10.parse({ t: "state", seq: 1, ts: 1, contact: "ajar", tamper: false, bat: 1 })),
    ).toBe(true);
    expect(isRejection(ds10.parse({ t: "state", seq: 1, ts: 1, contact: "open", tamper: 1, bat: 1 }))).toBe(
      true,
    );
  });

  it("refuses a seq outside uint32; ts and bat out of range are dropped, the message taken in", () => {
    const base = { t: "state", seq: 1, ts: 1, contact: "open", tamper: false, bat: 64 };
    expect(ds10.parse({ ...base, seq: 2 ** 32 })).toMatchObject({ rejected: true, reason: "out-of-range" });
    for (const [field, name] of [
      [{ ts: 1e308 }, "ts"],
      [{ ts: -5 }, "ts"],
      [{ bat: 101 }, "bat"],
      [{ bat: -1 }, "bat"],
    ] as const) {
      const s = ds10.parse({ ...base, ...field }) as Ds10Sample;
      expect(s.dropped).toEqual([expect.objectContaining({ field: name, reason: "field-out-of-range" })]);
      expect(ds10.quality?.(s, ds10.initialState())).toBe("field-dropped");
    }
    const s = ds10.parse({ ...base, seq: 2 ** 32 - 1, ts: Number.MAX_SAFE_INTEGER, bat: 100 }) as Ds10Sample;
    expect(s.dropped).toEqual([]);
  });

  it("a message without its bat or ts is taken in, the field counted as missing (not of the wrong type)", () => {
    const base = { t: "state", seq: 1, ts: 1, contact: "open", tamper: false, bat: 64 };
    for (const name of ["bat", "ts"] as const) {
      const s = ds10.parse({ ...base, [name]: undefined }) as Ds10Sample;
      expect(s.dropped).toEqual([{ field: name, reason: "field-missing", detail: `${name} is missing` }]);
    }
    // The state a message reports is essential: refused, and the refusal says what is missing.
    expect(ds10.parse({ ...base, contact: undefined })).toMatchObject({
      reason: "bad-field",
      detail: expect.stringMatching(/^contact is missing/),
    });
    expect(ds10.parse({ ...base, tamper: undefined })).toMatchObject({
      detail: expect.stringMatching(/^tamper is missing/),
    });
  });

  it("a tamper with bat 101 still raises TAMPER; the battery is left out of the reading", () => {
    const s = ds10.parse({ t: "hb", seq: 1, ts: 1, contact: "closed", tamper: true, bat: 101 }) as Ds10Sample;
    expect(isRejection(s)).toBe(false);
    const ctx = new RecordingContext();
    const state = ds10.initialState();
    ds10.rules(s, state, settings, ctx);
    // The first message since a start reports the door as it is too (a restored alert may clear).
    expect(ctx.calls).toEqual(["TAMPER on", "DOOR_HELD_OPEN off"]);
    expect(ds10.lane(s)).toBe(LANE_ALERT);
    expect(ds10.metrics(s, state)).not.toHaveProperty("battery");
  });

  it("a bouncing contact (open/closed/open within 200 ms) is one opening with one hold timer", () => {
    const ctx = new RecordingContext();
    const state = ds10.initialState();
    ds10.rules(msg("closed", 1000), state, settings, ctx);
    // The first message since a start reports every condition as it is: not the subject here.
    expect(ctx.calls).toEqual(["TAMPER off", "DOOR_HELD_OPEN off", "BATTERY_LOW off"]);
    ctx.calls.length = 0;
    ctx.opts.length = 0;
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

  it("a device clock set back between a close and the next opening is no bounce: a new opening, its own hold time", () => {
    for (const closeTs of [5_000_000, 0]) {
      const ctx = new RecordingContext();
      const state = ds10.initialState();
      ds10.rules(msg("open", 1_000_000), state, settings, ctx);
      ctx.now += 30 * 60_000; // open half an hour
      ds10.rules(msg("closed", closeTs), state, settings, ctx);
      // A minute later by the gateway; the device's clock was set back 5 minutes meanwhile (or, when
      // the close had no clock, reads 10 minutes behind the gateway's).
      ctx.now += 60_000;
      const openTs = closeTs > 0 ? closeTs + 60_000 - 300_000 : ctx.now - 600_000;
      ctx.opts.length = 0;
      ds10.rules(msg("open", openTs), state, settings, ctx);
      expect(state.openings, `close ts ${closeTs}`).toBe(2);
      expect((ctx.opts[0] as ConditionOptions).since, `close ts ${closeTs}`).toBe(ctx.now);
    }
  });

  it("tamper raises TAMPER (P2) and clears; the lane is the alert lane", () => {
    const ctx = new RecordingContext();
    const state = ds10.initialState();
    const s = msg("closed", 1, { tamper: true });
    ds10.rules(s, state, settings, ctx);
    expect(ds10.lane(s)).toBe(LANE_ALERT);
    ds10.rules(msg("closed", 2), state, settings, ctx);
    expect(ctx.calls).toEqual(["TAMPER on", "DOOR_HELD_OPEN off", "BATTERY_LOW off", "TAMPER off"]);
    expect(ctx.opts[0]?.priority).toBe(2);
  });

  it("a state change is resident activity, a heartbeat is not", () => {
    expect(ds10.isActivity(msg("open", 1))).toBe(true);
    const hb = ds10.parse({ t: "hb", seq: 1, ts: 1, contact: "open", tamper: false, bat: 64 }) as Ds10Sample;
    expect(ds10.isActivity(hb)).toBe(false);
    expect(ds10.lane(hb)).toBe(LANE_TELEMETRY);
  });
});
