/**
 * A bounded ring of preallocated slots (after the LMAX Disruptor): power-of-two
 * size with a mask, sequences that only count up, one writer, one consumer
 * that drains a batch and advances once. Exactly one reservation may be open
 * at a time (Zephyr moved to this after years of claim/finish bugs, #116047).
 *
 * Slots are reused: a producer fills the slot it reserved in place, so the
 * hot path allocates nothing per message.
 */
export function nextPowerOfTwo(n: number): number {
  if (n <= 1) return 1;
  return 2 ** Math.ceil(Math.log2(n));
}

export class Ring<T> {
  readonly capacity: number;
  private readonly mask: number;
  private readonly slots: T[];
  /** Next sequence to be written; only increases. */
  private writeSeq = 0;
  /** Next sequence to be read; only increases; readSeq <= writeSeq. */
  private readSeq = 0;
  private reserved = false;
  private highWaterMark = 0;

  constructor(size: number, factory: (index: number) => T) {
    this.capacity = nextPowerOfTwo(Math.max(2, size));
    this.mask = this.capacity - 1;
    this.slots = Array.from({ length: this.capacity }, (_, i) => factory(i));
  }

  get occupancy(): number {
    return this.writeSeq - this.readSeq;
  }

  get highWater(): number {
    return this.highWaterMark;
  }

  get isFull(): boolean {
    return this.writeSeq - this.readSeq >= this.capacity;
  }

  /** The slot to fill next, or null when the ring is full. Must be followed by commit() or abandon(). */
  reserve(): T | null {
    if (this.reserved) throw new Error("ring: a reservation is already open");
    if (this.writeSeq - this.readSeq >= this.capacity) return null;
    this.reserved = true;
    return this.slots[this.writeSeq & this.mask] as T;
  }

  /** Publishes the reserved slot to the consumer. */
  commit(): void {
    if (!this.reserved) throw new Error("ring: commit without reserve");
    this.reserved = false;
    this.writeSeq++;
    const occ = this.writeSeq - this.readSeq;
    if (occ > this.highWaterMark) this.highWaterMark = occ;
  }

  /** The oldest published slot (the next one drain() hands out), or null when empty. */
  peekOldest(): T | null {
    return this.writeSeq === this.readSeq ? null : (this.slots[this.readSeq & this.mask] as T);
  }

  /** Gives the reservation back unpublished. */
  abandon(): void {
    this.reserved = false;
  }

  /**
   * Hands up to `max` published slots, oldest first, to `handle`, then
   * advances the read sequence once. Returns how many were handled. A slot is
   * only reused after this returns, so `handle` may read it freely.
   */
  drain(handle: (slot: T) => void, max = Number.POSITIVE_INFINITY): number {
    const start = this.readSeq;
    const end = Math.min(this.writeSeq, start + max);
    let seq = start;
    try {
      for (; seq < end; seq++) handle(this.slots[seq & this.mask] as T);
    } finally {
      // A throwing handler consumes its slot too: retrying it forever would wedge the lane.
      this.readSeq = seq < end ? seq + 1 : seq;
    }
    return this.readSeq - start;
  }
}
