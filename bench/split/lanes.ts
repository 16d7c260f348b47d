/**
 * MEASUREMENT HARNESS ONLY (npm run bench:cores): the two sides of the SAB rings
 * of the split designs. A producer writes into one ring per lane (P1, telemetry)
 * and, when a ring is full, keeps the record in order in a local queue with its
 * completion withheld (an MQTT PUBACK: the device's in-flight window is the
 * back-pressure, nothing is dropped). A consumer drains the P1 ring first and
 * the telemetry ring in batches, and sleeps on the doorbell when both are empty.
 */
import { type Doorbell, drainByPriority, type SpscRing } from "../../core/spsc-ring.js";

/** A Buffer over a ring's data area (created once; no copy). */
export function bufferOf(r: SpscRing): Buffer {
  return Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.length);
}

interface Held {
  length: number;
  write: (buf: Buffer, at: number) => void;
  done: (() => void) | null;
}

export class LaneWriter {
  private readonly bufs: Buffer[];
  private readonly held: Held[][];
  /** Records that waited for space (a full ring). */
  heldCount = 0;

  constructor(private readonly rings: readonly SpscRing[]) {
    this.bufs = rings.map(bufferOf);
    this.held = rings.map(() => []);
  }

  /** Writes a record to `lane` now, or holds it (and its completion) until there is room. */
  offer(
    lane: number,
    length: number,
    write: (buf: Buffer, at: number) => void,
    done: (() => void) | null,
  ): void {
    const q = this.held[lane] as Held[];
    if (q.length === 0 && this.tryWrite(lane, length, write)) {
      done?.();
      return;
    }
    this.heldCount++;
    q.push({ length, write, done });
  }

  /** Writes held records that now fit; true when nothing is held any more. */
  flush(): boolean {
    let empty = true;
    for (let lane = 0; lane < this.held.length; lane++) {
      const q = this.held[lane] as Held[];
      let i = 0;
      while (i < q.length && this.tryWrite(lane, (q[i] as Held).length, (q[i] as Held).write)) i++;
      for (let j = 0; j < i; j++) (q[j] as Held).done?.();
      if (i > 0) q.splice(0, i);
      if (q.length > 0) empty = false;
    }
    return empty;
  }

  get holding(): boolean {
    return this.held.some((q) => q.length > 0);
  }

  private tryWrite(lane: number, length: number, write: (buf: Buffer, at: number) => void): boolean {
    const ring = this.rings[lane] as SpscRing;
    const at = ring.tryClaim(lane, length);
    if (at < 0) return false;
    write(this.bufs[lane] as Buffer, at);
    ring.publish();
    return true;
  }
}

/**
 * Consumes `rings` (index 0 = P1 first) until stopped: a batch pass, then a yield to I/O
 * (setImmediate); when both are empty, a sleep on the doorbell (at most `idleMs`).
 * `afterPass` runs after every pass (a producer's held records retried there).
 */
export function pump(
  rings: readonly SpscRing[],
  bell: Doorbell,
  onRecord: (lane: number, buf: Buffer, at: number, length: number) => void,
  opts: {
    batch?: number;
    idleMs?: number;
    afterPass?: () => boolean;
    /** Lanes after the first are drained only while this says yes (downstream not queueing). */
    mayFlow?: () => boolean;
  } = {},
): { stop(): Promise<void> } {
  const bufs = rings.map(bufferOf);
  const batch = opts.batch ?? 256;
  const idleMs = opts.idleMs ?? 20;
  let running = true;
  const on = (lane: number, _tag: number, _b: Uint8Array, at: number, length: number) =>
    onRecord(lane, bufs[lane] as Buffer, at, length);
  const on0 = (tag: number, b: Uint8Array, at: number, length: number) => on(0, tag, b, at, length);
  const isEmpty = () => rings.every((r) => r.isEmpty());
  const first = rings[0] as SpscRing;
  const loop = async () => {
    while (running) {
      const flowing = opts.mayFlow ? opts.mayFlow() : true;
      const n = flowing ? drainByPriority(rings, batch, on) : first.drain(Number.POSITIVE_INFINITY, on0);
      const clear = opts.afterPass ? opts.afterPass() : true;
      if (n === 0 && clear && flowing) await bell.sleep(isEmpty, idleMs);
      else if (n === 0) await new Promise((r) => setTimeout(r, 1));
      else await new Promise((r) => setImmediate(r));
    }
  };
  const done = loop();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}
