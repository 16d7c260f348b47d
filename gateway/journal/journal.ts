/**
 * The durable journal: a keyed, append-only log of put/delete records (record.ts framing) in
 * segment files, with snapshots of the live map (snapshot.ts) so start-up replays only the
 * segments written since the newest snapshot. Opening, and what it does with a torn or corrupt
 * tail, is recovery.ts.
 *
 * Layout, in the order a put() flows: journal.ts (this file: the live map, put/delete/commit/close,
 * the open sequence and retry, composing the parts below) -> group-commit.ts (SegmentWriter: the
 * framed record queued, written when somebody needs it, fdatasync'd by a group sync, commit()
 * answered) ->
 * the segment generations.ts keeps account of (segment and snapshot files, their bytes against the
 * quota, when to compact, old generations deleted). Beside them: health.ts (degraded or not, the
 * retry timer) and opening.ts (the directory's LOCK held and renewed, merging a later open's
 * findings). Underneath: record.ts (framing), snapshot.ts, recovery.ts, lock.ts (the LOCK file),
 * files.ts (names), fs.ts (the file-system seam), value.ts, crc.ts.
 *
 * put()/delete() update the live map and queue the framed record (group-commit.ts); once somebody
 * waits for them (a commit, a held northbound message; records nobody waits for, 20 ms after they
 * were put), the records of a turn go to the segment in one write(2) at the end of the turn: on the
 * event loop while no fdatasync of the journal runs, on the libuv pool while one does (a write
 * beside an fdatasync of the same file waits for the inode lock, up to 17 ms measured), one write
 * in flight at a time so records reach the file in order. writeNow() writes at once on the event
 * loop, for a P1 alert that must not wait for the end of the turn or the pool.
 * commit() is the promise about what survives, by policy:
 *
 *   "always"   put() writes and fdatasyncs its record before returning (on the event loop).
 *              Power cut or crash: loses nothing put() returned from. One fdatasync per record.
 *   "batch"    (default) commit(done) calls done once everything put before it is written and
 *              fdatasync'd; one fdatasync serves every commit whose records were written before it
 *              started (group commit: a burst pays one write and one sync).
 *              Power cut or crash: loses nothing acknowledged; acknowledgements wait one sync.
 *   "interval" commit(done) calls done once written; an fdatasync runs every syncIntervalMs.
 *              Crash: loses nothing acknowledged. Power cut: up to syncIntervalMs of acknowledged.
 *   All three: a process crash may lose records put() returned from but nobody waited for
 *   (the batch being written, a few ms); nothing that was acknowledged after commit().
 *
 * Generations (generations.ts): a snapshot snap-N covers every segment < N; the newest two are
 * kept with the segments after the older one, so a corrupt snapshot falls back to the previous one.
 *
 * Disk trouble: a failing write, sync or snapshot (ENOSPC, EROFS, EIO, EDQUOT, ...) degrades the
 * journal (health.ts: onHealthChange, one log line saying what is no longer promised). The live map
 * stays current in memory; every retryMs a retry opens a fresh segment and writes a snapshot of
 * the whole map, and health is ok again once that snapshot is durable with no write lost since.
 * A directory that takes no writes at open (whenUnwritable "degrade") is the same episode from
 * the start: its state is read through readOnlyFs (nothing written, no LOCK), and the retry first
 * takes the lock, reads the directory again (another gateway may have used it meanwhile: its
 * files, and the damage found now, are what counts; onDamageFound), then writes that snapshot.
 *
 * Quota (generations.ts): above 75 % of quotaBytes a compaction is started early (and the previous generation
 * dropped); a record that would take the directory above quotaBytes is not written: the previous
 * generation is deleted first, and if that is not enough the journal degrades ("quota") until a
 * snapshot of the live map fits.
 *
 * Bounds: segments roll at segmentBytes; snapshots every compactAfterBytes of segments; at most
 * MAX_DAMAGED quarantined files of at most segmentBytes each, a corrupt snapshot kept aside
 * included (recovery.ts; the oldest of earlier starts deleted), the last of a start's holding the
 * regions beyond the others; the damage listed in `recovery` and logged one by one:
 * MAX_LISTED_DAMAGE, the rest counted; commit()
 * callbacks waiting and records queued behind the write in flight: group-commit.ts.
 */
import path from "node:path";
import { encode } from "cbor-x";
import type { Logger } from "pino";
import { segmentName, snapshotName } from "./files.js";
import { JournalFormatError } from "./format.js";
import { fsyncDir, type JournalFs, nodeFs, readOnlyFs } from "./fs.js";
import { Generations } from "./generations.js";
import { type Done, SegmentWriter } from "./group-commit.js";
import { Health, type JournalHealth } from "./health.js";
import { JournalLockedError, LEASE_RENEW_MS, type LockEnv } from "./lock.js";
import { type FoundDamage, filesChanged, JournalLock, mergeReport } from "./opening.js";
import {
  frame,
  framedSize,
  framePair,
  frameSynced,
  OP_DELETE,
  OP_PUT,
  SYNCED_BYTES,
  valueOffset,
} from "./record.js";
import { emptyReport, type Recovered, type RecoveryReport, recover } from "./recovery.js";
import { type Image, writeSnapshot, writeSnapshotSync } from "./snapshot.js";
import { decodeValue } from "./value.js";

export { JournalFormatError } from "./format.js";
export type { JournalFs } from "./fs.js";
export type { JournalHealth } from "./health.js";
export { JournalLockedError } from "./lock.js";
export type { FoundDamage } from "./opening.js";
export type { Damage, DamageByKind, DamageKind, DamageTotals, RecoveryReport } from "./recovery.js";
export { DAMAGE_KINDS, MAX_LISTED_DAMAGE } from "./recovery.js";

export type SyncPolicy = "always" | "batch" | "interval";

export interface JournalOptions {
  /** Created if missing (0700). One process per dir: a LOCK file refuses a second opener. */
  dir: string;
  /** Default "batch". */
  sync?: SyncPolicy;
  /** "interval" policy, default 1000. */
  syncIntervalMs?: number;
  /** Default 8 MiB: roll to a new segment file beyond this. */
  segmentBytes?: number;
  /** Default 32 MiB of segments written since the last snapshot -> snapshot, delete older segments. */
  compactAfterBytes?: number;
  /** Default 256 MiB for the whole dir. */
  quotaBytes?: number;
  /** Wall clock (names of quarantined files, health.since); default Date.now. */
  now?: () => number;
  log?: Logger;
  onHealthChange?: (h: JournalHealth) => void;
  /**
   * Damage found after open() returned: by the full open of a directory first opened read-only or
   * unreadable (whenUnwritable "degrade"). Called once with the damage not in `recovery` before
   * (each damage is counted once, however often the full open is tried; the first
   * MAX_LISTED_DAMAGE of it listed), after it was added to `recovery`; not called from close().
   */
  onDamageFound?: (damage: FoundDamage) => void;
  /** While degraded, how often to try to restore durability; default 5000 ms. */
  retryMs?: number;
  /** File-system seam for tests (inject ENOSPC, EROFS, EIO); default node:fs. */
  fs?: JournalFs;
  /** The lock's view of processes and the clock (lock.ts); tests inject their own. */
  lockEnv?: LockEnv;
  /** How often the lock's lease is renewed and checked; default LEASE_RENEW_MS (5 s). */
  lockRenewMs?: number;
  /**
   * A directory that cannot be opened for writing (read-only mount, no permission): "throw"
   * (default), or "degrade": its state is read without writing anything (no LOCK, no file moved
   * aside, no snapshot), the journal runs degraded and retries the full open every retryMs.
   * JournalLockedError is thrown either way (another process has the directory).
   */
  whenUnwritable?: "throw" | "degrade";
  /**
   * Where write(2) runs: "auto" (default) on the event loop at the end of the turn while no
   * fdatasync of the journal runs, on the libuv pool while one does; "pool" always on the pool;
   * "loop" on the event loop inside put() (the earliest design). The last two are kept to measure
   * one against the other (bench/journal.ts, `--journal-writes`).
   */
  writes?: JournalWrites;
}

export type JournalWrites = "auto" | "pool" | "loop";

export interface JournalStats {
  bytesOnDisk: number;
  segments: number;
  liveKeys: number;
  /** Records (put + delete) written since open. */
  records: number;
  /** Synced records (record.ts OP_SYNCED) appended since open: one per sync that moved the segment's durable offset. */
  syncedRecords: number;
  syncs: number;
  lastSyncMs: number;
  compactions: number;
  writeErrors: number;
  /** writeNow() calls that wrote on the calling thread (a P1 alert not waiting for the pool). */
  urgentWrites: number;
  /** Writes handed to the libuv pool since open. */
  poolWrites: number;
  /** Wanted writes done on the event loop while no fdatasync ran (not a P1's writeNow) since open. */
  idleLoopWrites: number;
  /** writeNow() calls that took 1 ms or more since open, and the longest (ms). */
  urgentWritesSlow: number;
  urgentWriteMaxMs: number;
  degraded: boolean;
  /** Records kept in memory only because the disk refused them (since open). */
  unwrittenRecords: number;
  /** Longest synchronous slice of the last snapshot write, ms. */
  snapshotMaxSliceMs: number;
  /** A snapshot is being written. */
  compacting: boolean;
}

const MiB = 1024 * 1024;
/**
 * "batch": a checkpoint record (putCheckpoint) is fdatasync'd by the next group sync, or at most
 * this long after it was put when no commit comes (an idle site still saves its checkpoints).
 */
export const CHECKPOINT_SYNC_MS = 1000;
const NOOP: Done = () => {};

export class Journal {
  readonly recovery: RecoveryReport;
  private readonly fsx: JournalFs;
  private readonly dir: string;
  private readonly policy: SyncPolicy;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly onDamageFound: ((damage: FoundDamage) => void) | undefined;
  /** The damage groups found so far (opening.ts mergeReport): a later open counts none twice. */
  private readonly damageSeen = new Set<string>();

  /** The directory's LOCK, held and renewed (opening.ts). */
  private readonly lock: JournalLock;
  /** Segment and snapshot files, the quota, compaction (generations.ts). */
  private readonly gens: Generations;
  /** Writes, group syncs and their waiters (group-commit.ts). */
  private readonly writer: SegmentWriter;
  /** Degraded or not, announced once per episode; the retry timer (health.ts). */
  private readonly healthState: Health;

  /**
   * Opened without the lock ("degrade" of an unwritable directory): "read" when its state was
   * read, "unread" when even that failed; null once the full open succeeded (or it never failed).
   */
  private unopened: "read" | "unread" | null = null;
  /**
   * Keys deleted while unopened: the full open reads the directory again and keeps what it finds
   * under the live map, except these (they must not come back from the files).
   */
  private readonly deletedUnopened = new Set<string>();

  /**
   * key -> CBOR-encoded value, its bytes held as a one-byte (latin1) string. A string is one small
   * heap object; the Buffer view it replaced kept its record's ArrayBuffer and a native backing
   * store alive per key (~350 B more per live key: a device's last-seen checkpoint, 10,000 of them
   * on a site; bench:connections --storage). Values are read only at start and on reload.
   */
  private readonly map = new Map<string, string>();
  /** Framed size of the live map: what a snapshot will take on disk. */
  private liveBytes = 0;

  private closed = false;
  /** Incremented on every failure that may have lost a record; a recovery must see it unchanged. */
  private lossEpoch = 0;

  /** End of the last record commit() must wait for (every record but checkpoints). needed <= appended. */
  private needed = 0;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private intervalTimer: NodeJS.Timeout | null = null;

  private records = 0;
  private writeErrors = 0;
  /**
   * The byte counter (writer.appended) at offset 0 of the current segment, and the offset the last
   * synced record in it names (record.ts OP_SYNCED): one is appended before the next record once
   * a sync has moved the segment's durable offset past it. Recovery tells a power cut's hole in
   * the unsynced tail from damage in synced data by it.
   */
  private segmentBase = 0;
  private syncedMarked = 0;
  /** Synced records appended (metrics and tests). */
  private syncedRecords = 0;

  private constructor(opts: JournalOptions) {
    this.fsx = opts.fs ?? nodeFs;
    this.dir = path.resolve(opts.dir);
    this.policy = opts.sync ?? "batch";
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
    this.onDamageFound = opts.onDamageFound;
    this.lock = new JournalLock(this.fsx, this.dir, opts.lockEnv, this.log);
    this.healthState = new Health({
      dir: this.dir,
      retryMs: Math.max(10, opts.retryMs ?? 5000),
      now: this.now,
      log: this.log,
      onChange: opts.onHealthChange,
      retry: () => this.retry(),
    });
    this.recovery = emptyReport();
    const segmentBytes = Math.max(4096, opts.segmentBytes ?? 8 * MiB);
    this.gens = new Generations({
      fs: this.fsx,
      dir: this.dir,
      log: this.log,
      segmentBytes,
      compactAfterBytes: Math.max(segmentBytes, opts.compactAfterBytes ?? 32 * MiB),
      quotaBytes: opts.quotaBytes ?? 256 * MiB,
    });
    if (!["always", "batch", "interval"].includes(this.policy)) {
      throw new RangeError(`journal sync policy must be always, batch or interval, not ${this.policy}`);
    }
    this.writer = new SegmentWriter({
      fs: this.fsx,
      log: this.log,
      syncEach: this.policy === "always",
      writeOnLoop: opts.writes === "loop",
      idleWritesOnLoop: (opts.writes ?? "auto") === "auto",
      onFailure: (op, err) => this.failed(op, err),
    });
  }

  /** Synchronous: lock, load the newest valid snapshot, replay the segments after it. */
  static open(opts: JournalOptions): Journal {
    const j = new Journal(opts);
    try {
      j.lock.take();
    } catch (err) {
      if (opts.whenUnwritable !== "degrade" || err instanceof JournalLockedError) throw err;
      j.openReadOnly(err);
    }
    if (j.unopened === null) {
      try {
        j.load();
      } catch (err) {
        j.lock.drop();
        // A newer format's directory is refused, not opened degraded (format.ts).
        if (opts.whenUnwritable !== "degrade" || err instanceof JournalFormatError) throw err;
        j.openReadOnly(err);
      }
    }
    j.lock.startRenewing(Math.max(10, opts.lockRenewMs ?? LEASE_RENEW_MS), (lost) => j.lockLost(lost));
    if (j.policy === "interval") {
      const ms = Math.max(1, opts.syncIntervalMs ?? 1000);
      j.intervalTimer = setInterval(() => j.writer.syncWritten(), ms);
      j.intervalTimer.unref();
    }
    return j;
  }

  // ---- reading ----

  get(key: string): unknown {
    const v = this.map.get(key);
    return v === undefined ? undefined : decodeValue(v);
  }

  *entries(prefix = ""): IterableIterator<[string, unknown]> {
    for (const [k, v] of this.map) if (k.startsWith(prefix)) yield [k, decodeValue(v)];
  }

  *keys(prefix = ""): IterableIterator<string> {
    for (const k of this.map.keys()) if (k.startsWith(prefix)) yield k;
  }

  get size(): number {
    return this.map.size;
  }

  get health(): JournalHealth {
    return this.healthState.current;
  }

  // ---- writing ----

  /** The record is queued for the next write; commit() waits for it. */
  put(key: string, value: unknown, kept?: unknown): void {
    this.putRecord(key, value, kept);
    this.needed = this.writer.appended;
  }

  /**
   * The live value of a live key replaced by `kept`, an encoding of the same state (DurableStore):
   * nothing is written; a snapshot copies it as the live map holds it (format 2 may hold either).
   */
  keepAs(key: string, kept: unknown): void {
    if (this.map.has(key)) this.setLive(key, encode(kept).toString("latin1"));
  }

  /**
   * A record nobody waits for (a device's last-seen time, rewritten every few seconds): written
   * like any other, in order, but commit() does not wait for its fdatasync. Under "batch" it is
   * synced by the next group sync, or CHECKPOINT_SYNC_MS after it was put if none comes. Before,
   * every such record asked for a sync of its own: at 2,000 msg/s from 10,000 devices 120
   * fdatasyncs a second for 1.3 records each, almost all of them checkpoints (flash wear on an
   * edge box's eMMC, and a busier pool and event loop).
   */
  putCheckpoint(key: string, value: unknown): void {
    this.putRecord(key, value);
    this.armCheckpointSync();
  }

  private armCheckpointSync(): void {
    if (this.policy === "batch" && this.checkpointTimer === null && !this.closed && this.writer.writable) {
      this.checkpointTimer = setTimeout(this.syncCheckpoints, CHECKPOINT_SYNC_MS);
      this.checkpointTimer.unref();
    }
  }

  private readonly syncCheckpoints = (): void => {
    this.checkpointTimer = null;
    if (!this.closed) this.writer.wait({ end: this.writer.appended, durable: true, done: NOOP });
  };

  private putRecord(key: string, value: unknown, kept?: unknown): void {
    this.assertOpen();
    const rec = frame(OP_PUT, key, encode(value));
    if (kept !== undefined) {
      // frame() copied the encoding out of cbor-x's buffer, which the next encode reuses.
      this.setLive(key, encode(kept).toString("latin1"));
      this.append(rec);
      return;
    }
    const start = valueOffset(rec);
    const old = this.map.get(key);
    if (old !== undefined) this.liveBytes -= start + old.length;
    this.map.set(key, rec.toString("latin1", start));
    this.liveBytes += rec.length;
    this.append(rec);
  }

  /**
   * Two puts in one record (record.ts, OP_PUT_PAIR): one framing, one CRC, one write, and a torn
   * tail keeps both or neither. A press's alert state and its device's seq record (the state
   * recorder): before 2026-12-06 two records. commit() waits for it as for put().
   */
  putPair(key1: string, value1: unknown, key2: string, value2: unknown): void {
    this.assertOpen();
    const v1 = encode(value1);
    const v2 = encode(value2);
    const { rec, at1, at2 } = framePair(key1, v1, key2, v2);
    this.setLive(key1, rec.toString("latin1", at1, at1 + v1.length));
    this.setLive(key2, rec.toString("latin1", at2, at2 + v2.length));
    this.append(rec);
    this.needed = this.writer.appended;
  }

  /** The live map's value of key, and its framed size (what a snapshot writes for it). */
  private setLive(key: string, value: string): void {
    const keyBytes = Buffer.byteLength(key, "utf8");
    const old = this.map.get(key);
    if (old !== undefined) this.liveBytes -= framedSize(keyBytes, old.length);
    this.map.set(key, value);
    this.liveBytes += framedSize(keyBytes, value.length);
  }

  /** A tombstone; a key that is not live writes nothing. */
  delete(key: string): void {
    if (this.deleteRecord(key)) this.needed = this.writer.appended;
  }

  /** A tombstone nobody waits for, as putCheckpoint (the end of an on-delay). */
  deleteCheckpoint(key: string): void {
    if (this.deleteRecord(key)) this.armCheckpointSync();
  }

  private deleteRecord(key: string): boolean {
    this.assertOpen();
    const old = this.map.get(key);
    if (old === undefined) return false;
    const rec = frame(OP_DELETE, key, null);
    this.map.delete(key);
    if (this.unopened !== null) this.deletedUnopened.add(key);
    this.liveBytes -= rec.length + old.length;
    this.append(rec);
    return true;
  }

  /**
   * Group commit: done() once everything put so far is on disk under the policy ("batch": written
   * and fdatasync'd; "interval": written, i.e. survives a process crash; "always": at once, put()
   * synced it). Checkpoint records are not waited for (putCheckpoint). May call done synchronously
   * (nothing outstanding, degraded, closed). Never throws.
   */
  commit(done: () => void): void {
    if (this.policy === "always") this.writer.call(done);
    else this.writer.wait({ end: this.needed, durable: this.policy === "batch", done });
  }

  /** DurableStore.commitMark: the end of the last record commit() waits for (a byte counter). */
  get commitMark(): number {
    return this.needed;
  }

  /** done() once everything put so far is fdatasync'd, under every policy (a group sync is asked). */
  afterSync(done: () => void): void {
    if (this.policy === "always") this.writer.call(done);
    else this.writer.wait({ end: this.writer.appended, durable: true, done });
  }

  /** Records put but not yet written (they are in memory only until their pool write returns). */
  get writePending(): boolean {
    return this.writer.appended > this.writer.written;
  }

  /** done() once every record put so far is written (page cache: survives a process crash). */
  afterWrite(done: () => void): void {
    if (this.policy === "always") this.writer.call(done);
    else this.writer.wait({ end: this.writer.appended, durable: false, done });
  }

  /**
   * Writes every record put so far now, on the calling thread, instead of waiting for the pool's
   * turn (the write in flight, if any, is written again: same bytes, same place). For a P1 alert:
   * on the pool its state waited for the write in flight, which waits for the running fdatasync,
   * and then for its own write, each completion a turn of a busy event loop (P1 p99 3.9x the
   * journal-off gateway at 5,000 msg/s). One write(2) of what is queued, tens of µs.
   */
  writeNow(): void {
    this.writer.writeNow();
  }

  /** Writes and fdatasyncs everything put so far on the calling thread (nothing when closed or degraded). */
  syncNow(): void {
    this.writer.syncAllNow();
  }

  /** Forces an fdatasync of everything put so far (resolves at once when closed or degraded). */
  sync(): Promise<void> {
    return new Promise((resolve) =>
      this.writer.wait({ end: this.writer.appended, durable: true, done: resolve }),
    );
  }

  stats(): JournalStats {
    return {
      bytesOnDisk: this.gens.bytesOnDisk(),
      segments: this.gens.segments.size,
      liveKeys: this.map.size,
      records: this.records,
      syncedRecords: this.syncedRecords,
      syncs: this.writer.syncs,
      lastSyncMs: this.writer.lastSyncMs,
      compactions: this.gens.compactions,
      writeErrors: this.writeErrors,
      urgentWrites: this.writer.urgentWrites,
      poolWrites: this.writer.poolWrites,
      idleLoopWrites: this.writer.idleLoopWrites,
      urgentWritesSlow: this.writer.urgentWritesSlow,
      urgentWriteMaxMs: this.writer.urgentWriteMaxMs,
      degraded: !this.healthState.ok,
      unwrittenRecords: this.writer.unwritten,
      snapshotMaxSliceMs: this.gens.snapshotMaxSliceMs,
      compacting: this.gens.snapshotInFlight,
    };
  }

  /**
   * Clean shutdown: writes what is still queued, fdatasyncs, closes fds, releases the lock.
   * Synchronous (it runs from SIGTERM handling); a write or sync still in flight on the pool is
   * covered by the synchronous rewrite and sync here, and its fd closed once it returns.
   * Degraded: a last synchronous snapshot.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.healthState.stopRetries();
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    if (this.intervalTimer) clearInterval(this.intervalTimer);
    this.lock.stopRenewing();
    // A clean shutdown leaves the whole segment named by a synced record (recovery.ts "A hole in
    // the unsynced tail"): damage found in it later is a bad sector, skipped, never a torn tail.
    // Two fdatasyncs at close instead of one.
    if (this.writer.writable && this.unopened === null) {
      this.writer.syncAllNow();
      const gens = this.gens;
      if (
        this.writer.writable &&
        this.syncedDue() > 0 &&
        !gens.mustRoll(SYNCED_BYTES) &&
        gens.fitsQuota(SYNCED_BYTES, this.liveBytes)
      )
        this.carrySynced();
    }
    const fds = this.writer.startClose();
    // Never a snapshot into a directory this process has not locked (and read: "unread"), nor
    // into one another gateway has taken over.
    const locked = this.unopened === null || this.finishOpen();
    if (
      locked &&
      !this.healthState.ok &&
      this.healthState.reason !== "quota" &&
      this.lock.lostReason === null
    )
      this.gens.lastChanceSnapshot(Array.from(this.map));
    this.writer.finishClose(fds);
    this.lock.release(); // only if the LOCK is still ours
  }

  /**
   * The LOCK is no longer ours (taken over by another gateway that judged the lease expired, or
   * removed): this one stops writing at once, for good, and says so loudly.
   */
  private lockLost(lost: string): void {
    this.healthState.stopRetries();
    this.log?.error(
      { dir: this.dir, reason: lost },
      "journal lock lost: another gateway may be using this data directory; this one stops writing to it " +
        "(alerts are delivered live but NOT kept across a restart); stop one of them",
    );
    this.lossEpoch++;
    this.writer.stop();
    this.healthState.set(false, "lock lost");
  }

  // ---- internals: open ----

  /**
   * The directory takes no writes (EROFS after an ext4 error, a tmpfs remounted ro, EACCES): the
   * state is restored from it as a normal open would, through a file system that refuses every
   * write, and the journal runs degraded; retry() takes the lock once the directory takes writes.
   */
  private openReadOnly(cause: unknown): void {
    const code = (cause as NodeJS.ErrnoException)?.code ?? "error";
    const t0 = performance.now();
    let found: Recovered;
    try {
      found = this.readDir(readOnlyFs(this.fsx));
    } catch (err) {
      if (err instanceof JournalFormatError) throw err;
      this.unopened = "unread";
      const reason = `cannot open ${this.dir}: ${(err as Error).message}`;
      this.log?.error(
        { dir: this.dir, err: (err as Error).message, retryMs: this.healthState.retryMs },
        `journal cannot be opened (${reason}): nothing was restored from it; alerts are delivered live ` +
          "but NOT kept across a restart or power cut; retrying the open, the state found then is kept " +
          "under the live one and a fresh snapshot restores durability",
      );
      this.writer.writable = false;
      this.healthState.set(false, reason);
      this.healthState.scheduleRetry();
      return;
    }
    this.unopened = "read";
    this.adoptFound(found);
    this.gens.seq = found.lastSeq;
    this.writer.writable = false;
    this.recovery.ms = performance.now() - t0;
    // ENOSPC too: a full disk at start is read the same way.
    const reason = `cannot write at open: ${code} (state restored read-only)`;
    this.log?.error(
      {
        dir: this.dir,
        err: (cause as Error)?.message,
        recovery: this.recovery,
        liveKeys: this.map.size,
        retryMs: this.healthState.retryMs,
      },
      `journal directory cannot be written (${code}): the state WAS restored from it (open alerts, ` +
        "acknowledgements, sessions), but nothing since is kept across a restart or power cut " +
        "(alert states, acknowledgements, undelivered upstream messages are in memory only); " +
        "retrying the open, a fresh snapshot will restore durability",
    );
    this.healthState.set(false, reason);
    this.healthState.scheduleRetry();
  }

  /**
   * The full open, once the directory takes writes: the lock, then the directory read again. What
   * was read at start is not trusted: without the lock another gateway may have used the directory
   * meanwhile (taken it over, written segments, compacted), and a segment number taken from the old
   * listing would be one of its files. What is found now is kept under the live map (this
   * process's changes since win; keys it deleted stay deleted), and damage found now is moved aside
   * and reported (onDamageFound) like damage found by a normal open.
   */
  private finishOpen(): boolean {
    if (!this.lock.tryTake()) return false;
    let found: Recovered;
    try {
      found = this.readDir(this.fsx);
    } catch {
      this.lock.drop();
      return false;
    }
    if (!this.lock.confirm()) return false;
    const changed = this.unopened === "read" && filesChanged(found, this.gens.segments, this.gens.snapshots);
    const live = new Map(this.map);
    for (const k of this.deletedUnopened) found.entries.delete(k);
    const foundKeys = found.entries.size;
    this.map.clear();
    this.gens.clear();
    const fresh = this.adoptFound(found);
    // What this process did since is newer than what the directory held: it wins.
    for (const [k, v] of live) {
      const old = this.map.get(k);
      const keyBytes = Buffer.byteLength(k, "utf8");
      if (old !== undefined) this.liveBytes -= framedSize(keyBytes, old.length);
      this.map.set(k, v);
      this.liveBytes += framedSize(keyBytes, v.length);
    }
    this.gens.seq = Math.max(this.gens.seq, found.lastSeq);
    this.deletedUnopened.clear();
    const was = this.unopened;
    this.unopened = null;
    if (was === "unread")
      this.log?.warn(
        { dir: this.dir, recovery: this.recovery, found: foundKeys },
        "journal opened at last: the state it held is kept under the live one (restored into alerts at the next start)",
      );
    else if (changed)
      this.log?.warn(
        { dir: this.dir, recovery: this.recovery, found: foundKeys, liveKeys: live.size },
        "journal opened at last: the directory changed since it was read at start (another gateway used it?); " +
          "the state it holds now is kept under the live one (restored into alerts at the next start)",
      );
    else this.log?.info({ dir: this.dir, recovery: this.recovery }, "journal opened at last");
    if (fresh.damaged > 0 && !this.closed && this.onDamageFound !== undefined) {
      try {
        this.onDamageFound(fresh);
      } catch (err) {
        this.log?.error({ err: (err as Error).message }, "journal onDamageFound threw");
      }
    }
    return true;
  }

  /**
   * The files and entries found become the journal's; the report is merged into `recovery` (damage
   * found before is counted once, a listed one stays one entry, now with where it was moved).
   * Returns the damage not reported before.
   */
  private adoptFound(found: Recovered): FoundDamage {
    const fresh = mergeReport(this.recovery, found, this.damageSeen);
    this.gens.adopt(found);
    this.adopt(found.entries);
    return fresh;
  }

  /** Recovery of the directory through `fsx` (recovery.ts). */
  private readDir(fsx: JournalFs): Recovered {
    return recover({
      fs: fsx,
      dir: this.dir,
      now: this.now,
      restBytes: this.gens.segmentBytes,
      log: this.log,
    });
  }

  private load(): void {
    const t0 = performance.now();
    const found = this.readDir(this.fsx);
    this.adoptFound(found);
    for (const f of found.failures) this.failed(f.op, f.err);
    const replay = found.replayed;
    this.gens.sinceSnapshot = replay.reduce((n, s) => n + (this.gens.segments.get(s) ?? 0), 0);

    // Append to the last segment when it has room, else start the next one.
    const last = replay[replay.length - 1];
    try {
      // The last segment may hold what a process killed before its sync wrote (the page cache has
      // it, the disk may not; under `interval` records it acknowledged): synced before this
      // process appends to it or to a next one, so a power cut soon after the start cannot keep
      // this process's records and tear the old ones before them. One fdatasync per start.
      if (last !== undefined) this.syncSegment(last);
      if (last !== undefined && (this.gens.segments.get(last) ?? 0) < this.gens.segmentBytes) {
        this.writer.fd = this.fsx.openSync(path.join(this.dir, segmentName(last)), "r+");
        this.gens.resume(last);
        // Durable whole now: the first record appended goes with a synced record naming its end.
        this.segmentBase = this.writer.appended - this.gens.pos;
        this.syncedMarked = 0;
      } else {
        this.createSegment(found.lastSeq + 1);
      }
    } catch (err) {
      this.gens.seq = found.lastSeq;
      this.failed("opening a segment", err);
    }

    this.recovery.ms = performance.now() - t0;
    this.log?.info({ recovery: this.recovery, dir: this.dir, policy: this.policy }, "journal opened");
    if (this.writer.writable && this.recovery.lost) this.snapshotAtOpen();
    else if (this.writer.writable && this.gens.sinceSnapshot >= this.gens.compactAfterBytes)
      this.startSnapshot();
  }

  /**
   * After a loss (damage before the end stays in its segment, a gap stays a gap), a snapshot
   * before anything else, synchronously: the next open starts after it instead of finding and
   * reporting the same damage again (a start with 10,000 alerts writes about 1 MB).
   */
  private snapshotAtOpen(): void {
    if (!this.gens.snapshotFits(this.liveBytes)) {
      this.startSnapshot(); // which makes room first, or leaves it to a later compaction
      return;
    }
    if (!this.roll()) return;
    const seq = this.gens.seq;
    try {
      const bytes = writeSnapshotSync(this.fsx, this.dir, snapshotName(seq), seq, Array.from(this.map));
      this.gens.snapshotWritten(seq, bytes);
      this.gens.sinceSnapshot = 0;
      this.gens.dropOlderGenerations(false);
    } catch (err) {
      this.failed("snapshot", err);
    }
  }

  /**
   * The live values found at open become the live map's strings, so the segment and snapshot
   * buffers read at open are freed (most of their records were overwritten by later ones).
   */
  private adopt(entries: Map<string, Buffer>): void {
    this.liveBytes = 0;
    for (const [k, v] of entries) {
      this.map.set(k, v.toString("latin1"));
      this.liveBytes += framedSize(Buffer.byteLength(k, "utf8"), v.length);
    }
    entries.clear();
  }

  // ---- internals: appending ----

  private append(rec: Buffer): void {
    this.records++;
    if (!this.writer.writable) {
      this.writer.unwritten++;
      return;
    }
    const gens = this.gens;
    if (gens.mustRoll(rec.length + this.syncedDue()) && !this.roll()) {
      this.writer.unwritten++;
      return;
    }
    const mark = this.syncedDue();
    if (!gens.fitsQuota(rec.length + mark, this.liveBytes) && !this.makeRoom(rec.length + mark)) {
      this.writer.unwritten++;
      this.lossEpoch++;
      this.writer.stop();
      this.healthState.degrade("quota");
      return;
    }
    // makeRoom() may have rolled: a new segment needs no synced record before its first.
    if (this.syncedDue() > 0) this.carrySynced();
    this.writer.append(rec, gens.grow(rec.length));
    if (!gens.snapshotInFlight && gens.compactionDue(this.liveBytes)) this.startSnapshot();
  }

  /** Queues a synced record naming the current segment's durable offset, to go with the next write. */
  private carrySynced(): void {
    const durable = this.writer.synced - this.segmentBase;
    this.writer.carry(frameSynced(durable), this.gens.grow(SYNCED_BYTES));
    this.syncedMarked = durable;
    this.syncedRecords++;
  }

  /** Bytes of the synced record due before the next record (0 when none is due). */
  private syncedDue(): number {
    return this.writer.synced - this.segmentBase > this.syncedMarked ? SYNCED_BYTES : 0;
  }

  /** At the hard quota: drop the previous generation, compact; true if the record now fits. */
  private makeRoom(need: number): boolean {
    this.gens.dropOlderGenerations(true);
    if (this.gens.fitsQuota(need, this.liveBytes)) return true;
    this.startSnapshot();
    return this.gens.fitsQuota(need, this.liveBytes);
  }

  /** Closes the current segment and starts the next one. False (and degraded) on failure. */
  private roll(): boolean {
    const old = this.writer.fd;
    const wasWritable = this.writer.writable;
    if (old >= 0) this.writer.retire(old);
    this.writer.fd = -1;
    // The old segment's write or sync failed in retire(): degraded now, nothing more to open (a
    // retry rolls while not writable: retire() skips the old segment, which may be what failed).
    if (wasWritable && !this.writer.writable) return false;
    try {
      this.createSegment(this.gens.seq + 1);
    } catch (err) {
      this.failed("creating a segment", err);
      return false;
    }
    return true;
  }

  /** fdatasyncs a segment this process did not write; throws when it cannot. */
  private syncSegment(seq: number): void {
    const fd = this.fsx.openSync(path.join(this.dir, segmentName(seq)), "r+");
    try {
      this.fsx.fdatasyncSync(fd);
    } finally {
      this.fsx.closeSync(fd);
    }
  }

  /** Throws when the segment cannot be created (or its directory entry not synced). */
  private createSegment(first: number): void {
    this.writer.fd = this.gens.openSegment(first);
    this.segmentBase = this.writer.appended;
    this.syncedMarked = 0;
    // The new file's directory entry must survive a power cut with its synced records.
    fsyncDir(this.fsx, this.dir);
  }

  // ---- internals: snapshots, generations ----

  /** Snapshot of the live map as of the start of the current segment (rolled to first by default). */
  private startSnapshot(rollFirst = true): void {
    const gens = this.gens;
    if (gens.snapshotInFlight || this.closed) return;
    // The snapshot must fit under the quota next to the files it will replace.
    if (!gens.snapshotFits(this.liveBytes)) {
      gens.dropOlderGenerations(true);
      if (!gens.snapshotFits(this.liveBytes)) return;
    }
    if (rollFirst && !this.roll()) return;
    const seq = gens.seq;
    const image: Image = Array.from(this.map);
    const epoch = this.lossEpoch;
    gens.snapshotStarted(this.liveBytes);
    const name = snapshotName(seq);
    writeSnapshot(
      this.fsx,
      this.dir,
      name,
      seq,
      image,
      () => this.closed || this.lock.lostReason !== null,
    ).then(
      (res) => {
        gens.snapshotEnded();
        if (res === null || this.closed) return;
        gens.snapshotWritten(seq, res.bytes);
        gens.snapshotMaxSliceMs = res.maxSliceMs;
        gens.dropOlderGenerations(gens.overSoftQuota());
        if (!this.healthState.ok) {
          if (this.writer.writable && this.lossEpoch === epoch) {
            this.healthState.set(true, null);
            this.log?.warn(
              { snapshot: name, liveKeys: image.length },
              "journal durable again (fresh snapshot written)",
            );
          } else this.healthState.scheduleRetry();
        } else if (this.writer.writable && gens.compactionDue(this.liveBytes)) this.startSnapshot();
      },
      (err: unknown) => {
        gens.snapshotEnded();
        if (!this.closed) this.failed("snapshot", err);
      },
    );
  }

  // ---- internals: health ----

  private failed(op: string, err: unknown): void {
    const code = (err as NodeJS.ErrnoException)?.code ?? "error";
    this.writeErrors++;
    this.lossEpoch++;
    this.writer.stop();
    this.log?.debug({ op, code, err: (err as Error)?.message }, "journal I/O failure");
    this.healthState.degrade(`${op} failed: ${code}`);
  }

  /** One bounded attempt: a fresh segment and a snapshot of the whole live map. */
  private retry(): void {
    if (this.closed || this.healthState.ok || this.lock.lostReason !== null) return;
    const quotaBlocked = (): boolean => {
      if (this.healthState.reason !== "quota") return false;
      this.gens.dropOlderGenerations(true);
      return !this.gens.snapshotFits(this.liveBytes);
    };
    // roll() with writable false skips the old segment's sync (it may be what failed).
    if (this.unopened !== null && !this.finishOpen()) {
      this.healthState.scheduleRetry();
      return;
    }
    // A segment nothing was appended to since it was created (the last failed retry's) is used
    // again: a disk full for hours (ENOSPC refuses blocks, an empty file is still created) left a
    // new empty segment every retryMs otherwise, 17,280 a day, every one replayed at the next start.
    const reuse = this.writer.fd >= 0 && this.gens.pos === 0;
    if (this.gens.snapshotInFlight || quotaBlocked() || (!reuse && !this.roll())) {
      this.healthState.scheduleRetry();
      return;
    }
    this.writer.writable = true;
    this.startSnapshot(false);
    if (!this.gens.snapshotInFlight) this.healthState.scheduleRetry();
  }

  // ---- helpers ----

  private assertOpen(): void {
    if (this.closed) throw new Error(`journal ${this.dir} is closed`);
  }
}
