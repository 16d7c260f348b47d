/**
 * Remembers a device's most recent `seq` numbers so a re-sent message (the
 * base station re-sends until it sees a PUBACK) is recognised. Fixed size,
 * preallocated: the oldest seq is forgotten when a new one arrives.
 */
export class SeqWindow {
  private readonly seen: Float64Array;
  private next = 0;
  private filled = 0;

  /**
   * `backing`, when given, is this window's slice of one array shared by all
   * devices (one allocation for 10,000 devices instead of 10,000).
   */
  constructor(size: number, backing?: Float64Array) {
    if (backing && backing.length !== size)
      throw new RangeError(`backing holds ${backing.length}, not ${size}`);
    this.seen = backing ?? new Float64Array(size);
  }

  /** Records seq; returns true if it was already among the remembered ones. */
  checkAndRecord(seq: number): boolean {
    for (let i = 0; i < this.filled; i++) if (this.seen[i] === seq) return true;
    this.seen[this.next] = seq;
    this.next = (this.next + 1) % this.seen.length;
    if (this.filled < this.seen.length) this.filled++;
    return false;
  }

  /** Forgets seq, so that the device's re-send of a message we could not keep is processed. */
  forget(seq: number): void {
    for (let i = 0; i < this.filled; i++) if (this.seen[i] === seq) this.seen[i] = Number.NaN;
  }

  clear(): void {
    this.filled = 0;
    this.next = 0;
  }
}
