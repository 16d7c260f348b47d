/**
 * Northbound messages leave only once the journal records behind them are written (in the
 * kernel's page cache): the journal writes on the libuv pool, a few ms after put(), and an alert
 * an operator has seen must survive a SIGKILL of the gateway (test/crash). Messages are kept in
 * order; with nothing unwritten they go out at once.
 *
 * QoS 0 messages (telemetry) never wait: they stand for no journaled state, their topics carry
 * nothing else (so their order is kept), and held in front of an alert they made the P1 wait
 * behind a burst of readings at every write (bench: P1 p99 55 ms against 11 ms at 10,000 msg/s).
 *
 * A P1 alert state or escalation does not wait for the pool's write: it has its records (and all
 * before them) written at once on this thread and leaves with everything held, P1 first. Waiting,
 * it paid the write in flight, that write's wait for the running fdatasync, and its own write, each
 * completion a turn of a busy event loop (bench: P1 p99 13.8 ms against 3.5 ms journal off at
 * 5,000 msg/s).
 *
 * Bound: at most MAX_HELD messages wait; beyond that (a disk that stopped answering) they are
 * delivered anyway, live delivery before the promise, and counted in `overflowed`.
 */
import type { NorthboundSink, Route } from "./sink.js";

export interface WriteBarrier {
  /** Records put but not yet written. */
  readonly writePending: boolean;
  /** `done` once every record put so far is written (at once when none is pending). */
  afterWrite(done: () => void): void;
  /** Writes every record put so far before returning (writePending is false after, unless the disk failed). */
  writeNow(): void;
}

const MAX_HELD = 65_536;

type Held = [
  topic: string,
  payload: string,
  qos: 0 | 1,
  retain: boolean,
  urgent: boolean | undefined,
  only: Route | undefined,
];

export class WrittenFirstSink implements NorthboundSink {
  overflowed = 0;
  private held: Held[] = [];
  /** Messages the registered afterWrite covers (held before it was registered). */
  private covered = 0;
  private registered = false;
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly inner: NorthboundSink,
    private readonly barrier: WriteBarrier,
    /** P1 alert states and escalations: released first when a write completes (a P1 waits behind nothing). */
    private readonly urgent: (topic: string) => boolean = () => false,
  ) {}

  /** `urgent` is passed on (the upstream bridge's P1 queue); the release order here goes by topic. */
  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean, urgent?: boolean, only?: Route): void {
    if (qos === 0 || (this.held.length === 0 && !this.barrier.writePending)) {
      this.inner.publish(topic, payload, qos, retain, urgent, only);
      return;
    }
    this.held.push([topic, payload, qos, retain, urgent, only]);
    if (this.urgent(topic)) {
      this.barrier.writeNow();
      if (!this.barrier.writePending) {
        // Everything held is written now: all of it goes, P1 first.
        this.release(this.held.length);
        return;
      }
    }
    if (this.held.length > MAX_HELD) {
      this.overflowed += this.held.length;
      this.release(this.held.length);
      return;
    }
    this.register();
  }

  /** How many messages wait for their records' write now. */
  get holding(): number {
    return this.held.length;
  }

  /**
   * Resolves once nothing is held: every message published so far has been handed on (after its
   * records' write). A start republishing thousands of alerts waits on it between slices.
   */
  drained(): Promise<void> {
    if (this.held.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private register(): void {
    if (this.registered) return;
    this.registered = true;
    this.covered = this.held.length;
    this.barrier.afterWrite(this.written);
  }

  private readonly written = (): void => {
    this.registered = false;
    // Nothing left unwritten: everything held goes, in one release (P1 first).
    if (!this.barrier.writePending) {
      this.release(this.held.length);
      return;
    }
    // Held after the registration: their records may have been put after it; they wait once more.
    this.release(this.covered);
    if (this.held.length > 0) this.register();
  };

  private release(n: number): void {
    const out = this.held.splice(0, Math.min(n, this.held.length));
    this.covered = Math.max(0, this.covered - out.length);
    // Urgent topics carry only urgent messages, so taking them first keeps every topic's order.
    for (const [t, p, q, r, u, o] of out) if (this.urgent(t)) this.inner.publish(t, p, q, r, u, o);
    for (const [t, p, q, r, u, o] of out) if (!this.urgent(t)) this.inner.publish(t, p, q, r, u, o);
    if (this.held.length === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }
}
