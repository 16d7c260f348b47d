import { uptime } from "node:os";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { SteadyClock, systemBoottime } from "./steady-clock.js";
import { TimerWheel, WheelTimer } from "./timer-wheel.js";

const SEC = 1000;
const HOUR = 3600 * SEC;
const DAY = 24 * HOUR;

function setup(opts?: { tickMs?: number }) {
  const clock = new FakeClock();
  const wheel = new TimerWheel(clock, opts);
  const fired: { name: unknown; at: number; deadline: number }[] = [];
  const make = (name: unknown, extra?: (t: WheelTimer) => void) =>
    new WheelTimer((t) => {
      fired.push({ name: t.owner, at: clock.now(), deadline: Number.NaN });
      extra?.(t);
    }, name);
  return { clock, wheel, fired, make };
}

describe("TimerWheel", () => {
  it("fires at the right second, never early, once", () => {
    const { clock, wheel, fired, make } = setup();
    const t = make("a");
    const start = clock.now();
    wheel.armIn(t, 5 * SEC);
    expect(t.armed).toBe(true);
    expect(t.deadline).toBe(start + 5 * SEC);
    expect(wheel.size).toBe(1);
    clock.advance(5 * SEC - 1);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired.map((f) => f.at)).toEqual([start + 5 * SEC]);
    expect(t.armed).toBe(false);
    expect(t.deadline).toBeNaN();
    expect(wheel.size).toBe(0);
    clock.advance(60 * SEC);
    expect(fired).toHaveLength(1);
  });

  it("rounds an off-tick deadline up to the next tick (at most one tick late)", () => {
    const { clock, wheel, fired, make } = setup();
    const start = clock.now();
    wheel.arm(make("a"), start + 2500);
    clock.advance(2999);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired[0]?.at).toBe(start + 3000);
  });

  it("fires a past deadline on the next tick", () => {
    const { clock, wheel, fired, make } = setup();
    const start = clock.now();
    wheel.arm(make("late"), start - 10 * SEC);
    clock.advance(SEC);
    expect(fired.map((f) => f.at)).toEqual([start + SEC]);
  });

  it("held, fires nothing (a past deadline neither); released, what fell due fires on the next tick", () => {
    const { clock, wheel, fired, make } = setup();
    wheel.hold();
    wheel.arm(make("past"), clock.now() - 10 * SEC);
    wheel.armIn(make("soon"), 2 * SEC);
    clock.advance(5 * SEC);
    expect(fired).toEqual([]);
    wheel.release();
    expect(fired).toEqual([]);
    clock.advance(0);
    clock.advance(SEC);
    expect(fired.map((f) => f.name)).toEqual(["past", "soon"]);
  });

  it("re-arming moves the timer; disarm cancels", () => {
    const { clock, wheel, fired, make } = setup();
    const start = clock.now();
    const a = make("a");
    const b = make("b");
    wheel.armIn(a, 10 * SEC);
    wheel.armIn(a, 3 * SEC); // earlier
    wheel.armIn(b, 2 * SEC);
    wheel.armIn(b, 20 * SEC); // later
    expect(wheel.size).toBe(2);
    clock.advance(10 * SEC);
    expect(fired.map((f) => [f.name, f.at - start])).toEqual([["a", 3 * SEC]]);
    expect(wheel.disarm(b)).toBe(true);
    expect(wheel.disarm(b)).toBe(false);
    expect(wheel.size).toBe(0);
    clock.advance(30 * SEC);
    expect(fired).toHaveLength(1);
  });

  it("fires in deadline order within a tick", () => {
    const { clock, wheel, fired, make } = setup();
    const start = clock.now();
    wheel.arm(make("c"), start + 900);
    wheel.arm(make("a"), start + 100);
    wheel.arm(make("b"), start + 500);
    wheel.arm(make("b2"), start + 500);
    clock.advance(SEC);
    expect(fired.map((f) => f.name)).toEqual(["a", "b", "b2", "c"]);
  });

  it("supports a periodic timer re-arming itself from its callback", () => {
    const { clock, wheel, fired } = setup();
    const start = clock.now();
    const t = new WheelTimer((self) => {
      fired.push({ name: "p", at: clock.now(), deadline: Number.NaN });
      if (fired.length < 5) wheel.armIn(self, 30 * SEC);
    });
    wheel.armIn(t, 30 * SEC);
    clock.advance(10 * 60 * SEC);
    expect(fired.map((f) => f.at - start)).toEqual([30, 60, 90, 120, 150].map((s) => s * SEC));
    expect(wheel.size).toBe(0);
    expect(clock.pendingCount()).toBe(0);
  });

  it("lets a callback disarm another timer due in the same tick", () => {
    const { clock, wheel, fired, make } = setup();
    const b = make("b");
    const a = make("a", () => wheel.disarm(b));
    wheel.arm(a, clock.now() + 100);
    wheel.arm(b, clock.now() + 200);
    clock.advance(SEC);
    expect(fired.map((f) => f.name)).toEqual(["a"]);
    expect(wheel.size).toBe(0);
  });

  it("handles 20,000 timers with re-arm churn: each fires once, none early", () => {
    const { clock, wheel } = setup();
    const start = clock.now();
    const n = 20_000;
    const fires = new Array<number>(n).fill(0);
    let early = 0;
    const timers: WheelTimer[] = [];
    for (let i = 0; i < n; i++) {
      timers.push(
        new WheelTimer((t) => {
          const idx = t.owner as number;
          fires[idx]!++;
          if (clock.now() < expected[idx]!) early++;
        }, i),
      );
    }
    const expected = new Array<number>(n).fill(0);
    // Pseudo-random but deterministic deadlines from 0 s to ~2 h.
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < n; i++) {
      expected[i] = start + Math.floor(rnd() * 2 * HOUR);
      wheel.arm(timers[i]!, expected[i]!);
    }
    // Churn: heartbeats arrive and push deadlines out (or in) while time passes.
    for (let round = 0; round < 20; round++) {
      clock.advance(7 * SEC);
      for (let k = 0; k < 2000; k++) {
        const i = Math.floor(rnd() * n);
        if (!timers[i]!.armed) continue;
        expected[i] = clock.now() + Math.floor(rnd() * 3 * HOUR);
        wheel.arm(timers[i]!, expected[i]!);
      }
    }
    expect(wheel.size).toBeLessThanOrEqual(n);
    clock.advance(4 * HOUR);
    expect(early).toBe(0);
    expect(fires.every((c) => c === 1)).toBe(true);
    expect(wheel.size).toBe(0);
    expect(clock.pendingCount()).toBe(0);
  });

  it("cascades long deadlines (25 h, 3 days, 30 days) to the right second", () => {
    const { clock, wheel, fired, make } = setup();
    const start = clock.now();
    wheel.armIn(make("30d"), 30 * DAY);
    wheel.armIn(make("3d"), 3 * DAY + 7 * SEC);
    wheel.armIn(make("25h"), 25 * HOUR);
    clock.advance(25 * HOUR - 1);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired.map((f) => [f.name, f.at - start])).toEqual([["25h", 25 * HOUR]]);
    clock.advance(2 * DAY - HOUR + 6 * SEC);
    expect(fired).toHaveLength(1);
    clock.advance(SEC);
    expect(fired.map((f) => f.name)).toEqual(["25h", "3d"]);
    expect(fired[1]!.at - start).toBe(3 * DAY + 7 * SEC);
    clock.advance(30 * DAY - (3 * DAY + 7 * SEC) - 1);
    expect(fired).toHaveLength(2);
    clock.advance(1);
    expect(fired[2]).toMatchObject({ name: "30d", at: start + 30 * DAY });
  });

  it("fires everything due after a wall-clock jump, in deadline order, none lost", () => {
    const { clock, wheel, fired, make } = setup();
    const start = clock.now();
    const order = ["m5", "h1", "d1", "d2"];
    wheel.armIn(make("d2"), 2 * DAY);
    wheel.armIn(make("m5"), 5 * 60 * SEC);
    wheel.armIn(make("d1"), DAY);
    wheel.armIn(make("h1"), HOUR);
    wheel.armIn(make("d4"), 4 * DAY);
    // Suspend: wall clock leaps 3 days without the clock timer running.
    clock.set(start + 3 * DAY);
    clock.advance(SEC);
    expect(fired.map((f) => f.name)).toEqual(order);
    // The stale clock timer fires on the first advance; all catch up in that one pass.
    expect(fired.every((f) => f.at === start + 3 * DAY)).toBe(true);
    expect(wheel.size).toBe(1);
    clock.advance(DAY - SEC);
    expect(fired.map((f) => f.name)).toEqual([...order, "d4"]);
  });

  it("advancing 3 days in one call fires in deadline order", () => {
    const { clock, wheel, fired, make } = setup();
    const start = clock.now();
    for (const [name, ms] of [
      ["b", 2 * DAY],
      ["a", 10 * SEC],
      ["c", 2 * DAY + HOUR],
    ] as const) {
      wheel.armIn(make(name), ms);
    }
    clock.advance(3 * DAY);
    expect(fired.map((f) => [f.name, f.at - start])).toEqual([
      ["a", 10 * SEC],
      ["b", 2 * DAY],
      ["c", 2 * DAY + HOUR],
    ]);
  });

  it("leaves no pending clock timer when empty", () => {
    const { clock, wheel, make } = setup();
    expect(clock.pendingCount()).toBe(0);
    const a = make("a");
    const b = make("b");
    wheel.armIn(a, 5 * SEC);
    wheel.armIn(b, 2 * DAY);
    expect(clock.pendingCount()).toBe(1);
    wheel.disarm(a);
    expect(clock.pendingCount()).toBe(1);
    wheel.disarm(b);
    expect(clock.pendingCount()).toBe(0);
    wheel.armIn(a, 5 * SEC);
    clock.advance(5 * SEC);
    expect(clock.pendingCount()).toBe(0);
    wheel.armIn(a, 5 * SEC);
    wheel.armIn(b, DAY);
    wheel.stop();
    expect(wheel.size).toBe(0);
    expect(a.armed || b.armed).toBe(false);
    expect(clock.pendingCount()).toBe(0);
  });

  it("counts a throwing callback and keeps firing the others", () => {
    const clock = new FakeClock();
    const seen: unknown[] = [];
    const wheel = new TimerWheel(clock, { onError: (err) => seen.push(err) });
    const fired: string[] = [];
    const boom = new WheelTimer(() => {
      throw new Error("boom");
    });
    wheel.arm(new WheelTimer(() => fired.push("before")), clock.now() + 100);
    wheel.arm(boom, clock.now() + 200);
    wheel.arm(new WheelTimer(() => fired.push("after")), clock.now() + 300);
    wheel.armIn(new WheelTimer(() => fired.push("later")), 5 * SEC);
    clock.advance(10 * SEC);
    expect(fired).toEqual(["before", "after", "later"]);
    expect(wheel.errors).toBe(1);
    expect(seen).toHaveLength(1);
    expect(clock.pendingCount()).toBe(0);
  });

  it("fuzz: every timer fires exactly at the first tick at or after its deadline", () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(clock);
    const start = clock.now();
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const bad: string[] = [];
    const fires = new Map<WheelTimer, number>();
    const timers: WheelTimer[] = [];
    for (let i = 0; i < 2000; i++) {
      timers.push(
        new WheelTimer(
          (t) => {
            // Deadline is NaN once fired; use what was recorded at arm time. A deadline at or
            // before the arming moment fires on the next tick (never synchronously).
            const o = t.owner as { d: number; armedAt: number };
            const want = Math.max(Math.ceil(o.d / SEC) * SEC, Math.floor(o.armedAt / SEC) * SEC + SEC);
            if (clock.now() !== want) bad.push(`at ${clock.now() - start} want ${want - start}`);
            fires.set(t, (fires.get(t) ?? 0) + 1);
          },
          { d: 0, armedAt: 0 },
        ),
      );
    }
    const arm = (t: WheelTimer, d: number) => {
      const o = t.owner as { d: number; armedAt: number };
      o.d = d;
      o.armedAt = clock.now();
      wheel.arm(t, d);
    };
    for (const t of timers) arm(t, clock.now() + Math.floor(rnd() ** 3 * 40 * DAY));
    for (let step = 0; step < 200; step++) {
      clock.advance(Math.floor(rnd() * 6 * HOUR));
      for (let k = 0; k < 20; k++) {
        const t = timers[Math.floor(rnd() * timers.length)]!;
        if (t.armed) arm(t, clock.now() + Math.floor(rnd() ** 2 * 20 * DAY));
      }
    }
    clock.advance(41 * DAY);
    expect(bad.slice(0, 5)).toEqual([]);
    expect(fires.size).toBe(timers.length);
    expect([...fires.values()].every((n) => n === 1)).toBe(true);
    expect(clock.pendingCount()).toBe(0);
  });

  it("parks deadlines beyond the top level (1 ms tick, 60 days) and re-cascades them", () => {
    const { clock, wheel, fired, make } = setup({ tickMs: 1 });
    const start = clock.now();
    wheel.armIn(make("far"), 60 * DAY);
    clock.advance(60 * DAY - 1);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired[0]?.at).toBe(start + 60 * DAY);
  });

  it("honours a custom tick", () => {
    const { clock, wheel, fired, make } = setup({ tickMs: 100 });
    const start = clock.now();
    wheel.arm(make("a"), start + 250);
    clock.advance(299);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired[0]?.at).toBe(start + 300);
  });
});

describe("TimerWheel: firePerTurn (a tick with thousands due goes out in slices)", () => {
  function sliced(firePerTurn: number) {
    const clock = new FakeClock();
    const wheel = new TimerWheel(clock, { firePerTurn });
    const seen: string[] = [];
    const timers = Array.from({ length: 10 }, (_, i) => new WheelTimer(() => seen.push(`a${i}`), i));
    // Other work of the event loop (I/O, a device's press): queued by the first callback.
    timers[0] = new WheelTimer(() => {
      seen.push("a0");
      clock.setTimeout(() => seen.push("io"), 0);
    }, 0);
    for (const t of timers) wheel.arm(t, clock.now() + 500);
    return { clock, wheel, seen };
  }

  it("fires at most firePerTurn timers per turn, the rest in order in the next turns, other work in between", () => {
    const { clock, seen } = sliced(4);
    clock.advance(SEC);
    expect(seen).toEqual(["a0", "a1", "a2", "a3", "io", "a4", "a5", "a6", "a7", "a8", "a9"]);
  });

  it("without a limit the whole tick fires in one turn (the default)", () => {
    const { clock, seen } = sliced(Number.POSITIVE_INFINITY);
    clock.advance(SEC);
    expect(seen).toEqual(["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "io"]);
  });

  it("the rest of a tick fires before any later tick's timers; one disarmed between turns does not fire", () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(clock, { firePerTurn: 2 });
    const seen: string[] = [];
    const later = new WheelTimer(() => seen.push("later"));
    const t = Array.from({ length: 5 }, (_, i) => new WheelTimer(() => seen.push(`a${i}`)));
    t[0] = new WheelTimer(() => {
      seen.push("a0");
      clock.setTimeout(() => wheel.disarm(t[3] as WheelTimer), 0);
    });
    for (const x of t) wheel.arm(x, clock.now() + 500);
    wheel.arm(later, clock.now() + 1500);
    clock.advance(5 * SEC);
    expect(seen).toEqual(["a0", "a1", "a2", "a4", "later"]);
    expect(wheel.size).toBe(0);
  });

  it("held between turns, the rest waits; released, it fires at once", () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(clock, { firePerTurn: 2 });
    const seen: string[] = [];
    const t = Array.from({ length: 5 }, (_, i) => new WheelTimer(() => seen.push(`a${i}`)));
    t[1] = new WheelTimer(() => {
      seen.push("a1");
      wheel.hold();
    });
    for (const x of t) wheel.arm(x, clock.now() + 500);
    clock.advance(5 * SEC);
    expect(seen).toEqual(["a0", "a1"]);
    expect(wheel.size).toBe(3);
    wheel.release();
    clock.advance(0);
    expect(seen).toEqual(["a0", "a1", "a2", "a3", "a4"]);
  });
});

describe("TimerWheel: a step of the wall clock is not time passing", () => {
  /** As the gateway has it: the wheel on a SteadyClock over the system's (here a fake) clock. */
  function stepping() {
    const clock = new FakeClock();
    const steady = new SteadyClock(clock);
    const steps: number[] = [];
    const wheel = new TimerWheel(steady, { steps: steady, onStep: (s) => steps.push(s) });
    const fired: { name: unknown; mono: number; wall: number }[] = [];
    const make = (name: unknown) =>
      new WheelTimer((t) => fired.push({ name: t.owner, mono: clock.monotonic(), wall: clock.now() }), name);
    return { clock, steady, wheel, steps, fired, make };
  }

  it("set back a day: a timer armed for in 5 minutes fires 5 minutes later, its deadline on the new clock", () => {
    const { clock, wheel, steps, fired, make } = stepping();
    const t = make("esc");
    const start = clock.monotonic();
    wheel.armIn(t, 300 * SEC);
    clock.advance(60 * SEC);
    clock.stepWall(-DAY);
    clock.advance(60 * SEC); // the wheel's next tick (at most a minute apart) sees the step
    expect(steps).toEqual([-DAY]);
    expect(wheel.steps).toBe(1);
    expect(t.deadline).toBe(start + 300 * SEC - DAY);
    clock.advance(300 * SEC - 120 * SEC - 1);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired).toEqual([{ name: "esc", mono: start + 300 * SEC, wall: start + 300 * SEC - DAY }]);
  });

  it("set forward an hour: nothing fires early, and the step is reported once", () => {
    const { clock, wheel, steps, fired, make } = stepping();
    const a = make("a");
    const b = make("b");
    const start = clock.monotonic();
    wheel.armIn(a, 300 * SEC);
    wheel.armIn(b, 2 * HOUR);
    clock.stepWall(HOUR);
    clock.advance(60 * SEC);
    expect(fired).toHaveLength(0);
    expect(steps).toEqual([HOUR]);
    expect(b.deadline).toBe(start + 3 * HOUR);
    clock.advance(240 * SEC - 1);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired.map((f) => [f.name, f.mono])).toEqual([["a", start + 300 * SEC]]);
    clock.advance(2 * HOUR - 300 * SEC);
    expect(fired.map((f) => [f.name, f.mono - start])).toEqual([
      ["a", 300 * SEC],
      ["b", 2 * HOUR],
    ]);
    expect(steps).toEqual([HOUR]);
  });

  it("until the wheel adopts a step the gateway's clock reads the old time, so a deadline armed meanwhile is on the clock of every other", () => {
    const { clock, steady, wheel, steps, fired, make } = stepping();
    wheel.armIn(make("other"), HOUR);
    const before = steady.now();
    clock.stepWall(-DAY);
    expect(steady.now()).toBe(before);
    // E.g. a device heard just after the step: lost 660 s after now, on the clock the gateway reads.
    const t = make("lost");
    const start = clock.monotonic();
    wheel.arm(t, steady.now() + 660 * SEC);
    clock.advance(60 * SEC); // the wheel's next tick adopts the step: every time moves together
    expect(steps).toEqual([-DAY]);
    expect(steady.now()).toBe(clock.now());
    expect(t.deadline).toBe(clock.now() + 600 * SEC);
    clock.advance(600 * SEC - 1);
    expect(fired).toHaveLength(0);
    clock.advance(1);
    expect(fired.map((f) => [f.name, f.mono - start])).toEqual([["lost", 660 * SEC]]);
  });

  it("a step under a second (NTP) is absorbed: not reported, timers as they were", () => {
    const { clock, wheel, steps, fired, make } = stepping();
    const t = make("a");
    const start = clock.now();
    wheel.armIn(t, 10 * SEC);
    clock.stepWall(-900);
    clock.advance(10 * SEC);
    // Never early on the wall clock, at most a tick late in elapsed time.
    expect(fired).toHaveLength(0);
    expect(t.deadline).toBe(start + 10 * SEC);
    clock.advance(SEC);
    expect(fired).toHaveLength(1);
    expect(fired[0]?.wall).toBe(start + 10 * SEC);
    expect(steps).toEqual([]);
  });

  it("a jump of both clocks (FakeClock.set: time passed, as after a suspend) is no step: everything due fires", () => {
    const { clock, wheel, steps, fired, make } = stepping();
    wheel.armIn(make("a"), 300 * SEC);
    clock.set(clock.now() + HOUR);
    clock.advance(SEC);
    expect(steps).toEqual([]);
    expect(fired).toHaveLength(1);
  });
});

describe("TimerWheel: a system suspend is time passed, not a step (the boot clock tells them apart)", () => {
  const MIN = 60 * SEC;
  /** The gateway's wheel, its clock given the boot clock (`boot: false`: none, as off Linux). */
  function suspending(boot = true) {
    const clock = new FakeClock();
    const suspends: number[] = [];
    const steady = new SteadyClock(clock, boot ? () => clock.boottime() : null, (ms) => suspends.push(ms));
    const steps: number[] = [];
    const wheel = new TimerWheel(steady, { steps: steady, onStep: (s) => steps.push(s) });
    const fired: { name: unknown; mono: number; wall: number }[] = [];
    const make = (name: unknown) =>
      new WheelTimer((t) => fired.push({ name: t.owner, mono: clock.monotonic(), wall: clock.now() }), name);
    return { clock, steady, wheel, steps, suspends, fired, make };
  }

  it("suspended 8 hours: an escalation due during it fires at the wheel's next tick, on the wall clock; no step", () => {
    const { clock, steady, wheel, steps, suspends, fired, make } = suspending();
    const t = make("esc");
    const offset = clock.now() - clock.monotonic();
    wheel.armIn(t, 5 * MIN);
    clock.advance(MIN);
    clock.suspend(8 * HOUR);
    const resumed = clock.monotonic();
    // Right after the resume the gateway's clock reads the wall clock (the suspend is time passed).
    expect(steady.now()).toBe(clock.now());
    expect(suspends).toEqual([8 * HOUR]);
    // Node's timer (monotonic) wakes the wheel at most a minute later: the escalation fires then.
    clock.advance(MIN);
    expect(steps).toEqual([]);
    expect(wheel.steps).toBe(0);
    expect(fired).toHaveLength(1);
    expect(fired[0]?.mono).toBeLessThanOrEqual(resumed + MIN);
    expect((fired[0]?.wall ?? 0) - (fired[0]?.mono ?? 0)).toBe(offset + 8 * HOUR);
  });

  it("a timer due after the resume keeps its wall-clock time: it is not put off by the suspend", () => {
    const { clock, wheel, steps, fired, make } = suspending();
    const t = make("shelve-end");
    const start = clock.now();
    wheel.arm(t, start + 10 * HOUR);
    clock.suspend(8 * HOUR);
    clock.advance(MIN);
    expect(t.deadline).toBe(start + 10 * HOUR);
    clock.advance(2 * HOUR - 2 * MIN);
    expect(fired).toHaveLength(0);
    clock.advance(2 * MIN);
    expect(fired.map((f) => f.wall)).toEqual([start + 10 * HOUR]);
    expect(steps).toEqual([]);
  });

  it("a clock set back a day during a suspend of an hour: the hour passed, the day is a step", () => {
    const { clock, wheel, steps, fired, make } = suspending();
    const t = make("esc");
    const start = clock.now();
    wheel.armIn(t, 30 * MIN);
    clock.suspend(HOUR);
    clock.stepWall(-DAY);
    clock.advance(MIN);
    expect(steps).toEqual([-DAY]);
    expect(fired.map((f) => f.wall)).toEqual([start + HOUR + MIN - DAY]);
  });

  it("a step while no suspend happened is still a step (the boot clock gained nothing)", () => {
    const { clock, wheel, steps, suspends, fired, make } = suspending();
    wheel.armIn(make("a"), 5 * MIN);
    clock.stepWall(HOUR);
    clock.advance(MIN);
    expect(steps).toEqual([HOUR]);
    expect(suspends).toEqual([]);
    expect(fired).toHaveLength(0);
  });

  it("without a boot clock (not Linux, no /proc/uptime) a suspend counts as a step, as before", () => {
    const { clock, steady, wheel, steps, fired, make } = suspending(false);
    const before = steady.now();
    wheel.armIn(make("esc"), 5 * MIN);
    clock.suspend(8 * HOUR);
    expect(steady.now()).toBe(before);
    clock.advance(MIN);
    expect(steps).toEqual([8 * HOUR]);
    expect(fired).toHaveLength(0);
  });
});

describe("systemBoottime", () => {
  it("on Linux reads /proc/uptime: milliseconds since boot, as os.uptime() says", () => {
    const boot = systemBoottime();
    if (process.platform !== "linux") {
      expect(boot).toBeNull();
      return;
    }
    expect(boot).not.toBeNull();
    const a = boot?.() as number;
    expect(a).toBeGreaterThan(0);
    expect(Math.abs(a - uptime() * 1000)).toBeLessThan(2000);
  });
});
