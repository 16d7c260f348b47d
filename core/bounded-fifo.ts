/**
 * A first-in first-out queue of at most `capacity` items in a ring preallocated at
 * construction: its storage never grows nor shrinks, whatever goes through it, and
 * pushing or shifting allocates nothing.
 *
 * Why not an array with a head index: such an array only shrinks when fully drained,
 * so under sustained overload (the very case a waiting queue exists for) it grows by one
 * slot per item handled, without limit.
 *
 * Overflow policy: the caller's. `push` refuses a full queue (returns false, nothing
 * changed); the caller decides what refusal means (withhold an acknowledgement, drop
 * and count, close a connection).
 *
 * This module is core: it imports nothing.
 */
export class BoundedFifo<T> {
  /** The most items the queue holds. */
  readonly capacity: number;
  private readonly slots: Array<T | undefined>;
  /** Index of the oldest item. */
  private head = 0;
  private count = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`bounded-fifo: capacity ${capacity}, not a whole number >= 1`);
    this.capacity = capacity;
    this.slots = new Array<T | undefined>(capacity).fill(undefined);
  }

  /** Items waiting. */
  get length(): number {
    return this.count;
  }

  /** Slots of the backing storage: always `capacity` (for tests that hold the bound). */
  get storageSlots(): number {
    return this.slots.length;
  }

  isEmpty(): boolean {
    return this.count === 0;
  }

  isFull(): boolean {
    return this.count === this.capacity;
  }

  /** Adds `item` at the tail; false (nothing changed) when the queue is full. */
  push(item: T): boolean {
    if (this.count === this.capacity) return false;
    let at = this.head + this.count;
    if (at >= this.capacity) at -= this.capacity;
    this.slots[at] = item;
    this.count++;
    return true;
  }

  /** The oldest item, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.slots[this.head];
  }

  /** Removes and returns the oldest item; undefined when empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.slots[this.head];
    // Cleared so the queue does not keep a handled item alive for the garbage collector.
    this.slots[this.head] = undefined;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.count--;
    return item;
  }

  /** Removes every item. */
  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.count = 0;
  }
}
