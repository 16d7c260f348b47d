/**
 * Group commit: the SegmentWriter takes the framed records the journal appends (journal.ts), writes
 * them to the current segment and fdatasyncs, and answers commit()/sync() waiters once their records
 * are where they asked for. It owns the queue (pending chunks, the write in flight, the waiters),
 * the rolled-away segments still to sync, the fds busy on the pool, and the byte counters; it knows
 * nothing of keys, files on disk or health: a failure is handed to `onFailure` (the journal
 * degrades, then calls stop()).
 *
 * Writes and fdatasyncs run on the libuv pool, never on the event loop: a write(2) beside an
 * fdatasync of the same file waits for the inode lock (measured: up to 17 ms on ext4), which on
 * the main thread stalled every connection. One write is in flight at a time (records reach the
 * file in order) and one sync; records put meanwhile wait in `pending` for the next write. A write
 * starts when somebody needs it (a waiter, a P1's sync) or DEFER_WRITE_MS after a record nobody
 * waits for, not at the end of every turn.
 *
 * Bounds: waiters at most MAX_WAITING (overflow policy: one synchronous write and fdatasync
 * releases them all); records queued behind the write in flight at most MAX_QUEUED_BYTES (overflow
 * policy: written synchronously at once).
 */
import type { Logger } from "pino";
import { type JournalFs, writeFully, writeFullyAsync } from "./fs.js";

const MiB = 1024 * 1024;
const MAX_WAITING = 65_536;
/** Records queued for the next write beyond this: written synchronously (overflow policy). */
const MAX_QUEUED_BYTES = 8 * MiB;
/**
 * Records nobody waits for yet (checkpoints: last seen, activity, the seq of a door event) are
 * written at most this long after they were put, together with whatever came meanwhile; a commit,
 * a written-first publish or a P1 has everything put so far written at once. Written at the end of
 * every turn, they cost a pool write per turn (4,600-5,100 per 11 s at 10,000 msg/s, two
 * preemptions of the event loop each: 1,043-1,222 a second against 197-244 journal off). A crash
 * of the process can lose this long of checkpoints, which nobody was told about.
 */
export const DEFER_WRITE_MS = 20;

export type Done = () => void;

/** Records for one segment, contiguous from pos; `end` is the appended counter after the last. */
interface Chunk {
  fd: number;
  pos: number;
  bufs: Buffer[];
  bytes: number;
  records: number;
  end: number;
}

/**
 * A chunk's records as one buffer, kept in the chunk: the chunk in flight on the pool is written
 * again by writeNow() with the same bytes, without gathering them twice. A queued chunk that
 * writeNow() wrote may still take records; the next call gathers the joined part and those.
 */
function joined(chunk: Chunk): Buffer {
  if (chunk.bufs.length > 1) chunk.bufs = [Buffer.concat(chunk.bufs, chunk.bytes)];
  return chunk.bufs[0] as Buffer;
}

export interface Waiter {
  end: number;
  /** Waits for the fdatasync (batch, sync()); otherwise for the write (interval). */
  durable: boolean;
  done: Done;
}

export interface SegmentWriterOptions {
  fs: JournalFs;
  log: Logger | undefined;
  /** Policy "always": every record written and fdatasync'd before append() returns. */
  syncEach: boolean;
  /** write(2) on the event loop inside append() (the earlier design, kept for bench/journal-writes.ts). */
  writeOnLoop: boolean;
  /** A wanted write runs on the event loop while no fdatasync runs (Journal writes "auto"). */
  idleWritesOnLoop: boolean;
  /** A write or sync failed: the journal degrades and calls stop(). */
  onFailure: (op: string, err: unknown) => void;
}

export class SegmentWriter {
  /** The current segment (-1: none); roll-over is the journal's, which retires the old fd here. */
  fd = -1;
  /** Appends go to disk; false while degraded, until a recovery starts. */
  writable = true;
  closed = false;

  /**
   * Byte counters over all segments since open (not file positions): appended by append(),
   * written (in the page cache), synced (fdatasync'd). appended >= written >= synced.
   */
  appended = 0;
  written = 0;
  synced = 0;

  syncs = 0;
  lastSyncMs = 0;
  /** writeNow() calls that wrote on the calling thread. */
  urgentWrites = 0;
  /** Writes handed to the libuv pool (each a submission and a completion on the event loop). */
  poolWrites = 0;
  /** Wanted writes done on the event loop because no fdatasync of ours was running (idleWriteOnLoop). */
  idleLoopWrites = 0;
  /**
   * writeNow() calls that took 1 ms or more, and the longest: a write(2) may wait for the inode
   * lock or for a page under writeback while the pool syncs the same file, and the P1 waits with it.
   */
  urgentWritesSlow = 0;
  urgentWriteMaxMs = 0;
  /** Records kept in memory only because the disk refused them (the journal adds those it never appended). */
  unwritten = 0;

  private readonly fsx: JournalFs;
  private readonly log: Logger | undefined;
  private readonly syncEach: boolean;
  private readonly writeOnLoop: boolean;
  private readonly idleWritesOnLoop: boolean;
  private readonly onFailure: (op: string, err: unknown) => void;

  /** Framed records not yet handed to write(2), in order; one chunk per run of one segment. */
  private pending: Chunk[] = [];
  private pendingBytes = 0;
  /** The chunk being written on the libuv pool (one write in flight at a time: order is kept). */
  private writing: Chunk | null = null;
  private syncInFlight = false;
  /** commit()/sync() callers, each with the counter value it waits for. */
  private waiting: Waiter[] = [];
  /** Rolled-away segments still to be synced by a group sync, with the counter at their end. */
  private rolled: Array<{ fd: number; end: number }> = [];
  /** Async writes and syncs on the pool; fds are closed only when none is in flight. */
  private ioInFlight = 0;
  private readonly closeWhenIdle: number[] = [];
  /** Bumped by a write/sync failure: callbacks of I/O started before it change nothing. */
  private ioEpoch = 0;
  /** The byte counter up to which somebody wants the records written now (a waiter, a P1's sync, the deferral). */
  private writeWanted = 0;
  private writeScheduled = false;
  /** Runs out DEFER_WRITE_MS after the first record nobody waits for: everything put is written then. */
  private deferTimer: NodeJS.Timeout | null = null;
  private syncScheduled = false;
  /** From a writeNow() to the end of its turn: the turn's records are not written yet (scheduledSync). */
  private pressTurn = false;
  /** A sync deferred after a writeNow() starts once `written` reaches this (scheduledSync). */
  private syncAfter = 0;

  constructor(opts: SegmentWriterOptions) {
    this.fsx = opts.fs;
    this.log = opts.log;
    this.syncEach = opts.syncEach;
    this.writeOnLoop = opts.writeOnLoop;
    this.idleWritesOnLoop = opts.idleWritesOnLoop;
    this.onFailure = opts.onFailure;
  }

  /** Queues a framed record for the current segment at pos (the caller checked writable). */
  append(rec: Buffer, pos: number): void {
    this.queue(rec, pos, 1);
    if (this.syncEach || this.writeOnLoop) {
      // "always": each record written and synced before put() returns (its whole point).
      this.writeQueuedSync();
      if (this.syncEach && this.writable) this.syncNow();
    } else if (this.pendingBytes > MAX_QUEUED_BYTES) {
      // Overflow policy: the disk is slower than the records come; block once on a write.
      this.writeQueuedSync();
      this.maybeSync();
    } else if (this.deferTimer === null) {
      // Nobody may wait for this record: it goes with the next wanted write, or when this runs out.
      this.deferTimer = setTimeout(this.deferredWrite, DEFER_WRITE_MS);
      this.deferTimer.unref();
    }
  }

  /**
   * Queues a framed record that goes with the next one append() queues (a synced record before the
   * record it precedes): no write of its own, no sync, under "always" too.
   */
  carry(rec: Buffer, pos: number): void {
    this.queue(rec, pos, 0);
  }

  /** `records`: 1 for a record the journal counts, 0 for a synced record (counted as unwritten if lost: neither). */
  private queue(rec: Buffer, pos: number, records: number): void {
    this.appended += rec.length;
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && last.fd === this.fd) {
      last.bufs.push(rec);
      last.bytes += rec.length;
      last.records += records;
      last.end = this.appended;
    } else
      this.pending.push({
        fd: this.fd,
        pos,
        bufs: [rec],
        bytes: rec.length,
        records,
        end: this.appended,
      });
    this.pendingBytes += rec.length;
  }

  private readonly deferredWrite = (): void => {
    this.deferTimer = null;
    this.want(this.appended);
  };

  /**
   * Somebody needs the records up to `end` written: the write starts at the end of this turn (after
   * the one in flight), so the rest of the drained batch goes in the same write and the same sync.
   */
  private want(end: number): void {
    if (end > this.writeWanted) this.writeWanted = end;
    if (this.writeScheduled || this.writing !== null) return;
    this.writeScheduled = true;
    queueMicrotask(this.flushWanted);
  }

  private readonly flushWanted = (): void => {
    this.writeScheduled = false;
    this.startWrite();
    this.maybeSync();
  };

  private cancelDeferred(): void {
    if (this.deferTimer === null) return;
    clearTimeout(this.deferTimer);
    this.deferTimer = null;
  }

  /**
   * Writes every record appended so far now, on the calling thread, instead of waiting for the
   * pool's turn (the write in flight, if any, is written again: same bytes, same place). For a P1
   * alert: on the pool its state waited for the write in flight, which waits for the running
   * fdatasync, and then for its own write, each completion a turn of a busy event loop (P1 p99 3.9x
   * the journal-off gateway at 5,000 msg/s). One write(2) of what is queued, tens of µs.
   */
  writeNow(): void {
    if (this.syncEach || this.closed || !this.writable || this.appended <= this.written) return;
    this.urgentWrites++;
    const t0 = performance.now();
    this.writeQueuedSync();
    const ms = performance.now() - t0;
    if (ms >= 1) this.urgentWritesSlow++;
    if (ms > this.urgentWriteMaxMs) this.urgentWriteMaxMs = ms;
    // The group sync starts right after the caller's synchronous work (the P1 publish it wrote
    // for), not before it: handing an fdatasync to the pool took 0.1 ms of the event loop per
    // call in the 2,000 msg/s bench profile, on every P1's path. Nor before the records put in
    // the rest of this turn are written (scheduledSync).
    this.pressTurn = true;
    if (!this.syncScheduled) {
      this.syncScheduled = true;
      queueMicrotask(this.scheduledSync);
    }
  }

  /**
   * After a writeNow(): the records put in the rest of that turn (a press: its device's seq record,
   * after the P1's alert state) are covered by the same sync, which starts once their pool write
   * returns (writeDone). Started now, it covered only the alert state, and the press's PUBACK
   * waited for a second fdatasync after it: two per press, and the next P1's write(2) the more
   * likely to meet one on the same file. Once per writeNow: records put later do not defer it.
   */
  private readonly scheduledSync = (): void => {
    this.syncScheduled = false;
    this.pressTurn = false;
    if (this.appended > this.written) {
      this.syncAfter = this.appended;
      this.want(this.appended);
    }
    this.maybeSync();
  };

  /** "interval" policy's timer: an fdatasync of what is written and not yet synced. */
  syncWritten(): void {
    if (this.written > this.synced) this.startSync();
  }

  /**
   * The current segment (`fd`, still `this.fd`) is rolled away from: everything appended to it is
   * written and fdatasync'd here, on the calling thread, before the next segment gets a record.
   * A power cut persists two files' pages in any order: with the old segment's tail left to the
   * next group sync, the new segment's first records could reach the disk while the old tail did
   * not, and the start would replay them after a gap (a raised alert lost, its on-delay's end kept:
   * a gas valve left open and no alert, found by test/powercut-model.e2e.test.ts seed 329). So the
   * journal stays one ordered stream across files: a torn tail is only ever at the end of the last
   * segment written. The price: one fdatasync on the event loop per roll (8 MiB of records), beside
   * the directory fsync the new segment's creation already costs there.
   */
  retire(fd: number): void {
    if (this.writable && !this.closed && this.appended > this.synced) {
      // Nobody is answered here: the roll is half done, and an answer that puts a record would
      // roll again. They are answered in a microtask, once the next segment is the current one.
      this.writeQueuedSync(false);
      if (this.writable) this.syncNow();
      if (this.waiting.length > 0) queueMicrotask(this.serveAfterRoll);
    }
    // A sync of ours may still be running on the pool on it: closed once the pool is idle.
    if (this.writable && this.appended > this.synced) this.rolled.push({ fd, end: this.appended });
    else this.closeFd(fd);
  }

  /**
   * Clean shutdown, first half: writes what is still queued and fdatasyncs every open segment
   * (synchronous: close() runs from SIGTERM handling). Returns the fds for finishClose().
   */
  startClose(): number[] {
    this.closed = true;
    this.cancelDeferred();
    const fds = [...this.rolled.splice(0).map((r) => r.fd), this.fd].filter((fd) => fd >= 0);
    if (this.writable) {
      this.writeQueuedSync();
      try {
        for (const fd of fds) this.fsx.fdatasyncSync(fd);
        this.syncs++;
        this.synced = this.written;
      } catch (err) {
        this.onFailure("fdatasync at close", err);
      }
    }
    return fds;
  }

  /** Clean shutdown, second half: closes the fds (once the pool is done with them), answers everyone. */
  finishClose(fds: number[]): void {
    for (const fd of fds) this.closeFd(fd);
    this.fd = -1;
    this.releaseWaiters(true);
  }

  /**
   * Not writable any more: records still queued stay in memory only (counted), I/O in flight is
   * ignored when it returns, and everyone waiting is answered (alerts keep flowing live).
   */
  stop(): void {
    this.writable = false;
    this.cancelDeferred();
    this.ioEpoch++;
    this.unwritten += this.pending.reduce((n, c) => n + c.records, 0);
    this.pending = [];
    this.pendingBytes = 0;
    this.written = this.appended;
    this.synced = this.appended;
    for (const r of this.rolled.splice(0)) this.closeFd(r.fd);
    this.releaseWaiters(true);
  }

  /**
   * The next write, when none is in flight and somebody wants records not yet written: on the event
   * loop while no fdatasync of ours runs, on the pool otherwise.
   */
  private startWrite(): void {
    if (this.writing !== null || this.closed || !this.writable || this.writeWanted <= this.written) return;
    if (this.idleWritesOnLoop && !this.syncInFlight) {
      // A write(2) into the page cache beside no fdatasync of the same file does not wait for the
      // inode lock (what moved writes to the pool); it costs tens of µs here, less than the pool's
      // round trip: a submission, a completion, and two preemptions of this thread by the pool's.
      this.idleLoopWrites++;
      this.writeQueuedSync();
      return;
    }
    const chunk = this.pending.shift();
    if (chunk === undefined) return;
    this.pendingBytes -= chunk.bytes;
    this.writing = chunk;
    const buf = joined(chunk);
    const epoch = this.ioEpoch;
    this.poolWrites++;
    this.ioInFlight++;
    writeFullyAsync(this.fsx, chunk.fd, buf, chunk.pos).then(
      () => this.writeDone(epoch, chunk, null),
      (err: unknown) => this.writeDone(epoch, chunk, err),
    );
  }

  private writeDone(epoch: number, chunk: Chunk, err: unknown): void {
    this.ioIdle();
    if (this.writing === chunk) this.writing = null;
    if (this.closed) return;
    if (epoch !== this.ioEpoch) {
      this.startWrite();
      return;
    }
    if (err !== null) {
      this.writeFailed(chunk, err);
      return;
    }
    if (chunk.end > this.written) this.written = chunk.end;
    this.serve();
    this.startWrite();
    this.maybeSync();
  }

  /**
   * Writes the chunk in flight (again: same bytes, same place) and everything queued, on the loop:
   * one write(2) per chunk (its records gathered first), not one per record; a P1 alert's batch
   * (its seq, its state, a few checkpoints) paid four or five syscalls here before.
   */
  private writeQueuedSync(answer = true): void {
    const chunks = this.writing === null ? this.pending : [this.writing, ...this.pending];
    for (const chunk of chunks) {
      try {
        writeFully(this.fsx, chunk.fd, joined(chunk), chunk.pos);
      } catch (err) {
        this.writeFailed(chunk, err);
        return;
      }
      if (chunk.end > this.written) this.written = chunk.end;
    }
    this.pending = [];
    this.pendingBytes = 0;
    if (answer) this.serve();
  }

  private readonly serveAfterRoll = (): void => {
    if (!this.closed) this.serve();
  };

  private writeFailed(chunk: Chunk, err: unknown): void {
    const lost = chunk.records + this.pending.reduce((n, c) => n + c.records, 0);
    this.unwritten += lost;
    this.pending = [];
    this.pendingBytes = 0;
    this.onFailure("write", err);
    try {
      // Best effort: do not leave half a record for the next opener to quarantine.
      this.fsx.ftruncateSync(chunk.fd, chunk.pos);
    } catch {
      // The torn tail is found and moved aside at the next open.
    }
  }

  /** Answers w once its records are written (or synced: durable); at once when degraded or closed. */
  wait(w: Waiter): void {
    if (!this.writable || this.closed || (w.durable ? this.synced : this.written) >= w.end) {
      this.call(w.done);
      return;
    }
    this.waiting.push(w);
    if (w.end > this.written) this.want(w.end);
    if (this.waiting.length >= MAX_WAITING) {
      // Overflow policy: block for one synchronous write and fdatasync rather than queue without bound.
      this.writeQueuedSync();
      if (this.writable) this.syncNow();
      this.releaseWaiters(false);
      return;
    }
    this.maybeSync();
  }

  /** Writes what is queued and fdatasyncs on the calling thread; every waiter covered is answered. */
  syncAllNow(): void {
    if (!this.writable || this.closed || this.fd < 0) return;
    this.writeQueuedSync();
    if (this.writable) this.syncNow();
    this.releaseWaiters(false);
  }

  /** Starts a group sync when someone waits for one and the records they wait for are written. */
  private maybeSync(): void {
    if (this.syncInFlight || this.closed || !this.writable || this.written <= this.synced) return;
    if (this.pressTurn || this.written < this.syncAfter) return;
    for (const w of this.waiting) {
      if (w.durable && w.end > this.synced && w.end <= this.written) {
        this.startSync();
        return;
      }
    }
  }

  private syncNow(): void {
    const t0 = performance.now();
    try {
      // Rolled segments stay listed (a sync may be in flight on them); the next group sync closes them.
      for (const r of this.rolled) this.fsx.fdatasyncSync(r.fd);
      this.fsx.fdatasyncSync(this.fd);
      this.syncs++;
      this.lastSyncMs = performance.now() - t0;
      this.synced = this.written;
    } catch (err) {
      this.onFailure("fdatasync", err);
    }
  }

  private startSync(): void {
    if (this.syncInFlight || this.closed || !this.writable || this.fd < 0) return;
    this.syncInFlight = true;
    const covers = this.written;
    const epoch = this.ioEpoch;
    const t0 = performance.now();
    const fds = [...this.rolled.map((r) => r.fd), this.fd];
    const next = (i: number, err: NodeJS.ErrnoException | null): void => {
      // After close() the remaining fds may be closed (close synced them itself): stop here.
      if (err === null && i < fds.length && !this.closed) {
        this.ioInFlight++;
        this.fsx.fdatasync(fds[i] as number, (e) => {
          this.ioIdle();
          next(i + 1, e);
        });
        return;
      }
      done(err);
    };
    const done = (err: NodeJS.ErrnoException | null): void => {
      this.syncInFlight = false;
      if (this.closed) return;
      if (epoch !== this.ioEpoch) {
        this.maybeSync();
        return;
      }
      if (err) {
        this.onFailure("fdatasync", err);
        return;
      }
      this.syncs++;
      this.lastSyncMs = performance.now() - t0;
      if (covers > this.synced) this.synced = covers;
      // Rolled segments wholly written before this sync started are complete on disk now.
      const keep: Array<{ fd: number; end: number }> = [];
      for (const r of this.rolled) {
        if (r.end <= covers) this.closeFd(r.fd);
        else keep.push(r);
      }
      this.rolled = keep;
      this.serve();
      this.maybeSync();
    };
    next(0, null);
  }

  /** Calls the waiters whose records are where they asked for. */
  private serve(): void {
    if (this.waiting.length === 0) return;
    const still: Waiter[] = [];
    const ready: Waiter[] = [];
    for (const w of this.waiting) ((w.durable ? this.synced : this.written) >= w.end ? ready : still).push(w);
    if (ready.length === 0) return;
    this.waiting = still;
    for (const w of ready) this.call(w.done);
  }

  /** Calls every waiter (degraded, closed, or the overflow policy's synchronous sync). */
  private releaseWaiters(all: boolean): void {
    if (!all) {
      this.serve();
      if (this.writable && !this.closed) return;
    }
    for (const w of this.waiting.splice(0)) this.call(w.done);
  }

  /** Closes an fd now, or once no write or sync on the pool may still be using it. */
  private closeFd(fd: number): void {
    if (this.ioInFlight > 0) {
      this.closeWhenIdle.push(fd);
      return;
    }
    try {
      this.fsx.closeSync(fd);
    } catch {
      // Synced before (or the failure was reported); nothing more to do for this fd.
    }
  }

  private ioIdle(): void {
    this.ioInFlight--;
    if (this.ioInFlight > 0) return;
    for (const fd of this.closeWhenIdle.splice(0)) this.closeFd(fd);
  }

  /** Calls a commit callback; one that throws is logged, never thrown into the writer. */
  call(cb: Done): void {
    try {
      cb();
    } catch (err) {
      this.log?.error({ err: (err as Error).message }, "journal commit callback threw");
    }
  }
}
