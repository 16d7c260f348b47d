/**
 * ISA-18.2 lifecycle rules of the engine on a FakeClock: events, off-delays,
 * shelving, designed suppression, out of service, chattering, flood and
 * escalation. One rule per test; each asserts what is (and is not) published.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import type { AlertCode } from "../../core/model.js";
import { type AlertRecord, alertFromRecord, readAlertRecord } from "../state/alert-record.js";
import { KEY } from "../state/keys.js";
import { StateRecorder } from "../state/recorder.js";
import { MemoryStore } from "../state/store.js";
import { TimerWheel } from "../time/timer-wheel.js";
import type { Alert, AlertSubject, Transition } from "./alert.js";
import {
  AlertEngine,
  type AlertEvent,
  type EngineOptions,
  type FloodRecord,
  type FloodStatus,
  type ShelveRecord,
} from "./engine.js";

const S = 1000;
const MIN = 60 * S;
const pendant: AlertSubject = { id: "p-1", model: "ec200", household: "hh-1" };
const door: AlertSubject = { id: "d-1", model: "ds10", household: "hh-1" };
const kiosk: AlertSubject = { id: "k-1", model: "gk3", household: null };

interface Seen {
  id: string;
  code: string;
  t: Transition;
  state: string;
  suppression: string | null;
  ev: Omit<AlertEvent, never>;
}

function setup(opts: EngineOptions = {}) {
  const clock = new FakeClock();
  const wheel = new TimerWheel(clock);
  const seen: Seen[] = [];
  const escalations: Array<{ id: string; level: number; unackFor: number; at: number }> = [];
  const floods: FloodStatus[] = [];
  const engine = new AlertEngine(
    "s",
    clock,
    wheel,
    {
      alertChanged: (a: Alert, t: Transition, ev: AlertEvent) =>
        seen.push({ id: a.id, code: a.code, t, state: a.state, suppression: a.suppression, ev: { ...ev } }),
      escalated: (a, level, unackFor) => escalations.push({ id: a.id, level, unackFor, at: clock.now() }),
      floodChanged: (f) => floods.push({ ...f }),
    },
    opts,
  );
  const press = (s = pendant) =>
    engine.contextFor(s).raise("EMERGENCY_CALL", { priority: 1, causes: ["press"], windowMs: MIN });
  const tamper = (on: boolean, s = door) =>
    engine.contextFor(s).condition("TAMPER", on, { priority: 2, causes: ["cover removed"] });
  const cond = (code: AlertCode, on: boolean, priority: 1 | 2 | 3 | 4, s: AlertSubject = door) =>
    engine.contextFor(s).condition(code, on, { priority, causes: [code.toLowerCase()] });
  return { clock, wheel, seen, escalations, floods, engine, press, tamper, cond };
}

/** A store that keeps the order of its writes: a torn tail keeps a prefix of them. */
class OrderedStore extends MemoryStore {
  readonly order: Array<[key: string, value: unknown]> = [];
  override put(key: string, value: unknown, kept?: unknown): void {
    super.put(key, value, kept);
    this.order.push([key, this.get(key)]);
  }
  override delete(key: string): void {
    super.delete(key);
    this.order.push([key, undefined]);
  }
}

/**
 * An operator's action torn by a power cut: `act` runs it on `first` (journaled); `eachPrefix`
 * gives every prefix of the records it wrote (what a torn tail may keep, none to all) on top of
 * what the journal held before, to a fresh engine at the same time, for the caller to restore as
 * a start does and to send the request again (its operator got no answer).
 */
function tornPrefixes() {
  const store = new OrderedStore();
  const first = setup({ recorder: new StateRecorder(store, 60 * S) });
  let before = new Map<string, unknown>();
  let records: Array<[string, unknown]> = [];
  return {
    first,
    act(action: () => void) {
      before = new Map(store.entries());
      store.order.length = 0;
      action();
      records = [...store.order];
      expect(records.length).toBeGreaterThan(1);
    },
    eachPrefix(check: (second: ReturnType<typeof setup>, disk: Map<string, unknown>, kept: number) => void) {
      for (let kept = 0; kept <= records.length; kept++) {
        const disk = new Map(before);
        for (const [key, value] of records.slice(0, kept))
          if (value === undefined) disk.delete(key);
          else disk.set(key, value);
        const second = setup();
        second.clock.set(first.clock.now());
        check(second, disk, kept);
      }
    },
  };
}

describe("transition events", () => {
  it("every published change carries from, to, who, when and why", () => {
    const { engine, seen, tamper, clock } = setup();
    tamper(true);
    clock.advance(5 * S);
    const id = seen[0]!.id;
    engine.acknowledge(id, "wang", "checked the camera");
    tamper(false);
    expect(seen.map((s) => [s.ev.transition, s.ev.from, s.ev.to, s.ev.by])).toEqual([
      ["raised", "normal", "active-unacknowledged", "device"],
      ["acknowledged", "active-unacknowledged", "active-acknowledged", "wang"],
      ["closed", "active-acknowledged", "closed", "device"],
    ]);
    expect(seen[0]!.ev).toMatchObject({ alertId: id, code: "TAMPER", priority: 2, deviceId: "d-1" });
    expect(seen[0]!.ev.reason).toBe("cover removed");
    expect(seen[1]!.ev.reason).toBe("checked the camera");
    expect(seen[1]!.ev.at).toBe(seen[0]!.ev.at + 5 * S);
  });

  it("a momentary call's window end is by the gateway", () => {
    const { seen, press, clock } = setup({ escalationP1Ms: 0 });
    press();
    clock.advance(MIN + S);
    expect(seen.at(-1)!.ev).toMatchObject({
      transition: "cleared",
      from: "active-unacknowledged",
      to: "cleared-unacknowledged",
      by: "gateway",
      reason: "call window ended",
    });
  });
});

describe("a call after its window ran out, before the window's timer fired", () => {
  // The wheel is held from a start's recovery until the restored state is republished (and fires
  // up to a tick late): a press then must not be folded into the last call.
  it("after an acknowledged call: the old call closes and the press raises a new, unacknowledged one", () => {
    const { engine, seen, press, clock, wheel } = setup({ escalationP1Ms: 0 });
    press();
    const first = seen[0]!.id;
    engine.acknowledge(first, "wang", "calling back");
    wheel.hold();
    clock.advance(2 * MIN);
    press();
    expect(seen.map((s) => [s.id === first ? "first" : "new", s.t, s.state])).toEqual([
      ["first", "raised", "active-unacknowledged"],
      ["first", "acknowledged", "active-acknowledged"],
      ["first", "closed", "closed"],
      ["new", "raised", "active-unacknowledged"],
    ]);
    expect(seen[2]!.ev).toMatchObject({ by: "gateway", reason: "call window ended" });
    const now = engine.find(pendant.id, "EMERGENCY_CALL")!;
    expect(now.count).toBe(1);
    expect(now.ackedBy).toBeNull();
    // The released wheel has nothing left of the old call to fire.
    wheel.release();
    clock.advance(30 * S);
    expect(seen).toHaveLength(4);
    clock.advance(31 * S);
    expect(seen.at(-1)).toMatchObject({ id: now.id, t: "cleared", state: "cleared-unacknowledged" });
  });

  it("after an unacknowledged call: the call clears at its window's end and the press calls again", () => {
    const { seen, press, clock, wheel } = setup({ escalationP1Ms: 0 });
    press();
    wheel.hold();
    clock.advance(2 * MIN);
    press();
    expect(seen.map((s) => [s.t, s.state])).toEqual([
      ["raised", "active-unacknowledged"],
      ["cleared", "cleared-unacknowledged"],
      ["reactivated", "active-unacknowledged"],
    ]);
  });

  it("within the window the press is the same call (a repeat), held wheel or not", () => {
    const { seen, press, clock, wheel } = setup({ escalationP1Ms: 0 });
    press();
    wheel.hold();
    clock.advance(MIN - S);
    press();
    expect(seen.map((s) => s.t)).toEqual(["raised", "repeated"]);
  });
});

describe("analog conditions: on- and off-delays", () => {
  it("an off-delay clears only after the value has been normal that long, counted from the first normal reading", () => {
    const { engine, seen, clock } = setup();
    const hot = (on: boolean) =>
      engine.contextFor(kiosk).condition("OVERHEAT", on, { priority: 3, offDelayMs: 60 * S });
    hot(true);
    expect(seen.map((s) => s.t)).toEqual(["raised"]);
    hot(false);
    clock.advance(30 * S);
    hot(false); // another normal poll must not postpone the clear
    clock.advance(29 * S);
    expect(seen.map((s) => s.t)).toEqual(["raised"]);
    clock.advance(2 * S);
    expect(seen.map((s) => s.t)).toEqual(["raised", "cleared"]);
    expect(seen.at(-1)!.ev.reason).toMatch(/off-delay/);
  });

  it("returning to abnormal within the off-delay cancels the clear: nothing is published", () => {
    const { engine, seen, clock } = setup();
    const hot = (on: boolean) =>
      engine.contextFor(kiosk).condition("OVERHEAT", on, { priority: 3, offDelayMs: 60 * S });
    hot(true);
    hot(false);
    clock.advance(40 * S);
    hot(true);
    clock.advance(5 * MIN);
    expect(seen.map((s) => s.t)).toEqual(["raised"]);
    expect(engine.pendingCount).toBe(0);
  });

  it("an on-delay without `since` runs from the first active report (polls do not postpone it)", () => {
    const { engine, seen, clock } = setup();
    const low = () =>
      engine.contextFor(kiosk).condition("HYDRANT_PRESSURE_LOW", true, { priority: 2, onDelayMs: 10 * S });
    low();
    for (let i = 0; i < 5; i++) {
      clock.advance(2 * S);
      low();
    }
    expect(seen.map((s) => s.t)).toEqual(["raised"]);
  });
});

describe("shelving", () => {
  it("P1 alerts cannot be shelved; durations over the maximum and unknown ids are refused", () => {
    const { engine, seen, press, tamper } = setup({ shelveMaxMs: 8 * 60 * MIN });
    press();
    tamper(true);
    const [call, tamp] = [seen[0]!.id, seen[1]!.id];
    expect(engine.shelve(call, "ops", 10 * MIN, null)).toEqual({ ok: false, reason: "p1-not-shelvable" });
    expect(engine.shelve(tamp, "ops", 9 * 60 * MIN, null)).toEqual({ ok: false, reason: "shelve-too-long" });
    expect(engine.shelve("nope", "ops", MIN, null)).toEqual({ ok: false, reason: "unknown-alert" });
    expect(seen).toHaveLength(2);
  });

  it("a shelved alert is not annunciated; when the time is up it returns, unacknowledged if still active", () => {
    const { engine, seen, tamper, clock } = setup();
    tamper(true);
    const id = seen[0]!.id;
    expect(engine.shelve(id, "ops", 30 * MIN, "cover loose, fitter coming").ok).toBe(true);
    expect(seen.at(-1)).toMatchObject({
      t: "shelved",
      suppression: "shelved",
      state: "active-unacknowledged",
    });
    expect(seen.at(-1)!.ev).toMatchObject({
      from: "active-unacknowledged",
      to: "shelved",
      by: "ops",
      reason: "cover loose, fitter coming",
    });
    // Device changes while shelved are tracked, not published.
    tamper(false);
    tamper(true);
    tamper(false);
    expect(seen).toHaveLength(2);
    expect(engine.find("d-1", "TAMPER")?.state).toBe("cleared-unacknowledged");
    tamper(true);
    clock.advance(30 * MIN + S);
    expect(seen.at(-1)).toMatchObject({
      t: "shelve-expired",
      state: "active-unacknowledged",
      suppression: null,
    });
    expect(seen.at(-1)!.ev).toMatchObject({ from: "shelved", to: "active-unacknowledged", by: "gateway" });
  });

  it("an acknowledged alert still active when its shelving ends must be acknowledged again", () => {
    const { engine, seen, tamper, clock } = setup();
    tamper(true);
    const id = seen[0]!.id;
    engine.acknowledge(id, "ops", null);
    engine.shelve(id, "ops", 10 * MIN, null);
    clock.advance(10 * MIN + S);
    expect(seen.at(-1)).toMatchObject({ t: "shelve-expired", state: "active-unacknowledged" });
  });

  it("shelving holds the device+code across alert ids, and can be ended early by the id it was shelved with", () => {
    const { engine, seen, tamper } = setup();
    tamper(true);
    const id = seen[0]!.id;
    engine.acknowledge(id, "ops", null);
    engine.shelve(id, "ops", 60 * MIN, null);
    tamper(false); // closes (acked + cleared): the closure is published, the shelve stays
    expect(seen.at(-1)).toMatchObject({ t: "closed" });
    const n = seen.length;
    tamper(true); // a new alert id, held by the shelve
    expect(seen).toHaveLength(n);
    const held = engine.find("d-1", "TAMPER")!;
    expect(held.id).not.toBe(id);
    expect(held.suppression).toBe("shelved");
    expect(engine.unshelve(id, "ops", "fixed")).toMatchObject({ ok: true });
    expect(seen.at(-1)).toMatchObject({ id: held.id, t: "unshelved", state: "active-unacknowledged" });
    expect(engine.unshelve(id, "ops", null)).toEqual({ ok: false, reason: "not-shelved" });
  });

  it("a shelved key with nothing open is forgotten when the shelve ends", () => {
    const { engine, seen, tamper, clock } = setup();
    tamper(true);
    const id = seen[0]!.id;
    engine.acknowledge(id, "ops", null);
    engine.shelve(id, "ops", 5 * MIN, null);
    tamper(false);
    clock.advance(5 * MIN + S);
    expect(engine.trackedKeys).toBe(0);
  });
});

describe("suppressed by design (test mode, maintenance)", () => {
  it("alerts raised in test mode are marked, published, never escalated and not counted toward a flood", () => {
    const { engine, seen, escalations, floods, clock } = setup();
    for (let i = 0; i < 15; i++) {
      engine
        .contextFor({ id: `m-${i}`, model: "mfs8", household: null }, true)
        .condition("FIRE_ALARM", true, { priority: 1, causes: ["smoke"] });
    }
    expect(seen).toHaveLength(15);
    expect(seen[0]).toMatchObject({ suppression: "suppressed" });
    expect(engine.find("m-0", "FIRE_ALARM")).toMatchObject({ test: true, suppressedFor: "test" });
    clock.advance(10 * MIN);
    expect(escalations).toEqual([]);
    expect(floods).toEqual([]);
  });

  it("maintenance is named as the reason", () => {
    const { engine } = setup();
    engine.contextFor(kiosk, "maintenance").condition("POWER_FAIL", true, { priority: 3 });
    expect(engine.find("k-1", "POWER_FAIL")?.view()).toMatchObject({
      suppression: "suppressed",
      suppressedFor: "maintenance",
      test: true,
    });
  });

  it("a real fire after test mode, with the test alarm still unacknowledged, is a new alert that pages", () => {
    const { engine, seen, escalations, clock } = setup();
    const panel: AlertSubject = { id: "m-1", model: "mfs8", household: null };
    const fire = (on: boolean, test: boolean) =>
      engine.contextFor(panel, test).condition("FIRE_ALARM", on, { priority: 1, causes: ["smoke"] });
    fire(true, true);
    clock.advance(MIN);
    fire(false, true); // the technician resets the panel; nobody acknowledges the test alarm
    clock.advance(60 * MIN);
    fire(true, false); // test mode is over: smoke
    const testId = seen[0]!.id;
    const real = engine.find("m-1", "FIRE_ALARM")!;
    expect(real.id).not.toBe(testId);
    expect(real.view()).toMatchObject({ test: false, suppression: null, suppressedFor: null, count: 1 });
    expect(seen.slice(2).map((s) => [s.id === testId, s.t, s.ev.reason])).toEqual([
      [true, "closed", "test mode ended"],
      [false, "raised", "smoke"],
    ]);
    clock.advance(MIN + 1_000);
    expect(escalations.map((e) => [e.id, e.level])).toEqual([[real.id, 1]]);
  });

  it("a condition still active when maintenance ends is raised anew, annunciated and escalated", () => {
    const { engine, seen, escalations, clock } = setup();
    engine.contextFor(kiosk, "maintenance").condition("VANDALISM", true, { priority: 2, causes: ["tilt"] });
    clock.advance(MIN);
    engine.contextFor(kiosk).condition("VANDALISM", true, { priority: 2, causes: ["tilt"] });
    expect(seen.map((s) => [s.t, s.suppression])).toEqual([
      ["raised", "suppressed"],
      ["closed", "suppressed"],
      ["raised", null],
    ]);
    expect(seen[1]!.ev.reason).toBe("maintenance ended");
    clock.advance(5 * MIN + 1_000);
    expect(escalations.map((e) => e.id)).toEqual([seen[2]!.id]);
  });

  it("a real alert reported again in test mode stays real (paging is the safe side)", () => {
    const { engine, seen } = setup();
    engine.contextFor(kiosk).condition("VANDALISM", true, { priority: 2, causes: ["tilt"] });
    engine.contextFor(kiosk).condition("VANDALISM", false, { priority: 2 });
    engine.contextFor(kiosk, "maintenance").condition("VANDALISM", true, { priority: 2, causes: ["tilt"] });
    expect(seen.map((s) => [s.t, s.suppression])).toEqual([
      ["raised", null],
      ["cleared", null],
      ["reactivated", null],
    ]);
  });
});

describe("out of service", () => {
  it("open alerts are published once as out of service, then device changes are held", () => {
    const { engine, seen, tamper, cond } = setup();
    tamper(true);
    expect(engine.setOutOfService(door, true, "ops", "being replaced")).toEqual({ ok: true, alerts: 1 });
    expect(seen.at(-1)).toMatchObject({ t: "out-of-service", suppression: "out-of-service" });
    expect(seen.at(-1)!.ev).toMatchObject({ to: "out-of-service", by: "ops", reason: "being replaced" });
    const n = seen.length;
    tamper(false);
    cond("BATTERY_LOW", true, 4);
    expect(seen).toHaveLength(n);
    expect(engine.isOutOfService("d-1")).toBe(true);
    expect(engine.setOutOfService(door, true, "ops", null)).toEqual({
      ok: false,
      reason: "already-out-of-service",
    });
  });

  it("back in service publishes what is open now, as it is", () => {
    const { engine, seen, cond } = setup();
    engine.setOutOfService(door, true, "ops", null);
    cond("BATTERY_LOW", true, 4);
    cond("DOOR_HELD_OPEN", true, 3);
    cond("DOOR_HELD_OPEN", false, 3);
    expect(seen).toEqual([]);
    expect(engine.setOutOfService(door, false, "ops", "repaired")).toEqual({ ok: true, alerts: 2 });
    expect(seen.map((s) => [s.code, s.t, s.state, s.suppression])).toEqual([
      ["BATTERY_LOW", "in-service", "active-unacknowledged", null],
      ["DOOR_HELD_OPEN", "in-service", "cleared-unacknowledged", null],
    ]);
    expect(engine.setOutOfService(door, false, "ops", null)).toEqual({
      ok: false,
      reason: "already-in-service",
    });
  });

  it("a P1 from a device out of service is still annunciated (a person pressed), but not escalated", () => {
    const { engine, seen, escalations, press, clock } = setup();
    engine.setOutOfService(pendant, true, "ops", null);
    press();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ t: "raised", suppression: "out-of-service" });
    clock.advance(10 * MIN);
    expect(escalations).toEqual([]);
  });
});

describe("chattering (ISA-18.2: 3 or more raise/clear cycles in a minute)", () => {
  it("is reported once, then held; after a quiet minute its current state is published", () => {
    const { seen, tamper, clock } = setup();
    tamper(true);
    clock.advance(5 * S);
    tamper(false);
    clock.advance(5 * S);
    tamper(true);
    clock.advance(5 * S);
    tamper(false);
    clock.advance(5 * S);
    tamper(true); // third activation within 20 s
    expect(seen.map((s) => s.t)).toEqual(["raised", "cleared", "reactivated", "cleared", "chattering"]);
    const flagged = seen.at(-1)!;
    expect(flagged.ev.by).toBe("gateway");
    // Held: tracked, not published.
    for (let i = 0; i < 10; i++) {
      clock.advance(3 * S);
      tamper(i % 2 !== 0);
    }
    expect(seen).toHaveLength(5);
    // Last change was a clear; quiet for 60 s: the current state is published once.
    clock.advance(59 * S);
    expect(seen).toHaveLength(5);
    clock.advance(2 * S);
    expect(seen.map((s) => s.t).at(-1)).toBe("chattering-ended");
    expect(seen.at(-1)).toMatchObject({ state: "active-unacknowledged" });
    expect(seen.at(-1)!.ev.from).toBe("active-unacknowledged");
  });

  it("counts across alert ids: raise, ack-close, raise, ack-close, raise", () => {
    const { engine, seen, tamper, clock } = setup();
    for (let i = 0; i < 3; i++) {
      tamper(true);
      const a = engine.find("d-1", "TAMPER")!;
      engine.acknowledge(a.id, "ops", null);
      clock.advance(5 * S);
      tamper(false);
      clock.advance(5 * S);
    }
    expect(new Set(seen.map((s) => s.id)).size).toBe(3);
    expect(seen.filter((s) => s.t === "chattering")).toHaveLength(1);
  });

  it("raises spread over more than a minute are not chattering", () => {
    const { seen, tamper, clock } = setup();
    for (let i = 0; i < 5; i++) {
      tamper(true);
      clock.advance(20 * S);
      tamper(false);
      clock.advance(20 * S);
    }
    expect(seen.some((s) => s.t === "chattering")).toBe(false);
  });

  it("P1 is never held by chattering", () => {
    const { engine, seen, clock, cond } = setup();
    const panel: AlertSubject = { id: "m-1", model: "mfs8", household: null };
    for (let i = 0; i < 5; i++) {
      cond("FIRE_ALARM", true, 1, panel);
      clock.advance(2 * S);
      cond("FIRE_ALARM", false, 1, panel);
      clock.advance(2 * S);
    }
    expect(seen.filter((s) => s.code === "FIRE_ALARM").map((s) => s.t)).toEqual([
      "raised",
      "cleared",
      ...Array.from({ length: 4 }, () => ["reactivated", "cleared"]).flat(),
    ]);
    expect(engine.find("m-1", "FIRE_ALARM")?.chattering).toBe(false);
  });

  it("the per-key history is forgotten once the alert is closed and the window has passed", () => {
    const { engine, tamper, clock } = setup();
    tamper(true);
    engine.acknowledge(engine.find("d-1", "TAMPER")!.id, "ops", null);
    tamper(false);
    expect(engine.trackedKeys).toBe(1);
    clock.advance(61 * S);
    expect(engine.trackedKeys).toBe(0);
  });
});

describe("flood (ISA-18.2: more than 10 new alerts in 10 minutes; ends under 5)", () => {
  const dev = (i: number): AlertSubject => ({ id: `x-${i}`, model: "ds10", household: null });

  it("enters on the 11th new alert, holds new P3/P4 but never P1/P2, and releases them when it ends", () => {
    const { engine, seen, floods, clock, cond } = setup({ escalationP2Ms: 0, escalationP1Ms: 0 });
    for (let i = 0; i < 10; i++) {
      cond("TAMPER", true, 2, dev(i));
      clock.advance(10 * S);
    }
    expect(floods).toEqual([]);
    cond("TAMPER", true, 2, dev(10));
    expect(floods).toEqual([{ state: "flood", since: clock.now(), newAlerts10m: 11 }]);
    const before = seen.length;
    cond("DOOR_HELD_OPEN", true, 3, dev(20));
    cond("BATTERY_LOW", true, 4, dev(21));
    cond("TAMPER", true, 2, dev(22));
    engine.contextFor(pendant).raise("EMERGENCY_CALL", { priority: 1, windowMs: MIN });
    expect(seen.slice(before).map((s) => s.code)).toEqual(["TAMPER", "EMERGENCY_CALL"]);
    // Quiet: the rate falls under 5 once the burst is more than 10 minutes old.
    clock.advance(10 * MIN);
    expect(floods.at(-1)).toMatchObject({ state: "normal" });
    expect(floods.at(-1)!.newAlerts10m).toBeLessThan(5);
    const released = seen.filter((s) => s.t === "flood-released").map((s) => s.code);
    expect(released.sort()).toEqual(["BATTERY_LOW", "DOOR_HELD_OPEN"]);
  });

  it("a crash in the middle of the window resumes the count from the journal", () => {
    const store = new MemoryStore();
    const recorder = new StateRecorder(store, 60 * S);
    const first = setup({ escalationP2Ms: 0, recorder });
    for (let i = 0; i < 8; i++) {
      first.cond("TAMPER", true, 2, dev(i));
      first.clock.advance(10 * S);
    }
    expect(first.floods).toEqual([]);
    // Killed here: no clean stop. The restarted engine restores the journaled detector.
    const second = setup({ escalationP2Ms: 0, recorder: new StateRecorder(store, 60 * S) });
    second.clock.set(first.clock.now());
    const rec = store.get(KEY.flood) as FloodRecord | undefined;
    expect(rec?.buckets.reduce((a, b) => a + b, 0)).toBe(8);
    second.engine.restoreFlood(rec as FloodRecord);
    second.cond("TAMPER", true, 2, dev(8));
    second.cond("TAMPER", true, 2, dev(9));
    expect(second.floods).toEqual([]);
    second.cond("TAMPER", true, 2, dev(10));
    expect(second.floods).toEqual([{ state: "flood", since: second.clock.now(), newAlerts10m: 11 }]);
  });

  it("a flood restored with the clock set back (a box without a real-time clock) still ends when the rate falls, not a day later", () => {
    const store = new MemoryStore();
    const first = setup({ escalationP2Ms: 0, recorder: new StateRecorder(store, 60 * S) });
    for (let i = 0; i < 11; i++) first.cond("TAMPER", true, 2, dev(i));
    expect(first.floods.at(-1)?.state).toBe("flood");
    // Killed in flood; back with the clock a day behind.
    const second = setup({ escalationP2Ms: 0, recorder: new StateRecorder(store, 60 * S) });
    second.clock.set(first.clock.now() - 24 * 60 * MIN);
    second.engine.restoreFlood(store.get(KEY.flood) as FloodRecord);
    // Its counts are kept, where they stood in the window.
    expect(second.engine.flood).toMatchObject({ state: "flood", newAlerts10m: 11 });
    expect(second.engine.flood.since).toBeLessThanOrEqual(second.clock.now());
    second.clock.advance(MIN);
    expect(second.floods).toEqual([]);
    second.clock.advance(10 * MIN);
    expect(second.floods.at(-1)).toMatchObject({ state: "normal" });
    expect(second.floods.at(-1)?.since).toBeLessThanOrEqual(second.clock.now());
  });

  it("an alert held by the flood is published after a restart when the flood's end was journaled but its release was not", () => {
    const store = new MemoryStore();
    const first = setup({ escalationP2Ms: 0, recorder: new StateRecorder(store, 60 * S) });
    for (let i = 0; i < 11; i++) first.cond("TAMPER", true, 2, dev(i));
    first.cond("DOOR_HELD_OPEN", true, 3, dev(20));
    const held = first.engine.find("x-20", "DOOR_HELD_OPEN")!;
    expect(held.announced).toBe(false);
    const heldRecord = readAlertRecord(store.get(KEY.alert(held.id))) as AlertRecord;
    first.clock.advance(11 * MIN);
    expect(first.seen.filter((s) => s.t === "flood-released").map((s) => s.id)).toEqual([held.id]);
    // Power cut: the flood's end is on disk, the alert's release after it is not.
    store.put(KEY.alert(held.id), heldRecord);
    const second = setup({ escalationP2Ms: 0, recorder: new StateRecorder(store, 60 * S) });
    second.clock.set(first.clock.now());
    second.engine.restoreFlood(store.get(KEY.flood) as FloodRecord);
    second.engine.restoreAlert(alertFromRecord(heldRecord, "s", dev(20)));
    second.engine.fireOverdue();
    expect(second.seen.map((s) => [s.id, s.t, s.suppression])).toEqual([[held.id, "flood-released", null]]);
    expect(second.engine.find("x-20", "DOOR_HELD_OPEN")?.announced).toBe(true);
  });

  it("back in service: a power cut within its records, then the request sent again, ends where the whole action does", () => {
    const t = tornPrefixes();
    t.first.press();
    t.first.clock.advance(20 * MIN);
    t.first.engine.setOutOfService(pendant, true, "wang", "repair");
    t.first.clock.advance(MIN);
    t.act(() => t.first.engine.setOutOfService(pendant, false, "wang", null));
    const whole = t.first.engine.find(pendant.id, "EMERGENCY_CALL")!;
    t.eachPrefix((second, disk, kept) => {
      const svc = disk.get(KEY.service(pendant.id)) as { by: string; at: number } | undefined;
      if (svc) second.engine.restoreService(pendant, svc.by, svc.at);
      second.engine.restoreAlert(
        alertFromRecord(readAlertRecord(disk.get(KEY.alert(whole.id))) as AlertRecord, "s", pendant),
      );
      // The operator got no answer: the request comes again.
      second.engine.setOutOfService(pendant, false, "wang", null);
      const back = second.engine.find(pendant.id, "EMERGENCY_CALL")!;
      const outOfService = second.engine.isOutOfService(pendant.id);
      expect({ kept, outOfService, unackSince: back.unackSince }).toEqual({
        kept,
        outOfService: false,
        unackSince: whole.unackSince,
      });
      expect(back.escalationNextAt).toBe(whole.escalationNextAt);
      expect(back.escalationLevel).toBe(0);
    });
  });

  it("unshelved: a power cut within its records, then the request sent again, ends where the whole action does", () => {
    const t = tornPrefixes();
    t.first.tamper(true);
    const id = t.first.seen[0]!.id;
    t.first.clock.advance(40 * MIN);
    expect(t.first.engine.shelve(id, "wang", 60 * MIN, "repair")).toMatchObject({ ok: true });
    t.first.clock.advance(10 * MIN);
    t.act(() => t.first.engine.unshelve(id, "wang", null));
    const whole = t.first.engine.find(door.id, "TAMPER")!;
    expect(whole.unackSince).toBe(t.first.clock.now());
    t.eachPrefix((second, disk, kept) => {
      const shelve = disk.get(KEY.shelve(door.id, "TAMPER")) as ShelveRecord | undefined;
      if (shelve) second.engine.restoreShelve(door, "TAMPER", shelve);
      second.engine.restoreAlert(
        alertFromRecord(readAlertRecord(disk.get(KEY.alert(id))) as AlertRecord, "s", door),
      );
      second.engine.unshelve(id, "wang", null);
      const back = second.engine.find(door.id, "TAMPER")!;
      expect({ kept, shelved: back.shelvedUntil, unackSince: back.unackSince }).toEqual({
        kept,
        shelved: null,
        unackSince: whole.unackSince,
      });
      expect(back.escalationNextAt).toBe(whole.escalationNextAt);
    });
  });

  it("a P2 raised while its device was out of service is published after a restart that finds it back in service", () => {
    const store = new MemoryStore();
    const first = setup({ recorder: new StateRecorder(store, 60 * S) });
    first.engine.setOutOfService(door, true, "wang", "repair");
    first.tamper(true);
    const held = first.engine.find("d-1", "TAMPER")!;
    const heldRecord = readAlertRecord(store.get(KEY.alert(held.id))) as AlertRecord;
    first.engine.setOutOfService(door, false, "wang", null);
    store.put(KEY.alert(held.id), heldRecord); // the in-service record made it to disk, the alert's did not
    const second = setup({ recorder: new StateRecorder(store, 60 * S) });
    second.clock.set(first.clock.now());
    second.engine.restoreAlert(alertFromRecord(heldRecord, "s", door));
    second.engine.fireOverdue();
    expect(second.seen.map((s) => [s.t, s.suppression])).toEqual([["in-service", null]]);
    second.clock.advance(5 * MIN + S);
    expect(second.escalations.map((e) => e.id)).toEqual([held.id]);
  });

  it("does not end while the rate stays at 5 or more", () => {
    const { floods, clock, cond } = setup({ escalationP2Ms: 0 });
    for (let i = 0; i < 11; i++) cond("TAMPER", true, 2, dev(i));
    expect(floods.at(-1)?.state).toBe("flood");
    // 6 new alerts per 10 minutes keeps it above the exit mark.
    for (let i = 0; i < 30; i++) {
      clock.advance(100 * S);
      cond("TAMPER", true, 2, dev(100 + i));
    }
    expect(floods.map((f) => f.state)).toEqual(["flood"]);
  });
});

describe("escalation", () => {
  it("an unacknowledged P1 escalates after 60 s and again at doubling intervals until acknowledged", () => {
    const { engine, seen, escalations, press, clock } = setup();
    const t0 = clock.now();
    press();
    clock.advance(60 * S);
    expect(escalations).toEqual([{ id: seen[0]!.id, level: 1, unackFor: 60 * S, at: t0 + 60 * S }]);
    clock.advance(120 * S);
    clock.advance(240 * S);
    expect(escalations.map((e) => [e.level, (e.at - t0) / S])).toEqual([
      [1, 60],
      [2, 180],
      [3, 420],
    ]);
    const a = engine.find("p-1", "EMERGENCY_CALL")!;
    expect(a.escalationLevel).toBe(3);
    expect(a.escalationNextAt).toBe(t0 + 900 * S);
    expect(seen.filter((s) => s.t === "escalated")).toHaveLength(3);
    engine.acknowledge(a.id, "ops", null);
    clock.advance(60 * MIN);
    expect(escalations).toHaveLength(3);
  });

  it("intervals are capped", () => {
    const { escalations, press, clock } = setup({ escalationMaxIntervalMs: 5 * MIN });
    const t0 = clock.now();
    press();
    clock.advance(30 * MIN);
    const gaps = escalations.map((e, i) => (e.at - (escalations[i - 1]?.at ?? t0)) / S);
    expect(gaps.slice(0, 4)).toEqual([60, 120, 240, 300]);
    expect(Math.max(...gaps)).toBe(300);
  });

  it("P2 escalates after its own time; P3 never", () => {
    const { escalations, tamper, cond, clock } = setup({ escalationP2Ms: 300 * S });
    tamper(true);
    cond("DOOR_HELD_OPEN", true, 3);
    clock.advance(299 * S);
    expect(escalations).toEqual([]);
    clock.advance(2 * S);
    expect(escalations.map((e) => e.level)).toEqual([1]);
  });

  it("a shelved P2 does not escalate; back from the shelf, its clock starts again", () => {
    const { engine, seen, escalations, tamper, clock } = setup({ escalationP2Ms: 300 * S });
    tamper(true);
    engine.shelve(seen[0]!.id, "ops", 20 * MIN, null);
    clock.advance(20 * MIN + S);
    expect(escalations).toEqual([]);
    clock.advance(300 * S);
    expect(escalations.map((e) => e.level)).toEqual([1]);
  });

  it("a call still unacknowledged after its window keeps escalating", () => {
    const { escalations, press, clock } = setup({ escalationP1Ms: 90 * S });
    press();
    clock.advance(MIN + S); // window ended: cleared-unacknowledged
    clock.advance(30 * S);
    expect(escalations).toHaveLength(1);
  });

  it("a new occurrence after an ack restarts the escalation clock", () => {
    const { engine, seen, escalations, press, clock } = setup();
    press();
    engine.acknowledge(seen[0]!.id, "ops", null);
    clock.advance(30 * S);
    press();
    clock.advance(59 * S);
    expect(escalations).toEqual([]);
    clock.advance(2 * S);
    expect(escalations.map((e) => e.level)).toEqual([1]);
  });
});
