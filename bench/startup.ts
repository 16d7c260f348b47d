/**
 * Start-up benchmark (the journal's start-up target): "Start-up with 10,000 open alerts and 1,000,000 journal
 * records takes under 3 s".
 *
 *   1. bench/startup-data.ts writes the journal: 10,000 devices, one open alert each, written by
 *      the gateway's alert engine and state recorder, then last-seen and alert updates up to
 *      1,000,000 records, no snapshot in between (the most a start can ever have to replay: the
 *      gateway snapshots every `storage.compactAfter`, 32 MiB by default).
 *   2. A fresh process (bench/startup-child.ts) runs Gateway.start() on it with the default
 *      storage settings and reports the time to listening with every alert restored and
 *      republished, and the journal's own replay time. That start begins a snapshot (more than
 *      compactAfter was replayed); the child waits for it before stopping.
 *   3. A second fresh process starts on the same directory: snapshot + short tail.
 *   Baseline: the same gateway (same 10,000 devices) started on an empty data directory.
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { STARTUP_NODE_FLAGS, startupEnv } from "../gateway/heap.js";
import { waitForQuiet } from "./machine-load.js";
import { askChild } from "./one-command-child.js";
import type { StartupChildCommand, StartupChildResult } from "./startup-child.js";
import { buildStartupJournal } from "./startup-data.js";

export const STARTUP_TARGET_MS = 3_000;

export interface StartupBenchOptions {
  alerts: number;
  records: number;
  /** Parent of the temporary data dir (default the OS temp dir: a real disk here, not tmpfs). */
  tmp?: string;
  /** Before each start, wait (max 20 s) until other processes use less than this % of a core. */
  quietPct: number;
  /** `node --cpu-prof` for the start-up children, profiles into this directory. */
  profileDir?: string;
}

export interface StartupBenchResult {
  alerts: number;
  journal: { records: number; bytes: number; segments: number; buildMs: number };
  /** Baseline: the same site on an empty data directory (nothing to restore). */
  empty: StartupChildResult & { otherPct: number };
  /** No snapshot: every record replayed; `otherPct`: other processes' CPU when it began. */
  cold: StartupChildResult & { otherPct: number };
  /** After the snapshot the first start wrote. */
  afterSnapshot: StartupChildResult & { otherPct: number };
  targetMs: number;
  pass: boolean;
}

async function startChild(
  cmd: StartupChildCommand,
  o: StartupBenchOptions,
): Promise<StartupChildResult & { otherPct: number }> {
  const quiet = await waitForQuiet(o.quietPct, 20_000);
  const script = fileURLToPath(new URL("./startup-child.js", import.meta.url));
  const child = fork(script, [], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    env: startupEnv(),
    execArgv: [
      ...STARTUP_NODE_FLAGS,
      // Lets the child report memory after a full GC too (it calls gc() only after its measurement).
      "--expose-gc",
      ...(o.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.profileDir}`] : []),
    ],
  });
  const r = await askChild<StartupChildCommand, StartupChildResult>(child, cmd, 300_000);
  return { ...r, otherPct: quiet.otherPct };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function runStartupBench(
  o: StartupBenchOptions,
  log: (line: string) => void,
): Promise<StartupBenchResult> {
  const dir = mkdtempSync(path.join(o.tmp ?? tmpdir(), "linli-startup-"));
  const emptyDir = mkdtempSync(path.join(o.tmp ?? tmpdir(), "linli-startup-empty-"));
  try {
    log(`start-up benchmark: ${o.alerts} open alerts, ${o.records} journal records`);
    const empty = await startChild({ dir: emptyDir, devices: o.alerts, waitSnapshot: false }, o);
    const data = buildStartupJournal({ dir, devices: o.alerts, records: o.records });
    log(
      `  journal written in ${s(data.ms)}: ${data.records} records, ${(data.bytesOnDisk / 1048576).toFixed(0)} MB ` +
        `in ${data.segments} segments, ${data.snapshots} snapshots, ${data.alerts.length} open alerts`,
    );
    const cold = await startChild({ dir, devices: o.alerts, waitSnapshot: true }, o);
    const afterSnapshot = await startChild({ dir, devices: o.alerts, waitSnapshot: false }, o);
    const row = (name: string, r: StartupChildResult & { otherPct: number }) =>
      log(
        `  ${name.padEnd(16)} Gateway.start() -> listening ${s(r.startMs)} (CPU ${s(r.startCpuMs)}; other load ` +
          `${r.otherPct.toFixed(0)} % of a core when it began; process start -> listening ` +
          `${s(r.sinceProcessStartMs)}); journal open ${s(r.replayMs)}: ${r.snapshotRecords} keys from the snapshot, ` +
          `${r.replayedRecords} records replayed from ${r.segments} segments, ${(r.bytesRead / 1048576).toFixed(0)} MB; ` +
          `open alerts ${r.openAlerts}, RSS ${r.rssMb.toFixed(0)} MB`,
      );
    row("empty (baseline)", empty);
    row("no snapshot", cold);
    log(
      `  ${"".padEnd(16)} the snapshot that start began was durable ${s(cold.snapshotWaitMs)} after listening`,
    );
    row("after snapshot", afterSnapshot);
    const mem = (name: string, r: StartupChildResult) => {
      const f = (m: StartupChildResult["memory"]["before"]) =>
        `RSS ${m.rss} (heap used ${m.heapUsed} of ${m.heapTotal}, external ${m.external}, array buffers ${m.arrayBuffers})`;
      log(
        `  memory MB, ${name}: before start ${f(r.memory.before)}; after start ${f(r.memory.afterStart)}` +
          (r.memory.afterGc ? `; after a full GC ${f(r.memory.afterGc)}` : ""),
      );
    };
    mem("empty", empty);
    mem("no snapshot", cold);
    mem("after snapshot", afterSnapshot);
    const restored =
      cold.openAlerts === data.alerts.length && afterSnapshot.openAlerts === data.alerts.length;
    const pass = restored && cold.startMs < STARTUP_TARGET_MS && afterSnapshot.startMs < STARTUP_TARGET_MS;
    return {
      alerts: data.alerts.length,
      journal: { records: data.records, bytes: data.bytesOnDisk, segments: data.segments, buildMs: data.ms },
      empty,
      cold,
      afterSnapshot,
      targetMs: STARTUP_TARGET_MS,
      pass,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(emptyDir, { recursive: true, force: true });
  }
}

/** The line for run.ts's target list. */
export function startupTarget(r: StartupBenchResult): { name: string; measured: string; pass: boolean } {
  return {
    name: `start-up with ${r.alerts} open alerts and ${r.journal.records} journal records < 3 s, every alert restored`,
    measured:
      `${s(r.cold.startMs)} with no snapshot (journal replay ${s(r.cold.replayMs)}), ${s(r.afterSnapshot.startMs)} ` +
      `after a snapshot, ${s(r.empty.startMs)} on an empty journal (baseline); open alerts after start ` +
      `${r.cold.openAlerts} and ${r.afterSnapshot.openAlerts} of ${r.alerts}`,
    pass: r.pass,
  };
}
