/**
 * The machine's load, for the other engineers' runs that share it: CPU used
 * by everything else, and a bounded wait for a quiet machine before a point.
 */
import { readFileSync } from "node:fs";

/**
 * Busy and total CPU time of the whole machine, and the part of busy that the hypervisor took
 * (steal), ms (Linux /proc/stat; zeros elsewhere).
 *
 * Steal is time our virtual CPUs wanted to run and the host ran something else: on this machine
 * 0-3 % of a core in quiet hours, 20-90 % of a core for seconds at a time in others, with no other
 * process running. It counts as busy, so most of it shows as "other load" (busy minus the bench's
 * processes); the rest as the bench's processes using more CPU than they did (a process's times
 * are scaled to its scheduler runtime, which counts a stolen slice as running). Reported on its
 * own so that a disturbed point says whether other processes or the host disturbed it.
 */
export function machineCpu(): { busyMs: number; totalMs: number; stealMs: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // without guest (already in user)
    const tick = 10; // USER_HZ = 100 on Linux
    return { busyMs: (total - idle) * tick, totalMs: total * tick, stealMs: (f[7] ?? 0) * tick };
  } catch {
    return { busyMs: 0, totalMs: 0, stealMs: 0 };
  }
}

/** CPU used by processes other than the bench, % of one core, over `ms`. */
export async function otherLoad(ms: number): Promise<number> {
  const a = machineCpu();
  const own0 = process.cpuUsage();
  const t = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineCpu();
  const own = process.cpuUsage(own0);
  const ownMs = (own.user + own.system) / 1000;
  const wall = performance.now() - t;
  return wall > 0 ? Math.max(0, ((b.busyMs - a.busyMs - ownMs) / wall) * 100) : 0;
}

/**
 * Other engineers' test runs share this 2-core machine: before a point, wait
 * (bounded) until the rest of the machine uses less than `maxPct` of a core.
 */
export async function waitForQuiet(
  maxPct: number,
  maxWaitMs: number,
): Promise<{ waitedMs: number; otherPct: number }> {
  const t = performance.now();
  let other = await otherLoad(500);
  while (other > maxPct && performance.now() - t < maxWaitMs) other = await otherLoad(500);
  return { waitedMs: performance.now() - t, otherPct: other };
}
