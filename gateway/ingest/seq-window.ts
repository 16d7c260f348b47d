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
    seen[base + this.next] = seq;
    this.next = (this.next + 1) % this.size;
    if (this.filled < this.size) this.filled++;
    return false;
  }

  /** Forgets seq, so that the device's re-send of a message we could not keep is processed. */
  forget(seq: number): void {
    const seen = this.seen;
    const base = this.base;
    for (let i = 0; i < this.filled; i++) if (seen[base + i] === seq) seen[base + i] = Number.NaN;
  }

  clear(): void {
    this.filled = 0;
    this.next = 0;
  }
}
