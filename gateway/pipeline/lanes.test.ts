import { describe, expect, it } from "vitest";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../../core/lanes.js";
import { type Conflatable, type PipelineEntry, PriorityPipeline } from "./lanes.js";

const dev = (): Conflatable => ({ queuedTelemetry: null });
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

  it("under pressure conflates telemetry per device, keeping the newest and counting the replaced", async () => {
    const seen: string[] = [];
    const p = new PriorityPipeline(
      { p1LaneSize: 8, alertLaneSize: 8, telemetryLaneSize: 8, telemetryBatch: 4, telemetryConflateAbove: 0 },
      (e: PipelineEntry) => seen.push(e.sample as string),
    );
    const d = dev();
    expect(p.offer(LANE_TELEMETRY, d, "hb1", 0, 0, null)).toBe("queued");
    expect(p.offer(LANE_TELEMETRY, d, "hb2", 0, 0, null)).toBe("conflated");
    expect(p.offer(LANE_TELEMETRY, d, "hb3", 0, 0, null)).toBe("conflated");
    await tick();
    expect(seen).toEqual(["hb3"]);
    expect(p.stats().telemetry.conflated).toBe(2);
    // Once consumed, the next reading queues again.
    expect(p.offer(LANE_TELEMETRY, d, "hb4", 0, 0, null)).toBe("queued");
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
