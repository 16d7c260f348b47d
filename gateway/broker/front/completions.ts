/**
 * The worker's side of the completion ring (protocol.ts): the main thread answers every QoS 1
 * uplink written to the rings (committed, refused, or its connection gone), and each answer
 * releases that uplink's PUBACK, in its connection's order (PubackQueue), or closes the
 * connection unacknowledged for the device to send it again.
 */
import type { Doorbell, SpscRing } from "../../../core/threads.js";
import { type DeviceConnection, failedWithin } from "./connection.js";
import { TAG_COMMITTED } from "./protocol.js";
import type { UplinkWriter } from "./uplink-writer.js";

const REFUSED = new Error("uplink not kept by the gateway: closed unacknowledged for the device to re-send");

export class CompletionReader {
  private readonly bytes: Buffer;
  private stopped = false;

  constructor(
    private readonly ring: SpscRing,
    /** How many completions are owed: the uplinks written with a slot, not yet answered. */
    private readonly owed: Pick<UplinkWriter, "awaitingCompletions">,
    private readonly connections: ReadonlyMap<number, DeviceConnection>,
  ) {
    this.bytes = Buffer.from(ring.bytes.buffer, ring.bytes.byteOffset, ring.bytes.length);
  }

  /**
   * Completions are looked for every millisecond while some are due, and the doorbell is slept on
   * only when none is: waking a sleeping thread (Atomics.notify, a futex syscall) for every batch
   * of completions was 3 % of the main thread at 30,000 msg/s (CPU profile), and a PUBACK a
   * millisecond later costs a device nothing.
   */
  async run(): Promise<void> {
    const ring = this.ring;
    const bell = ring.doorbell as Doorbell;
    const isEmpty = () => ring.isEmpty();
    while (!this.stopped) {
      if (this.drain() > 0) await new Promise((r) => setImmediate(r));
      else if (this.owed.awaitingCompletions > 0) await new Promise((r) => setTimeout(r, 1));
      else await bell.sleep(isEmpty, 100);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private drain(): number {
    const n = this.ring.drain(Number.POSITIVE_INFINITY, this.onCompletion);
    this.owed.awaitingCompletions -= n;
    return n;
  }

  private readonly onCompletion = (tag: number, _bytes: Uint8Array, at: number): void => {
    const bytes = this.bytes;
    const conn = this.connections.get(bytes.readUInt32LE(at));
    if (conn === undefined) return;
    try {
      conn.pubacks?.complete(bytes.readUInt32LE(at + 4), tag === TAG_COMMITTED ? null : REFUSED);
    } catch (err) {
      failedWithin(conn, err);
    }
  };
}
