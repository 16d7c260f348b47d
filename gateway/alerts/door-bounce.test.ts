/**
 * DS-10 rules on the real engine: "a bouncing contact: open/closed/open within 200 ms (one
 * opening, not three)" (datasheet), at the door's close as at its opening.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { type Ds10Sample, type Ds10Settings, ds10 } from "../../devices/ds10.js";
import type { DeviceSettings } from "../../devices/index.js";
import { siteSettings } from "../../devices/test-fixtures.js";
import { DeviceRuleContext } from "../rule-context.js";
import { TimerWheel } from "../time/timer-wheel.js";
import { AlertEngine } from "./engine.js";

const settings: DeviceSettings & Ds10Settings = {
  ...siteSettings({ heartbeatIntervalMs: 3_600_000 }),
  holdOpenMs: 600_000,
};

describe("DS-10 door held open, on the engine", () => {
  it("a bounce as the door closes is one closing: cleared once, not cleared, reactivated and cleared", () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(clock);
    const seen: string[] = [];
    const engine = new AlertEngine("s", clock, wheel, {
      alertChanged: (a, t) => seen.push(`${t} ${a.state} count ${a.count}`),
    });
    const door = { id: "d-1", model: "ds10" as const, household: "hh-1" };
    const rc = new DeviceRuleContext<typeof door>(() => false);
    const state = ds10.initialState();
    let seq = 1;
    const report = (contact: "open" | "closed") => {
      const s = ds10.parse({ t: "state", seq: seq++, ts: clock.now(), contact, tamper: false, bat: 64 });
      ds10.rules(s as Ds10Sample, state, settings, rc.for(door, engine.contextFor(door)));
    };
    report("closed");
    clock.advance(1_000);
    report("open");
    clock.advance(700_000);
    expect(seen).toEqual(["raised active-unacknowledged count 1"]);
    // The contact bounces as the door shuts: closed, open, closed within 200 ms.
    report("closed");
    clock.advance(80);
    report("open");
    clock.advance(80);
    report("closed");
    clock.advance(2_000);
    expect(seen).toEqual(["raised active-unacknowledged count 1", "cleared cleared-unacknowledged count 1"]);
    // A real reopening later is a new opening: it waits for the hold time again.
    clock.advance(10_000);
    report("open");
    clock.advance(599_000);
    expect(seen).toHaveLength(2);
    clock.advance(2_000);
    expect(seen.at(-1)).toBe("reactivated active-unacknowledged count 2");
  });
});
