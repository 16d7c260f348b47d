/**
 * Northbound messages leave only once the journal records behind them are written (in the
 * kernel's page cache): the journal writes on the libuv pool, a few ms after put(), and an alert
 * an operator has seen must survive a SIGKILL of the gateway (test/crash). Messages are kept in
 * order; with nothing unwritten they go out at once.
 *
 * Bound: at most MAX_HELD messages wait; beyond that (a disk that stopped answering) they are
 * delivered anyway, live delivery before the promise, and counted in `overflowed`.
 */
import type { NorthboundSink } from "./sink.js";

export interface WriteBarrier {
  /** Records put but not yet written. */
  readonly writePending: boolean;
  /** `done` once every record put so far is written (at once when none is pending). */
  afterWrite(done: () => void): void;
}

const MAX_HELD = 65_536;

type Held = [topic: string, payload: string, qos: 0 | 1, retain: boolean];

export class WrittenFirstSink implements NorthboundSink {
  overflowed = 0;
  private held: Held[] = [];
  /** Messages the registered afterWrite covers (held before it was registered). */
  private covered = 0;
  private registered = false;

  constructor(
    private readonly inner: NorthboundSink,
    private readonly barrier: WriteBarrier,
  ) {}

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    if (this.held.length === 0 && !this.barrier.writePending) {
      this.inner.publish(topic, payload, qos, retain);
      return;
    }
    this.held.push([topic, payload, qos, retain]);
    if (this.held.length > MAX_HELD) {
      this.overflowed += this.held.length;
      this.release(this.held.length);
      return;
    }
    this.register();
  }

  private register(): void {
    if (this.registered) return;
    this.registered = true;
    this.covered = this.held.length;
    this.barrier.afterWrite(this.written);
  }

  private readonly written = (): void => {
    this.registered = false;
    // Held after the registration: their records may have been put after it; they wait once more.
    this.release(this.covered);
    if (this.held.length === 0) return;
    if (this.barrier.writePending) this.register();
    else this.release(this.held.length);
  };

  private release(n: number): void {
    const out = this.held.splice(0, Math.min(n, this.held.length));
    this.covered = Math.max(0, this.covered - out.length);
    for (const [t, p, q, r] of out) this.inner.publish(t, p, q, r);
  }
}
