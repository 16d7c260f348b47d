/**
 * LV-4 rules on the real engine: "Readings taken while bit 4 (self-test) is set are marked as
 * such and raise no level alert" (datasheet), and WATER_LEVEL_LOW is "held 30 s": an on-delay
 * that runs out during a self-test raises nothing until a real reading confirms the level.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import type { DeviceSettings } from "../../devices/index.js";
import { type Lv4Settings, lv4 } from "../../devices/lv4.js";
import { lv4Sample, siteSettings } from "../../devices/test-fixtures.js";
import { DeviceRuleContext } from "../rule-context.js";
import { TimerWheel } from "../time/timer-wheel.js";
import { AlertEngine } from "./engine.js";

const settings: DeviceSettings & Lv4Settings = { ...siteSettings({ pollIntervalMs: 1000 }), reserve: null };

const sample = (level: number, selfTest: boolean) => lv4Sample(level, { low: level < 2400, selfTest });

function tank() {
  const clock = new FakeClock();
  const wheel = new TimerWheel(clock);
  const seen: string[] = [];
  const engine = new AlertEngine("s", clock, wheel, {
    alertChanged: (a, t) => seen.push(`${a.code} ${t}`),
  });
  const dev = { id: "t-1", model: "lv4" as const, household: null };
  const rc = new DeviceRuleContext<typeof dev>(() => false);
  const state = lv4.initialState();
  /** One poll a second for `seconds`, the same reading each time. */
  const polls = (seconds: number, level: number, selfTest = false) => {
    for (let i = 0; i < seconds; i++) {
      lv4.rules(sample(level, selfTest), state, settings, rc.for(dev, engine.contextFor(dev)));
      clock.advance(1_000);
    }
  };
  return { seen, polls };
}

describe("LV-4 WATER_LEVEL_LOW and the self-test, on the engine", () => {
  it("an on-delay that runs out during a self-test raises nothing while the test runs", () => {
    const t = tank();
    t.polls(25, 2300); // under the reserve (60 % of 4000 = 2400) for 25 s
    t.polls(10, 2300, true); // self-test: readings not real; the 30 s run out during it
    expect(t.seen).toEqual([]);
    t.polls(1, 2300); // first real reading after the test, still under: held long enough
    expect(t.seen).toEqual(["WATER_LEVEL_LOW raised"]);
  });

  it("a tank refilled during the self-test raises nothing after it", () => {
    const t = tank();
    t.polls(25, 2300);
    t.polls(10, 2300, true);
    t.polls(40, 2600);
    expect(t.seen).toEqual([]);
  });

  it("a raised WATER_LEVEL_LOW is held through a self-test, neither cleared nor raised again", () => {
    const t = tank();
    t.polls(31, 2300);
    expect(t.seen).toEqual(["WATER_LEVEL_LOW raised"]);
    t.polls(10, 3000, true);
    t.polls(1, 2300);
    expect(t.seen).toEqual(["WATER_LEVEL_LOW raised"]);
  });
});
