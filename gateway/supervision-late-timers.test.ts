/**
 * Activity that comes after a welfare check fell due and before its timer fired: the wheel is held
 * from a start's recovery until the restored state is republished (gateway/time/timer-wheel.ts
 * hold), and fires up to a tick late. The check is raised first, as on time, and the activity
 * clears it.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { Alert, Transition } from "./alerts/alert.js";
import { AlertEngine } from "./alerts/engine.js";
import { validateConfig } from "./config/load.js";
import { Publisher } from "./northbound/publisher.js";
import { Registry } from "./registry.js";
import { Supervisor } from "./supervision.js";
import { TimerWheel } from "./time/timer-wheel.js";

const HOUR = 3_600_000;

function site() {
  const clock = new FakeClock();
  const wheel = new TimerWheel(clock);
  const seen: Array<[string, Transition, string]> = [];
  const publisher = new Publisher("s", { publish: () => {} });
  const engine = new AlertEngine("s", clock, wheel, {
    alertChanged: (a: Alert, t: Transition) => seen.push([a.code, t, a.state]),
  });
  const config = validateConfig(
    {
      site: { id: "s" },
      households: [{ id: "hh-1", welfare: { period: "24h" } }],
      devices: [{ id: "d-1", model: "ds10", password: "x", household: "hh-1", heartbeatInterval: "300s" }],
    },
    "test",
    {},
  );
  const registry = new Registry(config, {
    onLost: (t) => supervisor.onLost(t),
    onWelfareDue: (t) => supervisor.onWelfareDue(t),
  });
  const supervisor = new Supervisor(clock, wheel, engine, publisher, 60_000);
  supervisor.start(registry);
  const household = registry.households.get("hh-1");
  if (!household) throw new Error("hh-1 missing");
  // Its state changes; an unacknowledged check's escalations (every 15 min) are not asked about here.
  const welfare = () =>
    seen
      .filter(([code, t]) => code === "WELFARE_CHECK" && t !== "escalated")
      .map(([, t, state]) => [t, state]);
  return { clock, wheel, supervisor, household, welfare };
}

describe("welfare: activity after the period ran out, before the check's timer fired", () => {
  it("the check is raised first (the resident was not seen for the period), then cleared by the activity", () => {
    const { clock, wheel, supervisor, household, welfare } = site();
    supervisor.activity(household, clock.now());
    // A start holds the wheel; the period ran out while the gateway was down.
    wheel.hold();
    clock.advance(26 * HOUR);
    supervisor.activity(household, clock.now());
    expect(welfare()).toEqual([
      ["raised", "active-unacknowledged"],
      ["cleared", "cleared-unacknowledged"],
    ]);
    // The next period runs from this activity, once.
    wheel.release();
    clock.advance(23 * HOUR);
    expect(welfare()).toHaveLength(2);
    clock.advance(2 * HOUR);
    expect(welfare().at(-1)).toEqual(["reactivated", "active-unacknowledged"]);
  });

  it("activity within the period raises nothing, held wheel or not", () => {
    const { clock, wheel, supervisor, household, welfare } = site();
    supervisor.activity(household, clock.now());
    wheel.hold();
    clock.advance(23 * HOUR);
    supervisor.activity(household, clock.now());
    wheel.release();
    clock.advance(HOUR);
    expect(welfare()).toEqual([]);
  });
});
