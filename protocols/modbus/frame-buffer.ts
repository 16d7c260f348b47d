/**
 * The byte accumulator under both reply framers (RTU and MBAP): one
 * preallocated buffer, bytes appended as they arrive, whole frames taken
 * from the front. Bounded: a chunk that does not fit is refused (the caller
 * treats that as a framing error), nothing is allocated per chunk.
 */
export abstract class FrameBuffer<Event> {
  protected readonly buf: Uint8Array;
  protected len = 0;
  private consumed = 0;
  /** Valid after next() returned "frame": the frame is bytes()[0, frameLength). */
  frameLength = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  /** The buffer; after "frame", the frame starts at index 0. */
  bytes(): Uint8Array {
    return this.buf;
  }

  get buffered(): number {
    return this.len - this.consumed;
  }

  /** Appends bytes; returns false (and appends nothing) when they do not fit. */
  push(chunk: Uint8Array): boolean {
    this.compact();
    if (this.len + chunk.length > this.buf.length) return false;
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
    return true;
  }

  /** Drops everything buffered; returns how many bytes were dropped. */
  clear(): number {
    this.compact();
    const n = this.len;
    this.len = 0;
    return n;
  }

  /** The next frame, or why there is none yet. */
  next(): Event {
    this.compact();
    return this.frame();
  }

  /** Decides on the bytes at the front (index 0 .. len): call take(n) for a whole frame. */
  protected abstract frame(): Event;

  /** Marks the first n bytes as the current frame; they are dropped on the next call. */
  protected take(n: number): void {
    this.frameLength = n;
    this.consumed = n;
  }

  private compact(): void {
    if (this.consumed === 0) return;
    this.buf.copyWithin(0, this.consumed, this.len);
    this.len -= this.consumed;
    this.consumed = 0;
  }
}
