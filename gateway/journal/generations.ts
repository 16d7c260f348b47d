/**
 * The journal directory's generations: which segment and snapshot files it holds and their sizes,
 * the current segment's number and end, what that costs against the quota, when a compaction is
 * due, and deleting the generations a durable snapshot made obsolete. Writing a snapshot of the
 * live map is started by the journal (journal.ts startSnapshot: it needs the map, the writer and
 * the health); the bookkeeping of one in flight (its reservation) is here.
 *
 * Generations: a snapshot snap-N covers every segment < N. The newest snapshot and the one before
 * it are kept with the segments after the older one, so a snapshot found corrupt at open falls
 * back to the previous snapshot + segments; older files are deleted once a new snapshot is durable.
 *
 * Quota: above SOFT_QUOTA of quotaBytes a compaction is started early (and the previous generation
 * dropped); appends leave room for one snapshot of the live map. The bytes on disk are a running
 * total kept as the files change: fitsQuota and compactionDue run on every appended record, and
 * summing the file maps there walked every segment and snapshot per record.
 */
import path from "node:path";
import type { Logger } from "pino";
import { segmentName, snapshotName } from "./files.js";
import { fsyncDir, type JournalFs, sizeOf, tryUnlink } from "./fs.js";
import type { Recovered } from "./recovery.js";
import { type Image, writeSnapshotSync } from "./snapshot.js";

export const SOFT_QUOTA = 0.75;
/** Existing segment files skipped by one openSegment() before it gives up (degrades). */
const MAX_FOREIGN_SEGMENTS = 100;

export interface GenerationsOptions {
  fs: JournalFs;
  dir: string;
  log: Logger | undefined;
  segmentBytes: number;
  compactAfterBytes: number;
  quotaBytes: number;
}

export class Generations {
  /** Files on disk and their sizes. */
  readonly segments = new Map<number, number>();
  readonly snapshots = new Map<number, number>();
  private readonly others = new Map<string, number>();
  /** The sum of the sizes above, kept as they change. */
  private filesBytes = 0;

  /** The segment appended to (the writer holds its fd) and its end. */
  seq = 0;
  pos = 0;
  /** Segment bytes written since the last snapshot. */
  sinceSnapshot = 0;
  /** A snapshot is being written. */
  snapshotInFlight = false;
  /** Expected size of the snapshot being written, counted against the quota until it is done. */
  private reserved = 0;
  compactions = 0;
  /** Longest synchronous slice of the last snapshot write, ms. */
  snapshotMaxSliceMs = 0;

  readonly segmentBytes: number;
  readonly compactAfterBytes: number;
  readonly quotaBytes: number;
  private readonly fsx: JournalFs;
  private readonly dir: string;
  private readonly log: Logger | undefined;

  constructor(opts: GenerationsOptions) {
    this.fsx = opts.fs;
    this.dir = opts.dir;
    this.log = opts.log;
    this.segmentBytes = opts.segmentBytes;
    this.compactAfterBytes = opts.compactAfterBytes;
    this.quotaBytes = opts.quotaBytes;
  }

  bytesOnDisk(): number {
    return this.filesBytes + this.reserved;
  }

  /** The files found at open become the journal's (after clear() for a second open). */
  adopt(found: Recovered): void {
    for (const [seq, size] of found.segments) this.setSegment(seq, size);
    for (const [seq, size] of found.snapshots) this.setSnapshot(seq, size);
    for (const [name, size] of found.others) {
      this.filesBytes += size - (this.others.get(name) ?? 0);
      this.others.set(name, size);
    }
  }

  clear(): void {
    this.segments.clear();
    this.snapshots.clear();
    this.others.clear();
    this.filesBytes = 0;
  }

  /** Continues appending to segment seq (found at open with room left). */
  resume(seq: number): void {
    this.seq = seq;
    this.pos = this.segments.get(seq) ?? 0;
  }

  /** A record of `bytes` is appended to the current segment: returns where it goes. */
  grow(bytes: number): number {
    const pos = this.pos;
    this.pos = pos + bytes;
    this.setSegment(this.seq, this.pos);
    this.sinceSnapshot += bytes;
    return pos;
  }

  /** The record does not fit in the current segment (which is not empty): roll first. */
  mustRoll(bytes: number): boolean {
    return this.pos > 0 && this.pos + bytes > this.segmentBytes;
  }

  /**
   * Creates the next segment from number `first` and makes it the current one; returns its fd.
   * Throws when the file cannot be created.
   */
  openSegment(first: number): number {
    // The number is taken only once the file exists: a failed create retried must not leave a
    // gap in the sequence, which the next open reports as a missing segment (recovery.ts).
    // "wx": an existing segment is never truncated. One this journal did not know of (another
    // gateway used the directory while this one held no lock) is kept and the next number taken;
    // a snapshot soon after covers it (docs/durability.md "Bounds, disk full, read-only").
    let seq = first;
    let fd: number;
    for (;;) {
      const name = segmentName(seq);
      try {
        fd = this.fsx.openSync(path.join(this.dir, name), "wx", 0o600);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || seq - first >= MAX_FOREIGN_SEGMENTS)
          throw err;
        const bytes = sizeOf(this.fsx, this.dir, name);
        this.setSegment(seq, bytes);
        this.sinceSnapshot = Math.max(this.sinceSnapshot, this.compactAfterBytes);
        this.log?.error(
          { dir: this.dir, file: name, bytes },
          `journal: ${name} exists but this gateway did not write it (another gateway used this directory?): ` +
            "kept, not overwritten; the next segment number is used and the next snapshot covers it",
        );
        seq++;
      }
    }
    this.seq = seq;
    this.pos = 0;
    this.setSegment(seq, 0);
    return fd;
  }

  /** True if the directory and one snapshot of the live map (liveBytes) fit in the quota. */
  snapshotFits(liveBytes: number): boolean {
    return this.bytesOnDisk() + liveBytes <= this.quotaBytes;
  }

  compactionDue(liveBytes: number): boolean {
    if (this.sinceSnapshot >= this.compactAfterBytes) return true;
    // Early compaction near the quota, at most once per quota/8 of new segment bytes.
    return (
      this.bytesOnDisk() + liveBytes > SOFT_QUOTA * this.quotaBytes &&
      this.sinceSnapshot >= Math.min(this.compactAfterBytes, this.quotaBytes / 8)
    );
  }

  /**
   * Appends leave room for one snapshot of the live map (the headroom), so a compaction can always
   * be written within the quota; while one is being written, its reservation is that room.
   */
  fitsQuota(need: number, liveBytes: number): boolean {
    const headroom = this.snapshotInFlight ? 0 : liveBytes;
    return this.bytesOnDisk() + need + headroom <= this.quotaBytes;
  }

  /** A snapshot of `reserve` bytes is being written: counted against the quota until it ends. */
  snapshotStarted(reserve: number): void {
    this.sinceSnapshot = 0;
    this.snapshotInFlight = true;
    this.reserved = reserve;
  }

  snapshotEnded(): void {
    this.snapshotInFlight = false;
    this.reserved = 0;
  }

  /** A snapshot is durable (renamed into place, directory synced). */
  snapshotWritten(seq: number, bytes: number): void {
    this.setSnapshot(seq, bytes);
    this.compactions++;
  }

  /** Past the soft quota: a new snapshot keeps only itself (no previous generation). */
  overSoftQuota(): boolean {
    return this.bytesOnDisk() > SOFT_QUOTA * this.quotaBytes;
  }

  /**
   * Deletes snapshots and segments no longer needed: everything older than the previous durable
   * snapshot, or (onlyNewest) older than the newest one.
   */
  dropOlderGenerations(onlyNewest: boolean): void {
    const snaps = [...this.snapshots.keys()].sort((a, b) => a - b);
    const newest = snaps[snaps.length - 1];
    if (newest === undefined) return;
    // With a single snapshot its previous generation is every segment from the first one.
    const keepFrom = onlyNewest ? newest : (snaps[snaps.length - 2] ?? 0);
    let removed = false;
    for (const seq of snaps) {
      if (seq < keepFrom && tryUnlink(this.fsx, this.dir, snapshotName(seq))) {
        this.filesBytes -= this.snapshots.get(seq) ?? 0;
        this.snapshots.delete(seq);
        removed = true;
      }
    }
    for (const seq of [...this.segments.keys()]) {
      if (seq < keepFrom && seq !== this.seq && tryUnlink(this.fsx, this.dir, segmentName(seq))) {
        this.filesBytes -= this.segments.get(seq) ?? 0;
        this.segments.delete(seq);
        removed = true;
      }
    }
    if (removed) {
      try {
        fsyncDir(this.fsx, this.dir);
      } catch {
        // Removals that do not survive a power cut are redone by the next compaction.
      }
    }
  }

  /** Degraded at close: the live map written synchronously after the last segment, best effort. */
  lastChanceSnapshot(image: Image): void {
    const seq = this.seq + 1;
    try {
      writeSnapshotSync(this.fsx, this.dir, snapshotName(seq), seq, image);
      this.log?.warn({ liveKeys: image.length }, "journal degraded at close: a final snapshot was written");
    } catch (err) {
      this.log?.error(
        { err: (err as Error).message, liveKeys: image.length },
        "journal degraded at close: the final snapshot failed, records since the failure are lost",
      );
    }
  }

  private setSegment(seq: number, bytes: number): void {
    this.filesBytes += bytes - (this.segments.get(seq) ?? 0);
    this.segments.set(seq, bytes);
  }

  private setSnapshot(seq: number, bytes: number): void {
    this.filesBytes += bytes - (this.snapshots.get(seq) ?? 0);
    this.snapshots.set(seq, bytes);
  }
}
