/**
 * Opening a journal directory: what was durable before the process stopped, however it stopped.
 *
 * The newest valid snapshot is loaded, then every segment from its sequence number on is replayed
 * in order. Damage is what a power cut mid-write or a failing disk leaves, and is never a reason
 * not to start:
 * - a segment's torn or corrupt tail is found by its CRC-32C (record.ts): the valid prefix is
 *   kept, the rest copied to `damaged-<time>-<segment>.bin` and the segment truncated to the
 *   prefix, so the next append continues from a valid record;
 * - a corrupt snapshot is moved aside whole and the previous one is used with the segments after
 *   it (the journal keeps two generations for this);
 * - an unreadable segment is skipped and counted.
 * Each is counted in the report and logged with the file's name. At most MAX_DAMAGED files moved
 * aside are kept (the oldest deleted), so a disk that keeps tearing cannot fill the quota with them.
 */
import path from "node:path";
import type { Logger } from "pino";
import { classify, damagedName, segmentName, snapshotName } from "./files.js";
import { fsyncDir, type JournalFs, sizeOf, tryUnlink, writeFully } from "./fs.js";
import { OP_DELETE, OP_PUT, scan } from "./record.js";
import { readSnapshot } from "./snapshot.js";

/** Files moved aside that are kept (the newest; names sort by time). */
export const MAX_DAMAGED = 20;

export interface RecoveryReport {
  /** Records replayed from segments (after the snapshot). */
  records: number;
  /** Live keys loaded from the snapshot. */
  snapshotRecords: number;
  /** Segment files replayed. */
  segments: number;
  /** Bytes read (snapshot + segments). */
  bytes: number;
  /** Torn or corrupt tails and corrupt snapshots found. */
  damaged: number;
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
}

export interface RecoveryOptions {
  fs: JournalFs;
  /** Absolute. */
  dir: string;
  /** Wall clock, for the names of the files moved aside. */
  now: () => number;
  log?: Logger | undefined;
}

/** Reads the directory into a Recovered; synchronous, as the gateway must not start before it. */
export function recover(opts: RecoveryOptions): Recovered {
  return new Recovery(opts).run();
}

class Recovery {
  private readonly fsx: JournalFs;
  private readonly dir: string;
  private readonly out: Recovered;

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
      report: { records: 0, snapshotRecords: 0, segments: 0, bytes: 0, damaged: 0, quarantined: [], ms: 0 },
      failures: [],
    };
  }

  run(): Recovered {
    const { out } = this;
    const listing = classify(this.fsx.readdirSync(this.dir));
    // A *.tmp is a snapshot whose write never finished: never renamed, so never valid.
    for (const name of listing.tmp) tryUnlink(this.fsx, this.dir, name);
    for (const name of [...listing.damaged, ...listing.other]) out.others.set(name, this.size(name));
    for (const seq of listing.segments) out.segments.set(seq, this.size(segmentName(seq)));

    const base = this.loadNewestSnapshot(listing.snapshots);
    if (base === 0 && listing.snapshots.length > 0 && (listing.segments[0] ?? 1) > 1) {
      this.opts.log?.error(
        { firstSegment: listing.segments[0] },
        "journal has no valid snapshot and its first segments are gone: state rebuilt from the segments left",
      );
    }
    out.replayed = listing.segments.filter((s) => s >= base);
    for (const seq of out.replayed) this.replaySegment(seq);
    this.trimDamaged();
    out.lastSeq = Math.max(base - 1, ...listing.segments, 0);
    return out;
  }

  /** Loads the newest valid snapshot into the entries; a corrupt one is moved aside and the previous one tried. */
  private loadNewestSnapshot(snapshots: number[]): number {
    const { out } = this;
    for (const seq of [...snapshots].reverse()) {
      const name = snapshotName(seq);
      const snap = readSnapshot(this.fsx, path.join(this.dir, name), seq);
      if (typeof snap === "string") {
        this.opts.log?.error(
          { file: name, problem: snap },
          "journal snapshot unusable, falling back to the previous one",
        );
        this.quarantineFile(name);
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

  private replaySegment(seq: number): void {
    const { out } = this;
    const name = segmentName(seq);
    let buf: Buffer;
    try {
      buf = this.fsx.readFileSync(path.join(this.dir, name));
    } catch (err) {
      out.report.damaged++;
      this.opts.log?.error(
        { file: name, err: (err as Error).message },
        "journal segment unreadable, skipped",
      );
      return;
    }
    out.report.segments++;
    out.report.bytes += buf.length;
    const res = scan(
      buf,
      (op, key, value) => {
        out.report.records++;
        if (op === OP_PUT) out.entries.set(key, value);
        else out.entries.delete(key);
      },
      OP_DELETE,
    );
    if (res.damage === null) return;
    out.report.damaged++;
    const qname = this.uniqueDamagedName(name);
    const lost = buf.length - res.validEnd;
    try {
      const qfd = this.fsx.openSync(path.join(this.dir, qname), "wx", 0o600);
      try {
        writeFully(this.fsx, qfd, buf.subarray(res.validEnd), 0);
        this.fsx.fdatasyncSync(qfd);
      } finally {
        this.fsx.closeSync(qfd);
      }
      out.others.set(qname, lost);
      out.report.quarantined.push(qname);
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
      out.failures.push({ op: "quarantining a damaged segment tail", err });
    }
    this.opts.log?.warn(
      { file: name, reason: res.damage, keptBytes: res.validEnd, movedBytes: lost, movedTo: qname },
      "journal segment damaged (torn or corrupt tail): valid prefix kept, the rest moved aside",
    );
  }

  private quarantineFile(name: string): void {
    const { out } = this;
    out.report.damaged++;
    const qname = this.uniqueDamagedName(name);
    try {
      this.fsx.renameSync(path.join(this.dir, name), path.join(this.dir, qname));
      fsyncDir(this.fsx, this.dir);
      out.others.set(qname, this.size(qname));
      out.report.quarantined.push(qname);
    } catch (err) {
      this.opts.log?.error(
        { file: name, err: (err as Error).message },
        "journal could not move a damaged file aside",
      );
    }
  }

  private uniqueDamagedName(source: string): string {
    const { out, opts } = this;
    let name = damagedName(opts.now(), source);
    for (let i = 1; out.others.has(name) || out.report.quarantined.includes(name); i++) {
      name = damagedName(opts.now(), `${source}-${i}`);
    }
    return name;
  }

  /** Keeps the newest MAX_DAMAGED files moved aside (names sort by time). */
  private trimDamaged(): void {
    const others = this.out.others;
    const damaged = [...others.keys()].filter((n) => n.startsWith("damaged-")).sort();
    for (const name of damaged.slice(0, Math.max(0, damaged.length - MAX_DAMAGED))) {
      if (tryUnlink(this.fsx, this.dir, name)) others.delete(name);
    }
  }

  private size(name: string): number {
    return sizeOf(this.fsx, this.dir, name);
  }
}
