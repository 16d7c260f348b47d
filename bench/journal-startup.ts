/**
 * Journal start-up and snapshot cost (the journal's start-up target: "start-up with 10,000 open
 * alerts and 1,000,000 journal records takes under 3 s").
 *
 *   npm run bench:journal        (= npm run build && node dist/bench/journal-startup.js)
 *   options: --records 1000000 --keys 10000 --runs 3 --dir /path/on/the/target/disk
 *
 * Prints, for a journal holding --records records written over --keys keys:
 *   - start-up (Journal.open) with the default compaction (what a gateway sees), best and worst of --runs
 *   - start-up with compaction off: every one of the records replayed (the bound if snapshots failed)
 *   - the event loop's longest stall while a snapshot of the live map is written, from
 *     monitorEventLoopDelay, with writes going on meanwhile
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Journal, type JournalOptions } from "../gateway/journal/journal.js";

const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "1000000" },
    keys: { type: "string", default: "10000" },
    runs: { type: "string", default: "3" },
    dir: { type: "string", default: os.tmpdir() },
  },
});
const RECORDS = Number(args.records);
const KEYS = Number(args.keys);
const RUNS = Math.max(1, Number(args.runs));

const value = (i: number) => ({
  id: `a-${i % KEYS}`,
  device: `pendant-${i % KEYS}`,
  state: i % 3 ? "open" : "acked",
  level: i % 4,
  escalateAt: 1.7e12 + i,
});

async function build(dir: string, opts: Partial<JournalOptions>): Promise<void> {
  const j = Journal.open({ dir, ...opts });
  for (let i = 0; i < RECORDS; i++) {
    j.put(`alert/${i % KEYS}`, value(i));
    if (i % 10_000 === 9_999) await new Promise<void>((r) => j.commit(r));
  }
  await j.sync();
  j.close();
}

/** Wall time, and CPU time (user + system) of this process: the work, whatever the machine's load. */
function timeOpen(dir: string, opts: Partial<JournalOptions>): { ms: number; cpuMs: number; j: Journal } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const j = Journal.open({ dir, ...opts });
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, j };
}

async function startup(label: string, opts: Partial<JournalOptions>): Promise<void> {
  const dir = mkdtempSync(path.join(args.dir!, "linli-journal-bench-"));
  try {
    const tb = performance.now();
    await build(dir, opts);
    const buildS = (performance.now() - tb) / 1000;
    const times: number[] = [];
    const cpu: number[] = [];
    let detail = "";
    for (let r = 0; r < RUNS; r++) {
      const { ms, cpuMs, j } = timeOpen(dir, opts);
      times.push(ms);
      cpu.push(cpuMs);
      const rec = j.recovery;
      detail = `${j.size} live keys; snapshot ${rec.snapshotRecords} keys + ${rec.records.toLocaleString("en")} records from ${rec.segments} segments, ${(rec.bytes / 1e6).toFixed(1)} MB read`;
      if (j.size !== KEYS) throw new Error(`expected ${KEYS} live keys, found ${j.size}`);
      j.close();
    }
    times.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    console.log(
      `start-up, ${label}: wall best ${times[0]!.toFixed(0)} ms, worst ${times[times.length - 1]!.toFixed(0)} ms; ` +
        `CPU best ${cpu[0]!.toFixed(0)} ms, worst ${cpu[cpu.length - 1]!.toFixed(0)} ms over ${RUNS} runs (${detail}; built in ${buildS.toFixed(1)} s)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function snapshotStall(keys: number): Promise<void> {
  const dir = mkdtempSync(path.join(args.dir!, "linli-journal-bench-"));
  try {
    const seg = 4 * 1024 * 1024;
    const j = Journal.open({ dir, segmentBytes: seg, compactAfterBytes: seg });
    for (let i = 0; i < keys; i++) j.put(`alert/${i}`, value(i));
    await j.sync();
    const before = j.stats().compactions;
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    // Keep writing (as the gateway does) until a compaction has come and gone.
    let i = 0;
    const t0 = performance.now();
    while (j.stats().compactions === before) {
      for (let k = 0; k < 200; k++, i++) j.put(`alert/${i % keys}`, value(i));
      await new Promise<void>((r) => j.commit(r));
      if (performance.now() - t0 > 120_000) throw new Error("no compaction within 120 s");
    }
    h.disable();
    console.log(
      `snapshot of ${keys.toLocaleString("en")} live keys while writing: longest event-loop stall ${(h.max / 1e6).toFixed(1)} ms ` +
        `(p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms), longest framing slice ${j.stats().snapshotMaxSliceMs.toFixed(1)} ms`,
    );
    j.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(
    `journal start-up bench: ${RECORDS.toLocaleString("en")} records over ${KEYS.toLocaleString("en")} keys in ${args.dir}; node ${process.version}; ` +
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} on ${os.cpus().length} cores`,
  );
  await startup("default compaction (32 MiB)", {});
  await startup("compaction off (every record replayed)", { compactAfterBytes: 1e12, quotaBytes: 1e12 });
  await snapshotStall(KEYS);
  await snapshotStall(100_000);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
