/**
 * Damage before the end of the journal (docs/durability.md "Damage"): a corrupt record in the
 * middle of a segment is skipped alone, a torn tail is only the end of the journal, and segments
 * missing with no snapshot covering them are reported, never replayed around in silence.
 */
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { journalScratch } from "../../test/support/journal-scratch.js";
import { damagedName, segmentName, snapshotName } from "./files.js";
import { type JournalFs, nodeFs } from "./fs.js";
import { Journal } from "./journal.js";
import { OP_DELETE, OP_SYNCED, recordBounds, scan, scanSegment } from "./record.js";
import { MAX_DAMAGED, MAX_LISTED_DAMAGE } from "./recovery.js";

const { tempDir, openJ, closeJ } = journalScratch("linli-journal-recovery-");

function captureLog() {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: "info" }, stream), lines };
}

type Op = { key: string; value: unknown } | { key: string; del: true };

function stateOf(ops: Op[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const op of ops) {
    if ("del" in op) m.delete(op.key);
    else m.set(op.key, op.value);
  }
  return m;
}

const SEGMENT = 16 * 1024;

/**
 * `count` records of about 100 bytes in segment 1, then every other one of the first 2 * `hits`
 * corrupted; returns the corrupted records' [start, end), in order.
 */
function corruptRecords(dir: string, count: number, hits: number): Array<[number, number]> {
  const j = Journal.open({ dir });
  for (let i = 0; i < count; i++) j.put(`alert/${i}`, { i, pad: "q".repeat(80) });
  j.close();
  const file = join(dir, segmentName(1));
  const buf = readFileSync(file);
  const bounds = recordBounds(buf);
  const hit: Array<[number, number]> = [];
  // The last byte of the value: the CRC fails, the length is intact (exactly that record skipped).
  for (let h = 0; h < hits; h++) {
    const b = bounds[2 * h + 1]!;
    buf[b[1] - 1]! ^= 0xff;
    hit.push(b);
  }
  writeFileSync(file, buf);
  return hit;
}

const damagedFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith("damaged-"));

/**
 * The audit's case: 15 open P1 alerts, 3 acknowledged, 2 closed, in a first segment of about
 * 15.7 KB; then a second segment with more changes. Returns the ops in order and segment 1's index
 * of each op.
 */
function writeSite(dir: string): Op[] {
  const j = Journal.open({ dir, segmentBytes: SEGMENT, compactAfterBytes: 1 << 30 });
  const ops: Op[] = [];
  const put = (key: string, value: unknown) => {
    j.put(key, value);
    ops.push({ key, value });
  };
  const del = (key: string) => {
    j.delete(key);
    ops.push({ key, del: true });
  };
  const alert = (i: number, state: string) => ({
    id: `A${i}`,
    code: "SOS_PRESS",
    priority: 1,
    state,
    causes: ["press"],
    detail: "x".repeat(860),
  });
  for (let i = 0; i < 15; i++) put(`alert/${i}`, alert(i, "active-unacknowledged"));
  for (const i of [2, 7, 12]) put(`alert/${i}`, alert(i, "active-acknowledged"));
  // Closed at the end of the first segment: a reopened closed alert is the harm to avoid.
  del("alert/13");
  del("alert/14");
  // Fill up to the roll, then a second segment.
  for (let i = 0; j.stats().segments < 2; i++) put(`dev/${i}`, { seen: i, pad: "y".repeat(200) });
  for (let i = 15; i < 20; i++) put(`alert/${i}`, alert(i, "active-unacknowledged"));
  j.close();
  return ops;
}

describe("journal recovery: damage before the end", () => {
  it("a corrupt record in the middle of a non-final segment costs that record only; later ones and later segments are replayed", () => {
    const dir = tempDir();
    const ops = writeSite(dir);
    const file = join(dir, segmentName(1));
    const original = readFileSync(file);
    expect(readdirSync(dir).filter((n) => n.startsWith("seg-")).length).toBe(2);
    expect(original.length).toBeGreaterThan(15_000);
    const bounds = recordBounds(original);
    // 4 bytes overwritten at offset 5000, inside one record's body (framing of the others intact).
    const hit = bounds.findIndex(([s, e]) => s + 8 <= 5000 && 5004 <= e);
    expect(hit).toBeGreaterThan(0);
    const damaged = Buffer.from(original);
    damaged.fill(0xa5, 5000, 5004);
    writeFileSync(file, damaged);

    const { log, lines } = captureLog();
    const j = openJ({ dir, segmentBytes: SEGMENT, log });
    const expected = stateOf(ops.filter((_op, i) => i !== hit));
    expect(new Map(j.entries())).toEqual(expected);
    // The closed alerts stay closed; only the one record's key may be wrong.
    expect(j.get("alert/13")).toBeUndefined();
    expect(j.get("alert/14")).toBeUndefined();
    expect([2, 7, 12].map((i) => (j.get(`alert/${i}`) as { state: string }).state)).toEqual([
      "active-acknowledged",
      "active-acknowledged",
      "active-acknowledged",
    ]);
    const [start, end] = bounds[hit]!;
    expect(j.recovery.damage).toEqual([
      {
        kind: "corrupt-record",
        file: segmentName(1),
        offset: start,
        bytes: end - start,
        records: 1,
        reason: "bad CRC",
        movedTo: j.recovery.quarantined[0],
      },
    ]);
    expect(j.recovery.lost).toBe(true);
    expect(readFileSync(join(dir, j.recovery.quarantined[0]!))).toEqual(damaged.subarray(start, end));
    // The segment keeps its bytes (later records are in it); the error names bytes, records, segment.
    expect(readFileSync(file).length).toBe(original.length);
    const err = lines.find((l) => l.level === 50 && /corrupt before its end/.test(l.msg));
    expect(err).toMatchObject({ file: segmentName(1), skippedBytes: end - start, skippedRecords: 1 });
    expect(lines.some((l) => /torn/.test(l.msg))).toBe(false);
    closeJ(j);

    // Reported once: the snapshot written at open is where the next open starts.
    const k = openJ({ dir, segmentBytes: SEGMENT });
    expect(k.recovery.damaged).toBe(0);
    expect(new Map(k.entries())).toEqual(expected);
  });

  it("a record whose length field is overwritten is skipped up to the next valid record", () => {
    const dir = tempDir();
    const ops = writeSite(dir);
    const file = join(dir, segmentName(1));
    const buf = readFileSync(file);
    const bounds = recordBounds(buf);
    const hit = 5;
    const [start, end] = bounds[hit]!;
    buf.writeUInt32LE(0x00123456, start); // plausible length, pointing nowhere valid
    writeFileSync(file, buf);
    const j = openJ({ dir, segmentBytes: SEGMENT });
    expect(new Map(j.entries())).toEqual(stateOf(ops.filter((_op, i) => i !== hit)));
    expect(j.recovery.damage).toMatchObject([{ kind: "corrupt-record", offset: start, bytes: end - start }]);
    expect(j.recovery.damage[0]?.records).toBeUndefined(); // unknown: found by searching forward
  });

  it("a damaged end of a segment that later segments go on from is corruption, not a torn tail", () => {
    const dir = tempDir();
    writeSite(dir);
    const file = join(dir, segmentName(1));
    const buf = readFileSync(file);
    const bounds = recordBounds(buf);
    const last = bounds[bounds.length - 1]!;
    writeFileSync(file, buf.subarray(0, last[0] + 20));
    const j = openJ({ dir, segmentBytes: SEGMENT });
    expect(j.recovery.damage).toMatchObject([{ kind: "corrupt-record", offset: last[0], bytes: 20 }]);
    expect(j.recovery.lost).toBe(true);
  });

  it("a torn end followed only by an empty segment (a roll, then the power cut) is the journal's torn tail", () => {
    const dir = tempDir();
    writeSite(dir);
    const file = join(dir, segmentName(2));
    const buf = readFileSync(file);
    writeFileSync(file, buf.subarray(0, buf.length - 7));
    writeFileSync(join(dir, segmentName(3)), "");
    const { log, lines } = captureLog();
    const j = openJ({ dir, segmentBytes: SEGMENT, log });
    expect(j.recovery.damage).toMatchObject([{ kind: "torn-tail", file: segmentName(2) }]);
    expect(j.recovery.lost).toBe(false);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});

describe("journal recovery: missing segments", () => {
  const small = { segmentBytes: 4096, compactAfterBytes: 1 << 30 };

  function writeMany(dir: string): Op[] {
    const j = Journal.open({ dir, ...small });
    const ops: Op[] = [];
    for (let i = 0; j.stats().segments < 7; i++) {
      const value = { id: `A${i}`, state: "active-unacknowledged", pad: "z".repeat(300) };
      j.put(`alert/${i}`, value);
      ops.push({ key: `alert/${i}`, value });
    }
    j.close();
    return ops;
  }

  it("first segments gone and no snapshot: reported as damage (error, counted), not replayed around in silence", () => {
    const dir = tempDir();
    writeMany(dir);
    for (let s = 1; s <= 4; s++) unlinkSync(join(dir, segmentName(s)));
    const { log, lines } = captureLog();
    const j = openJ({ dir, ...small, log });
    expect(j.recovery.damage).toEqual([
      {
        kind: "missing-segments",
        file: segmentName(1),
        bytes: 0,
        segments: [1, 2, 3, 4],
        count: 4,
        reason: "missing and no snapshot covers them",
      },
    ]);
    expect(j.recovery.lost).toBe(true);
    expect(lines.find((l) => l.level === 50 && /segments missing \(4/.test(l.msg))).toBeDefined();
    closeJ(j);
    // The snapshot written at open covers what is left: the next start reports nothing again.
    expect(openJ({ dir, ...small }).recovery.damaged).toBe(0);
  });

  it("a gap in the sequence is reported, and the segments around it replayed", () => {
    const dir = tempDir();
    const ops = writeMany(dir);
    const seg3 = readFileSync(join(dir, segmentName(3)));
    const lostKeys = new Set<string>();
    scan(seg3, (_op, key) => lostKeys.add(key), OP_DELETE);
    unlinkSync(join(dir, segmentName(3)));
    const j = openJ({ dir, ...small });
    expect(j.recovery.damage).toMatchObject([{ kind: "missing-segments", segments: [3], count: 1 }]);
    const expected = stateOf(ops);
    for (const k of lostKeys) expected.delete(k);
    expect(new Map(j.entries())).toEqual(expected);
  });

  it("an intact journal reports no damage", () => {
    const dir = tempDir();
    writeMany(dir);
    const j = openJ({ dir, ...small });
    expect(j.recovery).toMatchObject({ damaged: 0, damage: [], lost: false });
  });
});

describe("journal recovery: the damaged-* files kept", () => {
  it("never deletes this start's: a clock set back names the new file older than the earlier starts' 20", () => {
    const dir = tempDir();
    corruptRecords(dir, 10, 1);
    const later = Date.parse("2027-03-01T00:00:00Z");
    for (let i = 0; i < MAX_DAMAGED; i++)
      writeFileSync(join(dir, damagedName(later + i * 1000, "seg-x.log")), "old");
    // A box without an RTC, before NTP: its clock says 2026-01-01.
    const j = openJ({ dir, now: () => Date.parse("2026-01-01T00:00:00Z") });
    expect(j.recovery.quarantined).toHaveLength(1);
    const [mine] = j.recovery.quarantined;
    expect(j.recovery.damage[0]?.movedTo).toBe(mine);
    expect(damagedFiles(dir)).toContain(mine);
    expect(damagedFiles(dir)).toHaveLength(MAX_DAMAGED);
    // The oldest of the earlier ones made room.
    expect(damagedFiles(dir)).not.toContain(damagedName(later, "seg-x.log"));
  });

  it("one start finding more than 20 damaged regions copies the first 19 to a file each and the rest into one overflow file; deletes none of them", () => {
    const dir = tempDir();
    const hits = corruptRecords(dir, 60, MAX_DAMAGED + 5);
    for (let i = 0; i < 3; i++)
      writeFileSync(join(dir, damagedName(Date.parse("2026-01-01") + i, "seg-y.log")), "old");
    const { log, lines } = captureLog();
    const j = openJ({ dir, log });
    const damage = j.recovery.damage;
    // Every one counted; the first MAX_LISTED_DAMAGE listed (MAX_DAMAGED: the 19 files and one more).
    expect(j.recovery.damaged).toBe(MAX_DAMAGED + 5);
    expect(j.recovery.damageByKind["corrupt-record"].count).toBe(MAX_DAMAGED + 5);
    expect(MAX_LISTED_DAMAGE).toBe(MAX_DAMAGED);
    expect(damage).toHaveLength(MAX_LISTED_DAMAGE);
    expect(damage.every((d) => d.kind === "corrupt-record")).toBe(true);
    const q = j.recovery.quarantined;
    expect(q).toHaveLength(MAX_DAMAGED);
    const rest = q[MAX_DAMAGED - 1]!;
    expect(rest).toMatch(/^damaged-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-rest\.bin$/);
    // Met in offset order: the first 19 a file each, every later one in the overflow file.
    expect(damage.slice(0, MAX_DAMAGED - 1).map((d) => d.movedTo)).toEqual(q.slice(0, MAX_DAMAGED - 1));
    expect(damage[MAX_DAMAGED - 1]?.movedTo).toBe(rest);
    const inRest = readRest(readFileSync(join(dir, rest)));
    expect(inRest.map((e) => [e.offset, e.offset + e.bytes])).toEqual(hits.slice(MAX_DAMAGED - 1));
    // Every file the report names is there; the earlier starts' made room.
    expect(damagedFiles(dir).sort()).toEqual([...q].sort());
    expect(lines.some((l) => /without a copy/.test(l.msg))).toBe(false);
    // The error line of the listed region in the overflow file names it; the rest are summed up.
    expect(lines.filter((l) => l.level === 50 && l.copiedTo === rest)).toHaveLength(1);
    expect(lines.find((l) => /damage found at this start/.test(l.msg))).toMatchObject({
      level: 50,
      damaged: MAX_DAMAGED + 5,
      unlisted: 5,
      restFile: rest,
      restRegions: 6,
    });
    expect(j.size).toBe(60 - MAX_DAMAGED - 5);
  });

  it("the overflow file holds exactly each further region's bytes, found by its header line; a torn tail copied there is cut off after it", () => {
    const dir = tempDir();
    const hits = corruptRecords(dir, 60, MAX_DAMAGED + 5);
    const file = join(dir, segmentName(1));
    const body = readFileSync(file);
    // A power cut in the middle of one more record: the first 20 bytes of a record at the end.
    const [r0s] = recordBounds(readFileSync(file))[0]!;
    const damaged = Buffer.concat([body, body.subarray(r0s, r0s + 20)]);
    writeFileSync(file, damaged);
    const j = openJ({ dir });
    const damage = j.recovery.damage;
    expect(j.recovery.damaged).toBe(MAX_DAMAGED + 6);
    expect(j.recovery.damageByKind["torn-tail"]).toEqual({ count: 1, bytes: 20, records: 0, segments: 0 });
    expect(damage).toHaveLength(MAX_LISTED_DAMAGE);
    const rest = j.recovery.quarantined.find((n) => n.endsWith("-rest.bin"))!;
    const entries = readRest(readFileSync(join(dir, rest)));
    // The corrupt records after the 19th, then the tail (met last: skipped regions first).
    expect(entries.map(({ data: _data, ...h }) => h)).toEqual([
      ...hits.slice(MAX_DAMAGED - 1).map(([start, end]) => ({
        file: segmentName(1),
        offset: start,
        bytes: end - start,
        kind: "corrupt-record",
        reason: "bad CRC",
      })),
      { file: segmentName(1), offset: body.length, bytes: 20, kind: "torn-tail", reason: expect.any(String) },
    ]);
    for (const e of entries) expect(e.data).toEqual(damaged.subarray(e.offset, e.offset + e.bytes));
    for (const d of damage.filter((d) => d.movedTo !== rest))
      expect(readFileSync(join(dir, d.movedTo!))).toEqual(damaged.subarray(d.offset, d.offset! + d.bytes));
    // The tail is in the overflow file, so the segment is cut to its valid prefix.
    expect(readFileSync(file).length).toBe(body.length);
  });

  it("over starts that each find more than 20 regions, at most 20 damaged-* files exist and each start keeps all of its own", () => {
    const dir = tempDir();
    const t0 = Date.parse("2026-03-01T00:00:00Z");
    for (let start = 0; start < 4; start++) {
      for (const n of readdirSync(dir)) if (!n.startsWith("damaged-")) unlinkSync(join(dir, n));
      corruptRecords(dir, 70, MAX_DAMAGED + 10);
      const j = openJ({ dir, now: () => t0 + start * 60_000 });
      expect(j.recovery.damaged).toBe(MAX_DAMAGED + 10);
      expect(damagedFiles(dir).sort()).toEqual([...j.recovery.quarantined].sort());
      for (const d of j.recovery.damage) expect(damagedFiles(dir)).toContain(d.movedTo);
      const rest = j.recovery.quarantined.find((n) => n.endsWith("-rest.bin"))!;
      expect(readRest(readFileSync(join(dir, rest)))).toHaveLength(11);
      closeJ(j);
    }
  });

  it("the overflow file holds at most a segment's bytes: regions that do not fit are reported without a copy, counted with their bytes", () => {
    const dir = tempDir();
    const hits = corruptRecords(dir, 250, 100);
    const damaged = readFileSync(join(dir, segmentName(1)));
    const { log, lines } = captureLog();
    const j = openJ({ dir, log, segmentBytes: 4096 });
    expect(j.recovery.damaged).toBe(100);
    const rest = j.recovery.quarantined.find((n) => n.endsWith("-rest.bin"))!;
    const restFile = readFileSync(join(dir, rest));
    expect(restFile.length).toBeLessThanOrEqual(4096);
    expect(restFile.length).toBeGreaterThan(4096 - 300); // filled, not left half empty
    const entries = readRest(restFile);
    // In the order met, each one that still fit (all the same size here: the first ones).
    const toRest = hits.slice(MAX_DAMAGED - 1);
    expect(entries.map((e) => e.offset)).toEqual(toRest.slice(0, entries.length).map(([s]) => s));
    for (const e of entries) expect(e.data).toEqual(damaged.subarray(e.offset, e.offset + e.bytes));
    const notCopied = toRest.slice(entries.length);
    expect(notCopied.length).toBeGreaterThan(0);
    const warn = lines.find((l) => l.level === 40 && /without a copy/.test(l.msg));
    expect(warn).toMatchObject({
      notCopied: notCopied.length,
      notCopiedBytes: notCopied.reduce((n, [s, e]) => n + e - s, 0),
      restFile: rest,
      restBytes: 4096,
    });
    expect(damagedFiles(dir)).toHaveLength(MAX_DAMAGED);
  });

  it("a torn tail's copy and its directory entry are durable before the segment is cut", () => {
    for (const hits of [0, MAX_DAMAGED + 5]) {
      const dir = tempDir();
      corruptRecords(dir, 60, hits);
      const file = join(dir, segmentName(1));
      const body = readFileSync(file);
      writeFileSync(file, Buffer.concat([body, body.subarray(0, 20)]));
      const { fs, ops } = recordingFs();
      const j = openJ({ dir, fs });
      // The tail is met last: listed alone, or beyond the listed ones in the overflow file.
      const copy =
        hits === 0
          ? j.recovery.damage.find((d) => d.kind === "torn-tail")!.movedTo!
          : j.recovery.quarantined.find((n) => n.endsWith("-rest.bin"))!;
      expect(copy).toMatch(hits === 0 ? /-seg-\d+\.log\.bin$/ : /-rest\.bin$/);
      if (hits > 0) expect(readRest(readFileSync(join(dir, copy))).at(-1)?.kind).toBe("torn-tail");
      const cut = ops.indexOf(`ftruncate ${segmentName(1)}`);
      expect(cut).toBeGreaterThan(0);
      const before = ops.slice(0, cut);
      const lastWrite = before.lastIndexOf(`write ${copy}`);
      expect(lastWrite).toBeGreaterThanOrEqual(0);
      const after = before.slice(lastWrite);
      expect(after).toContain(`fdatasync ${copy}`);
      expect(after).toContain(`fsync ${dir}`);
      closeJ(j);
    }
  });
});

describe("journal recovery: copies the disk refuses", () => {
  /**
   * node:fs whose writes to the damaged-* files it creates (those `match` names) are refused
   * with EIO after the first `partial` bytes; their removal too when `unlink` is false.
   */
  function refusingCopies(opts: { partial: number; match?: (name: string) => boolean; unlink?: boolean }) {
    const fds = new Set<number>();
    const created: string[] = [];
    const eio = () => Object.assign(new Error("EIO: injected"), { code: "EIO" });
    const match = opts.match ?? (() => true);
    const fs: JournalFs = {
      ...nodeFs,
      openSync: (p, f, m) => {
        const fd = nodeFs.openSync(p, f, m);
        const name = basename(p);
        if (f === "wx" && name.startsWith("damaged-") && match(name)) {
          fds.add(fd);
          created.push(name);
        }
        return fd;
      },
      closeSync: (fd) => {
        fds.delete(fd);
        nodeFs.closeSync(fd);
      },
      writeSync: (fd, b, o, l, p) => {
        if (!fds.has(fd)) return nodeFs.writeSync(fd, b, o, l, p);
        if (p === 0 && opts.partial > 0) return nodeFs.writeSync(fd, b, o, Math.min(l, opts.partial), p);
        throw eio();
      },
      unlinkSync: (p) => {
        if (opts.unlink === false && created.includes(basename(p))) throw eio();
        nodeFs.unlinkSync(p);
      },
    };
    return { fs, created };
  }

  const earlier = (dir: string, n: number) => {
    for (let i = 0; i < n; i++)
      writeFileSync(join(dir, damagedName(Date.parse("2026-01-01") + i * 1000, "seg-y.log")), "old");
  };

  it("a copy refused half written is removed: a failing disk leaves no empty or partial damaged-* file, and is not tried again for every region", () => {
    const dir = tempDir();
    corruptRecords(dir, 60, MAX_DAMAGED + 5);
    earlier(dir, MAX_DAMAGED);
    const { fs, created } = refusingCopies({ partial: 10 });
    let t = Date.parse("2026-06-01T00:00:00Z");
    const j = openJ({ dir, fs, now: () => (t += 1000) }); // a new name for every file tried
    expect(damagedFiles(dir).length).toBeLessThanOrEqual(MAX_DAMAGED);
    expect(damagedFiles(dir).filter((n) => created.includes(n))).toEqual([]);
    expect(created).toHaveLength(1);
    expect(j.health.ok).toBe(false); // the disk refused: degraded
    expect(j.recovery.quarantined).toEqual([]);
    expect(j.recovery.damaged).toBe(MAX_DAMAGED + 5);
    expect(j.recovery.damage.every((d) => d.movedTo === undefined)).toBe(true);
  });

  it("the overflow file refused its first region is removed, not left empty beside the report's files", () => {
    const dir = tempDir();
    corruptRecords(dir, 60, MAX_DAMAGED + 5);
    const { fs, created } = refusingCopies({ partial: 10, match: (n) => n.endsWith("-rest.bin") });
    const j = openJ({ dir, fs });
    expect(created).toHaveLength(1);
    expect(j.health.ok).toBe(false);
    expect(j.recovery.quarantined).toHaveLength(MAX_DAMAGED - 1);
    expect(damagedFiles(dir).sort()).toEqual([...j.recovery.quarantined].sort());
  });

  it("a refused copy the disk will not remove either counts as one of this start's files: still at most 20", () => {
    const dir = tempDir();
    corruptRecords(dir, 60, MAX_DAMAGED + 5);
    earlier(dir, MAX_DAMAGED);
    const { fs, created } = refusingCopies({ partial: 10, unlink: false });
    const j = openJ({ dir, fs });
    expect(created).toHaveLength(1);
    expect(damagedFiles(dir)).toContain(created[0]);
    expect(j.recovery.quarantined).not.toContain(created[0]);
    expect(damagedFiles(dir)).toHaveLength(MAX_DAMAGED);
  });
});

describe("journal recovery: corrupt snapshots within the bound", () => {
  it("take this start's places (19: the last is the segments'); beyond them deleted, earlier starts' trimmed: at most 20 damaged-* files", () => {
    const dir = tempDir();
    const j0 = Journal.open({ dir });
    j0.put("k", 1);
    j0.close();
    for (let i = 0; i < 5; i++)
      writeFileSync(join(dir, damagedName(Date.parse("2026-01-01") + i * 1000, "seg-y.log")), "old");
    // A directory restored by hand from a broken copy: 25 snapshots, none valid.
    const snaps = Array.from({ length: 25 }, (_, i) => snapshotName(100 + i));
    for (const n of snaps) writeFileSync(join(dir, n), "not a snapshot");
    const { log, lines } = captureLog();
    const j = openJ({ dir, log });
    expect(damagedFiles(dir).length).toBeLessThanOrEqual(MAX_DAMAGED);
    expect(j.get("k")).toBe(1);
    expect(j.recovery.damageByKind.snapshot.count).toBe(25);
    const mine = j.recovery.quarantined;
    expect(mine).toHaveLength(MAX_DAMAGED - 1);
    expect(mine.every((n) => /-snap-\d+\.snap\.bin$/.test(n))).toBe(true);
    expect(damagedFiles(dir)).toHaveLength(MAX_DAMAGED);
    for (const n of mine) expect(damagedFiles(dir)).toContain(n);
    // The newest 19 moved aside, the 6 oldest deleted: none is left to be read again.
    for (const n of snaps) expect(existsSync(join(dir, n))).toBe(false);
    expect(lines.find((l) => /damage found at this start/.test(l.msg))).toMatchObject({
      snapshotsDeleted: 6,
    });
    const deleted = lines.find((l) => l.file === snaps[5] && /unusable/.test(l.msg));
    expect(deleted?.msg).toContain("deleted, not kept aside");
  });

  it("one larger than a segment is deleted, not kept aside: a damaged-* file holds at most a segment", () => {
    const dir = tempDir();
    const j0 = Journal.open({ dir, segmentBytes: 4096 });
    j0.put("k", 1);
    j0.close();
    const big = snapshotName(7);
    writeFileSync(join(dir, big), Buffer.alloc(10_000, 0xa5));
    const { log, lines } = captureLog();
    const j = openJ({ dir, segmentBytes: 4096, log });
    expect(j.get("k")).toBe(1);
    expect(j.recovery.damage).toContainEqual(
      expect.objectContaining({ kind: "snapshot", file: big, bytes: 10_000 }),
    );
    expect(j.recovery.damage.find((d) => d.kind === "snapshot")?.movedTo).toBeUndefined();
    expect(existsSync(join(dir, big))).toBe(false);
    expect(damagedFiles(dir)).toEqual([]);
    expect(lines.find((l) => l.file === big)?.msg).toMatch(/deleted, not kept aside: it is larger than/);
  });
});

describe("journal recovery: a segment of thousands of damaged regions", () => {
  it("lists and logs the first 20, sums the rest up in one line, counts every one by kind", () => {
    const dir = tempDir();
    // Bit flips in every other record of 2,001 small ones: 1,000 regions in one segment.
    const hits = corruptRecords(dir, 2001, 1000);
    const { log, lines } = captureLog();
    const j = openJ({ dir, log });
    // The log: one line per listed region and one summary line, not one per region.
    expect(lines.filter((l) => /corrupt before its end/.test(l.msg))).toHaveLength(MAX_LISTED_DAMAGE);
    expect(lines.filter((l) => l.level >= 40).length).toBeLessThanOrEqual(MAX_LISTED_DAMAGE + 3);
    const bytes = hits.reduce((n, [s, e]) => n + e - s, 0);
    const summary = lines.find((l) => /damage found at this start, 1000 in all/.test(l.msg));
    expect(summary).toMatchObject({ level: 50, damaged: 1000, unlisted: 1000 - MAX_LISTED_DAMAGE });
    expect(summary?.msg).toContain(`corrupt-record 1000 (${bytes} bytes, at least 1000 record(s))`);
    // The report: the first listed (the order met, one segment: by offset), every one counted.
    const r = j.recovery;
    expect(r.damage).toHaveLength(MAX_LISTED_DAMAGE);
    expect(r.damage.map((d) => d.offset)).toEqual(hits.slice(0, MAX_LISTED_DAMAGE).map(([s]) => s));
    expect(r.damaged).toBe(1000);
    expect(r.damageByKind).toEqual({
      "torn-tail": { count: 0, bytes: 0, records: 0, segments: 0 },
      "corrupt-record": { count: 1000, bytes, records: 1000, segments: 0 },
      "missing-segments": { count: 0, bytes: 0, records: 0, segments: 0 },
      snapshot: { count: 0, bytes: 0, records: 0, segments: 0 },
    });
    expect(r.lost).toBe(true);
    // The info line that carries the report stays small.
    const opened = lines.find((l) => l.msg === "journal opened");
    expect(JSON.stringify(opened).length).toBeLessThan(16 * 1024);
    // Every region is still copied aside: 19 files, the rest in the overflow file.
    const rest = r.quarantined.find((n) => n.endsWith("-rest.bin"))!;
    expect(readRest(readFileSync(join(dir, rest)))).toHaveLength(1000 - (MAX_DAMAGED - 1));
    expect(j.size).toBe(1001);
  });
});

/** The overflow file read back by its documented layout: a JSON header line, its bytes, "\n". */
function readRest(buf: Buffer) {
  const out: Array<{
    file: string;
    offset: number;
    bytes: number;
    kind: string;
    reason: string;
    data: Buffer;
  }> = [];
  let at = 0;
  while (at < buf.length) {
    const eol = buf.indexOf(0x0a, at);
    const header = JSON.parse(buf.toString("utf8", at, eol));
    const data = buf.subarray(eol + 1, eol + 1 + header.bytes);
    expect(data.length).toBe(header.bytes);
    expect(buf[eol + 1 + header.bytes]).toBe(0x0a);
    out.push({ ...header, data });
    at = eol + 2 + header.bytes;
  }
  return out;
}

/** node:fs, recording writes, syncs and truncations by file name (a directory by its path). */
function recordingFs(): { fs: JournalFs; ops: string[] } {
  const ops: string[] = [];
  const names = new Map<number, string>();
  const name = (fd: number) => names.get(fd) ?? "?";
  const fs: JournalFs = {
    ...nodeFs,
    openSync: (p, f, m) => {
      const fd = nodeFs.openSync(p, f, m);
      names.set(fd, f === "r" && !p.includes(".") ? p : p.slice(p.lastIndexOf("/") + 1));
      return fd;
    },
    writeSync: (fd, b, o, l, p) => {
      ops.push(`write ${name(fd)}`);
      return nodeFs.writeSync(fd, b, o, l, p);
    },
    fdatasyncSync: (fd) => {
      ops.push(`fdatasync ${name(fd)}`);
      nodeFs.fdatasyncSync(fd);
    },
    fsyncSync: (fd) => {
      ops.push(`fsync ${name(fd)}`);
      nodeFs.fsyncSync(fd);
    },
    ftruncateSync: (fd, l) => {
      ops.push(`ftruncate ${name(fd)}`);
      nodeFs.ftruncateSync(fd, l);
    },
  };
  return { fs, ops };
}

describe("scanSegment", () => {
  it("searches 1 MiB of random bytes after a valid record for the next one quickly, and calls it a tail", () => {
    const dir = tempDir();
    const j = Journal.open({ dir });
    j.put("k", 1);
    j.close();
    const head = readFileSync(join(dir, segmentName(1)));
    let seed = 7;
    const garbage = Buffer.alloc(1 << 20);
    for (let i = 0; i < garbage.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      garbage[i] = seed >>> 24;
    }
    const seen: string[] = [];
    // A search that computed a CRC at every plausible offset would run far past the test's timeout.
    const res = scanSegment(Buffer.concat([head, garbage]), (op, key) => op !== OP_SYNCED && seen.push(key));
    expect(seen).toEqual(["k"]);
    expect(res).toMatchObject({ skipped: [], validEnd: head.length });
    expect(res.tailDamage).not.toBeNull();
  });
});
