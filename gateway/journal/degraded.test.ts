/**
 * Disk full, read-only and failing disks (injected through the fs seam: the real disk cannot be
 * filled from a test), and the quota.
 */
import {
  appendFileSync,
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { expect, it } from "vitest";
import { journalScratch } from "../../test/support/journal-scratch.js";
import { segmentName } from "./files.js";
import { type JournalFs, nodeFs } from "./fs.js";
import { type FoundDamage, Journal, type JournalHealth, MAX_LISTED_DAMAGE } from "./journal.js";
import { recordBounds } from "./record.js";

const { tempDir, open } = journalScratch("linli-journal-degraded-");

type Faults = { write: string | null; sync: string | null; create: string | null };

/** node:fs with switchable failures: write (sync and async), fdatasync, creating files. */
function faultyFs(faults: Faults): JournalFs {
  const err = (code: string) => Object.assign(new Error(`${code}: injected`), { code });
  return {
    ...nodeFs,
    writeSync: (fd, b, o, l, p) => {
      if (faults.write) throw err(faults.write);
      return nodeFs.writeSync(fd, b, o, l, p);
    },
    write: (fd, b, o, l, p, cb) => {
      if (faults.write) return void setImmediate(() => cb(err(faults.write!), 0));
      nodeFs.write(fd, b, o, l, p, cb);
    },
    fdatasyncSync: (fd) => {
      if (faults.sync) throw err(faults.sync);
      nodeFs.fdatasyncSync(fd);
    },
    fdatasync: (fd, cb) => {
      if (faults.sync) return void setImmediate(() => cb(err(faults.sync!)));
      nodeFs.fdatasync(fd, cb);
    },
    openSync: (p, f, m) => {
      if (faults.create && f !== "r") throw err(faults.create);
      return nodeFs.openSync(p, f, m);
    },
  };
}

function captureLog() {
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: "info" }, stream), lines };
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const committed = (j: Journal) => new Promise<void>((resolve) => j.commit(resolve));

/** What the directory's files take (a snapshot being written, *.tmp, aside). */
function bytesIn(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) if (!name.endsWith(".tmp")) n += statSync(join(dir, name)).size;
  return n;
}

it.each([
  ["ENOSPC", "write"],
  ["EDQUOT", "write"],
  ["EIO", "write"],
  ["EROFS", "sync"],
  ["EIO", "sync"],
] as const)(
  "%s on %s: degraded, memory current, logged once, durable again by a snapshot once the disk works",
  async (code, where) => {
    const dir = tempDir();
    const faults: Faults = { write: null, sync: null, create: null };
    const health: JournalHealth[] = [];
    const { log, lines } = captureLog();
    const j = Journal.open({
      dir,
      fs: faultyFs(faults),
      retryMs: 30,
      log,
      onHealthChange: (h) => health.push(h),
    });
    open.push(j);
    const expected = new Map<string, unknown>();
    const put = (k: string, v: unknown) => {
      j.put(k, v);
      expected.set(k, v);
    };
    for (let i = 0; i < 50; i++) put(`k${i}`, { i });
    await committed(j);
    expect(j.health.ok).toBe(true);

    if (where === "write") faults.write = code;
    else faults.sync = code;
    // A read-only or dead disk also refuses new files, so the retries keep failing until healed.
    faults.create = code;
    put("k1", { i: 1, changed: true });
    let acked = false;
    j.commit(() => {
      acked = true;
    });
    await until(() => acked, "commit done() while failing"); // never stuck
    await until(() => !j.health.ok, "degraded health");
    expect(j.health.reason).toContain(code);
    for (let i = 50; i < 80; i++) put(`k${i}`, { i, during: "outage" });
    j.delete("k2");
    expected.delete("k2");
    expect(j.get("k1")).toEqual({ i: 1, changed: true });
    expect(j.get("k79")).toEqual({ i: 79, during: "outage" });
    await new Promise((r) => setTimeout(r, 150)); // several failing retries
    expect(j.health.ok).toBe(false);
    expect(health.filter((h) => !h.ok).length).toBe(1);
    const degradedLines = lines.filter((l) => l.msg.startsWith("journal degraded"));
    expect(degradedLines.length).toBe(1);
    expect(degradedLines[0]!.msg).toContain("can no longer promise");
    expect(j.stats()).toMatchObject({ degraded: true });
    expect(j.stats().writeErrors).toBeGreaterThan(0);

    faults.write = faults.sync = faults.create = null;
    await until(() => j.health.ok, "health restored by a fresh snapshot");
    expect(health[health.length - 1]).toMatchObject({ ok: true, reason: null });
    put("after", 1);
    await committed(j);
    j.close();

    const k = Journal.open({ dir });
    open.push(k);
    expect(new Map(k.entries())).toEqual(expected);
  },
);

it("a clean close while degraded writes a last snapshot if the disk takes it", async () => {
  const dir = tempDir();
  const faults: Faults = { write: null, sync: null, create: null };
  const j = Journal.open({ dir, fs: faultyFs(faults), retryMs: 60_000 });
  j.put("a", 1);
  faults.sync = "EIO";
  j.put("b", 2);
  await j.sync();
  expect(j.health.ok).toBe(false);
  j.put("c", 3); // memory only
  faults.sync = null;
  j.close();
  const k = Journal.open({ dir });
  open.push(k);
  expect(Object.fromEntries(k.entries())).toEqual({ a: 1, b: 2, c: 3 });
});

it("quota: compaction keeps a bounded live set under it; a live set too large degrades until it shrinks", async () => {
  const dir = tempDir();
  const quotaBytes = 64 * 1024;
  const health: JournalHealth[] = [];
  const j = Journal.open({
    dir,
    quotaBytes,
    segmentBytes: 4096,
    compactAfterBytes: 16 * 1024,
    retryMs: 30,
    onHealthChange: (h) => health.push(h),
  });
  open.push(j);
  const expected = new Map<string, unknown>();
  // 100 keys rewritten 20,000 times (about 1 MB of records) within a 64 KiB quota.
  for (let i = 0; i < 20_000; i++) {
    const v = { i, pad: "p".repeat(20) };
    j.put(`small/${i % 100}`, v);
    expected.set(`small/${i % 100}`, v);
    if (i % 100 === 99) {
      await committed(j);
      // Let each compaction finish: on a loaded machine writes could otherwise outrun it and hit
      // the hard quota (which degrades, correctly, but is not what this phase tests).
      await until(() => !j.stats().compacting, "the compaction in flight");
      expect(j.stats().bytesOnDisk).toBeLessThanOrEqual(quotaBytes);
      // The journal's count of its bytes (kept as files grow and go, not summed per record)
      // is what the directory holds.
      expect(j.stats().bytesOnDisk).toBe(bytesIn(dir));
    }
  }
  expect(j.health.ok).toBe(true);
  expect(j.stats().compactions).toBeGreaterThan(5);

  // A live set larger than the quota (78 KB of 64 KiB): degraded "quota", memory still current.
  for (let i = 0; i < 600; i++) {
    const v = { i, pad: "B".repeat(100) };
    j.put(`big/${i}`, v);
    expected.set(`big/${i}`, v);
    if (i % 50 === 49) await committed(j);
  }
  await until(() => !j.health.ok, "quota degradation");
  expect(j.health.reason).toBe("quota");
  expect(j.stats().bytesOnDisk).toBeLessThanOrEqual(quotaBytes);
  expect(j.get("big/599")).toEqual({ i: 599, pad: "B".repeat(100) });

  // The live set shrinks: a snapshot fits again and durability is restored.
  for (let i = 0; i < 600; i++) {
    j.delete(`big/${i}`);
    expected.delete(`big/${i}`);
  }
  await until(() => j.health.ok, "health restored after the live set shrank");
  await committed(j);
  expect(j.stats().bytesOnDisk).toBeLessThanOrEqual(quotaBytes);
  j.close();
  const k = Journal.open({ dir, quotaBytes });
  open.push(k);
  expect(new Map(k.entries())).toEqual(expected);
  expect(health.map((h) => h.reason)).toEqual(["quota", null]);
}, 60_000);

/** node:fs as a read-only mount shows it: every change refused with `code`, reads work. */
function readOnlyMount(state: { ro: string | null; unreadable?: string | null }): JournalFs {
  const refusing =
    <A extends unknown[], R>(f: (...a: A) => R) =>
    (...a: A): R => {
      if (state.ro) throw Object.assign(new Error(`${state.ro}: injected`), { code: state.ro });
      return f(...a);
    };
  return {
    ...nodeFs,
    openSync: (p, f, m) => (f === "r" ? nodeFs.openSync(p, f, m) : refusing(nodeFs.openSync)(p, f, m)),
    writeSync: refusing(nodeFs.writeSync),
    renameSync: refusing(nodeFs.renameSync),
    unlinkSync: refusing(nodeFs.unlinkSync),
    ftruncateSync: refusing(nodeFs.ftruncateSync),
    readdirSync: (p) => {
      if (state.unreadable)
        throw Object.assign(new Error(`${state.unreadable}: injected`), { code: state.unreadable });
      return nodeFs.readdirSync(p);
    },
  };
}

function listing(dir: string): Record<string, number> {
  return Object.fromEntries(readdirSync(dir).map((n) => [n, statSync(join(dir, n)).size]));
}

it("a read-only directory at open: state restored without writing, degraded, durable once writable again", async () => {
  const dir = tempDir();
  const first = Journal.open({ dir });
  for (let i = 0; i < 20; i++) first.put(`alert/${i}`, { open: true, i });
  first.delete("alert/3");
  await first.sync();
  first.close();
  // What a normal open cleans up: a torn tail and a snapshot whose write never finished.
  const seg = readdirSync(dir).find((n) => n.startsWith("seg-"))!;
  appendFileSync(join(dir, seg), Buffer.from([1, 2, 3, 4, 5]));
  writeFileSync(join(dir, "snap-0000000000000009.snap.tmp"), "half");
  const before = listing(dir);

  const state = { ro: "EROFS" as string | null };
  const health: JournalHealth[] = [];
  const { log, lines } = captureLog();
  const j = Journal.open({
    dir,
    fs: readOnlyMount(state),
    whenUnwritable: "degrade",
    retryMs: 30,
    log,
    onHealthChange: (h) => health.push(h),
  });
  open.push(j);
  expect(j.get("alert/7")).toEqual({ open: true, i: 7 });
  expect(j.get("alert/3")).toBeUndefined();
  expect(j.size).toBe(19);
  expect(j.health.ok).toBe(false);
  expect(j.health.reason).toContain("EROFS");
  const said = lines.find((l) => l.msg.startsWith("journal directory cannot be written"));
  expect(said?.msg).toContain("WAS restored");
  expect(said?.msg).toContain("nothing since is kept");
  j.put("alert/99", { open: true, during: "read-only" });
  j.delete("alert/0");
  await j.sync(); // answered at once: nothing to wait for while degraded
  await new Promise((r) => setTimeout(r, 150)); // several failing retries
  expect(listing(dir)).toEqual(before); // no LOCK, nothing moved aside, no snapshot
  expect(health.filter((h) => !h.ok).length).toBe(1);

  state.ro = null; // mount -o remount,rw
  await until(() => j.health.ok, "durable again after the remount");
  expect(existsSync(join(dir, "LOCK"))).toBe(true);
  expect(health.map((h) => h.ok)).toEqual([false, true]);
  j.close();
  const k = Journal.open({ dir });
  open.push(k);
  expect(k.get("alert/99")).toEqual({ open: true, during: "read-only" });
  expect(k.get("alert/0")).toBeUndefined();
  expect(k.get("alert/7")).toEqual({ open: true, i: 7 });
  expect(k.size).toBe(19);
});

it("a directory that cannot even be read at open: degraded, retried, its state kept under the live one", async () => {
  const dir = tempDir();
  const first = Journal.open({ dir });
  first.put("alert/old", { open: true });
  first.put("shared", "old");
  await first.sync();
  first.close();

  const state = { ro: "EACCES" as string | null, unreadable: "EACCES" as string | null };
  const { log, lines } = captureLog();
  const j = Journal.open({ dir, fs: readOnlyMount(state), whenUnwritable: "degrade", retryMs: 30, log });
  open.push(j);
  expect(j.size).toBe(0);
  expect(j.health.reason).toContain("cannot open");
  expect(lines.some((l) => l.msg.includes("nothing was restored"))).toBe(true);
  j.put("alert/new", { open: true });
  j.put("shared", "new");
  state.ro = state.unreadable = null;
  await until(() => j.health.ok, "durable once the directory opens");
  expect(j.get("alert/old")).toEqual({ open: true });
  j.close();
  const k = Journal.open({ dir });
  open.push(k);
  expect(Object.fromEntries(k.entries())).toEqual({
    "alert/old": { open: true },
    "alert/new": { open: true },
    shared: "new",
  });
});

it("without whenUnwritable a read-only directory still throws", () => {
  const dir = tempDir();
  expect(() => Journal.open({ dir, fs: readOnlyMount({ ro: "EROFS" }) })).toThrow(/EROFS/);
  expect(existsSync(join(dir, "LOCK"))).toBe(false);
});

it("a full disk at start (ENOSPC) is read the same way: state restored, degraded until it takes writes", async () => {
  const dir = tempDir();
  const first = Journal.open({ dir });
  first.put("alert/1", { open: true });
  await first.sync();
  first.close();
  const disk = { ro: "ENOSPC" as string | null };
  const j = Journal.open({ dir, fs: readOnlyMount(disk), whenUnwritable: "degrade", retryMs: 30 });
  open.push(j);
  expect(j.get("alert/1")).toEqual({ open: true });
  expect(j.health.reason).toBe("cannot write at open: ENOSPC (state restored read-only)");
  disk.ro = null;
  await until(() => j.health.ok, "durable once space is back");
});

// A real read-only directory (chmod 0500); root writes through any mode, so only as another user.
it.skipIf(process.getuid?.() === 0)(
  "a directory without write permission at open: restored read-only, durable after chmod u+w",
  async () => {
    const dir = tempDir();
    const first = Journal.open({ dir });
    first.put("alert/1", { open: true });
    await first.sync();
    first.close();
    const before = listing(dir);
    chmodSync(dir, 0o500);
    try {
      const j = Journal.open({ dir, whenUnwritable: "degrade", retryMs: 30 });
      open.push(j);
      expect(j.get("alert/1")).toEqual({ open: true });
      expect(j.health.reason).toContain("EACCES");
      j.put("alert/2", { open: true });
      await new Promise((r) => setTimeout(r, 100));
      expect(listing(dir)).toEqual(before);
      chmodSync(dir, 0o700);
      await until(() => j.health.ok, "durable after chmod u+w");
      j.close();
    } finally {
      chmodSync(dir, 0o700);
    }
    const k = Journal.open({ dir });
    open.push(k);
    expect(Object.fromEntries(k.entries())).toEqual({ "alert/1": { open: true }, "alert/2": { open: true } });
  },
);

it("the delayed full open reads the directory again: the segment another gateway wrote meanwhile is not overwritten, its records kept under the live state", async () => {
  const dir = tempDir();
  const small = { segmentBytes: 4096 };
  const seed = Journal.open({ dir, ...small });
  for (let i = 0; seed.stats().segments < 2; i++) seed.put(`seed/${i}`, { i, pad: "s".repeat(200) });
  await seed.sync();
  seed.close();

  const state = { ro: "EROFS" as string | null };
  const { log, lines } = captureLog();
  const j = Journal.open({
    dir,
    ...small,
    fs: readOnlyMount(state),
    whenUnwritable: "degrade",
    retryMs: 30,
    log,
  });
  open.push(j);
  j.put("mine", "live");
  j.put("seed/1", "changed here");
  j.delete("seed/0");

  // This one holds no LOCK while read-only: another gateway takes the directory, rolls to a new
  // segment, and stops, all before this one can write.
  const other = Journal.open({ dir, ...small });
  const before = other.stats().segments;
  for (let i = 0; i < 1000 && other.stats().segments === before; i++)
    other.put(`other/${i}`, { i, pad: "o".repeat(200) });
  other.put("other/last", "in its newest segment");
  other.put("seed/1", "changed there");
  await other.sync();
  other.close();
  const newest = readdirSync(dir)
    .filter((n) => n.startsWith("seg-"))
    .sort()
    .pop()!;
  const newestBytes = readFileSync(join(dir, newest));

  state.ro = null;
  await until(() => j.health.ok, "durable after the remount");
  expect(readFileSync(join(dir, newest))).toEqual(newestBytes);
  expect(j.get("other/last")).toBe("in its newest segment");
  expect(lines.some((l) => /directory changed since it was read at start/.test(l.msg))).toBe(true);
  j.close();
  const k = Journal.open({ dir });
  open.push(k);
  expect(k.get("other/last")).toBe("in its newest segment");
  expect(k.get("other/0")).toMatchObject({ i: 0 });
  expect(k.get("mine")).toBe("live");
  expect(k.get("seed/1")).toBe("changed here"); // this process's change wins
  expect(k.get("seed/0")).toBeUndefined(); // deleted here: does not come back from the files
  expect(k.recovery.damaged).toBe(0);
});

it("a segment file the journal did not write is never overwritten: the next number is taken and a snapshot covers it", async () => {
  const dir = tempDir();
  const { log, lines } = captureLog();
  const j = Journal.open({ dir, segmentBytes: 4096, log });
  open.push(j);
  j.put("a", 1);
  await j.sync();
  const stray = join(dir, segmentName(2));
  writeFileSync(stray, "not this journal's");
  for (let i = 0; i < 40; i++) j.put(`k/${i}`, { i, pad: "p".repeat(200) }); // two rolls
  expect(readFileSync(stray, "utf8")).toBe("not this journal's");
  await until(
    () => j.stats().compactions > 0 && !j.stats().compacting,
    "the snapshot covering the stray segment",
  );
  await j.sync();
  const said = lines.find((l) => l.level === 50 && /did not write it/.test(l.msg));
  expect(said).toMatchObject({ file: segmentName(2) });
  const expected = new Map(j.entries());
  j.close();
  open.splice(open.indexOf(j), 1);
  const k = Journal.open({ dir, segmentBytes: 4096 });
  open.push(k);
  expect(new Map(k.entries())).toEqual(expected);
  expect(k.recovery.damaged).toBe(0);
});

/** Segment 1 with a record in its middle corrupted (its CRC fails): a corrupt-record at open. */
async function corruptMidSegment(dir: string): Promise<void> {
  const first = Journal.open({ dir });
  for (let i = 0; i < 10; i++) first.put(`alert/${i}`, { i, pad: "a".repeat(80) });
  await first.sync();
  first.close();
  const file = join(dir, segmentName(1));
  const buf = readFileSync(file);
  const mid = Math.floor(buf.length / 2);
  buf.writeUInt8(buf.readUInt8(mid) ^ 0xff, mid);
  writeFileSync(file, buf);
}

it("damage found by the delayed full open is moved aside, added to recovery and reported once (onDamageFound)", async () => {
  const dir = tempDir();
  await corruptMidSegment(dir);
  const state = { ro: "EACCES" as string | null, unreadable: "EACCES" as string | null };
  const reports: FoundDamage[] = [];
  const j = Journal.open({
    dir,
    fs: readOnlyMount(state),
    whenUnwritable: "degrade",
    retryMs: 30,
    onDamageFound: (d) => reports.push(d),
  });
  open.push(j);
  expect(j.recovery.damaged).toBe(0);
  state.ro = state.unreadable = null;
  await until(() => j.health.ok, "durable once the directory opens");
  expect(reports).toHaveLength(1);
  expect(reports[0]).toMatchObject({
    damaged: 1,
    damage: [{ kind: "corrupt-record", file: segmentName(1) }],
  });
  const moved = reports[0]!.damage[0]!.movedTo!;
  expect(existsSync(join(dir, moved))).toBe(true);
  expect(j.recovery).toMatchObject({ damaged: 1, lost: true, quarantined: [moved] });
  await new Promise((r) => setTimeout(r, 150)); // retries that would find it again, if any ran
  expect(reports).toHaveLength(1);
});

it("damage already found by the read-only start is not reported again by the full open, only moved aside", async () => {
  const dir = tempDir();
  await corruptMidSegment(dir);
  const state = { ro: "EROFS" as string | null };
  const reports: FoundDamage[] = [];
  const j = Journal.open({
    dir,
    fs: readOnlyMount(state),
    whenUnwritable: "degrade",
    retryMs: 30,
    onDamageFound: (d) => reports.push(d),
  });
  open.push(j);
  // Found (and reported by the gateway at start), but the read-only disk took no copy.
  expect(j.recovery.damage).toMatchObject([{ kind: "corrupt-record" }]);
  expect(j.recovery.damage[0]?.movedTo).toBeUndefined();
  state.ro = null;
  await until(() => j.health.ok, "durable after the remount");
  expect(reports).toEqual([]);
  expect(j.recovery.damaged).toBe(1);
  expect(existsSync(join(dir, j.recovery.damage[0]!.movedTo!))).toBe(true);
});

it("a full open retried (the lock lost while it read the directory) reports the damage once", async () => {
  const dir = tempDir();
  await corruptMidSegment(dir);
  const state = { ro: "EACCES" as string | null, unreadable: "EACCES" as string | null };
  const mount = readOnlyMount(state);
  let removeLock = true;
  const fs: JournalFs = {
    ...mount,
    readdirSync: (p) => {
      const names = mount.readdirSync(p);
      // The first full read: the LOCK just taken disappears under it (an operator, another gateway).
      if (removeLock && names.includes("LOCK")) {
        removeLock = false;
        rmSync(join(dir, "LOCK"));
      }
      return names;
    },
  };
  const reports: FoundDamage[] = [];
  const { log, lines } = captureLog();
  const j = Journal.open({
    dir,
    fs,
    whenUnwritable: "degrade",
    retryMs: 30,
    log,
    onDamageFound: (d) => reports.push(d),
  });
  open.push(j);
  state.ro = state.unreadable = null;
  await until(() => j.health.ok, "durable once the directory opens");
  expect(lines.some((l) => /lock was lost while reading/.test(l.msg))).toBe(true);
  expect(reports).toHaveLength(1);
  expect(reports[0]).toMatchObject({ damaged: 1, damage: [{ kind: "corrupt-record" }] });
  expect(j.recovery.damaged).toBe(1);
});

/** Segment 1 with `n` records corrupted (every other one of 2n + 1: each a region of its own). */
async function corruptManyRecords(dir: string, n: number): Promise<void> {
  const first = Journal.open({ dir });
  for (let i = 0; i <= 2 * n; i++) first.put(`alert/${i}`, { i, pad: "a".repeat(80) });
  await first.sync();
  first.close();
  const file = join(dir, segmentName(1));
  const buf = readFileSync(file);
  const bounds = recordBounds(buf);
  for (let h = 0; h < n; h++) buf[bounds[2 * h]![1] - 1]! ^= 0xff; // the value's last byte: its CRC fails
  writeFileSync(file, buf);
}

it("thousands of regions found by a read-only start and again by the full open: counted once, the listed ones moved aside", async () => {
  const dir = tempDir();
  await corruptManyRecords(dir, 1000);
  const state = { ro: "EROFS" as string | null };
  const reports: FoundDamage[] = [];
  const j = Journal.open({
    dir,
    fs: readOnlyMount(state),
    whenUnwritable: "degrade",
    retryMs: 30,
    onDamageFound: (d) => reports.push(d),
  });
  open.push(j);
  expect(j.recovery.damaged).toBe(1000);
  expect(j.recovery.damage).toHaveLength(MAX_LISTED_DAMAGE);
  expect(j.recovery.damage.every((d) => d.movedTo === undefined)).toBe(true);
  const byKind = structuredClone(j.recovery.damageByKind);
  state.ro = null;
  await until(() => j.health.ok, "durable after the remount");
  expect(reports).toEqual([]);
  expect(j.recovery.damaged).toBe(1000);
  expect(j.recovery.damageByKind).toEqual(byKind);
  expect(j.recovery.damage).toHaveLength(MAX_LISTED_DAMAGE);
  for (const d of j.recovery.damage) expect(existsSync(join(dir, d.movedTo!))).toBe(true);
});

it("thousands of regions found only by the delayed full open: reported once, every one counted, the first listed", async () => {
  const dir = tempDir();
  await corruptManyRecords(dir, 1000);
  const state = { ro: "EACCES" as string | null, unreadable: "EACCES" as string | null };
  const reports: FoundDamage[] = [];
  const j = Journal.open({
    dir,
    fs: readOnlyMount(state),
    whenUnwritable: "degrade",
    retryMs: 30,
    onDamageFound: (d) => reports.push(d),
  });
  open.push(j);
  expect(j.recovery.damaged).toBe(0);
  state.ro = state.unreadable = null;
  await until(() => j.health.ok, "durable once the directory opens");
  await new Promise((r) => setTimeout(r, 100)); // retries that would find it again, if any ran
  expect(reports).toHaveLength(1);
  expect(reports[0]?.damaged).toBe(1000);
  expect(reports[0]?.damageByKind["corrupt-record"].count).toBe(1000);
  expect(reports[0]?.damage).toHaveLength(MAX_LISTED_DAMAGE);
  expect(j.recovery.damaged).toBe(1000);
  expect(j.recovery.damageByKind["corrupt-record"].count).toBe(1000);
});

it("a disk full for long (new files still created, writes refused): the retries do not leave a new segment each", async () => {
  // ENOSPC refuses blocks, not inodes: an empty file can still be created on a full ext4.
  const dir = tempDir();
  const faults: Faults = { write: null, sync: null, create: null };
  const j = Journal.open({ dir, fs: faultyFs(faults), retryMs: 20 });
  open.push(j);
  for (let i = 0; i < 20; i++) j.put(`k${i}`, { i });
  await committed(j);
  const segments = () => readdirSync(dir).filter((n) => n.startsWith("seg-")).length;
  const before = segments();
  faults.write = "ENOSPC";
  j.put("k1", { changed: true });
  await committed(j);
  await until(() => !j.health.ok, "degraded health");
  await new Promise((r) => setTimeout(r, 600)); // dozens of failing retries
  expect(j.health.ok).toBe(false);
  expect(segments()).toBeLessThanOrEqual(before + 1);

  faults.write = null;
  await until(() => j.health.ok, "health restored by a fresh snapshot");
  j.put("after", 1);
  await committed(j);
  j.close();
  const k = Journal.open({ dir });
  open.push(k);
  expect(k.get("k1")).toEqual({ changed: true });
  expect(k.get("after")).toBe(1);
  expect(k.recovery.damaged).toBe(0);
});

it("a roll whose fdatasync of the old segment fails: degraded, no next segment opened, memory current, durable again once the disk works", async () => {
  const dir = tempDir();
  const faults: Faults = { write: null, sync: null, create: null };
  const j = Journal.open({ dir, fs: faultyFs(faults), segmentBytes: 4096, retryMs: 30 });
  open.push(j);
  for (let i = 0; i < 20; i++) j.put(`k${i}`, "v".repeat(50));
  await committed(j);
  const segments = () => readdirSync(dir).filter((n) => n.startsWith("seg-")).length;
  expect(segments()).toBe(1);
  faults.sync = "EIO";
  // About 5 KB more: the roll's sync of the old segment fails (creating files still works).
  for (let i = 20; i < 100; i++) j.put(`k${i}`, "v".repeat(50));
  expect(j.health.ok).toBe(false);
  expect(j.health.reason).toContain("EIO");
  expect(segments()).toBe(1);
  expect(j.get("k99")).toBe("v".repeat(50));
  let acked = false;
  j.commit(() => {
    acked = true;
  });
  await until(() => acked, "commit done() while degraded");
  faults.sync = null;
  await until(() => j.health.ok, "durable again");
  j.close();
  const back = Journal.open({ dir });
  open.push(back);
  expect(back.get("k0")).toBe("v".repeat(50));
  expect(back.get("k99")).toBe("v".repeat(50));
});
