import { beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { TimerWheel } from "../time/timer-wheel.js";
import type { AlertSubject, Transition } from "./alert.js";
import { AlertEngine } from "./engine.js";

const pendant: AlertSubject = { id: "p-1", model: "ec200", household: "hh-1" };
const door: AlertSubject = { id: "d-1", model: "ds10", household: "hh-1" };
const WINDOW = 60_000;

describe("AlertEngine", () => {
  let clock: FakeClock;
  let engine: AlertEngine;
  let events: Array<{ id: string; code: string; state: string; t: Transition; count: number }>;

  beforeEach(() => {
    clock = new FakeClock();
    events = [];
    engine = new AlertEngine("s", clock, new TimerWheel(clock), {
      alertChanged: (a, t) => events.push({ id: a.id, code: a.code, state: a.state, t, count: a.count }),
    });
  });

  const press = (s = pendant) =>
    engine.contextFor(s).raise("EMERGENCY_CALL", { priority: 1, causes: ["press"], windowMs: WINDOW });

  it("a second press within the window is the same call, counted", () => {
    press();
    clock.advance(5_000);
    press();
    expect(events.map((e) => [e.t, e.count])).toEqual([
      ["raised", 1],
      ["repeated", 2],
    ]);
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
  });

  it("a momentary call returns to normal after its window but still needs an ack; ack closes it", () => {
    press();
    clock.advance(WINDOW + 1_000);
    expect(events.find((e) => e.t === "cleared")).toMatchObject({ state: "cleared-unacknowledged" });
    const id = events[0]?.id as string;
    const out = engine.acknowledge(id, "ops", null);
    expect(out).toMatchObject({ ok: true, transition: "closed" });
    expect(engine.openCount).toBe(0);
    // After closing, a new press is a new call.
    press();
    expect(events.at(-1)?.t).toBe("raised");
    expect(events.at(-1)?.id).not.toBe(id);
  });

  it("acknowledged while active, then closed when the window ends", () => {
    press();
    const id = events[0]?.id as string;
    expect(engine.acknowledge(id, "ops", "on my way")).toMatchObject({
      ok: true,
      transition: "acknowledged",
    });
    expect(engine.acknowledge(id, "ops", null)).toEqual({ ok: false, reason: "already-acknowledged" });
    clock.advance(WINDOW + 1_000);
    expect(events.at(-1)).toMatchObject({ t: "closed", state: "closed" });
  });

  it("a press after the operator's ack re-alerts the same call as unacknowledged", () => {
    press();
    engine.acknowledge(events[0]?.id as string, "ops", null);
    clock.advance(10_000);
    press();
    expect(events.at(-1)).toMatchObject({ t: "repeated", state: "active-unacknowledged", count: 2 });
  });

  it("unknown alert ids are refused", () => {
    expect(engine.acknowledge("nope", "ops", null)).toEqual({ ok: false, reason: "unknown-alert" });
  });

  it("cancel by the resident marks the open call and keeps it for an operator", () => {
    press();
    expect(engine.contextFor(pendant).markCancelled(["EMERGENCY_CALL", "FALL_DETECTED"])).toBe(1);
    expect(events.at(-1)).toMatchObject({ t: "cancelled-by-resident", state: "active-unacknowledged" });
    expect(engine.contextFor(pendant).markCancelled(["EMERGENCY_CALL"])).toBe(0);
  });

  it("a press after the resident's cancel is a call again: the cancelled mark is cleared", () => {
    press();
    engine.contextFor(pendant).markCancelled(["EMERGENCY_CALL", "FALL_DETECTED"]);
    clock.advance(5_000);
    engine.contextFor(pendant).raise("EMERGENCY_CALL", {
      priority: 1,
      causes: ["long_press"],
      urgent: true,
      windowMs: WINDOW,
    });
    expect(events.at(-1)).toMatchObject({ t: "repeated", count: 2 });
    expect(engine.find(pendant.id, "EMERGENCY_CALL")?.view()).toMatchObject({
      cancelledByResident: false,
      urgent: true,
    });
    // A later cancel marks it again.
    expect(engine.contextFor(pendant).markCancelled(["EMERGENCY_CALL"])).toBe(1);
  });

  it("a condition with an on-delay raises only if it still holds when the delay ends", () => {
    const ctx = () => engine.contextFor(door);
    ctx().condition("DOOR_HELD_OPEN", true, { priority: 3, onDelayMs: 600_000 });
    clock.advance(300_000);
    ctx().condition("DOOR_HELD_OPEN", false, { priority: 3 });
    clock.advance(600_000);
    expect(events).toEqual([]);
    expect(engine.pendingCount).toBe(0);
    ctx().condition("DOOR_HELD_OPEN", true, { priority: 3, onDelayMs: 600_000 });
    clock.advance(599_000);
    expect(events).toEqual([]);
    clock.advance(2_000);
    expect(events.map((e) => e.t)).toEqual(["raised"]);
    ctx().condition("DOOR_HELD_OPEN", false, { priority: 3 });
    expect(events.at(-1)).toMatchObject({ t: "cleared", state: "cleared-unacknowledged" });
  });

  it("a condition only in its deadband (onset false) holds a raised alert but raises nothing and ends a pending on-delay", () => {
    const tank: AlertSubject = { id: "t-1", model: "lv4", household: null };
    const freeze = (onset: boolean, active = true) =>
      engine.contextFor(tank).condition("FREEZE_RISK", active, { priority: 3, onDelayMs: 600_000, onset });
    freeze(true);
    clock.advance(300_000);
    freeze(false); // back at 4.5 °C: over the limit, inside the deadband
    clock.advance(600_000);
    expect(events).toEqual([]);
    expect(engine.pendingCount).toBe(0);
    freeze(true); // under 4.0 again: the 10 minutes start again
    clock.advance(599_000);
    freeze(true);
    expect(events).toEqual([]);
    clock.advance(1_000);
    expect(events.map((e) => e.t)).toEqual(["raised"]);
    freeze(false); // raised: the deadband holds it
    clock.advance(60_000);
    freeze(false);
    expect(events.map((e) => e.t)).toEqual(["raised"]);
    freeze(false, false); // past the deadband: clears
    expect(events.map((e) => e.t)).toEqual(["raised", "cleared"]);
    freeze(false); // cleared, then inside the deadband from the other side: nothing comes back
    clock.advance(700_000);
    expect(events.map((e) => e.t)).toEqual(["raised", "cleared"]);
  });

  it("an on-delay counts from `since`, so a bounce keeps the first opening", () => {
    const start = clock.now();
    engine.contextFor(door).condition("DOOR_HELD_OPEN", true, { priority: 3, onDelayMs: 60_000 });
    clock.advance(50_000);
    engine.contextFor(door).condition("DOOR_HELD_OPEN", false, { priority: 3 });
    engine
      .contextFor(door)
      .condition("DOOR_HELD_OPEN", true, { priority: 3, onDelayMs: 60_000, since: start });
    clock.advance(11_000);
    expect(events.map((e) => e.t)).toEqual(["raised"]);
  });

  it("a cleared, unacknowledged condition that comes back is the same alert, active again", () => {
    const ctx = () => engine.contextFor(door);
    ctx().condition("TAMPER", true, { priority: 2 });
    ctx().condition("TAMPER", false, { priority: 2 });
    ctx().condition("TAMPER", true, { priority: 2 });
    expect(events.map((e) => [e.t, e.state, e.count])).toEqual([
      ["raised", "active-unacknowledged", 1],
      ["cleared", "cleared-unacknowledged", 1],
      ["reactivated", "active-unacknowledged", 2],
    ]);
  });

  it("an active condition reported again is not a new alert", () => {
    engine.contextFor(door).condition("TAMPER", true, { priority: 2 });
    engine.contextFor(door).condition("TAMPER", true, { priority: 2 });
    expect(events).toHaveLength(1);
  });

  it("an open condition whose causes change is `changed` (count unchanged); the same press again is `repeated`", () => {
    const panel: AlertSubject = { id: "f-1", model: "mfs8", household: null };
    const fire = (causes: string[]) =>
      engine.contextFor(panel).condition("FIRE_ALARM", true, { priority: 1, causes });
    fire(["zone 1"]);
    fire(["zone 1"]); // the same condition reported again: nothing to publish
    fire(["zone 1", "zone 3"]);
    expect(events.map((e) => [e.t, e.count])).toEqual([
      ["raised", 1],
      ["changed", 1],
    ]);
    expect(engine.find(panel.id, "FIRE_ALARM")?.causes).toEqual(["zone 1", "zone 3"]);
    // An event alert occurring again within its window stays `repeated`.
    press();
    press();
    expect(events.slice(2).map((e) => [e.t, e.count])).toEqual([
      ["raised", 1],
      ["repeated", 2],
    ]);
  });

  it("acknowledged then cleared closes and forgets the alert", () => {
    engine.contextFor(door).condition("TAMPER", true, { priority: 2 });
    engine.acknowledge(events[0]?.id as string, "ops", null);
    engine.contextFor(door).condition("TAMPER", false, { priority: 2 });
    expect(events.map((e) => e.state)).toEqual(["active-unacknowledged", "active-acknowledged", "closed"]);
    expect(engine.openCount).toBe(0);
    expect(engine.byAlertId(events[0]?.id as string)).toBeUndefined();
  });

  it("test-mode subjects raise alerts marked test", () => {
    const seen: boolean[] = [];
    const e2 = new AlertEngine("s", clock, new TimerWheel(clock), { alertChanged: (a) => seen.push(a.test) });
    e2.contextFor(door, true).condition("TAMPER", true, { priority: 2 });
    expect(seen).toEqual([true]);
  });

  it("alerts are published on the priority/code/device topic", () => {
    press();
    const a = engine.find("p-1", "EMERGENCY_CALL");
    expect(a?.topic).toBe("linli/s/alerts/p1/EMERGENCY_CALL/p-1");
  });
});
