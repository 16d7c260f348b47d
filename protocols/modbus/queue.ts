/**
 * Fixed-capacity FIFO on a preallocated ring (power-of-two mask). The caller
 * chooses the overflow policy: push() returns false when full and stores nothing.
 */
export class BoundedQueue<T> {
  private readonly items: (T | undefined)[];
  private readonly mask: number;
  private head = 0;
  private tail = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("queue capacity must be >= 1");
    let size = 1;
    while (size < capacity) size <<= 1;
    this.items = new Array<T | undefined>(size);
    this.mask = size - 1;
  }

  get length(): number {
    return this.tail - this.head;
  }

  push(item: T): boolean {
    if (this.length >= this.capacity) return false;
    this.items[this.tail & this.mask] = item;
    this.tail++;
    return true;
  }

  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const i = this.head & this.mask;
    const item = this.items[i];
    this.items[i] = undefined;
    this.head++;
    return item;
  }

  /** Empties the queue, handing every item to fn in FIFO order. */
  drain(fn: (item: T) => void): void {
    for (let item = this.shift(); item !== undefined; item = this.shift()) fn(item);
  }
}
