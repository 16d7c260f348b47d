/**
 * The embedded broker's side of the northbound sink while the gateway starts: what is published
 * before the broker exists waits here and is handed over, oldest first, in the same call that
 * attaches the broker. A message published after that goes straight to the broker, so it can
 * never overtake an older one still waiting (a retained topic would end on a stale value).
 *
 * Bounded: at most `max` wait; beyond, the oldest is dropped and counted (`dropped`). Start-up
 * publishes a few hundred at most (device status, storage health); the recovered alerts are
 * republished after the broker listens, not held here.
 */
import type { NorthboundSink } from "./sink.js";

type Message = [topic: string, payload: string, qos: 0 | 1, retain: boolean];

export class UntilListening implements NorthboundSink {
  private target: NorthboundSink | null = null;
  /** A ring: dropping the oldest is O(1). */
  private readonly ring: Array<Message | undefined>;
  private head = 0;
  private size = 0;
  /** Messages dropped because `max` were already waiting. */
  dropped = 0;

  constructor(private readonly max = 10_000) {
    this.ring = new Array(max);
  }

  get waiting(): number {
    return this.size;
  }

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    if (this.target !== null) {
      this.target.publish(topic, payload, qos, retain);
      return;
    }
    if (this.size === this.max) {
      this.head = (this.head + 1) % this.max;
      this.size--;
      this.dropped++;
    }
    this.ring[(this.head + this.size) % this.max] = [topic, payload, qos, retain];
    this.size++;
  }

  /** From now on everything goes to `target`; what waits goes first, in order. */
  attach(target: NorthboundSink): void {
    // A publish made by the broker's delivery in turn is queued behind (target still null).
    while (this.size > 0) {
      const [topic, payload, qos, retain] = this.ring[this.head] as Message;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.max;
      this.size--;
      target.publish(topic, payload, qos, retain);
    }
    this.target = target;
  }
}
