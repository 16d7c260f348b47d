/**
 * Poll scheduler for one bus: deadline-based (next = previous deadline +
 * period, so polls never drift; missed deadlines are skipped and counted,
 * not bunched), phase offsets so devices with the same period do not all fire
 * at once (ThingsBoard gateway #799), contiguous registers coalesced into one
 * read (EdgeX #629), and admission control: a poll still pending is never
 * queued again (node-red-contrib-modbus #168). Request frames are built once
 * per device and reused for every poll.
 *
 * "When to poll next" is this module's only timer; calling a device lost after
 * missed polls is the gateway's business (DESIGN: timers with one job each).
 */
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import type { SerialSettings } from "../links/serial.js";
import { checkLineBudget, type LineBudget, type PlannedPoll } from "./budget.js";
import type { ModbusBus, ModbusFailure, PreparedRequest } from "./bus.js";
import { MAX_READ_REGISTERS } from "./pdu.js";

export interface RegisterRange {
  address: number;
  count: number;
}

export interface PollDevice {
  /** Gateway device id; names the device in results. */
  id: string;
  unit: number;
  /** 3 holding registers, 4 input registers. */
  fn: 3 | 4;
  periodMs: number;
  /** The slave's turnaround by its datasheet, ms (the line budget plans with the bus's largest). */
  turnaroundMs?: number;
  /** Offset of the first deadline from start(); default: devices spread evenly over their period. */
  phaseMs?: number;
  /** Registers wanted; overlapping and adjacent ranges are merged into reads of at most 125. */
  ranges: readonly RegisterRange[];
  /**
   * Also merge ranges separated by at most this many unwanted registers (one read
   * instead of several; only for devices that answer reads of the registers between). Default 0.
   */
  maxGap?: number;
}

export interface PollBlock {
  address: number;
  words: Uint16Array;
}

interface PollTimes {
  device: string;
  unit: number;
  /** Monotonic ms: the deadline, when the first read started on the wire, when the poll finished. */
  deadline: number;
  startedAt: number;
  completedAt: number;
  /** Wall-clock epoch ms when the poll finished (stamp for readings). */
  at: number;
}

export type PollResult =
  | (PollTimes & { ok: true; blocks: PollBlock[] })
  | (PollTimes & {
      ok: false;
      failure: ModbusFailure /** Blocks read before the failure. */;
      blocks: PollBlock[];
    });

export interface LinePlanOptions {
  settings: SerialSettings;
  /** Slave turnaround for the budget, ms (a measured figure). Default: the largest of the devices' own. */
  turnaroundMs?: number;
  /** Run a plan that exceeds the line's capacity (polls will be late and skipped). */
  acceptDegradation?: boolean;
}

export interface PollerOptions {
  bus: ModbusBus;
  clock?: Clock;
  onResult: (result: PollResult) => void;
  /** For serial buses: checked at start(); an over-budget plan is refused (LineBudgetError). */
  line?: LinePlanOptions;
}

export interface PollerStats {
  bus: string;
  devices: number;
  /** Polls handed to the bus. */
  issued: number;
  ok: number;
  failed: number;
  /** Deadlines passed over because the device's previous poll was still pending. */
  skippedPending: number;
  /** Deadlines passed over because the scheduler woke up after the next one was already due. */
  missedDeadlines: number;
  plannedPollsPerSec: number;
  /** Successful polls per second since start(). */
  achievedPollsPerSec: number;
  /** Lateness = first read on the wire - deadline, ms, over the last LATENESS_SAMPLES polls. */
  lateness: { mean: number; p99: number; max: number; samples: number };
  budget: LineBudget | undefined;
}

/** Lateness samples kept for percentiles (a bounded ring; older samples are overwritten). */
export const LATENESS_SAMPLES = 1024;

interface Scheduled {
  device: PollDevice;
  reads: { address: number; count: number; prep: PreparedRequest; key: string }[];
  phaseMs: number;
  deadline: number;
  pending: boolean;
  /** remove()d: a poll of it still in flight reports nothing (the id may name another device by then). */
  removed: boolean;
}

/**
 * Merges overlapping and adjacent ranges (and, with maxGap, ranges at most
 * maxGap registers apart), then splits into reads of at most `max` registers.
 */
export function coalesceRanges(
  ranges: readonly RegisterRange[],
  max = MAX_READ_REGISTERS,
  maxGap = 0,
): RegisterRange[] {
  const sorted = [...ranges].filter((r) => r.count > 0).sort((a, b) => a.address - b.address);
  const merged: RegisterRange[] = [];
  for (const r of sorted) {
    const last = merged.at(-1);
    if (last && r.address <= last.address + last.count + maxGap) {
      last.count = Math.max(last.count, r.address + r.count - last.address);
    } else {
      merged.push({ address: r.address, count: r.count });
    }
  }
  const out: RegisterRange[] = [];
  for (const m of merged) {
    for (let a = m.address; a < m.address + m.count; a += max)
      out.push({ address: a, count: Math.min(max, m.address + m.count - a) });
  }
  return out;
}

export class ModbusPoller {
  private readonly bus: ModbusBus;
  private readonly clock: Clock;
  private readonly onResult: (r: PollResult) => void;
  private readonly items: Scheduled[] = [];
  /** Devices added so far: each one's bus keys are its own, not those of a removed one of its id still in flight. */
  private addedCount = 0;
  private timer: ClockTimer | undefined;
  private running = false;
  private startedAt = 0;
  private budget: LineBudget | undefined;
  private readonly late = new Float64Array(LATENESS_SAMPLES);
  private lateCount = 0;
  private readonly counters = { issued: 0, ok: 0, failed: 0, skippedPending: 0, missedDeadlines: 0 };

  constructor(private readonly options: PollerOptions) {
    this.bus = options.bus;
    this.clock = options.clock ?? systemClock;
    this.onResult = options.onResult;
  }

  /** Adds a device (before or after start). Throws on an invalid plan (e.g. period <= 0). */
  add(device: PollDevice): void {
    if (!(device.periodMs > 0)) throw new RangeError(`device ${device.id}: period must be > 0`);
    if (this.items.some((s) => s.device.id === device.id))
      throw new Error(`device ${device.id} already polled`);
    const added = this.addedCount++;
    const reads = coalesceRanges(device.ranges, MAX_READ_REGISTERS, device.maxGap ?? 0).map((r, i) => ({
      ...r,
      prep: this.bus.prepare({ fn: device.fn, unit: device.unit, address: r.address, count: r.count }),
      key: `${device.id}#${added}.${i}`,
    }));
    if (reads.length === 0) throw new Error(`device ${device.id}: no registers to poll`);
    const item: Scheduled = {
      device,
      reads,
      phaseMs: device.phaseMs ?? -1,
      deadline: 0,
      pending: false,
      removed: false,
    };
    this.items.push(item);
    if (this.running) {
      item.deadline = this.clock.monotonic() + Math.max(0, item.phaseMs);
      this.arm();
    }
  }

  remove(id: string): void {
    const i = this.items.findIndex((s) => s.device.id === id);
    if (i < 0) return;
    (this.items[i] as Scheduled).removed = true;
    this.items.splice(i, 1);
  }

  /** The plan as the line budget sees it. */
  plan(): PlannedPoll[] {
    return this.items.map((s) => ({
      perSecond: 1000 / s.device.periodMs,
      readCounts: s.reads.map((r) => r.count),
      ...(s.device.turnaroundMs !== undefined ? { turnaroundMs: s.device.turnaroundMs } : {}),
    }));
  }

  /** Checks the line budget (serial buses) and starts the schedule. Throws LineBudgetError. */
  start(): void {
    if (this.running) return;
    const line = this.options.line;
    if (line) {
      this.budget = checkLineBudget(this.bus.name, line.settings, this.plan(), {
        ...(line.turnaroundMs !== undefined ? { turnaroundMs: line.turnaroundMs } : {}),
        acceptDegradation: line.acceptDegradation ?? false,
      });
    }
    this.running = true;
    const now = this.clock.monotonic();
    this.startedAt = now;
    // Spread devices without an explicit phase evenly over their period.
    const auto = this.items.filter((s) => s.phaseMs < 0);
    auto.forEach((s, i) => {
      s.phaseMs = (i * s.device.periodMs) / auto.length;
    });
    for (const s of this.items) s.deadline = now + s.phaseMs;
    this.arm();
  }

  stop(): void {
    this.running = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Starts the statistics afresh (e.g. after a warm-up): counters, achieved rate and lateness. */
  resetStats(): void {
    this.lateCount = 0;
    for (const k of Object.keys(this.counters) as (keyof typeof this.counters)[]) this.counters[k] = 0;
    if (this.running) this.startedAt = this.clock.monotonic();
  }

  /** The lateness samples behind stats().lateness (ms, at most LATENESS_SAMPLES, unordered). */
  latenessSamples(): Float64Array {
    return this.late.slice(0, Math.min(this.lateCount, LATENESS_SAMPLES));
  }

  stats(): PollerStats {
    const elapsedS = this.running || this.startedAt ? (this.clock.monotonic() - this.startedAt) / 1000 : 0;
    const n = Math.min(this.lateCount, LATENESS_SAMPLES);
    const samples = Array.from(this.late.subarray(0, n)).sort((a, b) => a - b);
    const sum = samples.reduce((a, b) => a + b, 0);
    return {
      bus: this.bus.name,
      devices: this.items.length,
      ...this.counters,
      plannedPollsPerSec: this.items.reduce((a, s) => a + 1000 / s.device.periodMs, 0),
      achievedPollsPerSec: elapsedS > 0 ? this.counters.ok / elapsedS : 0,
      lateness: {
        mean: n ? sum / n : 0,
        p99: n ? samples[Math.min(n - 1, Math.floor(n * 0.99))]! : 0,
        max: n ? samples[n - 1]! : 0,
        samples: n,
      },
      budget: this.budget,
    };
  }

  private arm(): void {
    if (!this.running) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.items) if (s.deadline < next) next = s.deadline;
    if (next === Number.POSITIVE_INFINITY) return;
    this.timer = this.clock.setTimeout(() => this.tick(), Math.max(0, next - this.clock.monotonic()));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const now = this.clock.monotonic();
    for (const s of this.items) {
      if (s.deadline > now) continue;
      const deadline = s.deadline;
      // No drift: the next deadline is computed from the previous one, never from "now".
      s.deadline += s.device.periodMs;
      while (s.deadline <= now) {
        s.deadline += s.device.periodMs;
        this.counters.missedDeadlines++;
      }
      if (s.pending) {
        this.counters.skippedPending++;
        continue;
      }
      void this.poll(s, deadline);
    }
    this.arm();
  }

  private async poll(s: Scheduled, deadline: number): Promise<void> {
    s.pending = true;
    this.counters.issued++;
    const blocks: PollBlock[] = [];
    let startedAt: number | undefined;
    let failure: ModbusFailure | undefined;
    for (const read of s.reads) {
      const r = await this.bus.submit(read.prep, { key: read.key });
      startedAt ??= r.startedAt ?? r.completedAt;
      if (!r.ok) {
        failure = r.failure;
        break;
      }
      if (r.words) blocks.push({ address: read.address, words: r.words });
    }
    s.pending = false;
    // Removed meanwhile (a reload): a model change re-adds the id with other registers, which this
    // reply's blocks would be decoded as; a unit or bus change would take another slave's reply.
    if (s.removed) return;
    const started = startedAt ?? this.clock.monotonic();
    this.late[this.lateCount % LATENESS_SAMPLES] = Math.max(0, started - deadline);
    this.lateCount++;
    const times: PollTimes = {
      device: s.device.id,
      unit: s.device.unit,
      deadline,
      startedAt: started,
      completedAt: this.clock.monotonic(),
      at: this.clock.now(),
    };
    if (failure) this.counters.failed++;
    else this.counters.ok++;
    const result: PollResult = failure
      ? { ...times, ok: false, failure, blocks }
      : { ...times, ok: true, blocks };
    try {
      this.onResult(result);
    } catch {
      // A consumer's bug must not stop the schedule; the consumer reports its own errors.
    }
  }
}
