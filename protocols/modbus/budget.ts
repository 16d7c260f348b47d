/**
 * Line budget of a serial bus: how many transactions per second the wire can
 * carry, and a check that refuses a poll plan needing more (DESIGN "Polling":
 * a plan that asks for more than the bus can carry must be reported, not
 * silently fall behind).
 *
 * One transaction = request frame + reply frame on the wire, two silent
 * intervals (one before each frame, MB serial V1.02 §2.5.1.1), and the slave's
 * turnaround. Turnaround assumption: the largest of the slaves' own on the bus
 * (their datasheets: MFS-8 "answers within 50 ms", LV-4 "within 80 ms"; 50 ms for
 * a slave that states none); configure a measured figure to plan closer to the
 * wire (with 0 ms the datasheet's "about 18 reads per second" appears).
 */
import { bitsPerChar, type SerialSettings } from "../links/serial.js";
import { MAX_READ_REGISTERS } from "./pdu.js";
import { silentIntervalMs } from "./rtu.js";

export const DEFAULT_TURNAROUND_MS = 50;

export interface PlannedPoll {
  /** Polls per second this device asks for (1000 / period). */
  perSecond: number;
  /** One entry per read a poll makes: register counts after coalescing. */
  readCounts: readonly number[];
  /** The slave's turnaround by its datasheet, ms; omitted: DEFAULT_TURNAROUND_MS. */
  turnaroundMs?: number;
}

/** The bus's turnaround: its slowest slave's (a single turnaround stands for the whole line). */
export function planTurnaroundMs(plan: readonly PlannedPoll[]): number {
  if (plan.length === 0) return DEFAULT_TURNAROUND_MS;
  return Math.max(...plan.map((p) => p.turnaroundMs ?? DEFAULT_TURNAROUND_MS));
}

export interface LineBudget {
  bus: string;
  baudRate: number;
  bitsPerChar: number;
  turnaroundMs: number;
  /** Device polls per second the plan asks for. */
  demandPollsPerSec: number;
  /** Device polls per second the line could carry with the same mix of reads. */
  capacityPollsPerSec: number;
  /** Share of the line's time the plan needs (over 1 means it cannot be met). */
  utilisation: number;
}

export class LineBudgetError extends Error {
  constructor(readonly budget: LineBudget) {
    super(
      `bus "${budget.bus}": poll plan needs ${budget.demandPollsPerSec.toFixed(1)} polls/s but the line carries at most ` +
        `${budget.capacityPollsPerSec.toFixed(1)} polls/s (${budget.baudRate} baud, ${budget.bitsPerChar} bits/char, ` +
        `turnaround ${budget.turnaroundMs} ms); lengthen poll periods, split the bus, or set acceptDegradation`,
    );
    this.name = "LineBudgetError";
  }
}

/** Wire time of one read transaction of `count` registers, ms (RTU: request 8 bytes, reply 5 + 2n). */
export function readTransactionMs(
  line: SerialSettings,
  count: number,
  turnaroundMs: number = DEFAULT_TURNAROUND_MS,
): number {
  const bpc = bitsPerChar(line);
  const bytes = 8 + 5 + 2 * count;
  return (bytes * bpc * 1000) / line.baudRate + 2 * silentIntervalMs(line.baudRate, bpc) + turnaroundMs;
}

/** Reads of at most 125 registers per second the line carries (e.g. 14 registers at 9600 8E1). */
export function lineCapacityReadsPerSec(
  line: SerialSettings,
  count: number,
  turnaroundMs: number = DEFAULT_TURNAROUND_MS,
): number {
  return 1000 / readTransactionMs(line, Math.min(count, MAX_READ_REGISTERS), turnaroundMs);
}

export function lineBudget(
  bus: string,
  line: SerialSettings,
  plan: readonly PlannedPoll[],
  turnaroundMs: number = planTurnaroundMs(plan),
): LineBudget {
  let demand = 0;
  let busyMsPerSec = 0;
  for (const p of plan) {
    demand += p.perSecond;
    for (const count of p.readCounts)
      busyMsPerSec += p.perSecond * readTransactionMs(line, count, turnaroundMs);
  }
  const utilisation = busyMsPerSec / 1000;
  return {
    bus,
    baudRate: line.baudRate,
    bitsPerChar: bitsPerChar(line),
    turnaroundMs,
    demandPollsPerSec: demand,
    capacityPollsPerSec: utilisation > 0 ? demand / utilisation : Number.POSITIVE_INFINITY,
    utilisation,
  };
}

/** Throws LineBudgetError when the plan needs more than the line carries, unless degradation is accepted. */
export function checkLineBudget(
  bus: string,
  line: SerialSettings,
  plan: readonly PlannedPoll[],
  options: { turnaroundMs?: number; acceptDegradation?: boolean } = {},
): LineBudget {
  const budget = lineBudget(bus, line, plan, options.turnaroundMs ?? planTurnaroundMs(plan));
  if (budget.utilisation > 1 && !options.acceptDegradation) throw new LineBudgetError(budget);
  return budget;
}
