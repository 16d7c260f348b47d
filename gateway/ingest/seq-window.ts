/**
 * Remembers a device's most recent `seq` numbers so a re-sent message (the
 * base station re-sends until it sees a PUBACK) is recognised. Fixed size,
 * preallocated: the oldest seq is forgotten when a new one arrives.
 */
export class SeqWindow {
  private readonly seen: Float64Array;
  /** Where this window's `size` slots start in `seen`. */
  private readonly base: number;
  private readonly size: number;
  private next = 0;
  private filled = 0;
  /** The last record can be undone (forget): what it wrote over, and whether it filled a free slot. */
  private undoable = false;
  private overwritten = Number.NaN;
  private grew = false;

  /**
   * `backing`, when given, holds this window's slots from `offset` on: one array shared by all
   * devices (one allocation for 10,000 devices instead of 10,000, and no typed-array view per
   * device: ~90 B of heap each).
   */
  constructor(size: number, backing?: Float64Array, offset = 0) {
    if (backing && (offset < 0 || offset + size > backing.length))
      throw new RangeError(`backing holds ${backing.length}, not ${size} from ${offset}`);
    this.seen = backing ?? new Float64Array(size);
    this.base = backing ? offset : 0;
    this.size = size;
  }

  /** Records seq; returns true if it was already among the remembered ones. */
  checkAndRecord(seq: number): boolean {
    const seen = this.seen;
    const base = this.base;
    for (let i = 0; i < this.filled; i++) if (seen[base + i] === seq) return true;
    this.undoable = true;
    this.overwritten = seen[base + this.next] as number;
    this.grew = this.filled < this.size;
    seen[base + this.next] = seq;
    this.next = (this.next + 1) % this.size;
    if (this.grew) this.filled++;
    return false;
  }

  /**
   * Forgets seq, so that the device's re-send of a message we could not keep is processed. The
   * last one recorded (refused as it came in, the usual case) is undone: the seq it pushed out of
   * the window is remembered again. Only blanking its slot let a device's flood of refused
   * messages push out the seqs of those kept before them, and their re-sends (no PUBACK reached
   * the device before its connection was closed) were taken in a second time.
   */
  forget(seq: number): void {
    const seen = this.seen;
    const base = this.base;
    const last = (this.next + this.size - 1) % this.size;
    if (this.undoable && seen[base + last] === seq) {
      this.undoable = false;
      this.next = last;
      if (this.grew) this.filled--;
      else seen[base + last] = this.overwritten;
      return;
    }
    for (let i = 0; i < this.filled; i++) if (seen[base + i] === seq) seen[base + i] = Number.NaN;
  }

  clear(): void {
    this.filled = 0;
    this.next = 0;
    this.undoable = false;
  }
}
