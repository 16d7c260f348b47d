import { describe, expect, it } from "vitest";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../../core/lanes.js";
import {
  type LaneDevice,
  type PipelineEntry,
  PriorityPipeline,
  TELEMETRY_CATCH_UP_BUDGET_MS,
  TELEMETRY_CATCH_UP_LAG_MS,
  TELEMETRY_CATCH_UP_WINDOW_MS,
  TELEMETRY_INTAKE_AHEAD,
  TELEMETRY_LANE_INITIAL,
  TELEMETRY_LANE_MAX,
} from "./lanes.js";

const dev = (): LaneDevice => ({ queuedTelemetry: null, p1Queued: 0 });
const tick = () => new Promise((r) => setImmediate(r));

function pipeline(sizes: Partial<{ p1: number; alert: number; telemetry: number; batch: number }> = {}) {
  const seen: string[] = [];
  const p = new PriorityPipeline(
    {
      p1LaneSize: sizes.p1 ?? 8,
      alertLaneSize: sizes.alert ?? 8,
      telemetryLaneSize: sizes.telemetry ?? 8,
      telemetryBatch: sizes.batch ?? 4,
    },
    (e: PipelineEntry) => seen.push(e.sample as string),
  );
  return { p, seen };
}

describe("PriorityPipeline", () => {
  it("keeps a P1 ahead of a full telemetry lane", async () => {
    const { p, seen } = pipeline({ telemetry: 8 });
    const devices = Array.from({ length: 8 }, dev);
    for (const [i, d] of devices.entries())
      expect(p.offer(LANE_TELEMETRY, d, `t${i}`, 0, 0, null)).toBe("queued");
    expect(p.stats().telemetry.occupancy).toBe(8);
    expect(p.offer(LANE_P1, dev(), "press", 0, 0, () => {})).toBe("queued");
    await tick();
    await tick();
    await tick();
    expect(seen[0]).toBe("press");
    expect(seen).toHaveLength(9);
  });

  it("drains P1 before the alert lane", async () => {
    const { p, seen } = pipeline();
    p.offer(LANE_ALERT, dev(), "door", 0, 0, () => {});
    p.offer(LANE_P1, dev(), "fall", 0, 0, () => {});
    await tick();
    expect(seen).toEqual(["fall", "door"]);
  });

  it("keeps every reading while the consumer keeps up", async () => {
    const { p, seen } = pipeline();
    const d = dev();
    expect(p.offer(LANE_TELEMETRY, d, "hb1", 0, 0, null)).toBe("queued");
    expect(p.offer(LANE_TELEMETRY, d, "hb2", 0, 0, null)).toBe("queued");
    await tick();
    expect(seen).toEqual(["hb1", "hb2"]);
    expect(p.stats().telemetry.conflated).toBe(0);
  });

  it("absorbs a burst that fits the span without conflating, even if the consumer pauses briefly", async () => {
    // 1 s of span at 1,000 readings/s: 1,024 slots; a 200 ms consumer pause is below the 250 ms lag threshold.
    const size = PriorityPipeline.sizeFor(10, 1000, 1000);
    expect(size).toBe(1024);
    const seen: string[] = [];
    const p = new PriorityPipeline(
      {
        p1LaneSize: 8,
        alertLaneSize: 8,
        telemetryLaneSize: size,
        telemetryBatch: 64,
        telemetryMaxLagMs: 250,
      },
      (e: PipelineEntry) => seen.push(e.sample as string),
    );
    const devices = Array.from({ length: 10 }, dev);
    // 900 readings from 10 devices within 200 ms, all offered before the consumer runs once.
    for (let i = 0; i < 900; i++) {
      expect(p.offer(LANE_TELEMETRY, devices[i % 10] as LaneDevice, `t${i}`, 0, (i * 200) / 900, null)).toBe(
        "queued",
      );
    }
    while (seen.length < 900) await tick();
    expect(seen[0]).toBe("t0");
    expect(seen[899]).toBe("t899");
    expect(p.stats().telemetry.conflated).toBe(0);
    expect(p.stats().telemetry.refused).toBe(0);
  });

  it("conflates per device, newest kept, once the consumer is stalled beyond the lag threshold", async () => {
    let stalled = true;
    const seen: string[] = [];
    const p = new PriorityPipeline(
      {
        p1LaneSize: 8,
        alertLaneSize: 8,
        telemetryLaneSize: 64,
        telemetryBatch: 64,
        telemetryMaxLagMs: 250,
        telemetryMayFlow: () => !stalled,
      },
      (e: PipelineEntry) => seen.push(e.sample as string),
    );
    const a = dev();
    const b = dev();
    expect(p.offer(LANE_TELEMETRY, a, "a1", 0, 0, null)).toBe("queued");
    expect(p.offer(LANE_TELEMETRY, b, "b1", 0, 100, null)).toBe("queued");
    // Still within the threshold: kept.
    expect(p.offer(LANE_TELEMETRY, a, "a2", 0, 250, null)).toBe("queued");
    expect(p.telemetryLagMs(250)).toBe(250);
    // The oldest reading has now waited 300 ms: each device's queued reading is replaced by its newest.
    expect(p.offer(LANE_TELEMETRY, a, "a3", 0, 300, null)).toBe("conflated");
    expect(p.offer(LANE_TELEMETRY, b, "b2", 0, 310, null)).toBe("conflated");
    expect(p.offer(LANE_TELEMETRY, a, "a4", 0, 320, null)).toBe("conflated");
    expect(p.offer(LANE_TELEMETRY, dev(), "c1", 0, 330, null)).toBe("queued"); // nothing of c's queued yet
    expect(p.stats().telemetry.conflated).toBe(3);
    stalled = false;
    while (seen.length < 4) await tick();
    // Order of the slots kept; a's second slot carries its newest reading, b's its newest.
    expect(seen).toEqual(["a1", "b2", "a4", "c1"]);
    // Caught up: the lag is gone and readings queue again.
    expect(p.telemetryLagMs(400)).toBe(0);
    expect(p.offer(LANE_TELEMETRY, a, "a5", 0, 400, null)).toBe("queued");
  });

  describe("catching up when a turn's one batch is less than the input", () => {
    function slowStart(opts: { lagMs: number; msPerBatch: number; maxLagMs?: number }) {
      let now = opts.lagMs;
      const seen: string[] = [];
      let p!: PriorityPipeline;
      const p1 = dev();
      p = new PriorityPipeline(
        {
          p1LaneSize: 8,
          alertLaneSize: 8,
          telemetryLaneSize: 1024,
          telemetryBatch: 16,
          telemetryMaxLagMs: opts.maxLagMs ?? 250,
          monotonic: () => now,
        },
        (e: PipelineEntry) => {
          seen.push(e.sample as string);
          // Each batch of 16 costs msPerBatch of the turn.
          if (e.lane === LANE_TELEMETRY) now += opts.msPerBatch / 16;
          // A reading whose handling raises a P1 (a rule): it must not wait for the rest of the turn's batches.
          if (e.sample === "t20") p.offer(LANE_P1, p1, "press", 0, now, () => {});
        },
      );
      // 400 readings queued at time 0, before the consumer's turn came.
      for (let i = 0; i < 400; i++) p.offer(LANE_TELEMETRY, dev(), `t${i}`, 0, 0, null);
      return { p, seen };
    }

    it("drains more batches in a turn while the oldest reading has aged past the catch-up lag", async () => {
      const { p, seen } = slowStart({ lagMs: TELEMETRY_CATCH_UP_LAG_MS + 5, msPerBatch: 0.5 });
      await tick();
      // Far more than one batch of 16 in the one turn; the time budget bounds it.
      const drained = seen.filter((s) => s.startsWith("t")).length;
      expect(drained).toBeGreaterThan(16 * 4);
      expect(drained).toBeLessThanOrEqual(16 * (1 + Math.ceil(TELEMETRY_CATCH_UP_BUDGET_MS / 0.5)));
      expect(p.stats().telemetryCatchUpBatches).toBe(drained / 16 - 1);
      // The P1 raised while handling t20 was handled before the next batch, not at the end of the turn.
      expect(seen.indexOf("press")).toBeGreaterThan(seen.indexOf("t20"));
      expect(seen.indexOf("press")).toBeLessThanOrEqual(33);
      expect(p.stats().telemetry.conflated).toBe(0);
    });

    it("stops at the turn's time budget and goes on in the next turn", async () => {
      const { p, seen } = slowStart({ lagMs: TELEMETRY_CATCH_UP_LAG_MS + 5, msPerBatch: 4 });
      await tick();
      const first = seen.filter((s) => s.startsWith("t")).length;
      expect(first).toBe(16 * (1 + Math.ceil(TELEMETRY_CATCH_UP_BUDGET_MS / 4)));
      while (seen.length < 401) await tick();
      expect(p.stats().telemetry.processed).toBe(400);
    });

    it("does not catch up on a lane that has not been empty for the catch-up window (sustained overload)", async () => {
      const within = slowStart({
        lagMs: TELEMETRY_CATCH_UP_WINDOW_MS - 100,
        msPerBatch: 0.5,
        maxLagMs: 5000,
      });
      await tick();
      expect(within.p.stats().telemetryCatchUpBatches).toBeGreaterThan(0);
      const beyond = slowStart({
        lagMs: TELEMETRY_CATCH_UP_WINDOW_MS + 100,
        msPerBatch: 0.5,
        maxLagMs: 5000,
      });
      await tick();
      expect(beyond.seen).toHaveLength(16);
      expect(beyond.p.stats().telemetryCatchUpBatches).toBe(0);
    });

    it("drains one batch a turn while the backlog is young, and once it is past telemetryMaxLag", async () => {
      for (const lagMs of [TELEMETRY_CATCH_UP_LAG_MS - 5, 300]) {
        const { p, seen } = slowStart({ lagMs, msPerBatch: 0.1 });
        await tick();
        expect(seen).toHaveLength(16);
        expect(p.stats().telemetryCatchUpBatches).toBe(0);
      }
    });
  });

  it("asks a producer with its own backlog for everything in a burst, and only what keeps the lane going in sustained overload", () => {
    let now = 0;
    const p = new PriorityPipeline(
      {
        p1LaneSize: 8,
        alertLaneSize: 8,
        telemetryLaneSize: 4096,
        telemetryBatch: 64,
        telemetryMaxLagMs: 60_000,
        monotonic: () => now,
      },
      () => {},
    );
    // Empty lane: whatever the producer has.
    expect(p.telemetryIntakeRoom(128, now)).toBe(128);
    // A backlog that began just now (a burst, a GC pause): still everything, the lane absorbs it.
    for (let i = 0; i < TELEMETRY_INTAKE_AHEAD + 100; i++) p.offer(LANE_TELEMETRY, dev(), i, now, now, null);
    now += TELEMETRY_CATCH_UP_WINDOW_MS;
    expect(p.telemetryIntakeRoom(128, now)).toBe(128);
    // Not empty for longer than the window (sustained overload): nothing while TELEMETRY_INTAKE_AHEAD
    // or more are queued, then only up to it.
    now += 1;
    expect(p.telemetryIntakeRoom(128, now)).toBe(0);
    p.drainAll();
    for (let i = 0; i < TELEMETRY_INTAKE_AHEAD - 40; i++) p.offer(LANE_TELEMETRY, dev(), i, now, now, null);
    now += TELEMETRY_CATCH_UP_WINDOW_MS + 1;
    expect(p.telemetryIntakeRoom(128, now)).toBe(40);
    expect(p.telemetryIntakeRoom(16, now)).toBe(16);
    // Drained empty: a new backlog is a burst again.
    p.drainAll();
    expect(p.telemetryIntakeRoom(128, now)).toBe(128);
    p.close();
  });

  it("at the hard cap conflates into a queued reading and refuses, counted, a device without one", () => {
    const p = new PriorityPipeline(
      { p1LaneSize: 8, alertLaneSize: 8, telemetryLaneSize: 4, telemetryBatch: 4, telemetryMaxLagMs: 250 },
      () => {},
    );
    const devices = Array.from({ length: 4 }, dev);
    for (const [i, d] of devices.entries())
      expect(p.offer(LANE_TELEMETRY, d, `t${i}`, 0, 0, null)).toBe("queued");
    expect(p.offer(LANE_TELEMETRY, devices[0] as LaneDevice, "t0'", 0, 1, null)).toBe("conflated");
    expect(p.offer(LANE_TELEMETRY, dev(), "x", 0, 1, null)).toBe("full");
    expect(p.stats().telemetry).toMatchObject({ conflated: 1, refused: 1, occupancy: 4 });
  });

  it("grows the telemetry lane's slots from TELEMETRY_LANE_INITIAL to its full capacity: same capacity, same cap", async () => {
    const capacity = 4 * TELEMETRY_LANE_INITIAL;
    const seen: string[] = [];
    const p = new PriorityPipeline(
      {
        p1LaneSize: 8,
        alertLaneSize: 8,
        telemetryLaneSize: capacity,
        telemetryBatch: 512,
        telemetryMaxLagMs: 250,
      },
      (e) => seen.push(e.sample as string),
    );
    const lane = (p as unknown as { lanes: { ring: { allocated: number } }[] }).lanes[LANE_TELEMETRY];
    expect(p.stats().telemetry.capacity).toBe(capacity);
    expect(lane?.ring.allocated).toBe(TELEMETRY_LANE_INITIAL);
    const devices = Array.from({ length: capacity }, dev);
    for (const [i, d] of devices.entries())
      expect(p.offer(LANE_TELEMETRY, d, `t${i}`, 0, 0, null)).toBe("queued");
    expect(lane?.ring.allocated).toBe(capacity);
    expect(p.offer(LANE_TELEMETRY, dev(), "x", 0, 1, null)).toBe("full");
    // A device's queued slot is still its own after the growth: conflation at the cap lands in it.
    expect(p.offer(LANE_TELEMETRY, devices[5] as LaneDevice, "t5'", 0, 1, null)).toBe("conflated");
    while (seen.length < capacity) await tick();
    expect(seen).toHaveLength(capacity);
    expect(seen[5]).toBe("t5'");
    expect(seen[capacity - 1]).toBe(`t${capacity - 1}`);
    expect(p.stats().telemetry).toMatchObject({ conflated: 1, refused: 1, occupancy: 0 });
  });

  it("never conflates P1 or alert entries, however long they have waited", async () => {
    const seen: string[] = [];
    const p = new PriorityPipeline(
      { p1LaneSize: 8, alertLaneSize: 8, telemetryLaneSize: 8, telemetryBatch: 4, telemetryMaxLagMs: 1 },
      (e: PipelineEntry) => seen.push(e.sample as string),
    );
    const d = dev();
    // A stale telemetry reading makes the lane "behind"; the urgent lanes must not care.
    p.offer(LANE_TELEMETRY, d, "t", 0, 0, null);
    const acked: string[] = [];
    for (let i = 0; i < 5; i++) {
      expect(p.offer(LANE_P1, d, `p${i}`, 0, 1000 + i, () => acked.push(`p${i}`))).toBe("queued");
      expect(p.offer(LANE_ALERT, d, `a${i}`, 0, 1000 + i, () => acked.push(`a${i}`))).toBe("queued");
    }
    await tick();
    await tick();
    expect(seen.filter((x) => x.startsWith("p"))).toEqual(["p0", "p1", "p2", "p3", "p4"]);
    expect(seen.filter((x) => x.startsWith("a"))).toEqual(["a0", "a1", "a2", "a3", "a4"]);
    expect(acked).toHaveLength(10);
    expect(p.stats().p1.conflated + p.stats().alert.conflated).toBe(0);
  });

  it("sizes the telemetry lane by span x peak rate, at least the device count, within the cap", () => {
    expect(PriorityPipeline.sizeFor(100, 1000, 20000)).toBe(32768);
    expect(PriorityPipeline.sizeFor(100_000, 1000, 1000)).toBe(131072);
    expect(PriorityPipeline.sizeFor(10, 1000, 10)).toBe(64);
    expect(PriorityPipeline.sizeFor(10, 60_000, 20000)).toBe(TELEMETRY_LANE_MAX);
    expect(PriorityPipeline.sizeFor(10, 1000, 20000, 16)).toBe(16);
  });

  it("refuses alerts when the lane is full without losing them: the producer keeps the event", async () => {
    const { p, seen } = pipeline({ alert: 2 });
    const done: string[] = [];
    expect(p.offer(LANE_ALERT, dev(), "a1", 0, 0, () => done.push("a1"))).toBe("queued");
    expect(p.offer(LANE_ALERT, dev(), "a2", 0, 0, () => done.push("a2"))).toBe("queued");
    expect(p.offer(LANE_ALERT, dev(), "a3", 0, 0, () => done.push("a3"))).toBe("full");
    expect(p.stats().alert.refused).toBe(1);
    let space = 0;
    p.onSpace(() => space++);
    await tick();
    expect(seen).toEqual(["a1", "a2"]);
    expect(done).toEqual(["a1", "a2"]);
    expect(space).toBe(1);
  });

  it("calls completions only after the consumer has handled the entry (the journal seam)", async () => {
    const order: string[] = [];
    const p = new PriorityPipeline(
      { p1LaneSize: 4, alertLaneSize: 4, telemetryLaneSize: 4, telemetryBatch: 4 },
      () => order.push("consumed"),
      (completions, count) => {
        order.push(`commit ${count}`);
        for (let i = 0; i < count; i++) completions[i]?.(null);
      },
    );
    p.offer(LANE_P1, dev(), "x", 0, 0, () => order.push("puback"));
    p.offer(LANE_P1, dev(), "y", 0, 0, () => order.push("puback"));
    expect(order).toEqual([]);
    await tick();
    expect(order).toEqual(["consumed", "consumed", "commit 2", "puback", "puback"]);
  });

  it("flags each completion with whether its entry's handling moved the commit mark (put a record its PUBACK waits for)", async () => {
    let mark = 0;
    const flags: Array<[string, number]> = [];
    const p = new PriorityPipeline(
      {
        p1LaneSize: 4,
        alertLaneSize: 4,
        telemetryLaneSize: 4,
        telemetryBatch: 4,
        commitMark: () => mark,
      },
      (e: PipelineEntry) => {
        // A press puts its alert state; a door event only checkpoints (the mark stays).
        if (e.sample === "press") mark += 100;
      },
      (completions, count, waits) => {
        for (let i = 0; i < count; i++) completions[i]?.(null);
        for (let i = 0; i < count; i++) flags.push([String(i), waits[i] as number]);
      },
    );
    p.offer(LANE_ALERT, dev(), "door", 0, 0, () => {});
    p.offer(LANE_P1, dev(), "press", 0, 0, () => {});
    p.offer(LANE_ALERT, dev(), "door", 0, 0, () => {});
    await tick();
    // P1 first, then the two alert-lane entries: only the press waits.
    expect(flags).toEqual([
      ["0", 1],
      ["1", 0],
      ["2", 0],
    ]);
  });

  it("yields between telemetry batches so new P1 entries jump the backlog", async () => {
    const { p, seen } = pipeline({ telemetry: 16, batch: 4 });
    for (let i = 0; i < 12; i++) p.offer(LANE_TELEMETRY, dev(), `t${i}`, 0, 0, null);
    await tick();
    expect(seen.length).toBeLessThanOrEqual(8);
    p.offer(LANE_P1, dev(), "press", 0, 0, () => {});
    await tick();
    const pressAt = seen.indexOf("press");
    expect(pressAt).toBeGreaterThan(-1);
    expect(pressAt).toBeLessThan(12);
    while (seen.length < 13) await tick();
    expect(seen.filter((s) => s.startsWith("t"))).toHaveLength(12);
  });

  it("holds telemetry while downstream is congested, never P1; flows again when it clears", async () => {
    let congested = true;
    const seen: string[] = [];
    const p = new PriorityPipeline(
      {
        p1LaneSize: 4,
        alertLaneSize: 4,
        telemetryLaneSize: 8,
        telemetryBatch: 4,
        telemetryMayFlow: () => !congested,
      },
      (e: PipelineEntry) => seen.push(e.sample as string),
    );
    p.offer(LANE_TELEMETRY, dev(), "t1", 0, 0, null);
    p.offer(LANE_TELEMETRY, dev(), "t2", 0, 0, null);
    p.offer(LANE_P1, dev(), "press", 0, 0, () => {});
    for (let i = 0; i < 5; i++) await tick();
    expect(seen).toEqual(["press"]);
    expect(p.stats().telemetry.occupancy).toBe(2);
    expect(p.stats().telemetryDeferred).toBeGreaterThan(0);
    congested = false;
    await tick();
    await tick();
    expect(seen).toEqual(["press", "t1", "t2"]);
  });

  it("counts each device's entries in the P1 lane: up when queued, down when the consumer takes one, even if it throws", async () => {
    const p = new PriorityPipeline(
      { p1LaneSize: 2, alertLaneSize: 4, telemetryLaneSize: 4, telemetryBatch: 4 },
      (e) => {
        if (e.sample === "bad") throw new Error("rule bug");
      },
    );
    const a = dev();
    const b = dev();
    p.offer(LANE_P1, a, "bad", 0, 0, () => {});
    p.offer(LANE_ALERT, a, "door", 0, 0, () => {});
    p.offer(LANE_TELEMETRY, a, "hb", 0, 0, null);
    p.offer(LANE_P1, b, "press", 0, 0, () => {});
    expect(p.offer(LANE_P1, b, "fall", 0, 0, () => {})).toBe("full");
    expect([a.p1Queued, b.p1Queued]).toEqual([1, 1]);
    await tick();
    expect([a.p1Queued, b.p1Queued]).toEqual([0, 0]);
  });

  it("counts a throwing consumer and keeps going", async () => {
    const p = new PriorityPipeline(
      { p1LaneSize: 4, alertLaneSize: 4, telemetryLaneSize: 4, telemetryBatch: 4 },
      (e) => {
        if (e.sample === "bad") throw new Error("rule bug");
      },
    );
    const acked: string[] = [];
    p.offer(LANE_P1, dev(), "bad", 0, 0, () => acked.push("bad"));
    p.offer(LANE_P1, dev(), "good", 0, 0, () => acked.push("good"));
    await tick();
    expect(p.stats().consumerErrors).toBe(1);
    expect(acked).toEqual(["bad", "good"]);
  });
});
