/**
 * The worker's side of the uplink rings (protocol.ts): every uplink, will and close a device
 * connection (connection.ts) hands over is written here into the alert ring or the telemetry ring,
 * or waits for room, and the records written are made visible to the main thread once per socket
 * read (publish).
 *
 * Overflow policies (worker.ts describes the bounds):
 * - alert ring full: the record is held, in arrival order, and the connection's socket is not
 *   read again until every held record is written (stallIfHeld); nothing is dropped;
 * - telemetry ring full: the connection's newest reading waits, one per connection, and a newer
 *   one replaces it (conflated: counted, and a QoS 1 one acknowledged); a reading still waiting
 *   when its connection closes is dropped and counted the same way.
 */
import type net from "node:net";
import type { SpscRing } from "../../../core/threads.js";
import type { PubackQueue } from "../puback-queue.js";
import { Backlog } from "./backlog.js";
import {
  COUNTER_TELEMETRY_CONFLATED,
  type FromWorker,
  TAG_CLOSED,
  TAG_UPLINK,
  UPLINK_HEADER_BYTES,
} from "./protocol.js";

/** What the writer needs of a device connection. */
export interface UplinkSource {
  readonly id: number;
  readonly socket: net.Socket;
  readonly role: string | null;
  pubacks: PubackQueue | null;
  /** Its newest reading, waiting for room in the telemetry ring. */
  heldTelemetry: Held | null;
  abort(): void;
}

/** A record waiting for room in its ring. */
export interface Held {
  conn: UplinkSource;
  tag: number;
  slot: number;
  retain: boolean;
  contentType: string | undefined;
  payload: Buffer;
}

/** A ring the worker writes uplinks into, and whether it has records not yet published. */
interface UplinkRing {
  ring: SpscRing;
  bytes: Buffer;
  unpublished: boolean;
}

function uplinkRingOf(ring: SpscRing): UplinkRing {
  return {
    ring,
    bytes: Buffer.from(ring.bytes.buffer, ring.bytes.byteOffset, ring.bytes.length),
    unpublished: false,
  };
}

export class UplinkWriter {
  private readonly alertRing: UplinkRing;
  private readonly telemetryRing: UplinkRing;
  /** Records that found the uplink ring full, in arrival order (drained before anything new is written). */
  private readonly held = new Backlog<Held>();
  /** Records ever held (the worker's stats). */
  heldTotal = 0;
  /** Connections not read while their records are held. */
  private readonly stalled = new Set<UplinkSource>();
  /** Connections with a reading waiting for room in the telemetry ring, in the order they began to wait. */
  private readonly telemetryWaiting = new Backlog<UplinkSource>();
  /** QoS 1 uplinks written to the ring whose completion has not come back yet (completions.ts). */
  awaitingCompletions = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    alert: SpscRing,
    telemetry: SpscRing,
    private readonly counters: BigInt64Array,
    private readonly post: (m: FromWorker) => void,
  ) {
    this.alertRing = uplinkRingOf(alert);
    this.telemetryRing = uplinkRingOf(telemetry);
  }

  /**
   * Writes an uplink record now, or holds it (in order) until the ring has room. Only a held record
   * becomes an object; records written are made visible by publish(), once per socket read.
   */
  offer(
    conn: UplinkSource,
    tag: number,
    slot: number,
    retain: boolean,
    contentType: string | undefined,
    payload: Buffer,
  ): void {
    if (
      this.held.length === 0 &&
      this.tryWrite(this.alertRing, conn, tag, slot, retain, contentType, payload)
    )
      return;
    this.held.push({ conn, tag, slot, retain, contentType, payload });
    this.heldTotal++;
    this.scheduleRetry();
  }

  /** A reading into the telemetry ring, or waiting (one per connection, the newest) for room there. */
  offerTelemetry(conn: UplinkSource, slot: number, contentType: string | undefined, payload: Buffer): void {
    const waiting = conn.heldTelemetry;
    if (waiting === null) {
      // Behind the connections already waiting (in turn, so that no device's readings starve).
      if (
        this.telemetryWaiting.length === 0 &&
        this.tryWrite(this.telemetryRing, conn, TAG_UPLINK, slot, false, contentType, payload)
      )
        return;
      // A copy: the parsed payload may be a view of the whole socket read.
      conn.heldTelemetry = {
        conn,
        tag: TAG_UPLINK,
        slot,
        retain: false,
        contentType,
        payload: Buffer.from(payload),
      };
      this.telemetryWaiting.push(conn);
      this.scheduleRetry();
      return;
    }
    // Conflated: the newer reading takes the waiting one's place.
    Atomics.add(this.counters, COUNTER_TELEMETRY_CONFLATED, 1n);
    if (waiting.slot >= 0) conn.pubacks?.complete(waiting.slot, null);
    waiting.slot = slot;
    waiting.contentType = contentType;
    waiting.payload = Buffer.from(payload);
  }

  /**
   * After a socket read: while records are held, the connection is not read again (the kernel's
   * socket buffer, then TCP, hold the device back) until retryHeld has written them all.
   */
  stallIfHeld(conn: UplinkSource): void {
    if (this.held.length === 0) return;
    this.stalled.add(conn);
    conn.socket.pause();
  }

  /** A connection closed: it is not to be read again. */
  forget(conn: UplinkSource): void {
    this.stalled.delete(conn);
  }

  /**
   * A connection closed: its waiting reading is written if there is room (no PUBACK can follow a
   * close: a QoS 1 reading is sent again by the device, a QoS 0 one is gone), else counted as
   * conflated.
   */
  writeWaitingAtClose(conn: UplinkSource): void {
    const reading = conn.heldTelemetry;
    if (reading === null) return;
    conn.heldTelemetry = null;
    if (
      !this.tryWrite(
        this.telemetryRing,
        conn,
        TAG_UPLINK,
        reading.slot,
        false,
        reading.contentType,
        reading.payload,
      )
    )
      Atomics.add(this.counters, COUNTER_TELEMETRY_CONFLATED, 1n);
  }

  /**
   * A connection's close, through the alert ring after its last record there (its will included),
   * with the telemetry ring's position after its last reading: the main thread closes it once it
   * has read both that far. Its slot says whether a CONNECT went to the main thread (by
   * postMessage, which may arrive after this record): the main thread then waits for it rather
   * than keep a closed login.
   */
  offerClose(conn: UplinkSource, loginPosted: boolean): void {
    const position = Buffer.allocUnsafe(4);
    position.writeUInt32LE(this.telemetryRing.ring.producerPosition);
    this.offer(conn, TAG_CLOSED, loginPosted ? 1 : 0, false, undefined, position);
    this.publish();
  }

  /**
   * Makes the records written so far visible to the main thread (one store, one doorbell check per
   * ring). Telemetry first: a close in the alert ring never arrives before the readings it follows.
   */
  publish(): void {
    const telemetry = this.telemetryRing;
    if (telemetry.unpublished) {
      telemetry.unpublished = false;
      telemetry.ring.publish();
    }
    const alert = this.alertRing;
    if (alert.unpublished) {
      alert.unpublished = false;
      alert.ring.publish();
    }
  }

  private tryWrite(
    to: UplinkRing,
    conn: UplinkSource,
    tag: number,
    slot: number,
    retain: boolean,
    contentType: string | undefined,
    payload: Buffer,
  ): boolean {
    const ct = contentType === undefined ? 0 : Math.min(255, Buffer.byteLength(contentType, "latin1"));
    const length = UPLINK_HEADER_BYTES + ct + payload.length;
    if (length > to.ring.maxPayload) {
      // Larger than the ring can ever hold: only a payload far over every model's limit comes here
      // (frames.ts bounds packets by the model's maxPayloadBytes). Refused like an oversized packet.
      this.post({
        t: "rejected",
        conn: conn.id,
        role: conn.role,
        reason: "packet-too-large",
        detail: `${length} bytes`,
      });
      conn.abort();
      return true;
    }
    const at = to.ring.tryClaim(tag, length);
    if (at < 0) return false;
    const bytes = to.bytes;
    bytes.writeUInt32LE(conn.id, at);
    bytes.writeInt32LE(slot, at + 4);
    bytes[at + 8] = retain ? 1 : 0;
    bytes[at + 9] = ct;
    if (ct > 0) bytes.write(contentType as string, at + UPLINK_HEADER_BYTES, ct, "latin1");
    bytes.set(payload, at + UPLINK_HEADER_BYTES + ct);
    to.unpublished = true;
    // The main thread answers every record with a slot (committed, refused, or its connection gone).
    if (slot >= 0) this.awaitingCompletions++;
    return true;
  }

  private scheduleRetry(): void {
    if (this.retryTimer === null) this.retryTimer = setTimeout(this.retryHeld, 1);
  }

  /**
   * Writes held records and waiting readings that now fit; once no record is held, reads the
   * stalled connections again.
   */
  private readonly retryHeld = (): void => {
    this.retryTimer = null;
    const held = this.held;
    const waiting = this.telemetryWaiting;
    for (let h = held.peek(); h !== undefined; h = held.peek()) {
      if (!this.tryWrite(this.alertRing, h.conn, h.tag, h.slot, h.retain, h.contentType, h.payload)) break;
      held.shift();
    }
    for (let c = waiting.peek(); c !== undefined; c = waiting.peek()) {
      const r = c.heldTelemetry;
      if (r !== null) {
        if (!this.tryWrite(this.telemetryRing, c, TAG_UPLINK, r.slot, false, r.contentType, r.payload)) break;
        c.heldTelemetry = null;
      }
      waiting.shift();
    }
    this.publish();
    if (held.length === 0) {
      for (const c of this.stalled) c.socket.resume();
      this.stalled.clear();
    }
    if (held.length > 0 || waiting.length > 0) this.scheduleRetry();
  };

  /** The worker stops: no retry after this. */
  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}
