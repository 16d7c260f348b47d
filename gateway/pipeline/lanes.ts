/**
 * The priority pipeline: three rings, one per lane, drained by one consumer
 * in strict priority order.
 *
 *   lane       size (default)                    overflow policy
 *   P1         256                               never dropped: offer() says "full", the producer keeps the event
 *                                                (MQTT: the device's PUBACK is withheld; Modbus: the poller holds it)
 *   alert      4096                              same as P1
 *   telemetry  telemetrySpan x telemetryPeakRate  see below
 *              (1 s x 20,000/s), at least the
 *              device count, at most 2^17 slots
 *
 * Telemetry policy. The lane is sized by time: it holds at least `telemetrySpan`
 * of input at the configured peak rate, so a burst up to that size, and a
 * consumer pause shorter than `telemetryMaxLag` (a GC pause, a slow fsync), are
 * absorbed and every reading is kept.
 * Conflation (a newer reading replaces the device's reading still queued; newest
 * kept, counted as `conflated`) starts only when the consumer really is behind:
 * the oldest queued reading has waited longer than `telemetryMaxLag` (measured
 * on the monotonic receive clock, the same one that stamps latencies), and stops
 * as soon as the backlog is younger again. Occupancy alone never starts it,
 * except at the hard cap: when the lane is full a device's reading still conflates
 * into its queued one, and a device without one has its newest reading refused,
 * counted as `refused` (telemetry carries no PUBACK to withhold). A producer
 * that can keep its own backlog off the JS heap (the device listener) asks
 * `telemetryIntakeRoom()` first: in sustained overload the lane takes from it
 * only what keeps TELEMETRY_INTAKE_AHEAD queued, and the producer conflates
 * within its own bound. Memory stays bounded by the lane's capacity whatever
 * the rate. The telemetry lane allocates
 * TELEMETRY_LANE_INITIAL slots at start and doubles them when they are all
 * queued, up to its capacity (a site that never queues 1,024 readings never
 * pays for 32,768 slots); P1 and alert lanes are preallocated whole.
 *
 * P1 and alert entries are drained in a microtask (before any further I/O);
 * telemetry in batches, yielding to I/O between batches so that a P1 that
 * arrives meanwhile is handled before the rest of the backlog: one batch a turn,
 * more (P1 and alert lanes drained between them, within a time budget) while the
 * backlog is older than TELEMETRY_CATCH_UP_LAG_MS.
 *
 * Each device counts its entries in the P1 lane (`LaneDevice.p1Queued`): the MQTT ingest holds
 * one device to MAX_P1_HELD_PER_DEVICE there and in its P1 parking (gateway/ingest/mqtt-ingest.ts),
 * so a device chattering in a P1 condition cannot fill the lane ahead of other devices' presses.
 *
 * Commit seam: after the consumer has handled a batch of P1/alert entries,
 * their completions (the withheld PUBACKs) go to `commit`, each flagged with
 * whether its entry's handling moved `commitMark` (put a record that the
 * acknowledgement must wait for). Without a journal they are called at once;
 * the gateway's journal committer waits for the group commit only for the
 * flagged ones.
 */
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY, type LaneId } from "../../core/index.js";
import { nextPowerOfTwo, Ring } from "./ring.js";

/**
 * Telemetry slots allocated at start (~88 KB); the lane grows by doubling up to its capacity
 * when they are all queued, and keeps what it grew (no allocation once grown).
 */
export const TELEMETRY_LANE_INITIAL = 1024;

/** Lane cap whatever the span and rate: 131,072 entries (~10 MB of slots plus the samples they hold). */
export const TELEMETRY_LANE_MAX = 1 << 17;
/** Above a GC pause or a journal fsync (tens of ms), below the bench's 100 ms p99 x 2.5: really behind. */
export const DEFAULT_TELEMETRY_MAX_LAG_MS = 250;
/**
 * Oldest queued reading older than this (and not yet at telemetryMaxLag): the drain is falling
 * behind the input, and a turn of the loop drains more than one batch (see runTelemetry).
 * Above the lag a warm gateway shows at 20,000 msg/s (under 10 ms) and a scavenge.
 */
export const TELEMETRY_CATCH_UP_LAG_MS = 25;
/** Most time one turn of the loop spends draining telemetry while catching up (urgent lanes drained between batches). */
export const TELEMETRY_CATCH_UP_BUDGET_MS = 8;
/**
 * Catching up is for a backlog that began within this long: a burst, a cold start. A lane that has
 * not been empty for longer is sustained overload, where the extra batches only lengthened the
 * turns a P1 waits through (bench, 32,000 msg/s: P1 p99 72-90 ms with them, 31-45 ms without).
 */
export const TELEMETRY_CATCH_UP_WINDOW_MS = 1000;
/**
 * In sustained overload, readings a producer that keeps its own backlog off the JS heap (the
 * device listener's shared ring) keeps queued here: eight of the default batches, a few ms of
 * input. Filling the lane instead (32,768 decoded readings at the bench's overload) spent the main
 * thread on decoding readings that were then conflated here: with this bound the gateway's output
 * at twice its ceiling rose 5-10 % and the readings conflated halved (the P1 latency did not move).
 */
export const TELEMETRY_INTAKE_AHEAD = 512;

export type Completion = (err: Error | null) => void;

/** What a device carries for the lanes. */
export interface LaneDevice {
  /** Its reading still queued, so a newer one can be conflated in place. */
  queuedTelemetry: PipelineEntry | null;
  /**
   * Its entries in the P1 lane: one more at each offer queued there, one less when the consumer
   * takes one. The MQTT ingest bounds what one device holds in the P1 lane and its parking with it.
   */
  p1Queued: number;
}

export class PipelineEntry {
  lane: LaneId = LANE_TELEMETRY;
  device: LaneDevice | null = null;
  sample: unknown = null;
  /** Gateway receive time, epoch ms. */
  receivedAt = 0;
  /** Monotonic receive time (ms, sub-ms precision) for latency figures. */
  receivedMono = 0;
  /** Global arrival order, so rules can tell a stale telemetry entry from a newer event. */
  ingestSeq = 0;
  /** Monotonic time the entry took its slot; unchanged by conflation, so the lane's lag is the real wait. */
  queuedMono = 0;
  done: Completion | null = null;
}

export type OfferResult = "queued" | "conflated" | "full";

export interface LaneStats {
  capacity: number;
  occupancy: number;
  highWater: number;
  processed: number;
  /** Offers refused because the lane was full (the producer kept the event). */
  refused: number;
  /** Telemetry replaced in place by a newer reading of the same device. */
  conflated: number;
}

export interface PipelineStats {
  p1: LaneStats;
  alert: LaneStats;
  telemetry: LaneStats;
  consumerErrors: number;
  /** Telemetry drains put off because the northbound broker was queueing. */
  telemetryDeferred: number;
  /** Telemetry batches drained beyond a turn's first while the backlog aged (catching up). */
  telemetryCatchUpBatches: number;
}

export interface PipelineOptions {
  p1LaneSize: number;
  alertLaneSize: number;
  telemetryLaneSize: number;
  telemetryBatch: number;
  /**
   * Conflate telemetry only while the oldest queued reading has waited longer than this (ms, monotonic):
   * the consumer is behind. Default 250 ms.
   */
  telemetryMaxLagMs?: number;
  /**
   * Downstream back-pressure: telemetry is drained only while this says yes
   * (the northbound broker is not queueing). P1 and alert entries never wait for it.
   */
  telemetryMayFlow?: () => boolean;
  /** The monotonic clock (ms) that stamps receivedMono; default performance.now. */
  monotonic?: () => number;
  /**
   * The durable store's commitMark (DurableStore): read around each P1/alert entry's handling, so
   * that the committer knows which entries put a record their acknowledgement waits for.
   */
  commitMark?: () => number;
}

export type Consumer = (entry: PipelineEntry) => void;
/**
 * `waits[i]`: entry i's handling put a record its acknowledgement must wait for (commitMark moved);
 * 0: it put none (a door event that changed no alert writes only checkpoints).
 */
export type Committer = (completions: Completion[], count: number, waits: Uint8Array) => void;

class Lane {
  readonly ring: Ring<PipelineEntry>;
  processed = 0;
  refused = 0;
  conflated = 0;
  constructor(size: number, initial = size) {
    this.ring = new Ring(size, () => new PipelineEntry(), initial);
  }
  stats(): LaneStats {
    return {
      capacity: this.ring.capacity,
      occupancy: this.ring.occupancy,
      highWater: this.ring.highWater,
      processed: this.processed,
      refused: this.refused,
      conflated: this.conflated,
    };
  }
}

const commitNow: Committer = (completions, count) => {
  for (let i = 0; i < count; i++) (completions[i] as Completion)(null);
};

export class PriorityPipeline {
  private readonly lanes: [Lane, Lane, Lane];
  private readonly batch: number;
  private readonly maxLagMs: number;
  private readonly telemetryMayFlow: () => boolean;
  private readonly monotonic: () => number;
  /** Telemetry batches drained beyond the first of a turn, catching up. */
  private catchUpBatches = 0;
  /** Monotonic time of the last telemetry offer that found the lane empty: when the current backlog began. */
  private telemetryEmptyAt = 0;
  /** Telemetry drains deferred because downstream was congested. */
  private deferredDrains = 0;
  private ingestSeq = 0;
  private urgentScheduled = false;
  private telemetryScheduled = false;
  private consumerErrors = 0;
  private closed = false;
  /** Completions of the batch being drained; preallocated to the alert lanes' capacity. */
  private readonly completions: Completion[];
  /** Per completion: 1 when its entry moved commitMark (Committer). */
  private readonly waits: Uint8Array;
  private completionCount = 0;
  private readonly commitMark: () => number;
  private readonly spaceListeners: Array<() => void> = [];

  constructor(
    opts: PipelineOptions,
    private readonly consumer: Consumer,
    private readonly commit: Committer = commitNow,
  ) {
    this.lanes = [
      new Lane(opts.p1LaneSize),
      new Lane(opts.alertLaneSize),
      new Lane(opts.telemetryLaneSize, TELEMETRY_LANE_INITIAL),
    ];
    this.batch = opts.telemetryBatch;
    this.maxLagMs = opts.telemetryMaxLagMs ?? DEFAULT_TELEMETRY_MAX_LAG_MS;
    this.telemetryMayFlow = opts.telemetryMayFlow ?? (() => true);
    this.monotonic = opts.monotonic ?? (() => performance.now());
    this.completions = new Array(this.lanes[0].ring.capacity + this.lanes[1].ring.capacity);
    this.waits = new Uint8Array(this.completions.length);
    this.commitMark = opts.commitMark ?? (() => 0);
  }

  /**
   * Telemetry lane capacity: `configured` if given, else the larger of `spanMs` of input at
   * `peakRate` readings/s and the device count (one queued reading per device always fits once
   * conflation is on), within [64, TELEMETRY_LANE_MAX]; rounded up to a power of two.
   */
  static sizeFor(deviceCount: number, spanMs: number, peakRate: number, configured?: number): number {
    if (configured !== undefined) return nextPowerOfTwo(configured);
    const span = Math.ceil((spanMs / 1000) * peakRate);
    return nextPowerOfTwo(Math.min(TELEMETRY_LANE_MAX, Math.max(64, deviceCount, span)));
  }

  /**
   * How many readings a producer that can hold its own backlog off the JS heap should hand over
   * now, at most `max`. In a burst (the backlog began within TELEMETRY_CATCH_UP_WINDOW_MS: a GC
   * pause, a cold start) all of them: the lane absorbs it and catches up as described at
   * catchUp(). In sustained overload only what keeps TELEMETRY_INTAKE_AHEAD readings queued: the
   * rest waits with the producer, which conflates per device when its own bound is reached, and
   * is never decoded on this thread just to be conflated here.
   */
  telemetryIntakeRoom(max: number, nowMono: number): number {
    const occupancy = this.lanes[LANE_TELEMETRY].ring.occupancy;
    if (occupancy === 0 || nowMono - this.telemetryEmptyAt <= TELEMETRY_CATCH_UP_WINDOW_MS) return max;
    return Math.min(max, Math.max(0, TELEMETRY_INTAKE_AHEAD - occupancy));
  }

  /** How long the oldest queued telemetry reading has waited (ms), 0 when none waits. */
  telemetryLagMs(nowMono: number): number {
    const oldest = this.lanes[LANE_TELEMETRY].ring.peekOldest();
    return oldest === null ? 0 : Math.max(0, nowMono - oldest.queuedMono);
  }

  /**
   * Offers a sample. For P1/alert lanes, `done` is called once the entry is
   * committed; on "full" the caller still owns the event and `done` is not called.
   * Telemetry offers take no completion: conflation may replace them.
   */
  offer(
    lane: LaneId,
    device: LaneDevice,
    sample: unknown,
    receivedAt: number,
    receivedMono: number,
    done: Completion | null,
  ): OfferResult {
    const l = this.lanes[lane];
    if (lane === LANE_TELEMETRY) {
      const queued = device.queuedTelemetry;
      // Behind (the oldest reading waited too long) or at the hard cap: conflate, newest kept.
      if (queued !== null && (l.ring.isFull || this.telemetryLagMs(receivedMono) > this.maxLagMs)) {
        queued.sample = sample;
        queued.receivedAt = receivedAt;
        queued.receivedMono = receivedMono;
        queued.ingestSeq = ++this.ingestSeq;
        l.conflated++;
        return "conflated";
      }
    }
    if (lane === LANE_TELEMETRY && l.ring.occupancy === 0) this.telemetryEmptyAt = receivedMono;
    const slot = l.ring.reserve();
    if (slot === null) {
      l.refused++;
      return "full";
    }
    slot.lane = lane;
    slot.device = device;
    slot.sample = sample;
    slot.receivedAt = receivedAt;
    slot.receivedMono = receivedMono;
    slot.ingestSeq = ++this.ingestSeq;
    slot.queuedMono = receivedMono;
    slot.done = lane === LANE_TELEMETRY ? null : done;
    l.ring.commit();
    if (lane === LANE_TELEMETRY) {
      device.queuedTelemetry = slot;
      this.scheduleTelemetry();
    } else {
      if (lane === LANE_P1) device.p1Queued++;
      this.scheduleUrgent();
    }
    return "queued";
  }

  /** Called whenever P1/alert lanes gained space (a refused producer may retry). */
  onSpace(listener: () => void): void {
    this.spaceListeners.push(listener);
  }

  stats(): PipelineStats {
    return {
      p1: this.lanes[LANE_P1].stats(),
      alert: this.lanes[LANE_ALERT].stats(),
      telemetry: this.lanes[LANE_TELEMETRY].stats(),
      consumerErrors: this.consumerErrors,
      telemetryDeferred: this.deferredDrains,
      telemetryCatchUpBatches: this.catchUpBatches,
    };
  }

  /** Entries waiting in all lanes. */
  get backlog(): number {
    return this.lanes[0].ring.occupancy + this.lanes[1].ring.occupancy + this.lanes[2].ring.occupancy;
  }

  /** Drains every lane now, in priority order (shutdown). */
  drainAll(): void {
    this.drainUrgent();
    while (this.lanes[LANE_TELEMETRY].ring.occupancy > 0) {
      this.drainTelemetryBatch();
      this.drainUrgent();
    }
  }

  /** Stops scheduling; entries already queued are left for drainAll(). */
  close(): void {
    this.closed = true;
  }

  private scheduleUrgent(): void {
    if (this.urgentScheduled || this.closed) return;
    this.urgentScheduled = true;
    queueMicrotask(this.runUrgent);
  }

  private scheduleTelemetry(): void {
    if (this.telemetryScheduled || this.closed) return;
    this.telemetryScheduled = true;
    setImmediate(this.runTelemetry);
  }

  private readonly runUrgent = (): void => {
    this.urgentScheduled = false;
    this.drainUrgent();
  };

  private readonly runTelemetry = (): void => {
    this.telemetryScheduled = false;
    this.drainUrgent();
    if (!this.telemetryMayFlow()) {
      // Downstream is queueing: telemetry waits (and conflates) here, in bounded slots, instead of
      // piling up in the broker ahead of the next alert. Look again on the next turn of the loop.
      this.deferredDrains++;
      this.scheduleTelemetry();
      return;
    }
    this.drainTelemetryBatch();
    this.catchUp();
    if (this.lanes[LANE_TELEMETRY].ring.occupancy > 0) this.scheduleTelemetry();
  };

  /**
   * One batch per turn drains `batch` x turns per second. When turns are long, as in a gateway's
   * first second under load (cold code: 25-50 ms turns at 15,000 msg/s, one 64-reading batch
   * each), that is less than the input: the backlog aged past telemetryMaxLag and readings were
   * conflated that the same consumer keeps up with once warm (bench: 400-8,000 readings in the
   * first 0.3-0.6 s of half the points at 10,000-15,000 msg/s, none after). So while the oldest
   * reading is older than TELEMETRY_CATCH_UP_LAG_MS, this turn drains more batches, the urgent
   * lanes between them, within TELEMETRY_CATCH_UP_BUDGET_MS. Not once past telemetryMaxLag:
   * conflation then bounds the backlog to one reading per device, and the turn's time is better
   * spent reading sockets, where the next P1 is. Nor when the lane has not been empty for
   * TELEMETRY_CATCH_UP_WINDOW_MS: that is sustained overload, not a burst.
   */
  private catchUp(): void {
    const telemetry = this.lanes[LANE_TELEMETRY].ring;
    if (telemetry.occupancy === 0) return;
    const start = this.monotonic();
    if (start - this.telemetryEmptyAt > TELEMETRY_CATCH_UP_WINDOW_MS) return;
    let now = start;
    for (;;) {
      const lag = this.telemetryLagMs(now);
      if (lag <= TELEMETRY_CATCH_UP_LAG_MS || lag > this.maxLagMs) return;
      if (now - start >= TELEMETRY_CATCH_UP_BUDGET_MS || !this.telemetryMayFlow()) return;
      this.drainUrgent();
      this.drainTelemetryBatch();
      this.catchUpBatches++;
      if (telemetry.occupancy === 0) return;
      now = this.monotonic();
    }
  }

  private readonly handle = (entry: PipelineEntry): void => {
    // Only the device's newest queued reading is its conflation target.
    if (entry.lane === LANE_TELEMETRY && entry.device?.queuedTelemetry === entry)
      entry.device.queuedTelemetry = null;
    // Out of the P1 lane, whatever the consumer makes of it.
    else if (entry.lane === LANE_P1) (entry.device as LaneDevice).p1Queued--;
    const mark = entry.done === null ? 0 : this.commitMark();
    try {
      this.consumer(entry);
    } catch {
      // The consumer logs its own errors; one bad entry must not stop the lane.
      this.consumerErrors++;
    }
    if (entry.done !== null) {
      this.waits[this.completionCount] = this.commitMark() === mark ? 0 : 1;
      this.completions[this.completionCount++] = entry.done;
      entry.done = null;
    }
    entry.sample = null;
  };

  private drainUrgent(): void {
    const p1 = this.lanes[LANE_P1];
    const alert = this.lanes[LANE_ALERT];
    let freed = 0;
    // P1 first, always; an alert entry is taken only when no P1 waits.
    while (p1.ring.occupancy > 0 || alert.ring.occupancy > 0) {
      if (p1.ring.occupancy > 0) {
        const n = p1.ring.drain(this.handle);
        p1.processed += n;
        freed += n;
      } else {
        const n = alert.ring.drain(this.handle);
        alert.processed += n;
        freed += n;
      }
    }
    this.flushCompletions();
    if (freed > 0) for (const listener of this.spaceListeners) listener();
  }

  private drainTelemetryBatch(): void {
    const t = this.lanes[LANE_TELEMETRY];
    t.processed += t.ring.drain(this.handle, this.batch);
  }

  private flushCompletions(): void {
    const count = this.completionCount;
    if (count === 0) return;
    this.completionCount = 0;
    this.commit(this.completions, count, this.waits);
    this.completions.fill(undefined as unknown as Completion, 0, count);
  }
}
