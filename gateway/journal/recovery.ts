/**
 * Opening a journal directory: what was durable before the process stopped, however it stopped.
 *
 * The newest valid snapshot is loaded, then every segment from its sequence number on is replayed
 * in order. Damage is what a power cut mid-write or a failing disk leaves, and is never a reason
 * not to start, but every kind is reported (RecoveryReport.damage; docs/durability.md "Damage"):
 * - torn-tail: damage at the end of the journal (no valid record after it in this or any later
 *   segment, or a hole in the newest segment's unsynced tail: holeInUnsyncedTail), what a power
 *   cut in the middle of a write leaves: the valid prefix is kept, the
 *   rest copied to `damaged-<time>-<segment>.bin` and the segment truncated to the prefix, so
 *   the next append continues from a valid record. Nothing acknowledged is lost (docs: storage.sync);
 * - corrupt-record: damage with valid records after it in synced data (a bad sector, a bit flip): the damaged
 *   bytes are skipped, copied aside, and replay resynchronises at the next valid record, so one
 *   bad record costs that record, not the rest of the journal. Its key cannot be known;
 * - missing-segments: a segment that should be replayed is gone (a gap in the sequence, or the
 *   first segments gone with no snapshot covering them) or unreadable;
 * - snapshot: a corrupt snapshot is moved aside whole (or deleted beyond the bound, below) and
 *   the previous one is used with the segments after it (the journal keeps two generations for this).
 * Each is counted in the report and logged with the file's name; all but a torn tail at error
 * level. Bounded however much damage there is (random bit flips over a segment of small records
 * make thousands of regions): the first MAX_LISTED_DAMAGE are listed in the report and logged one
 * by one, every one is counted (RecoveryReport.damaged, damageByKind: exact, for the metrics and
 * the P2), and one summary line gives the totals of the rest.
 *
 * At most MAX_DAMAGED files moved aside are kept, so a disk that keeps tearing cannot fill
 * the quota with them: room for a new one is made by deleting the oldest ones of earlier starts,
 * never one this start's report names (its log lines and `movedTo` would name a file that is
 * gone). Every damaged region a start finds is copied aside: a start that finds more than fit in
 * MAX_DAMAGED files copies the first ones it meets (segments newest first: the newest is where a
 * power cut tears) to a file each, MAX_DAMAGED - 1 in all, and every later one into one overflow
 * file, `damaged-<time>-rest.bin` (damaged-rest.ts: a header line per region, its bytes). That
 * file holds at most `restBytes` (the segment size); a region that does not fit is reported and
 * skipped as usual but not copied (`movedTo` absent; one warn line counts them and their bytes).
 * A copy the disk refuses is removed again (no empty or partial file left beyond the bound; one
 * the disk will not remove either counts as one of this start's files), and no further copy is
 * tried at that start. A corrupt snapshot takes one of the same places (renamed, not copied) when
 * it is no larger than a segment and this start keeps fewer than MAX_DAMAGED - 1 files; otherwise
 * it is deleted: it is never read again, and keeping it would break the bound.
 */
import { createHash, type Hash } from "node:crypto";
import path from "node:path";
import type { Logger } from "pino";
import { DamagedRest } from "./damaged-rest.js";
import { classify, damagedName, segmentName, snapshotName } from "./files.js";
import { JournalFormatError } from "./format.js";
import { fsyncDir, type JournalFs, sizeOf, tryUnlink, writeFully } from "./fs.js";
import { OP_DELETE, OP_PUT, OP_SYNCED, type SegmentScan, scanSegment, syncedOffset } from "./record.js";
import { readSnapshot } from "./snapshot.js";

interface HeldRecord {
  op: number;
  key: string;
  value: Buffer;
  end: number;
}

/**
 * A hole in the unsynced tail. A power cut persists the sectors written since the last completed
 * fdatasync in any order, so the newest segment may end in valid records after a hole that never
 * reached the disk. Those records were never synced: nobody was told they were kept, and they may
 * depend on what the hole held (a hold's end without the alert it raised: the alert forgotten).
 * Damage in synced data (a bad sector) is different: the records after it are skipped past and
 * kept. The synced records (record.ts OP_SYNCED) tell them apart: a hole that ends past the
 * furthest offset one names is in the unsynced tail, and the segment ends there as a torn tail
 * (the rest moved aside, nothing after it replayed); holes before that offset were synced and are
 * skipped as corrupt records. A hole in synced bytes no synced record names yet (the last batch,
 * synced with no record appended after it) reads as the unsynced tail: its records after it are
 * moved aside with it, the price of never replaying a record after a power cut's hole.
 */
function holeInUnsyncedTail(
  res: SegmentScan,
  synced: number,
  held: HeldRecord[],
  apply: (op: number, key: string, value: Buffer, end: number) => void,
): SegmentScan {
  const cut = res.skipped.find((r) => r.end > synced);
  for (const r of held) if (cut === undefined || r.end <= cut.start) apply(r.op, r.key, r.value, r.end);
  if (cut === undefined) return res;
  return {
    skipped: res.skipped.filter((r) => r.start < cut.start),
    validEnd: cut.start,
    tailDamage: `${cut.reason}, in the unsynced tail (past offset ${synced}, the last one a synced record names): what follows was never synced`,
  };
}

/** Files moved aside that are kept: this start's, then the newest of earlier starts (names sort by time). */
export const MAX_DAMAGED = 20;
/** Missing segments named in the report and the log; the count is of all of them. */
const MAX_LISTED = 100;
/**
 * Damage listed in the report (RecoveryReport.damage) and logged one by one: the first met
 * (snapshots, missing segments, then segments newest first). The rest are counted and summed up.
 */
export const MAX_LISTED_DAMAGE = 20;

export type DamageKind = "torn-tail" | "corrupt-record" | "missing-segments" | "snapshot";
export const DAMAGE_KINDS: readonly DamageKind[] = [
  "torn-tail",
  "corrupt-record",
  "missing-segments",
  "snapshot",
];

/** Every damage of one kind, listed or not. */
export interface DamageTotals {
  /** Damages (a run of missing segments is one). */
  count: number;
  /** Bytes not replayed. */
  bytes: number;
  /** Records skipped where known (a region found by searching forward adds none: unknown). */
  records: number;
  /** Segments missing or unreadable (missing-segments). */
  segments: number;
}

export type DamageByKind = Record<DamageKind, DamageTotals>;

export function zeroTotals(): DamageTotals {
  return { count: 0, bytes: 0, records: 0, segments: 0 };
}

export function noDamage(): DamageByKind {
  return {
    "torn-tail": zeroTotals(),
    "corrupt-record": zeroTotals(),
    "missing-segments": zeroTotals(),
    snapshot: zeroTotals(),
  };
}

/** Adds `from` into `into`. */
export function addTotals(into: DamageTotals, from: DamageTotals): void {
  into.count += from.count;
  into.bytes += from.bytes;
  into.records += from.records;
  into.segments += from.segments;
}

function totalsOf(d: Damage): DamageTotals {
  return { count: 1, bytes: d.bytes, records: d.records ?? 0, segments: d.count ?? 0 };
}

/** One damage found at open. */
export interface Damage {
  kind: DamageKind;
  /** The file it is in, or the first missing segment's name. */
  file: string;
  /** Bytes not replayed (torn-tail, corrupt-record, snapshot: the whole file). */
  bytes: number;
  /** Offset in the file (torn-tail, corrupt-record). */
  offset?: number;
  /** Records skipped when known (a corrupt record whose length was intact: 1). */
  records?: number;
  /** Segment sequence numbers missing (missing-segments; the first MAX_LISTED) and how many. */
  segments?: number[];
  count?: number;
  reason: string;
  /**
   * Where the damaged bytes were copied (when they could be): a file of their own, or the start's
   * overflow file `damaged-<time>-rest.bin`, where its header line names this file and offset.
   */
  movedTo?: string;
}

export interface RecoveryReport {
  /** Records replayed from segments (after the snapshot). */
  records: number;
  /** Live keys loaded from the snapshot. */
  snapshotRecords: number;
  /** Segment files replayed. */
  segments: number;
  /** Bytes read (snapshot + segments). */
  bytes: number;
  /** Damage found: torn tails, corrupt records skipped, missing segments, corrupt snapshots. All of it. */
  damaged: number;
  /**
   * What each damage was (see the module comment): the first MAX_LISTED_DAMAGE met, sorted by file
   * and offset. `damaged` > `damage.length` when there was more; damageByKind counts all of it.
   */
  damage: Damage[];
  /** Every damage found, by kind: exact however much was listed. */
  damageByKind: DamageByKind;
  /**
   * Something may have been lost that had been acknowledged (anything but a torn tail): the
   * gateway raises STORAGE_DAMAGED_AT_START about itself.
   */
  lost: boolean;
  /** Names of the files the damaged parts were moved to. */
  quarantined: string[];
  ms: number;
}

export interface Recovered {
  /** The live values found: key -> the value's bytes, a view into the snapshot or segment read. */
  entries: Map<string, Buffer>;
  /** Files left in the directory and their sizes (a truncated segment at its new size). */
  segments: Map<number, number>;
  snapshots: Map<number, number>;
  others: Map<string, number>;
  /** The segments replayed, in order (every segment from the snapshot's sequence number on). */
  replayed: number[];
  /** The sequence number the next new segment must exceed. */
  lastSeq: number;
  report: RecoveryReport;
  /** Damaged tails that could not be moved aside (the disk refused): the journal opens degraded. */
  failures: Array<{ op: string; err: unknown }>;
  /**
   * Every damage found, grouped by kind and file (a run of missing segments: its first one's name),
   * each group with a digest of its damages (offset, bytes, segments missing): a later open of the same
   * directory finds the same digest for the same damage (opening.ts mergeReport). One group per
   * damaged file, so bounded by the directory's files, not by the damage in them.
   */
  damageGroups: Map<string, DamageGroup>;
}

export interface DamageGroup {
  kind: DamageKind;
  file: string;
  digest: string;
  totals: DamageTotals;
}

export interface RecoveryOptions {
  fs: JournalFs;
  /** Absolute. */
  dir: string;
  /** Wall clock, for the names of the files moved aside. */
  now: () => number;
  /**
   * Most bytes of a damaged-* file: the overflow file, headers included, or a corrupt snapshot
   * kept aside (the journal's segment size).
   */
  restBytes: number;
  log?: Logger | undefined;
}

export function emptyReport(): RecoveryReport {
  return {
    records: 0,
    snapshotRecords: 0,
    segments: 0,
    bytes: 0,
    damaged: 0,
    damage: [],
    damageByKind: noDamage(),
    lost: false,
    quarantined: [],
    ms: 0,
  };
}

/** Reads the directory into a Recovered; synchronous, as the gateway must not start before it. */
export function recover(opts: RecoveryOptions): Recovered {
  return new Recovery(opts).run();
}

class Recovery {
  private readonly fsx: JournalFs;
  private readonly dir: string;
  private readonly out: Recovered;
  /** Segments read, until their damage is reported. */
  private readonly damagedBytes = new Map<number, Buffer>();
  /** Damaged segment regions this start has still to copy aside (to know when to overflow). */
  private regionsLeft = 0;
  /** The overflow file, once this start has used MAX_DAMAGED - 1 files and more regions follow. */
  private rest: DamagedRest | null = null;
  /**
   * The disk refused a copy at this start: none is tried again (a failing disk is not written to
   * once per region of thousands); the regions after it stay where they are.
   */
  private copyFailed = false;
  /** Damaged regions not copied aside (the overflow file was full) and their bytes. */
  private notCopied = 0;
  private notCopiedBytes = 0;
  /** Files this start created that the disk would neither fill nor remove: they count against the bound. */
  private readonly leftovers = new Set<string>();
  /** Corrupt snapshots deleted instead of kept aside (no place or too large for one). */
  private snapshotsDeleted = 0;
  /** Each damage group's digest, finished at the end (Recovered.damageGroups). */
  private readonly hashes = new Map<string, Hash>();

  constructor(private readonly opts: RecoveryOptions) {
    this.fsx = opts.fs;
    this.dir = opts.dir;
    this.out = {
      entries: new Map(),
      segments: new Map(),
      snapshots: new Map(),
      others: new Map(),
      replayed: [],
      lastSeq: 0,
      report: emptyReport(),
      failures: [],
      damageGroups: new Map(),
    };
  }

  run(): Recovered {
    const { out } = this;
    const { report } = out;
    const listing = classify(this.fsx.readdirSync(this.dir));
    // A *.tmp is a snapshot whose write never finished: never renamed, so never valid.
    for (const name of listing.tmp) tryUnlink(this.fsx, this.dir, name);
    for (const name of [...listing.damaged, ...listing.other]) out.others.set(name, this.size(name));
    for (const seq of listing.segments) out.segments.set(seq, this.size(segmentName(seq)));

    const base = this.loadNewestSnapshot(listing.snapshots);
    out.replayed = listing.segments.filter((s) => s >= base);
    this.findMissing(base, listing.snapshots);
    // The journal's tail is the last segment holding a valid record; damage after it is torn.
    const scans = out.replayed.map((seq, i) => this.replaySegment(seq, i === out.replayed.length - 1));
    for (const s of scans) if (s) this.regionsLeft += s.skipped.length + (s.tailDamage === null ? 0 : 1);
    let tail = true;
    for (let i = scans.length - 1; i >= 0; i--) {
      const s = scans[i];
      if (!s) continue;
      if (s.skipped.length > 0 || s.tailDamage !== null)
        this.reportSegmentDamage(out.replayed[i] as number, s, tail);
      if (s.validEnd > 0 || s.skipped.length > 0) tail = false;
    }
    report.damage.sort((a, b) =>
      a.file === b.file ? (a.offset ?? 0) - (b.offset ?? 0) : a.file < b.file ? -1 : 1,
    );
    report.lost = DAMAGE_KINDS.some((k) => k !== "torn-tail" && report.damageByKind[k].count > 0);
    for (const [key, hash] of this.hashes) {
      const group = out.damageGroups.get(key);
      if (group) group.digest = hash.digest("hex");
    }
    this.closeRest();
    this.trimDamaged();
    if (this.notCopied > 0)
      this.opts.log?.warn(
        {
          notCopied: this.notCopied,
          notCopiedBytes: this.notCopiedBytes,
          restFile: this.rest?.regions ? this.rest.name : undefined,
          restBytes: this.opts.restBytes,
        },
        `journal: ${this.notCopied} damaged region(s) found at this start (${this.notCopiedBytes} bytes) were ` +
          `skipped without a copy: at most ${MAX_DAMAGED} damaged-* files are kept, and the last, for the ` +
          `regions beyond the first ${MAX_DAMAGED - 1}, holds at most ${this.opts.restBytes} bytes`,
      );
    this.summarize();
    out.lastSeq = Math.max(base - 1, ...listing.segments, 0);
    return out;
  }

  /**
   * Counts a damage (report totals and its group); lists it and calls `log` only while fewer than
   * MAX_LISTED_DAMAGE are listed: a segment of thousands of damaged regions is summed up in one
   * line (summarize), not logged line by line, and the report kept small.
   */
  private found(d: Damage, log: () => void): void {
    const { report, damageGroups } = this.out;
    const totals = totalsOf(d);
    report.damaged++;
    addTotals(report.damageByKind[d.kind], totals);
    const key = `${d.kind} ${d.file}`;
    let group = damageGroups.get(key);
    let hash = this.hashes.get(key);
    if (group === undefined || hash === undefined) {
      group = { kind: d.kind, file: d.file, digest: "", totals: zeroTotals() };
      hash = createHash("sha256");
      damageGroups.set(key, group);
      this.hashes.set(key, hash);
    }
    addTotals(group.totals, totals);
    // What a later read of the same files finds again: not where it was moved, nor an error's text.
    hash.update(`${d.offset ?? ""} ${d.bytes} ${d.count ?? ""}\n`);
    if (report.damage.length >= MAX_LISTED_DAMAGE) return;
    report.damage.push(d);
    log();
  }

  /** The damage not logged one by one: one line with the totals of all of it, by kind. */
  private summarize(): void {
    const { report } = this.out;
    const unlisted = report.damaged - report.damage.length;
    if (unlisted === 0) return;
    const kinds = DAMAGE_KINDS.filter((k) => report.damageByKind[k].count > 0)
      .map((k) => {
        const t = report.damageByKind[k];
        const more =
          k === "missing-segments"
            ? `, ${t.segments} segment(s)`
            : t.records > 0
              ? `, at least ${t.records} record(s)`
              : "";
        return `${k} ${t.count} (${t.bytes} bytes${more})`;
      })
      .join(", ");
    const fields = {
      damaged: report.damaged,
      unlisted,
      byKind: report.damageByKind,
      restFile: this.rest?.regions ? this.rest.name : undefined,
      restRegions: this.rest?.regions ?? 0,
      notCopied: this.notCopied,
      snapshotsDeleted: this.snapshotsDeleted,
    };
    const msg =
      `journal damage found at this start, ${report.damaged} in all: ${kinds}. The first ` +
      `${report.damage.length} are logged one by one; the other ${unlisted} are only counted here ` +
      "(those copied to the overflow file are named by its header lines)";
    if (report.lost) this.opts.log?.error(fields, msg);
    else this.opts.log?.warn(fields, msg);
  }

  /**
   * Segments that must be there and are not: from the snapshot's sequence number (1 without one:
   * the writer numbers segments from 1 without gaps) to the last segment, or to the newest snapshot
   * found corrupt (it covered every segment before it). Their records are lost without a trace.
   */
  private findMissing(base: number, snapshots: number[]): void {
    const last = Math.max(...this.out.replayed, ...snapshots.filter((s) => s > base).map((s) => s - 1), 0);
    // Walked gap by gap (a stray file name could claim segment 10^15); at most MAX_LISTED named.
    const missing: number[] = [];
    let count = 0;
    let expect = Math.max(1, base);
    for (const seq of [...this.out.replayed, last + 1]) {
      for (let s = expect; s < seq; s++) {
        if (missing.length < MAX_LISTED) missing.push(s);
        else {
          count += seq - s;
          break;
        }
        count++;
      }
      expect = Math.max(expect, seq + 1);
    }
    if (count === 0) return;
    const file = segmentName(missing[0] as number);
    const damage: Damage = {
      kind: "missing-segments",
      file,
      bytes: 0,
      segments: missing,
      count,
      reason:
        base > 0 ? `missing after snapshot ${snapshotName(base)}` : "missing and no snapshot covers them",
    };
    this.found(damage, () =>
      this.opts.log?.error(
        { missing: missing.map(segmentName), count, snapshot: base > 0 ? snapshotName(base) : null },
        `journal segments missing (${count}, from ${file}) with no snapshot covering them: ` +
          "whatever they held (open alerts, acknowledgements) is lost; state rebuilt from what is left",
      ),
    );
  }

  /** Loads the newest valid snapshot into the entries; a corrupt one is set aside and the previous one tried. */
  private loadNewestSnapshot(snapshots: number[]): number {
    const { out } = this;
    for (const seq of [...snapshots].reverse()) {
      const name = snapshotName(seq);
      const snap = readSnapshot(this.fsx, path.join(this.dir, name), seq);
      if (typeof snap === "string") {
        this.setSnapshotAside(name, snap);
        continue;
      }
      out.snapshots.set(seq, snap.bytes);
      for (const [k, v] of snap.entries) out.entries.set(k, v);
      out.report.snapshotRecords = snap.records;
      out.report.bytes += snap.bytes;
      // Older ones are the fallback for the next open; read only if this one goes bad.
      for (const older of snapshots) {
        if (older < seq) out.snapshots.set(older, this.size(snapshotName(older)));
      }
      return seq;
    }
    return 0;
  }

  /**
   * Replays one segment; null when it cannot be read. Damage is reported by the caller. `newest`:
   * the last segment, the only one with an unsynced tail (a roll syncs the old segment first):
   * a hole in it may be a power cut's, see holeInUnsyncedTail.
   */
  private replaySegment(seq: number, newest: boolean): SegmentScan | null {
    const { out } = this;
    const name = segmentName(seq);
    let buf: Buffer;
    try {
      buf = this.fsx.readFileSync(path.join(this.dir, name));
    } catch (err) {
      const damage: Damage = {
        kind: "missing-segments",
        file: name,
        bytes: this.size(name),
        segments: [seq],
        count: 1,
        reason: `unreadable: ${(err as Error).message}`,
      };
      this.found(damage, () =>
        this.opts.log?.error(
          { file: name, err: (err as Error).message },
          "journal segment unreadable, skipped: whatever it held is lost",
        ),
      );
      return null;
    }
    out.report.segments++;
    out.report.bytes += buf.length;
    let lastEnd = -1;
    const apply = (op: number, key: string, value: Buffer, end: number): void => {
      // A pair (two puts, one record) is one record.
      if (end !== lastEnd) out.report.records++;
      lastEnd = end;
      if (op === OP_PUT) out.entries.set(key, value);
      else out.entries.delete(key);
    };
    /** The furthest offset a synced record in this segment names: durable up to there. */
    let synced = 0;
    /** Records after the first hole in the newest segment, applied once known to be synced: at most the segment's records. */
    let held: HeldRecord[] | null = null;
    let res = scanSegment(
      buf,
      (op, key, value, end) => {
        if (op === OP_SYNCED) synced = Math.max(synced, syncedOffset(value));
        else if (held !== null) held.push({ op, key, value, end });
        else apply(op, key, value, end);
      },
      OP_DELETE,
      newest ? () => (held ??= []) : undefined,
    );
    // Written by a newer format: refused before anything in the directory is changed (all segments
    // are read before any damage is moved aside).
    if (res.newerOp !== undefined) throw new JournalFormatError(this.dir, name, `record kind ${res.newerOp}`);
    if (held !== null) res = holeInUnsyncedTail(res, synced, held, apply);
    if (res.skipped.length > 0 || res.tailDamage !== null) this.damagedBytes.set(seq, buf);
    return res;
  }

  /** Copies skipped regions aside, truncates a damaged end, and reports both. */
  private reportSegmentDamage(seq: number, res: SegmentScan, journalTail: boolean): void {
    const { out } = this;
    const name = segmentName(seq);
    const buf = this.damagedBytes.get(seq) as Buffer;
    this.damagedBytes.delete(seq);
    for (const r of res.skipped) {
      const region = { file: name, offset: r.start, kind: "corrupt-record" as const, reason: r.reason };
      const { movedTo } = this.copyAside(region, buf.subarray(r.start, r.end), false);
      const damage: Damage = {
        kind: "corrupt-record",
        file: name,
        offset: r.start,
        bytes: r.end - r.start,
        ...(r.records === null ? {} : { records: r.records }),
        reason: r.reason,
        ...(movedTo === null ? {} : { movedTo }),
      };
      this.found(damage, () =>
        this.opts.log?.error(
          {
            file: name,
            offset: r.start,
            skippedBytes: r.end - r.start,
            skippedRecords: r.records ?? "unknown",
            reason: r.reason,
            copiedTo: movedTo,
          },
          `journal segment corrupt before its end: ${r.end - r.start} bytes (${r.records ?? "an unknown number of"} ` +
            `record(s)) skipped in ${name} at offset ${r.start}, replay resumed at the next valid record; ` +
            "what they held (an alert, an acknowledgement, a close) is lost",
        ),
      );
    }
    if (res.tailDamage === null) return;
    const lost = buf.length - res.validEnd;
    const kind: DamageKind = journalTail ? "torn-tail" : "corrupt-record";
    // Truncated when its bytes were copied, or deliberately not (the limit): never when the copy failed.
    const region = { file: name, offset: res.validEnd, kind, reason: res.tailDamage };
    const { movedTo, truncate } = this.copyAside(region, buf.subarray(res.validEnd), true);
    if (truncate) {
      try {
        const fd = this.fsx.openSync(path.join(this.dir, name), "r+");
        try {
          this.fsx.ftruncateSync(fd, res.validEnd);
          this.fsx.fdatasyncSync(fd);
        } finally {
          this.fsx.closeSync(fd);
        }
        fsyncDir(this.fsx, this.dir);
        out.segments.set(seq, res.validEnd);
      } catch (err) {
        // Still opens: the valid prefix is in memory; the next snapshot makes it durable.
        out.failures.push({ op: "truncating a damaged segment tail", err });
      }
    }
    const damage: Damage = {
      kind,
      file: name,
      offset: res.validEnd,
      bytes: lost,
      reason: res.tailDamage,
      ...(movedTo === null ? {} : { movedTo }),
    };
    const fields = { file: name, reason: res.tailDamage, keptBytes: res.validEnd, movedBytes: lost, movedTo };
    this.found(damage, () => {
      if (journalTail) {
        this.opts.log?.warn(
          fields,
          "journal segment torn at the end of the journal (a write cut short): valid prefix kept, the rest moved aside",
        );
      } else {
        this.opts.log?.error(
          fields,
          `journal segment corrupt at its end but later segments go on: ${lost} bytes of ${name} lost from offset ` +
            `${res.validEnd}; what they held (an alert, an acknowledgement, a close) is lost`,
        );
      }
    });
  }

  /**
   * Copies a damaged region aside: to a `damaged-...` file of its own while that leaves room for
   * the overflow file the regions after it need, else into the overflow file. Returns where, or
   * null: the disk refused this or an earlier copy (the bytes stay where they are: truncate
   * false), the overflow file is full, or this start has MAX_DAMAGED files already (snapshots moved
   * aside). `durable`: the caller cuts the bytes off next, so the copy is synced first, its
   * directory entry too.
   */
  private copyAside(
    region: { file: string; offset: number; kind: DamageKind; reason: string },
    bytes: Buffer,
    durable: boolean,
  ): { movedTo: string | null; truncate: boolean } {
    const later = --this.regionsLeft;
    if (this.copyFailed) return { movedTo: null, truncate: false };
    const used = this.startFiles();
    if (this.rest === null && used + (later > 0 ? 2 : 1) <= MAX_DAMAGED) {
      this.trimDamaged(1);
      return this.copyToOwnFile(region.file, bytes, durable);
    }
    if (this.rest === null && used < MAX_DAMAGED) {
      this.trimDamaged(1);
      this.rest = new DamagedRest(this.fsx, this.dir, this.uniqueDamagedName("rest"), this.opts.restBytes);
    }
    const header = this.rest?.fit({ ...region, bytes: bytes.length }) ?? null;
    if (this.rest === null || header === null) {
      this.notCopied++;
      this.notCopiedBytes += bytes.length;
      return { movedTo: null, truncate: true };
    }
    const { rest, out } = this;
    try {
      rest.append(header, bytes);
    } catch (err) {
      this.copyFailed = true;
      out.failures.push({ op: "quarantining a damaged segment part", err });
      // Its first region refused: the file was removed, unless the disk refused that too.
      if (rest.leftBehind) this.leftover(rest.name);
      return { movedTo: null, truncate: false };
    }
    if (rest.regions === 1) out.report.quarantined.push(rest.name);
    out.others.set(rest.name, rest.size);
    const synced = !durable || this.synced(() => rest.sync());
    if (!synced) this.copyFailed = true;
    return { movedTo: rest.name, truncate: synced };
  }

  private copyToOwnFile(
    source: string,
    bytes: Buffer,
    durable: boolean,
  ): { movedTo: string | null; truncate: boolean } {
    const { out } = this;
    const qname = this.uniqueDamagedName(source);
    let created = false;
    try {
      const qfd = this.fsx.openSync(path.join(this.dir, qname), "wx", 0o600);
      created = true;
      try {
        writeFully(this.fsx, qfd, bytes, 0);
        this.fsx.fdatasyncSync(qfd);
      } finally {
        this.fsx.closeSync(qfd);
      }
    } catch (err) {
      this.copyFailed = true;
      out.failures.push({ op: "quarantining a damaged segment part", err });
      // An empty or partial copy is no copy: removed, else (the disk refuses that too) counted as
      // one of this start's files, so a failing disk leaves no more than MAX_DAMAGED of them.
      if (created && !tryUnlink(this.fsx, this.dir, qname)) this.leftover(qname);
      return { movedTo: null, truncate: false };
    }
    out.others.set(qname, bytes.length);
    out.report.quarantined.push(qname);
    const synced = !durable || this.synced(() => {});
    if (!synced) this.copyFailed = true;
    return { movedTo: qname, truncate: synced };
  }

  /** A file this start made that is still on disk but holds no copy: it takes a place all the same. */
  private leftover(name: string): void {
    this.leftovers.add(name);
    this.out.others.set(name, this.size(name));
  }

  /** damaged-* files this start has on disk: its copies and snapshots moved aside, and leftovers. */
  private startFiles(): number {
    return this.out.report.quarantined.length + this.leftovers.size;
  }

  /**
   * The copy's bytes (sync) and its directory entry made durable before the original is cut off:
   * a power cut after the cut must not leave the bytes nowhere. False (and a failure) if refused.
   */
  private synced(sync: () => void): boolean {
    try {
      sync();
      fsyncDir(this.fsx, this.dir);
      return true;
    } catch (err) {
      this.out.failures.push({ op: "quarantining a damaged segment part", err });
      return false;
    }
  }

  /** The overflow file's bytes made durable and its fd closed (a failure degrades the journal). */
  private closeRest(): void {
    if (this.rest === null) return;
    try {
      this.rest.close();
    } catch (err) {
      this.out.failures.push({ op: "quarantining a damaged segment part", err });
    }
  }

  /**
   * A corrupt snapshot, never read again (the previous one is used): renamed aside, which copies
   * nothing, when it takes a place within the bound: no larger than a damaged-* file may be
   * (restBytes) and this start keeps fewer than MAX_DAMAGED - 1 files (the last place is left for
   * the segments' damage, read after). Else deleted: kept, it would break the bound in files or
   * bytes, on a disk whose quota the damaged-* files share with the journal.
   */
  private setSnapshotAside(name: string, problem: string): void {
    const { out } = this;
    const bytes = this.size(name);
    const damage: Damage = { kind: "snapshot", file: name, bytes, reason: problem };
    const fits = bytes <= this.opts.restBytes;
    let what: string;
    if (fits && this.startFiles() < MAX_DAMAGED - 1) {
      this.trimDamaged(1);
      const qname = this.uniqueDamagedName(name);
      try {
        this.fsx.renameSync(path.join(this.dir, name), path.join(this.dir, qname));
        fsyncDir(this.fsx, this.dir);
        out.others.set(qname, bytes);
        out.report.quarantined.push(qname);
        damage.movedTo = qname;
        what = `moved aside to ${qname}`;
      } catch (err) {
        what = `could not be moved aside (${(err as Error).message})`;
      }
    } else {
      const why = fits
        ? `this start keeps ${MAX_DAMAGED - 1} damaged-* files already`
        : `it is larger than a damaged-* file may be (${this.opts.restBytes} bytes)`;
      if (tryUnlink(this.fsx, this.dir, name)) {
        this.snapshotsDeleted++;
        what = `deleted, not kept aside: ${why}`;
      } else what = `could not be deleted (${why})`;
    }
    this.found(damage, () =>
      this.opts.log?.error(
        { file: name, problem, bytes, movedTo: damage.movedTo },
        `journal snapshot ${name} unusable (${problem}), falling back to the previous one; ${what}`,
      ),
    );
  }

  private uniqueDamagedName(source: string): string {
    const { out, opts } = this;
    let name = damagedName(opts.now(), source);
    for (let i = 1; out.others.has(name) || out.report.quarantined.includes(name); i++) {
      name = damagedName(opts.now(), `${source}-${i}`);
    }
    return name;
  }

  /**
   * Deletes `damaged-*` files until at most MAX_DAMAGED - room are left: this start's leftovers
   * first (they hold no copy), then the oldest of earlier starts. This start's copies (named by its
   * report) are never deleted: names sort by time, but a clock set back (a box without an RTC
   * before NTP) names new files older than the ones they follow.
   */
  private trimDamaged(room = 0): void {
    const { others, report } = this.out;
    const damaged = [...others.keys()].filter((n) => n.startsWith("damaged-"));
    const earlier = damaged.filter((n) => !report.quarantined.includes(n) && !this.leftovers.has(n)).sort();
    let excess = damaged.length + room - MAX_DAMAGED;
    for (const name of [...this.leftovers, ...earlier]) {
      if (excess <= 0) break;
      // One the disk will not delete is passed over: the next one may go.
      if (!tryUnlink(this.fsx, this.dir, name)) continue;
      others.delete(name);
      this.leftovers.delete(name);
      excess--;
    }
  }

  private size(name: string): number {
    return sizeOf(this.fsx, this.dir, name);
  }
}
