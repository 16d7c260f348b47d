import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/lanes.js";
import type { AlertCode } from "../core/model.js";
import { GK3_STATE, GK3_STATUS, type Gk3Sample, gk3 } from "./gk3.js";
import { LV4_FAULT, LV4_POINTS } from "./lv4.js";
import { MFS8_FAULT, MFS8_STATUS, type Mfs8Sample, mfs8 } from "./mfs8.js";
import { decodePointsFromBlocks, enumName, flagsOf, validatePointSpecs } from "./modbus-decode.js";
import { type ConditionOptions, INACTIVE, isRejection, type RuleContext } from "./profile.js";
import { PANEL_SETTINGS } from "./test-fixtures.js";

/** Registers from a reply frame: skip address, function, byte count; drop the CRC. */
function words(hex: string): Uint16Array {
  const b = hex.split(/\s+/).map((x) => Number.parseInt(x, 16));
  const n = b[2] as number;
  const w = new Uint16Array(n / 2);
  for (let i = 0; i < n / 2; i++) w[i] = ((b[3 + 2 * i] as number) << 8) | (b[4 + 2 * i] as number);
  return w;
}

// datasheets/mfs8-fire-panel.md: slave 5, smoke alarm, 2.50 %/m, 21.5 °C, 0.32 MPa, 5 of 5, counter 66.
const DATASHEET_REPLY =
  "05 03 1C 4D 38 02 03 00 01 51 A4 00 01 00 FA 00 D7 D7 0A 3E A3 00 1F 00 05 00 00 00 00 00 42 00 CD";

// Open 08:30-17:30 in the site's zone; the process runs in UTC in these tests (see the kiosk-hours block).
const settings = PANEL_SETTINGS;

class Recorder implements RuleContext {
  now = Date.UTC(2026, 10, 23, 2, 0);
  stale = false;
  /** Read when the rules run (one fake time). */
  get readAt(): number {
    return this.now;
  }
  calls: Array<{ code: AlertCode; active: boolean; opts: ConditionOptions }> = [];
  raise(): void {}
  condition(code: AlertCode, active: boolean, opts: ConditionOptions): void {
    this.calls.push({ code, active, opts });
  }
  markCancelled(): number {
    return 0;
  }
  confirmDelivered(): void {}
  command(): boolean {
    return false;
  }
}

function mfs8Sample(mutate?: (w: Uint16Array) => void): Mfs8Sample {
  const w = words(DATASHEET_REPLY);
  mutate?.(w);
  const s = mfs8.decode(decodePointsFromBlocks(mfs8.points, [{ address: 0, words: w }]));
  if (isRejection(s)) throw new Error(s.detail);
  return s;
}

describe("MFS-8 profile", () => {
  it("decodes the datasheet's example reply exactly", () => {
    const s = mfs8Sample();
    expect(s).toMatchObject({
      firmware: "2.3",
      uptime: 86_436,
      status: 1,
      slots: 5,
      present: 0x1f,
      faultCode: 0,
      events: 66,
    });
    expect(s.smoke).toBeCloseTo(2.5, 5);
    expect(s.temperature).toBeCloseTo(21.5, 5);
    expect(s.pressure).toBeCloseTo(0.32, 5);
    expect(mfs8.metrics(s, mfs8.initialState())).toMatchObject({
      hydrantPressure: { value: 0.32, unit: "MPa" },
      extinguishersPresent: { value: 5 },
      eventCounter: { value: 66 },
    });
  });

  it("refuses more than 8 extinguisher slots as out of the datasheet's range (0-8)", () => {
    const w = words(DATASHEET_REPLY);
    w[10] = 9;
    const s = mfs8.decode(decodePointsFromBlocks(mfs8.points, [{ address: 0, words: w }]));
    expect(isRejection(s) && s.reason).toBe("out-of-range");
  });

  it("refuses a device that is not an MFS-8", () => {
    const w = words(DATASHEET_REPLY);
    w[0] = 0x1234;
    expect(isRejection(mfs8.decode(decodePointsFromBlocks(mfs8.points, [{ address: 0, words: w }])))).toBe(
      true,
    );
  });

  it("a panel in alarm travels in the P1 lane; a status change in the alert lane; else telemetry", () => {
    const alarm = mfs8Sample();
    const quiet = mfs8Sample((w) => (w[4] = 0));
    const fault = mfs8Sample((w) => (w[4] = 1 << 5));
    expect(mfs8.lane(alarm, quiet)).toBe(LANE_P1);
    expect(mfs8.lane(fault, quiet)).toBe(LANE_ALERT);
    expect(mfs8.lane(quiet, quiet)).toBe(LANE_TELEMETRY);
  });

  it("smoke, heat and call point are one FIRE_ALARM naming every cause", () => {
    const ctx = new Recorder();
    mfs8.rules(
      mfs8Sample((w) => (w[4] = 0b111)),
      mfs8.initialState(),
      settings,
      ctx,
    );
    const fire = ctx.calls.find((c) => c.code === "FIRE_ALARM");
    expect(fire).toMatchObject({
      active: true,
      opts: { priority: 1, causes: ["smoke", "heat", "call point"] },
    });
  });

  it("a quiet poll builds no HYDRANT_PRESSURE_LOW options: off, with the shared ones", () => {
    const ctx = new Recorder();
    const st = mfs8.initialState();
    for (let i = 0; i < 3; i++)
      mfs8.rules(
        mfs8Sample((w) => (w[4] = 0)),
        st,
        settings,
        ctx,
      );
    const pressure = ctx.calls.filter((c) => c.code === "HYDRANT_PRESSURE_LOW");
    expect(pressure).toHaveLength(3);
    for (const c of pressure)
      expect(c).toEqual({ code: "HYDRANT_PRESSURE_LOW", active: false, opts: INACTIVE[2] });
    expect(pressure[0]?.opts).toBe(INACTIVE[2]);
  });

  it("test mode is suppression by design", () => {
    expect(mfs8.suppressed(mfs8Sample((w) => (w[4] = 1 << 15)))).toBe("test");
    expect(mfs8.suppressed(mfs8Sample())).toBe(false);
  });

  it("names the detector fault code; one FAULT at P2 while the pump fault is present", () => {
    const ctx = new Recorder();
    mfs8.rules(
      mfs8Sample((w) => {
        w[4] = (1 << 8) | (1 << 4);
        w[11] = 1;
      }),
      mfs8.initialState(),
      settings,
      ctx,
    );
    const faults = ctx.calls.filter((c) => c.code === "FAULT");
    expect(faults.map((f) => [f.opts.priority, f.opts.causes])).toEqual([
      [2, ["pump fault", "detector fault: smoke head dirty"]],
    ]);
  });

  it("an empty fitted bracket is EXTINGUISHER_MISSING after the grace; brackets beyond the fitted count are ignored", () => {
    const ctx = new Recorder();
    const st = mfs8.initialState();
    mfs8.rules(
      mfs8Sample((w) => (w[9] = 0b11011 | 0xe0)),
      st,
      settings,
      ctx,
    );
    const missing = ctx.calls.find((c) => c.code === "EXTINGUISHER_MISSING");
    expect(missing).toMatchObject({
      active: true,
      opts: { causes: ["bracket 3"], onDelayMs: 120_000, since: ctx.now },
    });
  });

  it("hydrant pressure: low under the minimum, cleared only above it plus the deadband", () => {
    const ctx = new Recorder();
    const st = mfs8.initialState();
    const at = (mpa: number) => {
      const buf = Buffer.alloc(4);
      buf.writeFloatBE(mpa);
      return mfs8Sample((w) => {
        w[4] = 0;
        w[7] = buf.readUInt16BE(2); // CD AB: low word first
        w[8] = buf.readUInt16BE(0);
      });
    };
    for (const p of [0.2, 0.14, 0.16, 0.18]) mfs8.rules(at(p), st, settings, ctx);
    expect(ctx.calls.filter((c) => c.code === "HYDRANT_PRESSURE_LOW").map((c) => c.active)).toEqual([
      false,
      true,
      true,
      false,
    ]);
  });
});

describe("GK-3 profile", () => {
  const regs = (over: Partial<Record<number, number>> = {}) => {
    const w = new Uint16Array([2, 245, 450, 80, 0, 0, 12, 0, 3600, 3]);
    for (const [k, v] of Object.entries(over)) w[Number(k)] = v as number;
    const s = gk3.decode(decodePointsFromBlocks(gk3.points, [{ address: 0, words: w }]));
    if (isRejection(s)) throw new Error(s.detail);
    return s as Gk3Sample;
  };

  it("decodes the register map", () => {
    expect(regs()).toEqual({
      state: "in-service",
      temperature: 24.5,
      humidity: 45,
      paper: 80,
      status: 0,
      transactions: 12,
      uptime: 3600,
      queue: 3,
    });
    expect(
      isRejection(
        gk3.decode(decodePointsFromBlocks(gk3.points, [{ address: 0, words: new Uint16Array(10).fill(9) }])),
      ),
    ).toBe(true);
  });

  it("refuses a paper level over 100 % (of a roll) as out of range", () => {
    const w = new Uint16Array([2, 245, 450, 101, 0, 0, 12, 0, 3600, 3]);
    const s = gk3.decode(decodePointsFromBlocks(gk3.points, [{ address: 0, words: w }]));
    expect(isRejection(s) && s.reason).toBe("out-of-range");
  });

  it("cabinet door: TAMPER in service, nothing in maintenance (suppressed by design)", () => {
    const inService = new Recorder();
    gk3.rules(regs({ 4: 1 }), gk3.initialState(), settings, inService);
    expect(inService.calls.find((c) => c.code === "TAMPER")?.active).toBe(true);
    const maint = new Recorder();
    const sample = regs({ 0: 4, 4: 1 });
    gk3.rules(sample, gk3.initialState(), settings, maint);
    // Reported as it is at the first poll since a start (not tampering), never raised in maintenance.
    expect(maint.calls.filter((c) => c.code === "TAMPER").map((c) => c.active)).toEqual([false]);
    expect(gk3.suppressed(sample)).toBe("maintenance");
  });

  it("cabinet door: TAMPER out of service, booting and off too (the datasheet exempts maintenance only)", () => {
    for (const [state, name] of [
      [3, "out of service"],
      [1, "booting"],
      [0, "off"],
    ] as const) {
      const ctx = new Recorder();
      const st = gk3.initialState();
      gk3.rules(regs({ 0: state }), st, settings, ctx);
      gk3.rules(regs({ 0: state, 4: 1 }), st, settings, ctx);
      expect(
        ctx.calls.filter((c) => c.code === "TAMPER").map((c) => [c.active, c.opts.priority]),
        name,
      ).toEqual([
        [false, 2],
        [true, 2],
      ]);
    }
    // Out of service with the door open, then maintenance: cleared, not raised again.
    const ctx = new Recorder();
    const st = gk3.initialState();
    gk3.rules(regs({ 0: 3, 4: 1 }), st, settings, ctx);
    gk3.rules(regs({ 0: 4, 4: 1 }), st, settings, ctx);
    expect(ctx.calls.filter((c) => c.code === "TAMPER").map((c) => c.active)).toEqual([true, false]);
  });

  it("faults, UPS, tilt, paper and overheat thresholds", () => {
    const ctx = new Recorder();
    gk3.rules(regs({ 1: 460, 3: 9, 4: 0b1100110 }), gk3.initialState(), settings, ctx);
    const by = (code: AlertCode) => ctx.calls.find((c) => c.code === code);
    expect(by("FAULT")?.opts.causes).toEqual(["printer fault", "ID-card reader fault"]);
    expect(by("POWER_FAIL")?.active).toBe(true);
    expect(by("VANDALISM")?.opts.priority).toBe(2);
    expect(by("PAPER_LOW")?.opts.priority).toBe(4);
    expect(by("OVERHEAT")?.active).toBe(true);
  });

  it("availability counts time in service during opening hours", () => {
    const st = gk3.initialState();
    const ctx = new Recorder();
    const open = Date.UTC(2026, 10, 23, 2, 0); // 10:00 in Shanghai
    ctx.now = open;
    gk3.rules(regs(), st, settings, ctx);
    for (let i = 1; i <= 4; i++) {
      ctx.now = open + i * 2000;
      gk3.rules(regs(i >= 3 ? { 0: 3 } : {}), st, settings, ctx);
    }
    // 8 s open; in service for the first 3 intervals (the 4th interval starts out of service).
    expect(gk3.metrics(regs(), st).availabilityToday?.value).toBe(0.75);
  });

  describe("kiosk hours and the daily counter in the site's time zone, the process in UTC", () => {
    const savedTz = process.env.TZ;
    beforeAll(() => {
      process.env.TZ = "UTC";
    });
    afterAll(() => {
      if (savedTz === undefined) delete process.env.TZ;
      else process.env.TZ = savedTz;
    });

    /** Polls every 2 s from `from` for `n` polls, in service; returns the state. */
    function run(from: number, n: number, st = gk3.initialState()) {
      const ctx = new Recorder();
      for (let i = 0; i <= n; i++) {
        ctx.now = from + i * 2000;
        gk3.rules(regs(), st, settings, ctx);
      }
      return st;
    }

    it("the process really is in UTC here (else this block proves nothing)", () => {
      expect(new Date(Date.UTC(2026, 0, 5, 1, 0)).getHours()).toBe(1);
    });

    it("09:00 in Shanghai (01:00 UTC) is within 08:30-17:30: counted as open", () => {
      const st = run(Date.UTC(2026, 0, 5, 1, 0), 5);
      expect(st.openMs).toBe(10_000);
      expect(st.inServiceMs).toBe(10_000);
    });

    it("20:00 in Shanghai (12:00 UTC, inside the hours in UTC) is closed: not counted", () => {
      const st = run(Date.UTC(2026, 0, 5, 12, 0), 5);
      expect(st.openMs).toBe(0);
    });

    it("the day starts at Shanghai's midnight (16:00 UTC), not at UTC's", () => {
      const st = run(Date.UTC(2026, 0, 5, 1, 0), 5);
      const day = st.day;
      run(Date.UTC(2026, 0, 5, 15, 59), 1, st); // 23:59 Shanghai: same day
      expect(st.day).toBe(day);
      run(Date.UTC(2026, 0, 5, 16, 0), 1, st); // 00:00 Shanghai: a new day, counters from zero
      expect(st.day).toBe(day + 1);
      expect(st.openMs).toBe(0);
      run(Date.UTC(2026, 0, 6, 0, 0), 1, st); // 00:00 UTC, 08:00 Shanghai: still the same local day
      expect(st.day).toBe(day + 1);
    });
  });
});

describe("status and code registers are point specs", () => {
  it("each is a valid spec at the address of the register the poll reads", () => {
    for (const [spec, points] of [
      [MFS8_STATUS, mfs8.points],
      [MFS8_FAULT, mfs8.points],
      [GK3_STATUS, gk3.points],
      [GK3_STATE, gk3.points],
      [LV4_FAULT, LV4_POINTS],
    ] as const) {
      expect(() => validatePointSpecs([spec])).not.toThrow();
      expect(points.find((p) => p.name === spec.name)?.address).toBe(spec.address);
    }
  });

  it("a kept status word decodes to the flags a poll gives (datasheet bits)", () => {
    const f = flagsOf(MFS8_STATUS, (1 << 4) | (1 << 8) | (1 << 15));
    expect(
      Object.entries(f)
        .filter(([, on]) => on)
        .map(([name]) => name),
    ).toEqual(["pumpFault", "detectorFault", "testMode"]);
    expect(flagsOf(GK3_STATUS, 0b1000001)).toMatchObject({ doorOpen: true, tilt: true, printerFault: false });
  });

  it("a code the datasheet does not list has no name (the cause says its number)", () => {
    expect(enumName(MFS8_FAULT, 1)).toBe("smoke head dirty");
    expect(enumName(MFS8_FAULT, 9)).toBeNull();
    expect(enumName(LV4_FAULT, 4)).toBe("supply voltage low");
  });
});
