/**
 * A single-producer single-consumer ring of variable-length byte records over one
 * SharedArrayBuffer, for two threads (after the LMAX Disruptor: preallocated storage,
 * sequence counters that only count up, batch drain, one counter store per batch).
 * One thread writes, one thread reads; neither ever blocks the other.
 *
 * Layout of the SharedArrayBuffer:
 *
 *   bytes 0..63     HEAD: next byte position to write (producer-owned, Int32 word 0)
 *   bytes 64..127   TAIL: next byte position to read (consumer-owned, Int32 word 16)
 *   bytes 128..     the data area: `capacity` bytes, a power of two (64 B .. 1 GiB)
 *
 * HEAD and TAIL sit on their own 64-byte cache lines, so the two threads do not
 * invalidate each other's line on every record.
 *
 * Counters: byte positions held in an Int32Array and read as uint32 (`>>> 0`); they
 * wrap at 2^32, and because the capacity divides 2^32, `pos & (capacity - 1)` stays
 * the right index and `(head - tail) >>> 0` the right occupancy across the wrap
 * (capacity <= 2^30, so occupancy never reaches 2^31). Int32 rather than BigInt64:
 * Atomics on Int32 need no BigInt (no allocation on the hot path), and Int32Array is
 * what Atomics.wait/notify take for the doorbell.
 *
 * Ordering: the producer writes the record bytes with plain stores and then
 * `Atomics.store(HEAD)` (release); the consumer `Atomics.load(HEAD)` (acquire) and
 * reads the bytes; after the batch it `Atomics.store(TAIL)`, which the producer's
 * `Atomics.load(TAIL)` acquires before it reuses the space. Atomics are
 * sequentially consistent in JS, which is stronger than release/acquire.
 *
 * Records: a 4-byte header (uint32, native byte order: length in the low 24 bits,
 * tag in the high 8), then the payload, padded to a multiple of 4 so that a header
 * never straddles the end of the data area. A record that would straddle the end is
 * preceded by a padding record (tag TAG_PAD) that fills the rest of the area and is
 * skipped by the consumer; the record then starts at offset 0. A payload may be at
 * most capacity / 2 - 4 bytes, so a record always fits in an empty ring whatever
 * padding it needs.
 *
 * Producer: `tryClaim(tag, length)` returns where to write the payload (an offset into
 * `bytes`), or -1 when the ring is full: the caller states the overflow policy (keep
 * the event and withhold the PUBACK, conflate, drop and count). Claimed records are
 * made visible by `publish()`, once for any number of claims (batch publish);
 * `tryWrite` is claim + copy + publish. The producer reloads TAIL only when its cached
 * copy says the ring is full.
 *
 * Consumer: `drain(max, onRecord)` hands up to `max` records to the callback as a
 * view (the ring's `bytes`, offset, length: no copy per record; the view is valid
 * only during the callback) and publishes the new TAIL once per batch.
 *
 * Sleeping without spinning (Doorbell): a consumer that found every ring empty calls
 * `doorbell.sleep(isEmpty)`: it stores IDLE in the doorbell word, looks at the rings
 * once more (so a record published in between is not missed: both sides use seq-cst
 * Atomics, a Dekker handshake), and waits with `Atomics.waitAsync`. The producer's
 * `publish()` does one `Atomics.load` of the word and calls `Atomics.notify` only when
 * the consumer said it is idle, so a busy pipeline makes no syscall per message.
 * Note: a pending `Atomics.waitAsync` does not keep a Node event loop alive; the
 * consumer thread must hold something that does (a server, a MessagePort listener).
 *
 * Priority across the thread boundary: one ring per lane (P1 and telemetry), both
 * with the same Doorbell. The consumer drains the P1 ring first in every batch and
 * drains telemetry only in bounded batches (`drainByPriority`), so a P1 waits behind
 * at most one telemetry batch being handled, never behind the telemetry queued in
 * the ring; and a full telemetry ring never refuses a P1 (it has its own space).
 *
 * This module is core: it imports nothing.
 */

const HEAD = 0;
const TAIL = 16;
const CONTROL_BYTES = 128;
/** Bytes of a record's header. */
export const RECORD_HEADER_BYTES = 4;
/** Tag of a padding record (skipped by the consumer); user tags are 0..254. */
export const TAG_PAD = 0xff;
const MAX_LENGTH = 0xffffff;

const IDLE = 1;
const AWAKE = 0;

/** What a thread needs to attach to a ring made by another (postMessage-able). */
export interface SpscRingHandle {
  sab: SharedArrayBuffer;
  doorbell: SharedArrayBuffer | null;
}

export type RecordHandler = (tag: number, bytes: Uint8Array, offset: number, length: number) => void;

type WaitAsync = (
  a: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };

/** One word the consumer sleeps on and the producer(s) ring only when the consumer is idle. */
export class Doorbell {
  readonly sab: SharedArrayBuffer;
  private readonly word: Int32Array;

  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(64)) {
    this.sab = sab;
    this.word = new Int32Array(sab, 0, 1);
  }

  /** Producer side: wakes the consumer if (and only if) it said it is idle. One Atomics.load otherwise. */
  ring(): void {
    if (Atomics.load(this.word, 0) === IDLE && Atomics.compareExchange(this.word, 0, IDLE, AWAKE) === IDLE)
      Atomics.notify(this.word, 0);
  }

  /**
   * Consumer side: sleep until a producer rings or `timeoutMs` passes. `isEmpty` is
   * checked again after the consumer declared itself idle; if something arrived
   * meanwhile it returns at once.
   */
  async sleep(isEmpty: () => boolean, timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    Atomics.store(this.word, 0, IDLE);
    if (!isEmpty()) {
      Atomics.store(this.word, 0, AWAKE);
      return;
    }
    const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
    const r = waitAsync(this.word, 0, IDLE, timeoutMs);
    if (r.async) await r.value;
    Atomics.store(this.word, 0, AWAKE);
  }
}

export class SpscRing {
  readonly sab: SharedArrayBuffer;
  /** Data area size, bytes (a power of two). */
  readonly capacity: number;
  /** The data area; records' payloads are at the offsets tryClaim returns / drain hands out. */
  readonly bytes: Uint8Array;
  readonly doorbell: Doorbell | null;
  private readonly mask: number;
  private readonly words: Uint32Array;
  private readonly control: Int32Array;
  /** Producer-local: next position to write (published by publish()). */
  private head: number;
  /** Producer-local: last TAIL seen. */
  private cachedTail: number;
  /** Consumer-local: next position to read. */
  private tail: number;

  /**
   * A new ring of `capacity` data bytes (rounded up to a power of two, 64 B .. 1 GiB).
   * `startSeq` (tests): where both counters start, to exercise their wraparound.
   */
  static create(capacity: number, opts: { doorbell?: Doorbell | null; startSeq?: number } = {}): SpscRing {
    const cap = 2 ** Math.ceil(Math.log2(Math.max(64, capacity)));
    if (cap > 2 ** 30) throw new RangeError("spsc-ring: capacity above 1 GiB");
    const sab = new SharedArrayBuffer(CONTROL_BYTES + cap);
    const control = new Int32Array(sab, 0, CONTROL_BYTES / 4);
    const start = (opts.startSeq ?? 0) >>> 0;
    Atomics.store(control, HEAD, start | 0);
    Atomics.store(control, TAIL, start | 0);
    return new SpscRing(sab, opts.doorbell ?? null);
  }

  /** The same ring in another thread, from `handle()`. */
  static attach(h: SpscRingHandle): SpscRing {
    return new SpscRing(h.sab, h.doorbell ? new Doorbell(h.doorbell) : null);
  }

  private constructor(sab: SharedArrayBuffer, doorbell: Doorbell | null) {
    this.sab = sab;
    this.capacity = sab.byteLength - CONTROL_BYTES;
    if (this.capacity < 64 || (this.capacity & (this.capacity - 1)) !== 0)
      throw new RangeError("spsc-ring: data area is not a power of two");
    this.mask = this.capacity - 1;
    this.bytes = new Uint8Array(sab, CONTROL_BYTES, this.capacity);
    this.words = new Uint32Array(sab, CONTROL_BYTES, this.capacity / 4);
    this.control = new Int32Array(sab, 0, CONTROL_BYTES / 4);
    this.doorbell = doorbell;
    this.head = Atomics.load(this.control, HEAD) >>> 0;
    this.cachedTail = Atomics.load(this.control, TAIL) >>> 0;
    this.tail = this.cachedTail;
  }

  handle(): SpscRingHandle {
    return { sab: this.sab, doorbell: this.doorbell?.sab ?? null };
  }

  /** Largest payload a record may carry. */
  get maxPayload(): number {
    return Math.min(MAX_LENGTH, this.capacity / 2 - RECORD_HEADER_BYTES);
  }

  // ---------------------------------------------------------------- producer

  /**
   * Reserves a record of `length` payload bytes with `tag` (0..254) and returns the
   * offset in `bytes` to write it at, or -1 when the ring has no room (nothing changed).
   * Invisible to the consumer until publish().
   */
  tryClaim(tag: number, length: number): number {
    if (length > this.maxPayload || length < 0) throw new RangeError(`spsc-ring: record of ${length} bytes`);
    if (tag < 0 || tag >= TAG_PAD) throw new RangeError(`spsc-ring: tag ${tag}`);
    const total = (RECORD_HEADER_BYTES + length + 3) & ~3;
    let pos = this.head & this.mask;
    const toEnd = this.capacity - pos;
    const need = toEnd < total ? toEnd + total : total;
    if (this.capacity - ((this.head - this.cachedTail) >>> 0) < need) {
      this.cachedTail = Atomics.load(this.control, TAIL) >>> 0;
      if (this.capacity - ((this.head - this.cachedTail) >>> 0) < need) return -1;
    }
    if (toEnd < total) {
      this.words[pos >> 2] = ((TAG_PAD << 24) | (toEnd - RECORD_HEADER_BYTES)) >>> 0;
      this.head = (this.head + toEnd) >>> 0;
      pos = 0;
    }
    this.words[pos >> 2] = ((tag << 24) | length) >>> 0;
    this.head = (this.head + total) >>> 0;
    return pos + RECORD_HEADER_BYTES;
  }

  /** Makes every claimed record visible to the consumer (one Atomics.store), and rings its doorbell if it sleeps. */
  publish(): void {
    Atomics.store(this.control, HEAD, this.head | 0);
    this.doorbell?.ring();
  }

  /** Claim, copy and publish one record; false (nothing written) when the ring is full. */
  tryWrite(tag: number, payload: Uint8Array): boolean {
    const at = this.tryClaim(tag, payload.length);
    if (at < 0) return false;
    this.bytes.set(payload, at);
    this.publish();
    return true;
  }

  /**
   * Producer side: the position after the last record claimed (uint32, wraps). A consumer whose
   * `consumerPosition` has reached it (`passed`) has read every record claimed before it.
   */
  get producerPosition(): number {
    return this.head;
  }

  /** Bytes free for the producer right now (a record needs its padded size, plus padding at the end). */
  get free(): number {
    return this.capacity - ((this.head - (Atomics.load(this.control, TAIL) >>> 0)) >>> 0);
  }

  // ---------------------------------------------------------------- consumer

  /** Consumer side: nothing published is waiting. */
  isEmpty(): boolean {
    return Atomics.load(this.control, HEAD) >>> 0 === this.tail;
  }

  /** Consumer side: the position after the last record drained (uint32, wraps). */
  get consumerPosition(): number {
    return this.tail;
  }

  /** Consumer side: every record before the producer position `position` has been drained. */
  passed(position: number): boolean {
    // Positions wrap at 2^32 and are never more than the capacity (<= 2^30) apart.
    return ((this.tail - position) | 0) >= 0;
  }

  /** Published bytes not yet drained (records, headers and padding). */
  get used(): number {
    return ((Atomics.load(this.control, HEAD) >>> 0) - this.tail) >>> 0;
  }

  /**
   * Hands up to `max` published records, oldest first, to `onRecord` (tag, the ring's
   * bytes, offset, length: valid only during the call), then publishes the new TAIL
   * once. Returns how many were handled. A throwing handler consumes its record (the
   * tail still moves past it) and the error propagates.
   */
  drain(max: number, onRecord: RecordHandler): number {
    const head = Atomics.load(this.control, HEAD) >>> 0;
    let tail = this.tail;
    let n = 0;
    try {
      while (tail !== head && n < max) {
        const pos = tail & this.mask;
        const h = this.words[pos >> 2] as number;
        const length = h & MAX_LENGTH;
        const tag = h >>> 24;
        if (tag === TAG_PAD) {
          tail = (tail + RECORD_HEADER_BYTES + length) >>> 0;
          continue;
        }
        tail = (tail + ((RECORD_HEADER_BYTES + length + 3) & ~3)) >>> 0;
        n++;
        onRecord(tag, this.bytes, pos + RECORD_HEADER_BYTES, length);
      }
    } finally {
      if (tail !== this.tail) {
        this.tail = tail;
        Atomics.store(this.control, TAIL, tail | 0);
      }
    }
    return n;
  }
}

/**
 * One consumer pass over lanes in priority order (index 0 first): the first ring is
 * drained whole (up to `firstMax`), the others up to `batch` records each, and the first
 * ring is drained again between them, so a P1 published during a telemetry batch waits
 * for that batch only. Returns the records handled.
 */
export function drainByPriority(
  rings: readonly SpscRing[],
  batch: number,
  onRecord: (lane: number, tag: number, bytes: Uint8Array, offset: number, length: number) => void,
  firstMax = Number.POSITIVE_INFINITY,
): number {
  let n = 0;
  const first = rings[0];
  if (first === undefined) return 0;
  const on0: RecordHandler = (tag, b, o, l) => onRecord(0, tag, b, o, l);
  n += first.drain(firstMax, on0);
  for (let i = 1; i < rings.length; i++) {
    const lane = i;
    n += (rings[i] as SpscRing).drain(batch, (tag, b, o, l) => onRecord(lane, tag, b, o, l));
    n += first.drain(firstMax, on0);
  }
  return n;
}
