/**
 * Device PUBACKs in order, without stalling the connection.
 *
 * aedes reads a client's next packets only when every packet of the last
 * socket read has been handled; a QoS 1 uplink is handled when its PUBACK is
 * written. Withholding an alert's PUBACK until the journal's fdatasync (the
 * promise docs/durability.md makes) therefore stopped the whole connection
 * for one sync: a base station or load generator that multiplexes devices
 * saw its next P1 wait behind a door event's fsync (bench, journal on at
 * 10,000 msg/s: P1 p99 1.5x, telemetry p99 +0.6 s).
 *
 * So the gateway takes the PUBACK over for device uplinks: aedes treats the
 * message as handled at once (reading goes on, a P1 behind it is processed
 * immediately), and the PUBACK is written here once the message is committed,
 * in the order the PUBLISHes arrived (MQTT 3.1.1 §4.6: "MUST send PUBACK
 * packets in the order in which the corresponding PUBLISH packets were
 * received"). A PUBACK that is ready waits only for the ones before it.
 *
 * PUBACKs that become ready in one turn (a group commit releases a batch) leave
 * in one socket write, gathered in a microtask: one write(2) per PUBACK was
 * 2.5 % of a core at 10,000 msg/s with the journal on (profile: the socket
 * writes after each fdatasync, one per message).
 *
 * An uplink not kept (refused, or its commit failed) closes the connection
 * unacknowledged, for the device to send it again, but only once every uplink
 * before it is answered: those kept get their PUBACKs first. Closing at once
 * left them unacknowledged although kept, and the device sent them again too;
 * past the device's seq window (`ingest.dedupWindow`, 32) a re-send is not
 * known as one and was handled a second time (a device left with the rest of
 * a flood of presses had 64 kept in two turns of the device listener). From
 * the refusal on, the connection takes no new uplink (`refusing`): one taken
 * in would overtake the refused one, which comes back later. A QoS 0 uplink not
 * kept (it has no slot here) closes its connection the same way
 * (`refuseAfterPending`).
 *
 * Bound: MAX_PENDING unacknowledged uplinks per connection; beyond it the
 * connection is closed unacknowledged (the device re-sends: nothing is lost,
 * and a device that keeps more than that in flight is misbehaving anyway).
 */
import type { Socket } from "node:net";
import type { Completion } from "../pipeline/lanes.js";

export const MAX_PENDING_PUBACKS = 4096;

/** The connection had more than `max` uplinks waiting for their PUBACK. */
export class InflightLimitError extends Error {
  constructor(readonly max: number) {
    super(`more than ${max} QoS 1 messages waiting for their PUBACK`);
  }
}

/** A connection being closed whose last PUBACKs have not left within this long is closed all the same. */
const CLOSE_AFTER_PUBACKS_MS = 1000;
/** Written after the last PUBACKs: its callback says they have left. */
const FLUSHED = Buffer.alloc(0);

const PENDING = 0;
const READY = 1;

export class PubackQueue {
  private readonly ids: number[] = [];
  private readonly states: number[] = [];
  private head = 0;
  /** Entries removed from the front of ids/states so far (a completion's slot is absolute). */
  private dropped = 0;
  private closed = false;
  /** Absolute slot of the first uplink not kept (-1: none): nothing from it on is acknowledged. */
  private failedAt = -1;
  private failure: Error | null = null;

  constructor(
    private readonly socket: Socket,
    /**
     * Closes the connection without acknowledging (a refused or failed uplink, or overflow).
     * Given the socket, so one function may serve every connection.
     */
    private readonly abort: (err: Error, socket: Socket) => void,
    /** limits.maxInflight: unacknowledged uplinks on one connection. */
    private readonly max = MAX_PENDING_PUBACKS,
  ) {}

  get pending(): number {
    return this.ids.length - this.head;
  }

  /** A QoS 1 uplink arrived: its completion writes its PUBACK in turn. */
  enqueue(messageId: number): Completion | null {
    const slot = this.enqueueSlot(messageId);
    return slot < 0 ? null : (err) => this.complete(slot, err);
  }

  /** An uplink was not kept: the connection is closed, or closes once those before it are answered. */
  get refusing(): boolean {
    return this.closed || this.failedAt >= 0;
  }

  /**
   * enqueue() without the closure: the uplink's slot (to hand to complete()), or -1 when the
   * connection is refusing (above) or over its bound (then closed).
   */
  enqueueSlot(messageId: number): number {
    if (this.closed || this.failedAt >= 0) return -1;
    if (this.pending >= this.max) {
      this.close(new InflightLimitError(this.max));
      return -1;
    }
    // Absolute position: the arrays are compacted from the front while completions are out.
    const slot = this.dropped + this.ids.length;
    this.ids.push(messageId);
    this.states.push(PENDING);
    return slot;
  }

  /**
   * The uplink in `slot` was committed (err null) or not (the connection is closed unacknowledged
   * once those before it are answered).
   */
  complete(slot: number, err: Error | null): void {
    const at = slot - this.dropped;
    if (this.closed || at < this.head || at >= this.ids.length) return;
    if (this.failedAt >= 0 && slot > this.failedAt) return; // behind one not kept: never acknowledged
    if (err) {
      // Not kept: no PUBACK, the device keeps the message and sends it again.
      this.failedAt = slot;
      this.failure = err;
      this.flush(); // closes now if nothing before it waits
      return;
    }
    this.states[at] = READY;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      if (toFlush.push(this) === 1) queueMicrotask(flushAll);
    }
  }

  /**
   * An uplink outside the queue (QoS 0) was not kept: as for a QoS 1 one, the connection takes
   * nothing more in from now on and closes once every uplink before the refusal is answered, those
   * kept acknowledged first. Closing at once lost their PUBACKs, and the device sent them again
   * (handled twice past its seq window). Already refusing: it closes at that earlier uplink.
   */
  refuseAfterPending(err: Error): void {
    if (this.closed || this.failedAt >= 0) return;
    // The slot the next uplink would have had: every one enqueued so far is before the refusal.
    this.failedAt = this.dropped + this.ids.length;
    this.failure = err;
    this.flush(); // closes now if nothing waits
  }

  private flushScheduled = false;

  /** @internal Writes the PUBACKs that are ready, in order (flushAll). */
  flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    let n = 0;
    const end = this.failedAt < 0 ? this.ids.length : this.failedAt - this.dropped;
    while (this.head + n < end && this.states[this.head + n] === READY) n++;
    if (n > 0 && !this.socket.destroyed) {
      // PUBACK: fixed header 0x40, remaining length 2, packet identifier (MQTT 3.1.1 §3.4).
      const out = Buffer.allocUnsafe(4 * n);
      for (let i = 0; i < n; i++) {
        const id = this.ids[this.head + i] as number;
        out[4 * i] = 0x40;
        out[4 * i + 1] = 0x02;
        out[4 * i + 2] = id >> 8;
        out[4 * i + 3] = id & 0xff;
      }
      this.socket.write(out);
    }
    this.head += n;
    if (this.head === this.ids.length) {
      this.dropped += this.head;
      this.ids.length = 0;
      this.states.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.ids.length) {
      this.dropped += this.head;
      this.ids.splice(0, this.head);
      this.states.splice(0, this.head);
      this.head = 0;
    }
    // Every uplink before the one not kept is acknowledged: now the connection goes.
    if (this.failedAt >= 0 && this.dropped + this.head === this.failedAt) this.shut(this.failure as Error);
  }

  private close(err: Error): void {
    if (this.closed) return;
    // Those ready before the overflow still get their PUBACKs (the flush is a microtask away).
    this.flush();
    this.shut(err);
  }

  private shut(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    if (socket.destroyed || socket.writableLength === 0) {
      this.abort(err, socket);
      return;
    }
    // PUBACKs still buffered (just written) leave first: the abort destroys the socket with what it
    // buffers, and the device sent again what had been kept (taken in twice past its seq window).
    let timer: NodeJS.Timeout | null = null;
    const go = () => {
      if (timer === null) return;
      clearTimeout(timer);
      timer = null;
      this.abort(err, socket);
    };
    timer = setTimeout(go, CLOSE_AFTER_PUBACKS_MS);
    timer.unref(); // the socket is going anyway: a stop need not wait for it
    socket.write(FLUSHED, go);
  }
}

/**
 * The queues with PUBACKs ready, flushed together in one microtask: one shared function rather
 * than a bound closure per queue (a connection's queue lives as long as the connection).
 */
const toFlush: PubackQueue[] = [];
function flushAll(): void {
  let i = 0;
  try {
    // Queues made ready while this pass writes join it (the loop reads the length each time).
    for (; i < toFlush.length; i++) (toFlush[i] as PubackQueue).flush();
  } finally {
    if (i < toFlush.length) {
      // A flush threw: the queues after it are flushed in a microtask of their own.
      toFlush.splice(0, i + 1);
      queueMicrotask(flushAll);
    } else toFlush.length = 0;
  }
}
