/**
 * `npm run fuzz`: every decoder (fuzz/targets.ts) fed at least a million
 * inputs, outside CI. Prints per decoder: inputs, inputs/s, accepted (and how
 * many of them were valid datasheet messages), refused by reason, failures.
 * A failure is a throw, a broken invariant, a refused valid message or an
 * input slower than --max-ms on three runs; any failure exits 1.
 *
 * Options (after `npm run fuzz --`):
 *   --inputs N     inputs per decoder (default 1000000)
 *   --seed N       fast-check seed (default: from the clock; printed, so a run can be repeated)
 *   --only A,B     only these decoders (names as printed)
 *   --max-ms N     CPU time bound per input, ms (default 1000: generous; a deep-nesting YAML costs ~300)
 *   --max-seconds S  stop a decoder after S seconds (per job) even if short of --inputs; such rows
 *                  are marked and the run says so (a shared machine may not give a million in time)
 *   --jobs N       split each decoder's inputs over N child processes (seeds seed, seed+1, ...);
 *                  the table adds them up (inputs/s: all inputs over the slowest child's time)
 */
import { spawn } from "node:child_process";
import os from "node:os";
import { parseArgs } from "node:util";
import * as fc from "fast-check";
import { check, newTally, show, type Tally, tagged } from "./property.js";
import { targets } from "./targets.js";

const { values } = parseArgs({
  options: {
    inputs: { type: "string", default: "1000000" },
    seed: { type: "string" },
    only: { type: "string" },
    "max-ms": { type: "string", default: "1000" },
    jobs: { type: "string", default: "1" },
    "max-seconds": { type: "string" },
    // Internal: a child of --jobs; prints its rows as JSON.
    worker: { type: "boolean", default: false },
  },
  strict: true,
});

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`--${name} must be a positive integer, got ${v}`);
  return n;
}

const inputs = positiveInt("inputs", values.inputs);
const maxMs = positiveInt("max-ms", values["max-ms"]);
const jobs = positiveInt("jobs", values.jobs);
const maxSeconds =
  values["max-seconds"] === undefined ? null : positiveInt("max-seconds", values["max-seconds"]);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const only = values.only?.split(",").map((s) => s.trim());
const selected = only ? targets.filter((t) => only.includes(t.name)) : targets;
if (only && selected.length !== only.length) {
  const known = targets.map((t) => t.name).join(", ");
  throw new RangeError(`--only: unknown decoder in ${values.only}; known: ${known}`);
}

interface Failure {
  index: number;
  error: string;
  input: string;
}

interface Row {
  name: string;
  tally: Tally;
  seconds: number;
  failures: number;
  examples: Failure[];
}

const KEEP_FAILURES = 3;

function runTarget(target: (typeof targets)[number]): Row {
  const decoder = target.create();
  const tally = newTally();
  const row: Row = { name: target.name, tally, seconds: 0, failures: 0, examples: [] };
  let index = 0;
  let lastReport = performance.now();
  const t0 = performance.now();
  // Failures are recorded, not thrown, so one bad input does not hide the rest of the run.
  const property = fc.property(tagged(target), (x) => {
    index++;
    try {
      check(decoder, x, tally, maxMs);
    } catch (err) {
      row.failures++;
      if (row.examples.length < KEEP_FAILURES) {
        const e = err as Error;
        row.examples.push({ index, error: `${e.name}: ${e.message}`, input: show(x) });
      }
    }
    if (index % 10_000 === 0 && performance.now() - lastReport > 15_000) {
      lastReport = performance.now();
      const rate = index / ((lastReport - t0) / 1000);
      process.stderr.write(`  ${target.name}: ${index.toLocaleString("en")} inputs, ${Math.round(rate)}/s\n`);
    }
  });
  fc.check(property, {
    seed,
    numRuns: inputs,
    ...(maxSeconds === null
      ? {}
      : { interruptAfterTimeLimit: maxSeconds * 1000, markInterruptAsFailure: false }),
  });
  row.seconds = (performance.now() - t0) / 1000;
  return row;
}

const fmt = (n: number) => n.toLocaleString("en");

function printTable(rows: readonly Row[]): void {
  const header = ["decoder", "inputs", "inputs/s", "accepted", "(valid)", "refused", "failures"];
  const cells = rows.map((r) => {
    const refusedTotal = [...r.tally.refused.values()].reduce((a, b) => a + b, 0);
    return [
      r.name,
      fmt(r.tally.inputs + r.failures),
      fmt(Math.round((r.tally.inputs + r.failures) / r.seconds)),
      fmt(r.tally.accepted),
      fmt(r.tally.valid),
      fmt(refusedTotal),
      fmt(r.failures),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: readonly string[]) =>
    c.map((x, i) => (i === 0 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const c of cells) console.log(line(c));
  console.log("\nrefused by reason:");
  for (const r of rows) {
    const reasons = [...r.tally.refused.entries()].sort((a, b) => b[1] - a[1]);
    console.log(`  ${r.name}: ${reasons.map(([k, v]) => `${k} ${fmt(v)}`).join(", ") || "-"}`);
  }
}

interface WireRow extends Omit<Row, "tally"> {
  tally: Omit<Tally, "refused"> & { refused: [string, number][] };
}

/** Runs the decoders in `jobs` children, each a share of the inputs with its own seed; merges their rows. */
async function runJobs(): Promise<Row[]> {
  const per = Math.ceil(inputs / jobs);
  const children = Array.from({ length: jobs }, (_, i) => {
    const args = [process.argv[1] as string, "--worker", "--inputs", String(per), "--seed", String(seed + i)];
    args.push("--max-ms", String(maxMs), "--only", selected.map((t) => t.name).join(","));
    if (maxSeconds !== null) args.push("--max-seconds", String(maxSeconds));
    const child = spawn(process.execPath, [...process.execArgv, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString("utf8");
    });
    return new Promise<WireRow[]>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) =>
        code === 0
          ? resolve(JSON.parse(out) as WireRow[])
          : reject(new Error(`fuzz job ${i} exited ${code}`)),
      );
    });
  });
  const results = await Promise.all(children);
  return selected.map((t) => {
    const merged: Row = { name: t.name, tally: newTally(), seconds: 0, failures: 0, examples: [] };
    for (const rows of results) {
      const r = rows.find((x) => x.name === t.name) as WireRow;
      merged.tally.inputs += r.tally.inputs;
      merged.tally.valid += r.tally.valid;
      merged.tally.accepted += r.tally.accepted;
      for (const [k, v] of r.tally.refused)
        merged.tally.refused.set(k, (merged.tally.refused.get(k) ?? 0) + v);
      merged.seconds = Math.max(merged.seconds, r.seconds);
      merged.failures += r.failures;
      merged.examples.push(...r.examples.slice(0, KEEP_FAILURES - merged.examples.length));
    }
    return merged;
  });
}

function runHere(): Row[] {
  const rows: Row[] = [];
  for (const target of selected) {
    const row = runTarget(target);
    rows.push(row);
    process.stderr.write(
      `${row.name}: ${fmt(row.tally.inputs + row.failures)} inputs in ${row.seconds.toFixed(1)} s, ${row.failures} failures\n`,
    );
  }
  return rows;
}

if (values.worker) {
  const rows = runHere();
  process.stdout.write(
    JSON.stringify(rows.map((r) => ({ ...r, tally: { ...r.tally, refused: [...r.tally.refused] } }))),
  );
} else {
  console.log(
    `linli fuzz: ${selected.length} decoders x ${fmt(inputs)} inputs, seed ${seed}` +
      `${jobs > 1 ? ` (${jobs} jobs, seeds ${seed}..${seed + jobs - 1})` : ""}, max ${maxMs} ms CPU per input` +
      ` (node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)})`,
  );
  const rows = jobs > 1 ? await runJobs() : runHere();
  console.log("");
  printTable(rows);
  const short = rows.filter((r) => r.tally.inputs + r.failures < inputs);
  if (short.length > 0)
    console.log(
      `\nstopped by --max-seconds short of ${fmt(inputs)} inputs: ${short.map((r) => r.name).join(", ")}`,
    );
  const failed = rows.filter((r) => r.failures > 0);
  for (const r of failed) {
    console.log(`\nFAILURES in ${r.name} (input number within its job, error, input):`);
    for (const f of r.examples) console.log(`  #${f.index}: ${f.error}\n    ${f.input}`);
  }
  console.log(
    failed.length === 0
      ? "\nno failures: every input was accepted or refused with a reason, none threw, none was slow"
      : `\n${failed.length} decoder(s) failed; rerun with --seed ${seed}${jobs > 1 ? ` --jobs ${jobs}` : ""}`,
  );
  process.exitCode = failed.length === 0 ? 0 : 1;
}
