/**
 * Device uplink, from an MQTT PUBLISH to a pipeline entry:
 * size -> encoding (JSON/CBOR) -> profile validation -> duplicate seq -> lane.
 *
 * Every refusal is counted by model and reason and logged at most once a
 * minute per device and reason. Refused messages are still acknowledged:
 * re-sending a malformed message would not make it valid.
 *
 * PUBACK timing is the durability seam: for P1/alert samples the broker's
 * callback (which sends the PUBACK) is handed to the pipeline and called only
 * when the entry is committed. If the alert lanes are full the sample is
 * parked here (bounded); past that bound the device's connection is closed
 * without a PUBACK, so the device keeps the message and sends it again.
 *
 * A re-send (same seq) of an alert sample whose original is still waiting for
 * its commit (in a lane, parked, or in the group sync) is acknowledged only
 * together with the original: acknowledging it at once would tell the device
 * the alert is kept before it is. Bounded by what waits for a commit (lanes +
 * parking) and, per connection, by the PUBACK queue.
 */

import { BoundedFifo, type Clock, LANE_P1, LANE_TELEMETRY, type LaneId } from "../../core/index.js";
import { isRejection } from "../../devices/index.js";
import { decodePayload } from "../../protocols/index.js";
import type { RateLimitedLog } from "../log.js";
import type { Completion, PriorityPipeline } from "../pipeline/lanes.js";
import type { DeviceEntry } from "../registry.js";
import type { Counters, RejectReason } from "../stats.js";

interface Parked {
  lane: LaneId;
  device: DeviceEntry;
  sample: unknown;
  seq: number;
  receivedAt: number;
  receivedMono: number;
  done: Completion;
}

/** For a profile without droppedFields: one shared empty list, not one per message. */
const NO_DROPPED_FIELDS: readonly never[] = Object.freeze([]);

export class LanesFullError extends Error {
  constructor() {
    super("alert lanes full: message left with the device for re-sending");
  }
}

export class MqttIngest {
  /** Per device, the seqs of alert samples not yet committed -> re-sends waiting for them. */
  private readonly uncommitted = new Map<DeviceEntry, Map<number, Completion[]>>();
  /** Alert samples waiting for lane space, oldest first; refused past `maxParked`. */
  private readonly parked: BoundedFifo<Parked>;
  accepted = 0;
  /**
   * Per-device message rate (gateway/broker/rate.ts): false drops the message.
   * Asked after decoding, so it knows whether the message bears a P1 (never dropped).
   */
  rateGate: ((device: DeviceEntry, p1: boolean) => boolean) | null = null;

  constructor(
    private readonly pipeline: PriorityPipeline,
    private readonly counters: Counters,
    private readonly log: RateLimitedLog,
    private readonly clock: Clock,
    maxParked = 4096,
  ) {
    this.parked = new BoundedFifo(maxParked);
    pipeline.onSpace(this.retryParked);
  }

  get parkedCount(): number {
    return this.parked.length;
  }

  /** Slots of the parking's storage (tests: it stays bounded under sustained overload). */
  get parkedStorageSlots(): number {
    return this.parked.storageSlots;
  }

  uplink(device: DeviceEntry, payload: Buffer, contentType: string | undefined, done: Completion): void {
    const profile = device.profile;
    // Only MQTT devices hold broker credentials (AccessPolicy), so only they reach here.
    if (profile.transport !== "mqtt") throw new Error(`${device.id} is not an MQTT device`);
    this.counters.message(device.model);
    // The log line (and its detail) is built only when the rate-limited log will write it:
    // a flood of bad input is nearly all suppressed lines.
    if (payload.length > profile.maxPayloadBytes) {
      if (this.refuse(device, "oversized", done))
        this.logRefusal(device, "oversized", `${payload.length} bytes > ${profile.maxPayloadBytes}`);
      return;
    }
    const decoded = decodePayload(payload, contentType);
    if (!decoded.ok) {
      if (this.refuse(device, decoded.reason, done)) this.logRefusal(device, decoded.reason, decoded.detail);
      return;
    }
    if (profile.jsonOnly === true && decoded.encoding !== "json") {
      if (this.refuse(device, "unknown-encoding", done))
        this.logRefusal(device, "unknown-encoding", `the ${profile.label} speaks JSON only`);
      return;
    }
    const sample = profile.parse(decoded.value);
    if (isRejection(sample)) {
      const reason = sample.reason as RejectReason;
      if (this.refuse(device, reason, done)) this.logRefusal(device, reason, sample.detail);
      return;
    }
    for (const d of profile.droppedFields?.(sample) ?? NO_DROPPED_FIELDS) {
      this.counters.reject(device.model, d.reason);
      if (this.log.allows(device.id, d.reason))
        this.log.warn(
          device.id,
          d.reason,
          { deviceId: device.id, model: device.model, reason: d.reason, field: d.field, detail: d.detail },
          "uplink field dropped, message taken in",
        );
    }
    const lane = profile.lane(sample);
    if (this.rateGate !== null && !this.rateGate(device, lane === LANE_P1)) {
      // Acknowledged like any refused message: the device must not re-send what it sends too fast.
      if (this.refuse(device, "rate-limited", done))
        this.logRefusal(device, "rate-limited", "over the device's message rate");
      return;
    }
    const seq = profile.seq(sample);
    if (device.dedup.checkAndRecord(seq)) {
      // A re-send of something already taken in (datasheet: repeated seq until PUBACK).
      this.counters.reject(device.model, "duplicate-seq");
      const waiting = this.uncommitted.get(device)?.get(seq);
      if (waiting) waiting.push(done);
      else done(null);
      return;
    }
    this.accepted++;
    const now = this.clock.now();
    const mono = this.clock.monotonic();
    if (lane === LANE_TELEMETRY) {
      this.pipeline.offer(lane, device, sample, now, mono, null);
      done(null);
      return;
    }
    const committed = this.untilCommitted(device, seq, done);
    // Parked samples go first: a newer one must not overtake them into the lane.
    if (this.parkedCount === 0 && this.pipeline.offer(lane, device, sample, now, mono, committed) !== "full")
      return;
    this.park({ lane, device, sample, seq, receivedAt: now, receivedMono: mono, done: committed });
  }

  /** `done` wrapped so that re-sends arriving meanwhile are answered with the original. */
  private untilCommitted(device: DeviceEntry, seq: number, done: Completion): Completion {
    let seqs = this.uncommitted.get(device);
    if (seqs === undefined) {
      seqs = new Map();
      this.uncommitted.set(device, seqs);
    }
    const resends: Completion[] = [];
    seqs.set(seq, resends);
    return (err) => {
      const m = this.uncommitted.get(device);
      if (m?.get(seq) === resends) {
        m.delete(seq);
        if (m.size === 0) this.uncommitted.delete(device);
      }
      done(err);
      for (const r of resends) r(err);
    };
  }

  private park(p: Parked): void {
    if (this.parked.push(p)) return;
    this.counters.reject(p.device.model, "deferred-to-device");
    p.device.dedup.forget(p.seq);
    if (this.log.allows(p.device.id, "deferred-to-device"))
      this.log.warn(
        p.device.id,
        "deferred-to-device",
        { deviceId: p.device.id },
        "alert lanes and parking full",
      );
    p.done(new LanesFullError());
  }

  /** FIFO retry of parked samples whenever the alert lanes gain space. */
  private readonly retryParked = (): void => {
    for (let p = this.parked.peek(); p !== undefined; p = this.parked.peek()) {
      if (this.pipeline.offer(p.lane, p.device, p.sample, p.receivedAt, p.receivedMono, p.done) === "full")
        break;
      this.parked.shift();
    }
  };

  /** Counts and acknowledges a refused message; true when its log line is to be written (logRefusal). */
  private refuse(device: DeviceEntry, reason: RejectReason, done: Completion): boolean {
    this.counters.reject(device.model, reason);
    done(null);
    return this.log.allows(device.id, reason);
  }

  private logRefusal(device: DeviceEntry, reason: RejectReason, detail: string): void {
    this.log.warn(
      device.id,
      reason,
      { deviceId: device.id, model: device.model, reason, detail },
      "uplink refused",
    );
  }
}
