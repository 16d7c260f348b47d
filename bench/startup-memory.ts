/**
 * Start-up memory against the edge budget (150 MB RSS with 10,000 devices): docs/durability.md,
 * "Start-up memory" and its second to fourth looks.
 *
 *   npm run bench:startup-memory
 *   options: --devices 10000 --records 100000 --seconds 30 --runs 3 --age-min 16 --trim both|on|off
 *
 * Per start, a journal written just before by the gateway's own alert engine and recorder
 * (bench/startup-data.ts), and a fresh process with the gateway's flags (bench/startup-memory-child.ts):
 *   - fresh: written just now (no escalation due at start): the same-run baseline;
 *   - aged: written with the clock --age-min minutes back: the P1 escalations fall due at start and
 *     the silent devices raise DEVICE_LOST (15,000 open alerts with 10,000 devices);
 * each with the gateway's malloc trim (gateway/malloc-trim.ts) on and, with `--trim both`, off.
 * Runs interleave the four starts, in a different order each run. Prints RSS right after the
 * start, the peak, the figures 20 s after and after --seconds (no GC forced: what a site has), once
 * settled (full GCs forced then, as V8's memory reducer does once the start's work is over: on a
 * loaded machine that comes late), then the medians and the aged start's settled RSS against the
 * budget and the fresh start.
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { STARTUP_NODE_FLAGS, startupEnv } from "../gateway/heap.js";
import { askChild } from "./one-command-child.js";
import { buildStartupJournal } from "./startup-data.js";
import type { StartupMemoryCommand, StartupMemoryResult } from "./startup-memory-child.js";

/** Issue 4's edge budget: RSS with 10,000 devices, MB. */
export const EDGE_BUDGET_MB = 150;

type Journal = "fresh" | "aged";
interface Start {
  journal: Journal;
  trim: boolean;
}

function startChild(cmd: StartupMemoryCommand): Promise<StartupMemoryResult> {
  const script = fileURLToPath(new URL("./startup-memory-child.js", import.meta.url));
  const child = fork(script, [], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    env: startupEnv(),
    // --expose-gc: the child forces full GCs for its settled reading only, after the others.
    execArgv: [...STARTUP_NODE_FLAGS, "--expose-gc"],
  });
  return askChild<StartupMemoryCommand, StartupMemoryResult>(child, cmd, 120_000 + cmd.seconds * 1000);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
};
const f1 = (n: number) => n.toFixed(1);
/** RSS 20 s after the start (the third look's figure), or at the end of a shorter run. */
const at20 = (r: StartupMemoryResult): number => r.rssEachSecond[19] ?? r.rssEnd;

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      devices: { type: "string", default: "10000" },
      records: { type: "string", default: "100000" },
      seconds: { type: "string", default: "30" },
      runs: { type: "string", default: "3" },
      "age-min": { type: "string", default: "16" },
      trim: { type: "string", default: "both" },
      tmp: { type: "string", default: tmpdir() },
    },
  });
  const devices = Number(a.devices);
  const records = Number(a.records);
  const seconds = Number(a.seconds);
  const runs = Math.max(1, Number(a.runs));
  const ageMs = Number(a["age-min"]) * 60_000;
  const trims = a.trim === "on" ? [true] : a.trim === "off" ? [false] : [true, false];
  const starts: Start[] = [];
  for (const trim of trims) for (const journal of ["fresh", "aged"] as const) starts.push({ journal, trim });
  const label = (s: Start) => `${s.journal} trim ${s.trim ? "on " : "off"}`;
  console.log(
    `start-up memory: ${devices} devices, one open alert each, ${records} journal records; aged = written ` +
      `${a["age-min"]} min before; RSS sampled once a second for ${seconds} s, no GC forced; ${runs} runs, interleaved`,
  );
  const results = new Map<string, StartupMemoryResult[]>();
  for (let run = 0; run < runs; run++) {
    // A different order each run: a drift of the machine's load does not always favour one start.
    const order = run % 2 === 0 ? starts : [...starts].reverse();
    for (const s of order) {
      const dir = mkdtempSync(path.join(a.tmp, "linli-startup-memory-"));
      try {
        buildStartupJournal({ dir, devices, records, ageMs: s.journal === "aged" ? ageMs : 0 });
        const r = await startChild({ dir, devices, seconds, trim: s.trim });
        results.set(label(s), [...(results.get(label(s)) ?? []), r]);
        console.log(
          `  run ${run + 1} ${label(s)}: start ${(r.startMs / 1000).toFixed(2)} s, ${r.openAlerts} -> ` +
            `${r.openAlertsEnd} open alerts; RSS after start ${f1(r.rssAfterStart)}, peak ${f1(r.rssPeak)}, ` +
            `at 20 s ${f1(at20(r))}, at ${seconds} s ${f1(r.rssEnd)}, settled ${f1(r.rssSettled)} MB; heap ` +
            `${f1(r.heapUsed)} of ${f1(r.heapTotal)}, array buffers ${f1(r.arrayBuffers)}, malloc arena ${f1(r.arena)} MB; ` +
            `${r.malloc ? `(mallinfo2: ${f1(r.malloc.arena)} MB, ${f1(r.malloc.inUse)} in use, ${f1(r.malloc.free)} free, ${f1(r.malloc.mmapped)} mmapped) ` : ""}` +
            `full GCs at [${r.fullGcsAt.join(", ")}] s; trims ${r.trim.trims}` +
            `${s.trim && !r.trim.supported ? " (unsupported here)" : ""}` +
            `${r.trims.map((t) => `; at ${t.at} s in ${t.ms} ms arena ${f1(t.arenaBefore)} -> ${f1(t.arenaAfter)} MB`).join("")}`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  console.log(
    `medians of ${runs} (MB): RSS after start / peak / at 20 s / at ${seconds} s / settled; malloc's main arena settled (mallinfo2)`,
  );
  const med = (s: Start, k: "rssAfterStart" | "rssPeak" | "rssEnd" | "rssSettled" | "arena" | "at20") =>
    median(
      (results.get(label(s)) ?? []).map((r) =>
        k === "at20" ? at20(r) : k === "arena" ? (r.malloc?.arena ?? r.arena) : r[k],
      ),
    );
  for (const s of starts)
    console.log(
      `  ${label(s)}: ${f1(med(s, "rssAfterStart"))} / ${f1(med(s, "rssPeak"))} / ${f1(med(s, "at20"))} / ` +
        `${f1(med(s, "rssEnd"))} / ${f1(med(s, "rssSettled"))}; ${f1(med(s, "arena"))}`,
    );
  const trimmed = trims[0] as boolean;
  const aged = med({ journal: "aged", trim: trimmed }, "rssSettled");
  const fresh = med({ journal: "fresh", trim: trimmed }, "rssSettled");
  console.log(
    `aged start, trim ${trimmed ? "on" : "off"}, RSS settled: ${f1(aged)} MB = ${(aged / EDGE_BUDGET_MB).toFixed(2)}x ` +
      `the edge budget (${EDGE_BUDGET_MB} MB), ${(aged / fresh).toFixed(2)}x the fresh start (${f1(fresh)} MB): ` +
      (aged <= EDGE_BUDGET_MB ? "WITHIN the budget" : "OVER the budget"),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
