/**
 * The embedded broker's side of the northbound sink while the gateway starts: what is published
 * before the broker exists waits here and is handed over, oldest first, in the same call that
 * attaches the broker. A message published after that goes straight to the broker, so it can
 * never overtake an older one still waiting (a retained topic would end on a stale value).
 *
 * Little waits here: the gateway holds its timer wheel until the broker listens and the restored
 * state is republished (gateway.ts start()), so the escalations, call windows and shelvings of
 * restored alerts that fell due while it was down fire after, through the broker; what remains is
 * start-up's own (storage health, a journal damaged at open), a few messages.
 *
 * Bounded, with a stated policy: at most `max` wait. Beyond, the oldest message that is not P1 is
 * dropped and counted (`dropped`): a P1 message (an `alerts/p1/` or `escalations/p1/` topic, or
 * one published `urgent`: a P1 alert's line on `alerts/events`) is never the one dropped while any
 * other waits. P1 messages alone may fill up to 2 x `max`; only then is the oldest P1 dropped
 * (counted in `dropped` and `droppedUrgent` too).
 */
import type { NorthboundSink } from "./sink.js";

type Message = [seq: number, topic: string, payload: string, qos: 0 | 1, retain: boolean, urgent: boolean];

/** A FIFO on an array with a head index: O(1) at both ends, compacted as it drains. */
class Fifo {
  items: Array<Message | undefined> = [];
  head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  peek(): Message | undefined {
    return this.items[this.head];
  }
  shift(): Message {
    const m = this.items[this.head] as Message;
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return m;
  }
}

export class UntilListening implements NorthboundSink {
  private target: NorthboundSink | null = null;
  /** P1 and the rest apart, so a drop takes the oldest of the rest in O(1); `seq` merges them back. */
  private readonly p1 = new Fifo();
  private readonly rest = new Fifo();
  private seq = 0;
  /** Messages dropped because `max` were already waiting. */
  dropped = 0;
  /** Of them, P1 (only when 2 x `max` P1 messages waited). */
  droppedUrgent = 0;

  constructor(
    private readonly max = 10_000,
    /** Topic prefixes that are P1 by themselves (`linli/<site>/alerts/p1/`, `.../escalations/p1/`). */
    private readonly p1Prefixes: readonly string[] = [],
  ) {}

  get waiting(): number {
    return this.p1.size + this.rest.size;
  }

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean, urgent = false): void {
    if (this.target !== null) {
      this.target.publish(topic, payload, qos, retain, urgent);
      return;
    }
    const isP1 = urgent || this.p1Prefixes.some((p) => topic.startsWith(p));
    if (this.waiting >= this.max) {
      if (this.rest.size > 0) {
        this.rest.shift();
        this.dropped++;
      } else if (!isP1) {
        // Only P1 waits: the newcomer, not P1, is the one dropped.
        this.dropped++;
        return;
      } else if (this.p1.size >= 2 * this.max) {
        this.p1.shift();
        this.dropped++;
        this.droppedUrgent++;
      }
    }
    (isP1 ? this.p1 : this.rest).items.push([this.seq++, topic, payload, qos, retain, urgent]);
  }

  /** From now on everything goes to `target`; what waits goes first, in the order published. */
  attach(target: NorthboundSink): void {
    // A publish made by the broker's delivery in turn is queued behind (target still null).
    while (this.waiting > 0) {
      const a = this.p1.peek();
      const b = this.rest.peek();
      const from = a === undefined ? this.rest : b === undefined || a[0] < b[0] ? this.p1 : this.rest;
      const [, topic, payload, qos, retain, urgent] = from.shift();
      target.publish(topic, payload, qos, retain, urgent);
    }
    this.target = target;
  }
}
