/**
 * A bounded ring of preallocated slots (after the LMAX Disruptor): power-of-two
 * size with a mask, sequences that only count up, one writer, one consumer
 * that drains a batch and advances once. Exactly one reservation may be open
 * at a time (Zephyr moved to this after years of claim/finish bugs, #116047).
 *
 * Slots are reused: a producer fills the slot it reserved in place, so the
 * hot path allocates nothing per message. A ring may start with fewer slots
 * than its capacity (`initial`): it then doubles them when they are all in
 * use, up to the capacity, and never shrinks; the capacity (what is refused
 * when full) does not change.
 */
export function nextPowerOfTwo(n: number): number {
  if (n <= 1) return 1;
  return 2 ** Math.ceil(Math.log2(n));
}

export class Ring<T> {
  readonly capacity: number;
  /** Slots allocated so far (a power of two, at most capacity) minus one. */
  private mask: number;
  private slots: T[];
  private readonly factory: (index: number) => T;
  /** Next sequence to be written; only increases. */
  private writeSeq = 0;
  /** Next sequence to be read; only increases; readSeq <= writeSeq. */
  private readSeq = 0;
  private reserved = false;
  private highWaterMark = 0;

  /** `initial`: slots allocated up front (default: the capacity, all of them). */
  constructor(size: number, factory: (index: number) => T, initial = size) {
    this.capacity = nextPowerOfTwo(Math.max(2, size));
    const allocated = Math.min(this.capacity, nextPowerOfTwo(Math.max(2, initial)));
    this.mask = allocated - 1;
    this.factory = factory;
    this.slots = Array.from({ length: allocated }, (_, i) => factory(i));
  }

  /** Slots allocated so far (grows up to capacity). */
  get allocated(): number {
    return this.slots.length;
  }

  /**
   * Doubles the slots; called when all of them are published or being drained. Every one of them
   * keeps its sequence (seq & mask with the new mask), so a drain in progress reads on unchanged.
   */
  private grow(): void {
    const old = this.slots;
    const oldMask = this.mask;
    const size = old.length * 2;
    const mask = size - 1;
    const slots: (T | null)[] = Array.from({ length: size }, () => null);
    for (let seq = this.readSeq; seq < this.writeSeq; seq++) slots[seq & mask] = old[seq & oldMask] as T;
    for (let i = 0; i < size; i++) if (slots[i] === null) slots[i] = this.factory(i);
    this.slots = slots as T[];
    this.mask = mask;
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
    const occupied = this.writeSeq - this.readSeq;
    if (occupied >= this.capacity) return null;
    if (occupied > this.mask) this.grow();
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
