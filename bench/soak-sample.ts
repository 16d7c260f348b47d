/**
 * One look at a running gateway from outside, as a site's monitoring would take it: its resident
 * memory and open files from /proc (Linux), its data directory's size on disk, and from its own
 * /metrics the V8 heap used, the open alerts and the journal's compactions (docs/metrics.md).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { metricSum, readMetricsText } from "../sim/gateway-metrics.js";

export interface SoakSample {
  /** Seconds since the load started. */
  tS: number;
  /** VmRSS, MB. */
  rssMb: number;
  /** `nodejs_heap_size_used_bytes`, MB; null when /metrics could not be read. */
  heapUsedMb: number | null;
  /** Entries of /proc/PID/fd: sockets, journal files, pipes. */
  fds: number;
  /** The data directory's files (journal segments, snapshots, the pid file, the last configuration), bytes. */
  journalBytes: number;
  journalFiles: number;
  /** `linli_alerts_open` over every state and priority; null when /metrics could not be read. */
  openAlerts: number | null;
  /** `linli_journal_compactions_total` (snapshots taken since start); null when not read. */
  compactions: number | null;
  /** Why /metrics could not be read, if so. */
  metricsError?: string;
}

const MB = 1024 * 1024;

/** VmRSS of `pid` in MB; throws when the process is gone. */
export function vmRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no VmRSS (a zombie?)`);
  return Number(m[1]) / 1024;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Bytes and regular files under `dir`, recursively; files removed meanwhile (a compaction) are skipped. */
export function dirUsage(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const sub = dirUsage(p);
      bytes += sub.bytes;
      files += sub.files;
    } else if (e.isFile()) {
      try {
        bytes += statSync(p).size;
        files++;
      } catch {
        // deleted between the listing and the stat
      }
    }
  }
  return { bytes, files };
}

export async function sampleGateway(
  pid: number,
  dataDir: string,
  metricsUrl: string,
  tS: number,
): Promise<SoakSample> {
  const text = await readMetricsText(metricsUrl);
  const rssMb = vmRssMb(pid);
  const fds = openFds(pid);
  const { bytes, files } = dirUsage(dataDir);
  const read = (name: string) => (typeof text === "string" ? metricSum(text, name) : null);
  const heap = read("nodejs_heap_size_used_bytes");
  return {
    tS,
    rssMb,
    heapUsedMb: heap === null ? null : heap / MB,
    fds,
    journalBytes: bytes,
    journalFiles: files,
    // A gauge with no label set yet: no alert has been open since the start.
    openAlerts: typeof text === "string" ? (metricSum(text, "linli_alerts_open") ?? 0) : null,
    compactions: read("linli_journal_compactions_total"),
    ...(typeof text === "string" ? {} : { metricsError: text.error }),
  };
}
