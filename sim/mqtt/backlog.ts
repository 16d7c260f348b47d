/**
 * The base station's own uplink backlog while it cannot reach the gateway.
 * mqtt.js would queue QoS 0 without bound (`queueQoSZero`) and keeps QoS 1 in an
 * unbounded store, so the emulators keep messages here instead, bounded.
 *
 * Overflow policy (stated, tested):
 * - at `capacity`, the oldest *heartbeat* is evicted to make room (a newer
 *   heartbeat carries the same information);
 * - events are never evicted; if the backlog holds only events, a new heartbeat
 *   is dropped and a new event is refused (counted, and the caller is told),
 *   because a simulator cannot hold unbounded memory either;
 * - messages that were in flight when the link dropped come back to the front
 *   with `requeue` and are never refused (they were already accepted); the
 *   backlog can then exceed `capacity` by at most the in-flight count.
 */
export type UplinkKind = "event" | "heartbeat";

export interface BacklogItem {
  readonly kind: UplinkKind;
}

export interface BacklogStats {
  size: number;
  highWater: number;
  evictedHeartbeats: number;
  droppedHeartbeats: number;
  refusedEvents: number;
}

export type PushOutcome<T> = { accepted: true; evicted?: T } | { accepted: false; reason: "full-of-events" };

export class Backlog<T extends BacklogItem> {
  private items: T[] = [];
  private stat = { highWater: 0, evictedHeartbeats: 0, droppedHeartbeats: 0, refusedEvents: 0 };

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("backlog capacity must be >= 1");
  }

  get size(): number {
    return this.items.length;
  }

  push(item: T): PushOutcome<T> {
    let evicted: T | undefined;
    if (this.items.length >= this.capacity) {
      const i = this.items.findIndex((x) => x.kind === "heartbeat");
      if (i < 0) {
        if (item.kind === "heartbeat") this.stat.droppedHeartbeats++;
        else this.stat.refusedEvents++;
        return { accepted: false, reason: "full-of-events" };
      }
      evicted = this.items.splice(i, 1)[0];
      this.stat.evictedHeartbeats++;
    }
    this.items.push(item);
    this.stat.highWater = Math.max(this.stat.highWater, this.items.length);
    return evicted ? { accepted: true, evicted } : { accepted: true };
  }

  /** Puts previously accepted messages back at the front, in their original order. */
  requeue(items: readonly T[]): void {
    this.items.unshift(...items);
    this.stat.highWater = Math.max(this.stat.highWater, this.items.length);
  }

  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  stats(): BacklogStats {
    return { size: this.items.length, ...this.stat };
  }
}
