import { describe, expect, it } from "vitest";
import {
  checkLineBudget,
  LineBudgetError,
  lineCapacityReadsPerSec,
  planTurnaroundMs,
  readTransactionMs,
} from "../../protocols/modbus/budget.js";
import { coalesceRanges, ModbusPoller, type PollResult } from "../../protocols/modbus/poller.js";
import { elapse, rtuRig } from "./helpers.js";

const LINE_9600_8E1 = { baudRate: 9600, parity: "even", stopBits: 1 } as const;

describe("coalescing", () => {
  it("merges overlapping and adjacent ranges and splits at 125 registers", () => {
    expect(
      coalesceRanges([
        { address: 4, count: 3 },
        { address: 0, count: 4 },
        { address: 10, count: 2 },
        { address: 2, count: 3 },
      ]),
    ).toEqual([
      { address: 0, count: 7 },
      { address: 10, count: 2 },
    ]);
    expect(coalesceRanges([{ address: 0, count: 300 }]).map((r) => r.count)).toEqual([125, 125, 50]);
    // The MFS-8 points (0, 4-8, 12-13) are one read when gaps of up to 3 registers may be read through.
    const mfs8 = [
      { address: 0, count: 1 },
      { address: 4, count: 5 },
      { address: 12, count: 2 },
    ];
    expect(coalesceRanges(mfs8)).toHaveLength(3);
    expect(coalesceRanges(mfs8, 125, 3)).toEqual([{ address: 0, count: 14 }]);
  });
});

describe("poll scheduler (fake clock, in-memory line)", () => {
  async function rig(units: number[], busOptions = {}) {
    const r = await rtuRig(units, busOptions);
    const results: PollResult[] = [];
    const poller = new ModbusPoller({ bus: r.bus, clock: r.clock, onResult: (x) => results.push(x) });
    return { ...r, poller, results };
  }

  it("polls on deadlines that do not drift, with phase offsets, one coalesced read per device", async () => {
    const { clock, poller, results, line } = await rig([1, 2]);
    for (const unit of [1, 2])
      poller.add({
        id: `panel-${unit}`,
        unit,
        fn: 3,
        periodMs: 1000,
        ranges: [
          { address: 0, count: 7 },
          { address: 7, count: 7 },
        ],
      });
    const t0 = clock.monotonic();
    poller.start();
    await elapse(clock, 10_000);
    poller.stop();
    const p1 = results.filter((r) => r.device === "panel-1");
    const p2 = results.filter((r) => r.device === "panel-2");
    expect(p1.length).toBeGreaterThanOrEqual(10);
    expect(p1.map((r) => r.deadline - t0).slice(0, 10)).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) => k * 1000),
    );
    expect(p2.map((r) => r.deadline - t0).slice(0, 3)).toEqual([500, 1500, 2500]); // spread by phase
    expect(results.every((r) => r.ok && r.blocks.length === 1 && r.blocks[0]!.words.length === 14)).toBe(
      true,
    );
    expect(line.a.written.every((f) => f[5] === 14)).toBe(true); // every request reads 14 registers in one go
  });

  it("a device removed while its poll is in flight: that poll's result is not reported (its id may be another device's now)", async () => {
    const { clock, poller, results } = await rig([1]);
    poller.add({ id: "x", unit: 1, fn: 3, periodMs: 1000, ranges: [{ address: 0, count: 7 }] });
    poller.start();
    await elapse(clock, 1); // the first read is on the line
    expect(results).toHaveLength(0);
    // A reload replaced x by a device of another model under the same id: other registers.
    poller.remove("x");
    poller.add({ id: "x", unit: 1, fn: 3, periodMs: 1000, ranges: [{ address: 8, count: 2 }] });
    await elapse(clock, 2500);
    poller.stop();
    expect(results.length).toBeGreaterThan(0);
    expect(results.map((r) => (r.ok ? r.blocks.map((b) => b.address) : r.failure.kind))).toEqual(
      results.map(() => [8]),
    );
  });

  it("a dead slave among live ones: the others stay on schedule, the dead one reports timeouts", async () => {
    const { clock, poller, results, panel, bus } = await rig([1, 2, 3], { timeoutMs: 100, retries: 1 });
    panel(2).faults.silent = true;
    for (const unit of [1, 2, 3])
      poller.add({ id: `p${unit}`, unit, fn: 3, periodMs: 1000, ranges: [{ address: 0, count: 14 }] });
    poller.start();
    await elapse(clock, 10_000);
    poller.stop();
    for (const id of ["p1", "p3"]) {
      const mine = results.filter((r) => r.device === id);
      expect(mine.length).toBeGreaterThanOrEqual(10);
      expect(mine.every((r) => r.ok)).toBe(true);
      // Each live poll went on the wire before its next deadline came round.
      expect(mine.every((r) => r.startedAt < r.deadline + 1000)).toBe(true);
    }
    const dead = results.filter((r) => r.device === "p2");
    expect(dead.length).toBeGreaterThanOrEqual(9);
    expect(dead.every((r) => !r.ok && r.failure.kind === "timeout")).toBe(true);
    expect(bus.stats().transportErrors).toBe(0); // a dead slave does not reset the bus
    expect(poller.stats().missedDeadlines).toBe(0);
  });

  it("never queues a poll that is still pending; counts the skip", async () => {
    const { clock, poller, results, bus, panel } = await rig([1], { timeoutMs: 1500, retries: 0 });
    panel(1).faults.silent = true;
    poller.add({ id: "slow", unit: 1, fn: 3, periodMs: 1000, ranges: [{ address: 0, count: 14 }] });
    poller.start();
    await elapse(clock, 6000);
    poller.stop();
    const s = poller.stats();
    expect(s.skippedPending).toBeGreaterThan(0);
    expect(bus.stats().duplicates).toBe(0);
    expect(s.issued - results.length).toBeLessThanOrEqual(1); // at most the one poll in flight
    expect(results.every((r) => !r.ok)).toBe(true);
  });

  it("skips deadlines that passed while the process was stalled, and counts them", async () => {
    const { clock, poller } = await rig([1]);
    poller.add({ id: "p", unit: 1, fn: 3, periodMs: 100, phaseMs: 0, ranges: [{ address: 0, count: 14 }] });
    poller.start();
    await elapse(clock, 50);
    clock.set(clock.now() + 1000); // a 1 s stall: timers did not fire
    await elapse(clock, 10);
    poller.stop();
    const s = poller.stats();
    expect(s.missedDeadlines).toBe(9);
    expect(s.lateness.max).toBeGreaterThan(0);
  });

  it("reports achieved rate and lateness", async () => {
    const { clock, poller } = await rig([1]);
    poller.add({ id: "p", unit: 1, fn: 3, periodMs: 500, ranges: [{ address: 0, count: 14 }] });
    poller.start();
    await elapse(clock, 5000);
    const s = poller.stats();
    expect(s.plannedPollsPerSec).toBe(2);
    expect(s.achievedPollsPerSec).toBeGreaterThan(1.5);
    expect(s.lateness.samples).toBe(s.ok);
  });
});

describe("line budget", () => {
  it("matches the datasheet: about 18 reads/s of 14 registers at 9600 8E1 without turnaround", () => {
    // 41 bytes x 11 bits / 9600 = 47 ms, plus two t3.5 of 4 ms.
    expect(readTransactionMs(LINE_9600_8E1, 14, 0)).toBeCloseTo(55, 0);
    expect(Math.floor(lineCapacityReadsPerSec(LINE_9600_8E1, 14, 0))).toBe(18);
    // With the datasheet's worst-case 50 ms turnaround (our default) it is about 9.5.
    expect(lineCapacityReadsPerSec(LINE_9600_8E1, 14)).toBeCloseTo(9.5, 1);
  });

  it("refuses a plan over capacity, naming the bus, the demand and the capacity", () => {
    const plan = Array.from({ length: 20 }, () => ({ perSecond: 1, readCounts: [14] }));
    let err: unknown;
    try {
      checkLineBudget("rs485-1", LINE_9600_8E1, plan);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LineBudgetError);
    expect((err as Error).message).toMatch(
      /^bus "rs485-1": poll plan needs 20\.0 polls\/s but the line carries at most 9\.5 polls\/s/,
    );
    const accepted = checkLineBudget("rs485-1", LINE_9600_8E1, plan, { acceptDegradation: true });
    expect(accepted.utilisation).toBeGreaterThan(1);
    // At 115200 baud the 50 ms turnaround dominates; with a measured 5 ms the plan fits.
    expect(() => checkLineBudget("rs485-1", { ...LINE_9600_8E1, baudRate: 115200 }, plan)).toThrow(
      /17\.4 polls/,
    );
    const fast = checkLineBudget("rs485-1", { ...LINE_9600_8E1, baudRate: 115200 }, plan, {
      turnaroundMs: 5,
    });
    expect(fast.utilisation).toBeLessThan(1);
  });

  it("plans with the slowest slave's turnaround: an LV-4 (80 ms) on an MFS-8 bus (50 ms)", () => {
    const mfs8 = { perSecond: 1, readCounts: [14], turnaroundMs: 50 };
    const lv4 = { perSecond: 1, readCounts: [12], turnaroundMs: 80 };
    expect(planTurnaroundMs([mfs8])).toBe(50);
    expect(planTurnaroundMs([mfs8, lv4])).toBe(80);
    expect(planTurnaroundMs([{ perSecond: 1, readCounts: [14] }])).toBe(50);
    const plan = [...Array.from({ length: 6 }, () => mfs8), lv4];
    expect(checkLineBudget("rs485-1", LINE_9600_8E1, plan).turnaroundMs).toBe(80);
    // 8 polls/s fit with 50 ms (about 9.5/s) but not with the LV-4's 80 ms.
    expect(() => checkLineBudget("rs485-1", LINE_9600_8E1, [...plan, mfs8])).toThrow(LineBudgetError);
    // A measured figure in the config wins.
    expect(checkLineBudget("rs485-1", LINE_9600_8E1, plan, { turnaroundMs: 20 }).turnaroundMs).toBe(20);
  });

  it("the poller refuses to start an over-budget plan unless degradation is accepted", async () => {
    const { bus, clock } = await rtuRig([1]);
    const make = (acceptDegradation: boolean) => {
      const p = new ModbusPoller({
        bus,
        clock,
        onResult: () => {},
        line: { settings: LINE_9600_8E1, acceptDegradation },
      });
      for (let i = 0; i < 12; i++)
        p.add({ id: `d${i}`, unit: 1, fn: 3, periodMs: 1000, ranges: [{ address: 0, count: 14 }] });
      return p;
    };
    expect(() => make(false).start()).toThrow(LineBudgetError);
    const degraded = make(true);
    degraded.start();
    expect(degraded.stats().budget?.demandPollsPerSec).toBe(12);
    degraded.stop();
  });
});
