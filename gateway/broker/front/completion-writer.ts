/**
 * The main thread's side of the completion ring (protocol.ts; the worker's is completions.ts):
 * every QoS 1 uplink taken from the rings is answered, committed or refused, and the answer
 * releases its PUBACK in the worker. Bounded: a completion that finds the ring full waits here,
 * at most one per uplink in flight (itself bounded per connection by limits.maxInflight).
 */
import type { SpscRing } from "../../../core/threads.js";
import { COMPLETION_BYTES, TAG_COMMITTED, TAG_REFUSED } from "./protocol.js";

export class CompletionWriter {
  private readonly bytes: Buffer;
  /** Completions that found their ring full, written first when it has room: tag, conn, slot. */
  private waiting: number[] = [];
  private publishScheduled = false;

  constructor(private readonly ring: SpscRing) {
    this.bytes = Buffer.from(ring.bytes.buffer, ring.bytes.byteOffset, ring.bytes.length);
  }

  /** A QoS 1 uplink committed or refused: its PUBACK is released (or the connection closed) by the worker. */
  complete(conn: number, slot: number, err: Error | null): void {
    const tag = err ? TAG_REFUSED : TAG_COMMITTED;
    if (this.waiting.length > 0 || !this.write(tag, conn, slot)) this.waiting.push(tag, conn, slot);
    if (!this.publishScheduled) {
      this.publishScheduled = true;
      queueMicrotask(this.publish);
    }
  }

  /** Writes the completions waiting for room, as far as there is room. */
  flushWaiting(): void {
    const w = this.waiting;
    if (w.length === 0) return;
    let i = 0;
    while (i < w.length && this.write(w[i] as number, w[i + 1] as number, w[i + 2] as number)) i += 3;
    if (i > 0) {
      this.waiting = w.slice(i);
      this.ring.publish();
    }
  }

  private write(tag: number, conn: number, slot: number): boolean {
    const at = this.ring.tryClaim(tag, COMPLETION_BYTES);
    if (at < 0) return false;
    this.bytes.writeUInt32LE(conn, at);
    this.bytes.writeUInt32LE(slot, at + 4);
    return true;
  }

  /** Completions of one turn become visible to the worker together (one doorbell at most). */
  private readonly publish = (): void => {
    this.publishScheduled = false;
    this.ring.publish();
  };
}
