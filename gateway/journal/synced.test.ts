/**
 * What the journal knows to be durable, and what recovery makes of it (record.ts OP_SYNCED,
 * recovery.ts "A hole in the unsynced tail"): a power cut persists the sectors written since the
 * last fdatasync in any order, so the newest segment may hold valid records after a hole that
 * never reached the disk. Those are never replayed; a hole in synced data (a bad sector) is skipped
 * and the records after it kept.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encode } from "cbor-x";
import { describe, expect, it } from "vitest";
import { journalScratch } from "../../test/support/journal-scratch.js";
import { segmentName } from "./files.js";
import { type JournalFs, nodeFs } from "./fs.js";
import { Journal } from "./journal.js";
import { frame, frameSynced, OP_PUT, OP_SYNCED, SYNCED_BYTES, scan, syncedOffset } from "./record.js";

const { tempDir, openJ, closeJ } = journalScratch("linli-journal-synced-");

const committed = (j: Journal) => new Promise<void>((resolve) => j.commit(resolve));

/** A segment's records as [op, key or the synced offset, end]. */
function recordsOf(buf: Buffer): Array<[number, string | number, number]> {
  const out: Array<[number, string | number, number]> = [];
  scan(buf, (op, key, value, end) => out.push([op, op === OP_SYNCED ? syncedOffset(value) : key, end]), 2);
  return out;
}

const seg1 = (dir: string) => readFileSync(join(dir, segmentName(1)));

describe("synced records: the journal names how far its newest segment is durable", () => {
  it("batch: after a sync, the next record is preceded by one naming the synced offset; none while nothing new was synced", async () => {
    const dir = tempDir();
    const j = openJ({ dir });
    j.put("a", 1);
    await committed(j);
    const aEnd = seg1(dir).length;
    j.put("b", 2);
    j.put("c", 3); // same turn: no sync since the last synced record
    await committed(j);
    expect(j.stats().syncedRecords).toBe(1);
    j.put("d", 4);
    await committed(j);
    const recs = recordsOf(seg1(dir));
    expect(recs.map(([op, what]) => [op, what])).toEqual([
      [OP_PUT, "a"],
      [OP_SYNCED, aEnd],
      [OP_PUT, "b"],
      [OP_PUT, "c"],
      [OP_SYNCED, recs[3]?.[2]],
      [OP_PUT, "d"],
    ]);
    expect(j.stats().syncedRecords).toBe(2);
    // A clean close syncs, then names the whole segment: its last record.
    const before = seg1(dir).length;
    closeJ(j);
    expect(recordsOf(seg1(dir)).at(-1)).toEqual([OP_SYNCED, before, seg1(dir).length]);
    expect(openJ({ dir }).get("d")).toBe(4);
  });

  it("always: the synced record goes in the record's own write, no write or sync of its own", () => {
    const dir = tempDir();
    let writes = 0;
    const spy: JournalFs = {
      ...nodeFs,
      writeSync: (fd, b, o, l, p) => {
        writes++;
        return nodeFs.writeSync(fd, b, o, l, p);
      },
    };
    const j = openJ({ dir, fs: spy, sync: "always" });
    const w0 = writes;
    const s0 = j.stats().syncs;
    for (let i = 0; i < 5; i++) j.put(`k${i}`, i);
    expect(writes - w0).toBe(5);
    expect(j.stats().syncs - s0).toBe(5);
    // Before each record but the first: the offset its predecessor ended at.
    const recs = recordsOf(seg1(dir));
    expect(recs.map(([op]) => op)).toEqual([1, 6, 1, 6, 1, 6, 1, 6, 1]);
    for (let i = 1; i < recs.length; i += 2) expect(recs[i]?.[1]).toBe(recs[i - 1]?.[2]);
  });

  /** A file system logging segment opens and every fdatasyncSync, by file name. */
  function loggingOpens() {
    const calls: string[] = [];
    const names = new Map<number, string>();
    const fs: JournalFs = {
      ...nodeFs,
      openSync: (p, f, m) => {
        const fd = nodeFs.openSync(p, f, m);
        const name = p.split("/").at(-1) as string;
        names.set(fd, name);
        if (name.startsWith("seg-") && f !== "r") calls.push(`open ${f} ${name}`);
        return fd;
      },
      fdatasyncSync: (fd) => {
        calls.push(`fdatasync ${names.get(fd)}`);
        nodeFs.fdatasyncSync(fd);
      },
    };
    return { fs, calls };
  }

  it("a start syncs the last segment before it appends to it: a process killed before its sync left its tail in the page cache", async () => {
    const dir = tempDir();
    const first = openJ({ dir });
    first.put("a", 1);
    closeJ(first);
    const size = seg1(dir).length;
    const { fs, calls } = loggingOpens();
    const j = openJ({ dir, fs });
    expect(calls.slice(0, 3)).toEqual([
      `open r+ ${segmentName(1)}`,
      `fdatasync ${segmentName(1)}`,
      `open r+ ${segmentName(1)}`,
    ]);
    // Durable whole: the first record appended goes with a synced record naming the old end.
    j.put("b", 2);
    await committed(j);
    expect(recordsOf(seg1(dir)).slice(-2)).toEqual([
      [OP_SYNCED, size, size + SYNCED_BYTES],
      [OP_PUT, "b", seg1(dir).length],
    ]);
  });

  it("a start that opens a new segment (the last one full) syncs the last one first", () => {
    const dir = tempDir();
    const first = openJ({ dir, segmentBytes: 4096 });
    first.put("big", "x".repeat(5000)); // alone in segment 1, larger than a segment: the next start rolls
    closeJ(first);
    const { fs, calls } = loggingOpens();
    const j = openJ({ dir, fs, segmentBytes: 4096 });
    expect(calls.slice(0, 3)).toEqual([
      `open r+ ${segmentName(1)}`,
      `fdatasync ${segmentName(1)}`,
      `open wx ${segmentName(2)}`,
    ]);
    expect(j.get("big")).toBe("x".repeat(5000));
  });
});

/** Framed records k<i> = i, as the journal writes them. */
const put = (i: number) => frame(OP_PUT, `k${i}`, encode(i));

/**
 * Segment 1 of a fresh directory: r0 r1 r2, a synced record naming r2's end, r3 .. r7; then `hole`
 * (a record's number) zeroed as a sector that never reached the disk.
 */
function segmentWithHole(hole: number, syncedAfter = 2): { dir: string; at: Array<[number, number]> } {
  const dir = tempDir();
  Journal.open({ dir }).close();
  const parts: Buffer[] = [];
  const at: Array<[number, number]> = [];
  let pos = 0;
  for (let i = 0; i < 8; i++) {
    const rec = put(i);
    at.push([pos, pos + rec.length]);
    parts.push(rec);
    pos += rec.length;
    if (i === syncedAfter) {
      const s = frameSynced(pos);
      parts.push(s);
      pos += s.length;
    }
  }
  const bytes = Buffer.concat(parts);
  const [start, end] = at[hole] as [number, number];
  bytes.fill(0, start, end);
  writeFileSync(join(dir, segmentName(1)), bytes);
  return { dir, at };
}

const keys = (j: Journal) => [...j.entries()].map(([k]) => k).sort();

describe("recovery: a hole in the newest segment", () => {
  it("past the last synced record's offset: the power cut's unsynced tail; the segment ends at the hole, nothing after it replayed", () => {
    const { dir, at } = segmentWithHole(5);
    const size = statSync(join(dir, segmentName(1))).size;
    const j = openJ({ dir });
    // r3 and r4 were not synced either, but nothing before them is missing: kept as a prefix.
    expect(keys(j)).toEqual(["k0", "k1", "k2", "k3", "k4"]);
    const start = (at[5] as [number, number])[0];
    expect(j.recovery.damage).toMatchObject([{ kind: "torn-tail", offset: start, bytes: size - start }]);
    expect(j.recovery.damage[0]?.reason).toMatch(/unsynced tail/);
    expect(j.recovery.lost).toBe(false);
    expect(statSync(join(dir, segmentName(1))).size).toBe(start);
    const moved = j.recovery.damage[0]?.movedTo as string;
    expect(readdirSync(dir)).toContain(moved);
    expect(readFileSync(join(dir, moved)).length).toBe(size - start);
  });

  it("before the last synced record's offset: a bad sector in synced data; skipped, the records after it kept", () => {
    const { dir, at } = segmentWithHole(1);
    const j = openJ({ dir });
    expect(keys(j)).toEqual(["k0", "k2", "k3", "k4", "k5", "k6", "k7"]);
    expect(j.recovery.damage).toMatchObject([
      { kind: "corrupt-record", offset: (at[1] as [number, number])[0] },
    ]);
    expect(j.recovery.lost).toBe(true);
  });

  it("the synced record's offset decides: the same hole past it when it names less", () => {
    const { dir } = segmentWithHole(1, 0);
    const j = openJ({ dir });
    expect(keys(j)).toEqual(["k0"]);
    expect(j.recovery.damage).toMatchObject([{ kind: "torn-tail" }]);
  });

  it("in a segment before the newest: synced whole when the journal rolled away from it; skipped, the rest replayed", () => {
    const { dir } = segmentWithHole(5);
    writeFileSync(join(dir, segmentName(2)), put(8));
    const j = openJ({ dir });
    expect(keys(j)).toEqual(["k0", "k1", "k2", "k3", "k4", "k6", "k7", "k8"]);
    expect(j.recovery.damage).toMatchObject([{ kind: "corrupt-record", file: segmentName(1) }]);
  });
});
