/**
 * One gateway start on an existing journal, alone in a fresh process (forked by bench/startup.ts),
 * so nothing of the generator (its heap, its page cache warmth aside) is in the measurement.
 *
 * IPC, parent -> child: { dir, devices, waitSnapshot }. child -> parent: StartupChildResult or
 * { error }. The child exits when done or when the parent goes away.
 */
import { Gateway } from "../gateway/gateway.js";
import { applyEdgeHeapSettings } from "../gateway/heap.js";
import { serveOneCommand } from "./one-command-child.js";
import { startupConfig } from "./startup-data.js";

export interface StartupChildCommand {
  dir: string;
  devices: number;
  /** Before stopping, wait (max 120 s) until the snapshot the open began (if it did) is durable. */
  waitSnapshot: boolean;
}

export interface StartupChildResult {
  /** Gateway.start() called -> resolved (listening, every alert restored and republished), ms. */
  startMs: number;
  /** CPU time (user + system) of this process during Gateway.start(), ms: less moved by other load. */
  startCpuMs: number;
  /** Process start (node boot, modules, site file of N devices) -> listening, ms. */
  sinceProcessStartMs: number;
  /** The journal's own open: snapshot load + segment replay, ms. */
  replayMs: number;
  replayedRecords: number;
  snapshotRecords: number;
  segments: number;
  bytesRead: number;
  damaged: number;
  openAlerts: number;
  restoredAlerts: number;
  restoredDevices: number;
  /** After the wait for the snapshot (waitSnapshot), else right after start. */
  compactions: number;
  snapshotWaitMs: number;
  rssMb: number;
  /** Where the memory is: before Gateway.start(), right after it, and after a full GC (MB). */
  memory: { before: MemoryFigures; afterStart: MemoryFigures; afterGc: MemoryFigures | null };
}

export interface MemoryFigures {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Memory of Buffers and other objects outside the V8 heap (arrayBuffers included). */
  external: number;
  arrayBuffers: number;
}

function memory(): MemoryFigures {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
  return {
    rss: mb(m.rss),
    heapUsed: mb(m.heapUsed),
    heapTotal: mb(m.heapTotal),
    external: mb(m.external),
    arrayBuffers: mb(m.arrayBuffers),
  };
}

async function run(cmd: StartupChildCommand): Promise<StartupChildResult> {
  const config = startupConfig(cmd.devices);
  const before = memory();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const gw = await Gateway.start({ config, dataDir: cmd.dir });
  const startMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const sinceProcessStartMs = performance.now();
  const rec = gw.journalRecovery();
  const openAlerts = gw.engine.openCount;
  const rssMb = process.memoryUsage().rss / 1048576;
  const afterStart = memory();
  // Only to tell live memory from garbage not collected yet (the bench child runs with --expose-gc).
  const gc = (globalThis as { gc?: () => void }).gc;
  let afterGc: MemoryFigures | null = null;
  if (gc) {
    gc();
    afterGc = memory();
  }
  let waited = 0;
  // The open begins a snapshot only when more than compactAfter was replayed.
  if (cmd.waitSnapshot && (rec?.bytes ?? 0) >= config.storage.compactAfter) {
    const w0 = performance.now();
    while ((gw.journalStats()?.compactions ?? 0) < 1 && performance.now() - w0 < 120_000)
      await new Promise((r) => setTimeout(r, 50));
    waited = performance.now() - w0;
  }
  const compactions = gw.journalStats()?.compactions ?? 0;
  await gw.stop();
  return {
    startMs,
    startCpuMs: (cpu.user + cpu.system) / 1000,
    sinceProcessStartMs,
    replayMs: rec?.ms ?? Number.NaN,
    replayedRecords: rec?.records ?? 0,
    snapshotRecords: rec?.snapshotRecords ?? 0,
    segments: rec?.segments ?? 0,
    bytesRead: rec?.bytes ?? 0,
    damaged: rec?.damaged ?? 0,
    openAlerts,
    restoredAlerts: gw.recovered?.report.alerts ?? 0,
    restoredDevices: gw.recovered?.report.devices ?? 0,
    compactions,
    snapshotWaitMs: waited,
    rssMb,
    memory: { before, afterStart, afterGc },
  };
}

applyEdgeHeapSettings();
serveOneCommand("bench/startup-child.js", "bench/startup.js", run);
