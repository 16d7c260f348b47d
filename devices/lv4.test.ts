import { describe, expect, it } from "vitest";
import { deviceSchema } from "./config.js";
import { type Lv4Settings, lv4, lv4Reserve } from "./lv4.js";
import type { ConditionOptions, DeviceSettings, RuleContext } from "./profile.js";
import { lv4Sample, siteSettings } from "./test-fixtures.js";

const settings = (own: Record<string, unknown> = {}): DeviceSettings & Lv4Settings => ({
  ...siteSettings({ pollIntervalMs: 1000 }),
  ...lv4.settings(deviceSchema(lv4).parse({ id: "t1", model: "lv4", bus: "b1", unit: 9, ...own })),
});

/** The last options each code was reported with, and whether it was on. */
class Recorder implements RuleContext<string> {
  now = 1_000_000;
  stale = false;
  /** Read when the rules run (one fake time). */
  get readAt(): number {
    return this.now;
  }
  last = new Map<string, { active: boolean; opts: ConditionOptions }>();
  raise(): void {}
  condition(code: string, active: boolean, opts: ConditionOptions): void {
    this.last.set(code, { active, opts });
  }
  markCancelled(): number {
    return 0;
  }
  confirmDelivered(): void {}
  command(): boolean {
    return false;
  }
}

const sample = (level: number) => lv4Sample(level);

describe("LV-4 reserve (datasheet: default the sensor's low set-point, else 60 % of tank height)", () => {
  it("reads its low set-point from holding register 0 with fn 0x03", () => {
    expect(lv4.settingReads).toEqual([expect.objectContaining({ name: "lowSetPoint", fn: 3, address: 0 })]);
  });

  it("without a configured reserve, WATER_LEVEL_LOW is judged against the set-point read from the sensor", () => {
    const st = lv4.initialState();
    lv4.applySetting?.(st, "lowSetPoint", 3000);
    const ctx = new Recorder();
    // 2800 mm: above 60 % of 4000 (2400), under the sensor's set-point (3000).
    lv4.rules(sample(2800), st, settings(), ctx);
    expect(ctx.last.get("WATER_LEVEL_LOW")).toMatchObject({
      active: true,
      opts: { detail: { reserveMm: 3000 }, onDelayMs: 30_000 },
    });
  });

  it("a configured reserve wins; a set-point unknown or outside 100..tank height falls back to 60 %", () => {
    expect(lv4Reserve({ reserve: 3500 }, 4000, 3000)).toBe(3500);
    expect(lv4Reserve({ reserve: null }, 4000, 3000)).toBe(3000);
    expect(lv4Reserve({ reserve: null }, 4000, null)).toBe(2400);
    expect(lv4Reserve({ reserve: null }, 4000, 50)).toBe(2400);
    expect(lv4Reserve({ reserve: null }, 4000, 4100)).toBe(2400);
  });
});

describe("LV-4 across a restart (profile.durable)", () => {
  it("a WATER_LEVEL_LOW holds within the 50 mm deadband at the first poll after a restart, as without it", () => {
    const durable = lv4.durable;
    if (durable === undefined) throw new Error("LV-4 keeps its thresholds");
    const st = lv4.initialState();
    const ctx = new Recorder();
    // Under 60 % of 4000 mm (2400): raised.
    lv4.rules(sample(2300), st, settings(), ctx);
    expect(ctx.last.get("WATER_LEVEL_LOW")?.active).toBe(true);
    const saved = durable.save(st);
    expect(saved).toEqual([2400, true, 1200, false, false]);
    // The restart: 2420 mm is back over the reserve but inside the deadband: still low.
    const after = lv4.initialState();
    durable.restore(after, structuredClone(saved), 0);
    expect(durable.same(after, saved)).toBe(true);
    const ctx2 = new Recorder();
    lv4.rules(sample(2420), after, settings(), ctx2);
    expect(ctx2.last.get("WATER_LEVEL_LOW")?.active).toBe(true);
    // Fresh rules (an older journal) judge it cleared at once.
    const fresh = new Recorder();
    lv4.rules(sample(2420), lv4.initialState(), settings(), fresh);
    expect(fresh.last.get("WATER_LEVEL_LOW")?.active).toBe(false);
    // 50 mm above it clears, as always (a poll later).
    ctx2.now += 1000;
    lv4.rules(sample(2460), after, settings(), ctx2);
    expect(ctx2.last.get("WATER_LEVEL_LOW")?.active).toBe(false);
  });
});
