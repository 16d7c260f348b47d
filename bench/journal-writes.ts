/**
 * `npm run bench:journal-writes`: where the journal's write(2) runs, measured on its own.
 *
 * The gateway's pattern at a given message rate: every `tickMs` a drained batch puts its records
 * (an alert record, ~600 bytes, per message) and calls commit(); the next batch does not wait for
 * the commit (PUBACKs do). Both designs in the same run, interleaved, each in a fresh directory:
 *
 *   loop  the earlier design: write(2) inside put(), on the event loop (JournalOptions.writes "loop")
 *   pool  the current one: one write per batch on the libuv pool, the next batch queued behind it
 *
 * Printed per design and round: the event loop's time inside put()+commit() per batch (p99, max),
 * the event-loop delay (p99, max: what every connection waits), and commit latency (put -> done:
 * what a PUBACK waits). Options: --rate (records/s, default 10000), --seconds (per round, 5),
 * --rounds (3), --dir (parent of the temporary directories; default the OS temp dir, a real disk).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Journal } from "../gateway/journal/journal.js";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "10000" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    dir: { type: "string" },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const tickMs = 5;
const value = { state: "active-unacknowledged", detail: { battery: 87 }, note: "x".repeat(480) };

interface Round {
  design: "loop" | "pool";
  sliceP99: number;
  sliceMax: number;
  loopDelayP99: number;
  loopDelayMax: number;
  commitP50: number;
  commitP99: number;
  syncs: number;
  records: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor(p * s.length))] as number);
};

async function round(design: "loop" | "pool"): Promise<Round> {
  const dir = mkdtempSync(path.join(values.dir ?? tmpdir(), "linli-journal-writes-"));
  const j = Journal.open({ dir, writes: design });
  const slices: number[] = [];
  const commits: number[] = [];
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let key = 0;
  const end = performance.now() + seconds * 1000;
  await new Promise<void>((resolve) => {
    const tick = () => {
      if (performance.now() >= end) return resolve();
      const t0 = performance.now();
      for (let i = 0; i < perTick; i++) j.put(`alert/${key++ % 10_000}`, value);
      j.commit(() => commits.push(performance.now() - t0));
      slices.push(performance.now() - t0);
      setTimeout(tick, tickMs);
    };
    tick();
  });
  h.disable();
  await j.sync();
  const st = j.stats();
  j.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    design,
    sliceP99: pct(slices, 0.99),
    sliceMax: Math.max(...slices),
    loopDelayP99: h.percentile(99) / 1e6,
    loopDelayMax: h.max / 1e6,
    commitP50: pct(commits, 0.5),
    commitP99: pct(commits, 0.99),
    syncs: st.syncs,
    records: st.records,
  };
}

const log = (s: string) => process.stdout.write(`${s}\n`);
log(
  `journal writes: ${rate} records/s in batches every ${tickMs} ms, ${seconds} s per round, ${rounds} rounds, ` +
    `designs interleaved (loop = write(2) on the event loop, pool = on the libuv pool)`,
);
const f = (n: number) => n.toFixed(2).padStart(8);
log("design   in put+commit p99 / max ms   loop delay p99 / max ms   commit p50 / p99 ms   records/sync");
const all: Round[] = [];
for (let r = 0; r < rounds; r++) {
  for (const design of r % 2 === 0 ? (["loop", "pool"] as const) : (["pool", "loop"] as const)) {
    const x = await round(design);
    all.push(x);
    log(
      `${design.padEnd(6)} ${f(x.sliceP99)} ${f(x.sliceMax)}            ${f(x.loopDelayP99)} ${f(x.loopDelayMax)}        ` +
        `${f(x.commitP50)} ${f(x.commitP99)}   ${(x.records / Math.max(1, x.syncs)).toFixed(1).padStart(8)}`,
    );
  }
}
const med = (d: "loop" | "pool", k: keyof Round) =>
  pct(
    all.filter((x) => x.design === d).map((x) => x[k] as number),
    0.5,
  );
log("medians over the rounds (pool against loop):");
for (const k of ["sliceP99", "sliceMax", "loopDelayP99", "loopDelayMax", "commitP99"] as const)
  log(`  ${k.padEnd(14)} loop ${f(med("loop", k))} ms, pool ${f(med("pool", k))} ms`);
