/**
 * Storage candidates for the gateway's durable state (the journal), one workload, one run:
 *   (a) gateway/journal (this project's append-only journal), (b) lmdb (lmdb-js),
 *   (c) classic-level (LevelDB), (d) better-sqlite3 12 (WAL, synchronous=FULL).
 *
 * Measured for each, on the same disk, in the same process:
 *   - durable write latency: write one small record (an alert state, ~90 bytes) and wait until it
 *     is on disk (fdatasync or the store's equivalent); p50/p99 over --ops sequential writes
 *   - batch throughput: batches of 100 records + one durable commit; records/s over --batches
 *   - start-up: open a store holding --records records written over --keys keys, and load the
 *     live keys (the gateway rebuilds its state from them at start)
 *
 * The candidates are NOT dependencies of the project: they are installed on demand into a scratch
 * directory (--prefix, default /tmp/linli-stores) with `npm install --prefix`, and loaded from
 * there. A candidate that fails to install or load is reported and skipped.
 *
 *   npm run build && node dist/bench/journal-stores.js [--records 1000000] [--ops 1000] [--batches 200]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { decode, encode } from "cbor-x";
import { Journal } from "../gateway/journal/journal.js";

const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "1000000" },
    keys: { type: "string", default: "10000" },
    ops: { type: "string", default: "1000" },
    batches: { type: "string", default: "200" },
    prefix: { type: "string", default: path.join(os.tmpdir(), "linli-stores") },
    only: { type: "string" },
    dir: { type: "string", default: os.tmpdir() },
  },
});
const RECORDS = Number(args.records);
const KEYS = Number(args.keys);
const OPS = Number(args.ops);
const BATCHES = Number(args.batches);
const BATCH = 100;

/** The workload's record: an alert state as the gateway journals it. */
function record(i: number): { key: string; value: Record<string, unknown> } {
  const id = i % KEYS;
  return {
    key: `alert/${String(id).padStart(6, "0")}`,
    value: {
      id: `a-${id}`,
      device: `pendant-${id}`,
      state: i % 3 ? "open" : "acked",
      level: i % 4,
      at: 1.7e12 + i,
    },
  };
}

/** What each candidate has to offer; every write method resolves once the data is durable. */
interface Store {
  writeOneDurable(i: number): Promise<void>;
  writeBatchDurable(from: number, n: number): Promise<void>;
  /** Bulk load without per-record durability (setting up the start-up measurement). */
  fill(from: number, n: number): Promise<void>;
  close(): Promise<void>;
}
interface Candidate {
  name: string;
  packages: string[];
  open(dir: string, req: NodeRequire): Promise<Store>;
  /** Opens and loads every live key; returns how many. */
  load(dir: string, req: NodeRequire): Promise<number>;
}

const journal: Candidate = {
  name: "journal (this project, batch policy)",
  packages: [],
  async open(dir) {
    const j = Journal.open({ dir });
    const commit = () => new Promise<void>((r) => j.commit(r));
    const batch = async (from: number, n: number) => {
      for (let i = from; i < from + n; i++) {
        const r = record(i);
        j.put(r.key, r.value);
      }
      await commit();
    };
    return {
      async writeOneDurable(i) {
        const r = record(i);
        j.put(r.key, r.value);
        await commit();
      },
      writeBatchDurable: batch,
      fill: batch,
      async close() {
        j.close();
      },
    };
  },
  async load(dir) {
    const j = Journal.open({ dir });
    let n = 0;
    for (const [, v] of j.entries()) if (v !== undefined) n++;
    j.close();
    return n;
  },
};

type Lmdb = {
  open(o: object): {
    put(k: string, v: unknown): Promise<boolean>;
    transaction(fn: () => void): Promise<unknown>;
    flushed: Promise<void>;
    getRange(o?: object): Iterable<{ key: string; value: unknown }>;
    close(): Promise<void>;
  };
};
const lmdb: Candidate = {
  name: "lmdb (lmdb-js)",
  packages: ["lmdb"],
  async open(dir, req) {
    const db = (req("lmdb") as Lmdb).open({ path: dir });
    const batch = async (from: number, n: number) => {
      await db.transaction(() => {
        for (let i = from; i < from + n; i++) {
          const r = record(i);
          db.put(r.key, r.value);
        }
      });
      await db.flushed;
    };
    return {
      async writeOneDurable(i) {
        const r = record(i);
        await db.put(r.key, r.value);
        await db.flushed; // overlappingSync (default on Linux): commit first, flush after
      },
      writeBatchDurable: batch,
      fill: batch,
      close: () => db.close(),
    };
  },
  async load(dir, req) {
    const db = (req("lmdb") as Lmdb).open({ path: dir });
    let n = 0;
    for (const e of db.getRange()) if (e.value !== undefined) n++;
    await db.close();
    return n;
  },
};

type LevelDb = {
  open(): Promise<void>;
  put(k: string, v: unknown, o: object): Promise<void>;
  batch(ops: Array<{ type: "put"; key: string; value: unknown }>, o: object): Promise<void>;
  iterator(): AsyncIterable<[string, unknown]>;
  close(): Promise<void>;
};
type LevelCtor = { ClassicLevel: new (dir: string, o: object) => LevelDb };
const level: Candidate = {
  name: "classic-level (LevelDB)",
  packages: ["classic-level"],
  async open(dir, req) {
    const db = new (req("classic-level") as LevelCtor).ClassicLevel(dir, { valueEncoding: "json" });
    await db.open();
    const batch = (from: number, n: number, sync: boolean) => {
      const ops: Array<{ type: "put"; key: string; value: unknown }> = [];
      for (let i = from; i < from + n; i++) ops.push({ type: "put", ...record(i) });
      return db.batch(ops, { sync });
    };
    return {
      async writeOneDurable(i) {
        const r = record(i);
        await db.put(r.key, r.value, { sync: true });
      },
      writeBatchDurable: (from, n) => batch(from, n, true),
      fill: (from, n) => batch(from, n, false),
      close: () => db.close(),
    };
  },
  async load(dir, req) {
    const db = new (req("classic-level") as LevelCtor).ClassicLevel(dir, { valueEncoding: "json" });
    await db.open();
    let n = 0;
    for await (const [, v] of db.iterator()) if (v !== undefined) n++;
    await db.close();
    return n;
  },
};

type Sqlite = {
  pragma(s: string): unknown;
  exec(s: string): void;
  prepare(s: string): { run(...a: unknown[]): unknown; iterate(): Iterable<{ k: string; v: Uint8Array }> };
  transaction(fn: (from: number, n: number) => void): (from: number, n: number) => void;
  close(): void;
};
const sqlite: Candidate = {
  name: "better-sqlite3 12 (WAL, synchronous=FULL)",
  packages: ["better-sqlite3@12"],
  async open(dir, req) {
    const Database = req("better-sqlite3") as new (f: string) => Sqlite;
    mkdirSync(dir, { recursive: true });
    const db = new Database(path.join(dir, "state.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL"); // WAL + FULL: every commit is fsync'd
    db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID");
    const put = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    const many = db.transaction((from: number, n: number) => {
      for (let i = from; i < from + n; i++) {
        const r = record(i);
        put.run(r.key, encode(r.value));
      }
    });
    return {
      async writeOneDurable(i) {
        const r = record(i);
        put.run(r.key, encode(r.value)); // autocommit: synchronous, durable on return
      },
      async writeBatchDurable(from, n) {
        many(from, n);
      },
      async fill(from, n) {
        many(from, n);
      },
      async close() {
        db.close();
      },
    };
  },
  async load(dir, req) {
    const Database = req("better-sqlite3") as new (f: string) => Sqlite;
    const db = new Database(path.join(dir, "state.db"));
    let n = 0;
    for (const row of db.prepare("SELECT k, v FROM kv").iterate()) if (decode(row.v) !== undefined) n++;
    db.close();
    return n;
  },
};

function requireFrom(prefix: string, c: Candidate): NodeRequire | string {
  const req = createRequire(path.join(prefix, "node_modules", "_"));
  const names = c.packages.map((p) => p.replace(/@[^@/]*$/, ""));
  const tryLoad = (): string | null => {
    try {
      for (const n of names) req(n);
      return null;
    } catch (err) {
      return (err as Error).message.split("\n")[0] ?? "load failed";
    }
  };
  if (tryLoad() === null) return req;
  console.log(`installing ${c.packages.join(" ")} into ${prefix} (not a project dependency) ...`);
  const r = spawnSync(
    "npm",
    ["install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", ...c.packages],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  if (r.status !== 0)
    return `npm install failed (exit ${r.status}): ${(r.stderr || "").trim().split("\n").pop()}`;
  return tryLoad() ?? req;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

interface Row {
  name: string;
  p50?: number;
  p99?: number;
  rate?: number;
  startMs?: number;
  liveKeys?: number;
  error?: string;
}

async function measure(c: Candidate, req: NodeRequire): Promise<Row> {
  const base = mkdtempSync(path.join(args.dir, "linli-store-bench-"));
  try {
    // Latency and throughput on a fresh store.
    const d1 = path.join(base, "rw");
    const s = await c.open(d1, req);
    for (let i = 0; i < 50; i++) await s.writeOneDurable(i); // warm-up
    const lat: number[] = [];
    for (let i = 0; i < OPS; i++) {
      const t0 = performance.now();
      await s.writeOneDurable(i);
      lat.push(performance.now() - t0);
    }
    lat.sort((a, b) => a - b);
    const t0 = performance.now();
    for (let b = 0; b < BATCHES; b++) await s.writeBatchDurable(b * BATCH, BATCH);
    const rate = (BATCHES * BATCH) / ((performance.now() - t0) / 1000);
    await s.close();

    // Start-up with RECORDS records over KEYS keys.
    const d2 = path.join(base, "startup");
    const f = await c.open(d2, req);
    for (let i = 0; i < RECORDS; i += 10_000) await f.fill(i, Math.min(10_000, RECORDS - i));
    await f.close();
    const t1 = performance.now();
    const live = await c.load(d2, req);
    const startMs = performance.now() - t1;
    return { name: c.name, p50: pct(lat, 0.5), p99: pct(lat, 0.99), rate, startMs, liveKeys: live };
  } catch (err) {
    return { name: c.name, error: (err as Error).message };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const all = [journal, lmdb, level, sqlite];
  const chosen = args.only ? all.filter((c) => args.only!.split(",").some((o) => c.name.startsWith(o))) : all;
  console.log(
    `journal-stores: ${OPS} durable single writes, ${BATCHES} batches of ${BATCH}, start-up with ${RECORDS.toLocaleString("en")} records over ${KEYS.toLocaleString("en")} keys; ` +
      `data in ${args.dir}; node ${process.version}; load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} on ${os.cpus().length} cores`,
  );
  const rows: Row[] = [];
  for (const c of chosen) {
    const req = c.packages.length === 0 ? createRequire(import.meta.url) : requireFrom(args.prefix!, c);
    if (typeof req === "string") {
      console.log(`${c.name}: not measured: ${req}`);
      rows.push({ name: c.name, error: req });
      continue;
    }
    console.log(`measuring ${c.name} ...`);
    const row = await measure(c, req);
    rows.push(row);
    console.log(row.error ? `  failed: ${row.error}` : `  done`);
  }
  const f = (n: number | undefined, d = 2) => (n === undefined ? "-" : n.toFixed(d));
  console.log(
    "\n| store | write 1 + durable p50 (ms) | p99 (ms) | batches of 100 + durable commit (records/s) | start-up, 1M records (ms) |",
  );
  console.log("|---|---|---|---|---|");
  for (const r of rows) {
    if (r.error) console.log(`| ${r.name} | not measured: ${r.error} | | | |`);
    else
      console.log(
        `| ${r.name} | ${f(r.p50)} | ${f(r.p99)} | ${Math.round(r.rate!).toLocaleString("en")} | ${f(r.startMs, 0)} (${r.liveKeys} live keys) |`,
      );
  }
  console.log(
    `load average after: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
