/**
 * A first-in first-out queue over an array and a head index, compacted as it goes: the worker's
 * held records and waiting readings (uplink-writer.ts). Under sustained overload such a queue is
 * never empty, so one emptied only when drained grew a slot per entry ever handled; here the
 * slots are at most twice the entries waiting (and COMPACT_AT), whatever the traffic.
 */

/** Below this many handled slots at the front, compacting is not worth a copy. */
export const COMPACT_AT = 1024;

export class Backlog<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  /** Entries waiting. */
  get length(): number {
    return this.items.length - this.head;
  }

  /** Slots the queue's array holds (the bound the tests check). */
  get slots(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest entry, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Removes and returns the oldest entry; undefined when empty. */
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
      // Amortised: each copy moves at most as many entries as were handled since the last one.
      this.items.copyWithin(0, this.head);
      this.items.length -= this.head;
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items.length = 0;
    this.head = 0;
  }
}
