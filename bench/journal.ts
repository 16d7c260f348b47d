/**
 * Scenario (b'), the journal: scenario (b) with the durable journal on, sync "batch"
 * (the default: a device's PUBACK waits for the group fdatasync of the batch its message was
 * drained in), in a fresh data directory per point on the machine's disk (the OS temp dir here
 * is the root file system, not tmpfs, so fdatasync does reach the device). Run right after the
 * journal-off gateway point of the same rate, so machine drift touches both alike.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type PointResult, pointOptions, runPoint } from "./harness.js";
import type { CommonOptions } from "./options.js";

/** What the journal may cost (docs/durability.md "Measured costs"). */
export const JOURNAL_TARGETS = {
  /** Journal-on P1 p99 at most this many times journal-off P1 p99. */
  maxP1P99Ratio: 1.3,
  /** Journal-on max sustained rate at least this share of journal-off. */
  minSustainedShare: 0.9,
} as const;

/**
 * Seconds of load per point of a journal off/on pair at `rate`: long enough for `minP1` P1 alerts
 * in the histograms (after the warm-up), never shorter than `durationS`. The ratio compares two
 * pooled p99s: at 2,000 msg/s a 10 s point holds about 180 P1 alerts, so three pairs' p99 is each
 * side's 6th slowest, and across runs of one build it read 0.83-2.26x (docs/performance.md "A P1
 * traced inside the gateway"); at 10,000/s (about 900 a point) its interval was a third as wide.
 */
export function journalPointSeconds(
  rate: number,
  o: { durationS: number; warmupS: number; alarmFraction: number },
  minP1: number,
): number {
  const p1PerSecond = rate * o.alarmFraction;
  if (minP1 <= 0 || p1PerSecond <= 0) return o.durationS;
  return Math.max(o.durationS, Math.ceil(o.warmupS + minP1 / p1PerSecond));
}

/**
 * writes "auto" (the gateway's): the journal's write(2) on the event loop at the end of a turn while
 * no fdatasync runs, on the libuv pool while one does; "pool": always on the pool (`--journal-writes
 * pool`); "loop": the earliest design, inside put() (`--journal-loop` measures it in the same run).
 */
export async function runJournal(
  rate: number,
  c: CommonOptions,
  writes: "auto" | "pool" | "loop" = c.journalWrites ?? "auto",
): Promise<PointResult> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "linli-bench-journal-"));
  try {
    const scenario = writes === "loop" ? "journal-loop" : "journal";
    return await runPoint({
      ...pointOptions(scenario, "gateway", rate, c),
      dataDir,
      journalWrites: writes,
      ...(c.journalSync === undefined ? {} : { journalSync: c.journalSync }),
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
