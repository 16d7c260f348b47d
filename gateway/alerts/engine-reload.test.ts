/** The engine's part in a live reload: closing a removed subject's alerts, new escalation times. */
import { beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { TimerWheel } from "../time/timer-wheel.js";
import type { AlertSubject, Transition } from "./alert.js";
import { AlertEngine, type AlertEvent } from "./engine.js";

const pendant: AlertSubject = { id: "p-1", model: "ec200", household: "hh-1" };
const other: AlertSubject = { id: "p-2", model: "ec200", household: "hh-1" };
const door: AlertSubject = { id: "d-1", model: "ds10", household: "hh-1" };

describe("AlertEngine reload support", () => {
  let clock: FakeClock;
  let engine: AlertEngine;
  let events: Array<{ id: string; t: Transition; state: string; by: string; reason: string }>;
  let escalations: string[];

  beforeEach(() => {
    clock = new FakeClock();
    events = [];
    escalations = [];
    engine = new AlertEngine(
      "s",
      clock,
      new TimerWheel(clock),
      {
        alertChanged: (a, t, e: AlertEvent) =>
          events.push({ id: a.id, t, state: a.state, by: e.by, reason: e.reason }),
        escalated: (a) => escalations.push(a.id),
      },
      { escalationP1Ms: 60_000 },
    );
  });

  const press = (s: AlertSubject) =>
    engine.contextFor(s).raise("EMERGENCY_CALL", { priority: 1, causes: ["press"], windowMs: 60_000 });

  it("closeSubject closes every open alert of the subject with the reason, by the gateway, and only those", () => {
    press(pendant);
    press(other);
    engine.contextFor(pendant).condition("BATTERY_LOW", true, { priority: 3 });
    expect(engine.openCount).toBe(3);
    const n = engine.closeSubject("p-1", "device removed from the configuration");
    expect(n).toBe(2);
    expect(engine.openCount).toBe(1);
    const closed = events.filter((e) => e.t === "closed");
    expect(closed).toHaveLength(2);
    for (const e of closed)
      expect(e).toMatchObject({
        state: "closed",
        by: "gateway",
        reason: "device removed from the configuration",
      });
    expect(engine.find("p-2", "EMERGENCY_CALL")?.state).toBe("active-unacknowledged");
    // No timer of the removed subject fires later (window, escalation).
    const before = events.length;
    clock.advance(10 * 60_000);
    expect(events.slice(before).every((e) => e.id === engine.find("p-2", "EMERGENCY_CALL")?.id)).toBe(true);
    expect(escalations.every((id) => id === engine.find("p-2", "EMERGENCY_CALL")?.id)).toBe(true);
  });

  it("closeSubject forgets a pending on-delay, so the removed subject raises nothing later", () => {
    engine.contextFor(door).condition("DOOR_HELD_OPEN", true, { priority: 3, onDelayMs: 60_000 });
    expect(engine.pendingCount).toBe(1);
    expect(engine.closeSubject("d-1", "gone")).toBe(0);
    expect(engine.pendingCount).toBe(0);
    clock.advance(120_000);
    expect(events).toEqual([]);
    expect(engine.trackedKeys).toBe(0);
  });

  it("setOptions re-times an alert not yet escalated from when it became unacknowledged", () => {
    press(pendant);
    clock.advance(10_000);
    engine.setOptions({ escalationP1Ms: 15_000 });
    const a = engine.find("p-1", "EMERGENCY_CALL");
    expect(a?.escalationNextAt).toBe((a?.raisedAt ?? 0) + 15_000);
    clock.advance(6_000);
    expect(escalations).toEqual([a?.id]);
  });

  it("setOptions with escalation 0 stops escalating", () => {
    press(pendant);
    engine.setOptions({ escalationP1Ms: 0 });
    clock.advance(10 * 60_000);
    expect(escalations).toEqual([]);
    expect(engine.find("p-1", "EMERGENCY_CALL")?.escalationNextAt).toBeNull();
  });
});
