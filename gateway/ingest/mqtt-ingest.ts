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
 * when the entry is committed. If its lane is full the sample is parked here,
 * in that lane's parking: one per lane (P1, alert), each FIFO and bounded
 * (`maxParked`, default 4,096 each; at most MAX_ALERT_PARKED_PER_DEVICE alert
 * samples of one device); past that bound the sample is refused
 * (LanesFullError: the device's connection is closed without a PUBACK, so the
 * device keeps the message and sends it again). A sample waits only behind its
 * own lane's parking: a P2 storm parked in the alert lane never delays or
 * refuses a P1 (it overtakes, as the lanes do by design), and when lanes gain
 * space the P1 parking is drained first, the alert parking independently.
 *
 * One device holds at most MAX_P1_HELD_PER_DEVICE samples in the P1 lane and the P1 parking
 * together (the pipeline counts its entries in the lane, `p1Queued`; its parked ones are listed
 * here): its further P1 samples, and alert samples that would wait behind them, are left with the
 * device like a refused one (counted `p1-device-limit`), while every other device's P1 is still
 * taken in at once. The rate limit lets every P1 through on purpose (a fire panel in alarm must
 * not be rate-limited away); this bound is what keeps one device in a P1 condition, chattering or
 * misbehaving, from filling the P1 lane and its parking ahead of other devices' presses. A device
 * still over its share `limits.deviceRate.misbehavingAfter` after the first time is
 * DEVICE_MISBEHAVING, like one over its rate (`overP1Share`, gateway/device-rate.ts); so is one
 * still over its share of the alert parking, MAX_ALERT_PARKED_PER_DEVICE (`overAlertShare`).
 *
 * One device's parked samples stay in order, in one parking (a GD-2's or a
 * declared profile's rules read state from every message: an older heartbeat
 * handled after a newer alarm would clear it). A P1 sample of a device that has
 * samples in the alert parking takes them along, ahead of it, into the P1 lane
 * (no other device's sample is ahead of it); an alert sample of a device that
 * has samples in the P1 parking waits behind them there.
 *
 * A re-send (same seq) of an alert sample whose original is still waiting for
 * its commit (in a lane, parked, or in the group sync) is acknowledged only
 * together with the original: acknowledging it at once would tell the device
 * the alert is kept before it is. Bounded by what waits for a commit (lanes +
 * parking) and, per connection, by the PUBACK queue.
 */

import { BoundedFifo, type Clock, LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../../core/index.js";
import { isRejection } from "../../devices/index.js";
import { decodePayload } from "../../protocols/index.js";
import type { RateLimitedLog } from "../log.js";
import type { Completion, PriorityPipeline } from "../pipeline/lanes.js";
import type { DeviceEntry } from "../registry.js";
import type { Counters, RejectReason } from "../stats.js";

interface Parked {
  /** The lane it is offered to: its own, or P1 when it goes along with its device's P1 (above). */
  lane: ParkingLane;
  device: DeviceEntry;
  sample: unknown;
  seq: number;
  receivedAt: number;
  receivedMono: number;
  done: Completion;
  /** Taken along into the P1 parking: the copy left in the alert parking is skipped. */
  moved: boolean;
  /** The lane its content asked for (a sample taken along keeps LANE_ALERT here). */
  origin: ParkingLane;
}

/**
 * Alert (non-P1) samples one device may have parked. A device's P1 takes its parked alert samples
 * along into the P1 parking (above), so without a cap one device with thousands of unacknowledged
 * messages (`limits.maxInflight` is 4,096 by default, the parking's size) could fill the P1
 * parking and get other devices' presses refused. A well-behaved device has a few at most.
 */
export const MAX_ALERT_PARKED_PER_DEVICE = 64;

/**
 * Samples one device may hold in the P1 lane and the P1 parking together: its own P1 samples and
 * the alert samples waiting behind them there (a P1 may take its device's parked alert samples
 * along past it, up to MAX_ALERT_PARKED_PER_DEVICE: they were taken in before it).
 * Far above what an honest device holds: a pendant sends a few presses or falls in a call, a GD-2
 * in a leak an alarm, a valve message and a heartbeat a minute, and a QoS 1 client has at most its
 * in-flight window unacknowledged (many client libraries cap it at 10 to 20); only a device
 * flooding P1, or a gateway far behind, reaches it. Small against the P1 lane (256 by default):
 * one device, even with its take-along, never fills it alone; it takes 8 devices at the bound to
 * fill it and 136 to fill its parking (4,096) as well, and another device's press waits behind at
 * most this many of each.
 */
export const MAX_P1_HELD_PER_DEVICE = 32;
const P1_SHARE_USED = `${MAX_P1_HELD_PER_DEVICE} of its messages already in the P1 lane and its parking`;

/** The lanes that park (telemetry is never parked: it has no PUBACK to withhold). */
type ParkingLane = typeof LANE_P1 | typeof LANE_ALERT;

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
  /** Per lane (index LANE_P1, LANE_ALERT), samples waiting for its space, oldest first; refused past `maxParked`. */
  private readonly parked: readonly [BoundedFifo<Parked>, BoundedFifo<Parked>];
  /** Per device with samples parked: them, oldest first, and the one parking they all wait in. */
  private readonly parkedOf = new Map<DeviceEntry, { lane: ParkingLane; entries: Parked[] }>();
  /** Copies left in the alert parking by samples taken along to P1 (not counted as parked). */
  private movedCount = 0;
  accepted = 0;
  /**
   * Per-device message rate (gateway/broker/rate.ts): false drops the message.
   * Asked after decoding, so it knows whether the message bears a P1 (never dropped).
   */
  rateGate: ((device: DeviceEntry, p1: boolean) => boolean) | null = null;
  /**
   * Told of each message left with its device over the device's P1 share (the rate limiter's
   * DEVICE_MISBEHAVING watch, gateway/device-rate.ts): the rate lets every P1 through, the share does not.
   */
  overP1Share: ((device: DeviceEntry) => void) | null = null;
  /**
   * Told of each alert-lane message left with its device over its share of the parking
   * (MAX_ALERT_PARKED_PER_DEVICE): the same watch, so a device whose model has no rate (a GD-2, a
   * declared profile) flooding the alert lane is reported too, not only bounded.
   */
  overAlertShare: ((device: DeviceEntry) => void) | null = null;

  constructor(
    private readonly pipeline: PriorityPipeline,
    private readonly counters: Counters,
    private readonly log: RateLimitedLog,
    private readonly clock: Clock,
    maxParked = 4096,
  ) {
    this.parked = [new BoundedFifo(maxParked), new BoundedFifo(maxParked)];
    pipeline.onSpace(this.retryParked);
  }

  /** Samples parked, both lanes together (the `linli_ingest_parked` gauge). */
  get parkedCount(): number {
    return this.parked[LANE_P1].length + this.parked[LANE_ALERT].length - this.movedCount;
  }

  /** Samples parked in one lane's parking. */
  parkedIn(lane: ParkingLane): number {
    return this.parked[lane].length - (lane === LANE_ALERT ? this.movedCount : 0);
  }

  /** Slots of the parkings' storage (tests: it stays bounded under sustained overload). */
  get parkedStorageSlots(): number {
    return this.parked[LANE_P1].storageSlots + this.parked[LANE_ALERT].storageSlots;
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
    // Duplicates first: a re-send is no new reading, and choosing a lane moves a declared
    // threshold's memory of where the reading was (a re-sent old clear would unmark it).
    const seq = profile.seq(sample);
    if (device.dedup.checkAndRecord(seq)) {
      // A re-send of something already taken in (datasheet: repeated seq until PUBACK).
      this.counters.reject(device.model, "duplicate-seq");
      const waiting = this.uncommitted.get(device)?.get(seq);
      if (waiting) waiting.push(done);
      else done(null);
      return;
    }
    // The device's rule state and settings: a threshold's limit and its way back are per device.
    const lane = profile.lane(sample, device.ruleState, device.settings);
    if (this.rateGate !== null && !this.rateGate(device, lane === LANE_P1)) {
      // Acknowledged like any refused message: the device must not re-send what it sends too fast.
      if (this.refuse(device, "rate-limited", done))
        this.logRefusal(device, "rate-limited", "over the device's message rate");
      return;
    }
    const mine = lane === LANE_TELEMETRY ? undefined : this.parkedOf.get(device);
    // Into the P1 lane or its parking (a P1, or an alert sample behind its device's parked P1s):
    // not past the device's share, so that the others' presses never wait behind its flood.
    if (
      (lane === LANE_P1 || mine?.lane === LANE_P1) &&
      device.p1Queued + (mine?.lane === LANE_P1 ? mine.entries.length : 0) >= MAX_P1_HELD_PER_DEVICE
    ) {
      this.overP1Share?.(device);
      this.deferToDevice(device, seq, done, "p1-device-limit", P1_SHARE_USED);
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
    // Nothing waits in its way (the usual case): straight into the lane, no Parked object.
    if (
      mine === undefined &&
      this.parkedIn(lane) === 0 &&
      this.pipeline.offer(lane, device, sample, now, mono, committed) !== "full"
    )
      return;
    const p: Parked = {
      lane,
      device,
      sample,
      seq,
      receivedAt: now,
      receivedMono: mono,
      done: committed,
      moved: false,
      origin: lane,
    };
    if (mine === undefined) this.park(p);
    else if (mine.lane === LANE_ALERT && lane === LANE_P1) {
      // The P1 must not wait behind other devices, nor overtake its own device's older samples.
      this.takeAlongToP1(device, mine);
      this.enter(p, LANE_P1);
    } else this.enter(p, mine.lane);
  }

  /** Into `lane`, or its parking: a lane's parked samples go first, a newer one must not overtake them. */
  private enter(p: Parked, lane: ParkingLane): void {
    p.lane = lane;
    if (
      this.parkedIn(lane) === 0 &&
      this.pipeline.offer(lane, p.device, p.sample, p.receivedAt, p.receivedMono, p.done) !== "full"
    )
      return;
    this.park(p);
  }

  /**
   * A device's samples parked in the alert parking go, in order, to P1, ahead of its P1 sample.
   * One of them left with the device (the P1 parking full; the per-device cap cannot apply: at most
   * MAX_ALERT_PARKED_PER_DEVICE move into an empty list) never lets the P1 overtake it: nothing
   * frees the lane or the parking until this call returns, so the P1 that follows finds them as full
   * and is left with the device too. That order matters: the consumer's ctx.stale/superseded
   * cannot repair it, since the re-sent older message is a new receipt (mqtt-ingest.test.ts).
   */
  private takeAlongToP1(device: DeviceEntry, mine: { lane: ParkingLane; entries: Parked[] }): void {
    const entries = mine.entries.splice(0);
    this.parkedOf.delete(device);
    for (const old of entries) {
      old.moved = true;
      this.movedCount++;
      this.enter({ ...old, moved: false }, LANE_P1);
    }
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
    const mine = this.parkedOf.get(p.device);
    if (p.origin === LANE_ALERT && mine !== undefined && mine.entries.length >= MAX_ALERT_PARKED_PER_DEVICE) {
      this.overAlertShare?.(p.device);
      this.deferParked(p, `${mine.entries.length} of its messages already waiting for lane space`);
      return;
    }
    if (!this.parked[p.lane].isFull() || (p.lane === LANE_ALERT && this.dropMoved())) {
      this.parked[p.lane].push(p);
      if (mine === undefined) this.parkedOf.set(p.device, { lane: p.lane, entries: [p] });
      else mine.entries.push(p);
      return;
    }
    this.deferParked(
      p,
      p.lane === LANE_P1 ? "P1 lane and its parking full" : "alert lane and its parking full",
    );
  }

  private deferParked(p: Parked, why: string): void {
    this.deferToDevice(p.device, p.seq, p.done, "deferred-to-device", why);
  }

  /**
   * Refused, PUBACK withheld: the device keeps the message and sends it again (its connection is
   * closed, so nothing it sent after this one is taken in before the re-send: order kept).
   */
  private deferToDevice(
    device: DeviceEntry,
    seq: number,
    done: Completion,
    reason: "deferred-to-device" | "p1-device-limit",
    why: string,
  ): void {
    this.counters.reject(device.model, reason);
    device.dedup.forget(seq);
    if (this.log.allows(device.id, reason)) this.log.warn(device.id, reason, { deviceId: device.id }, why);
    done(new LanesFullError());
  }

  /** Frees the alert parking's slots held by copies of samples taken along to P1; false if none. */
  private dropMoved(): boolean {
    if (this.movedCount === 0) return false;
    const queue = this.parked[LANE_ALERT];
    for (let n = queue.length; n > 0; n--) {
      const p = queue.shift() as Parked;
      if (!p.moved) queue.push(p);
    }
    this.movedCount = 0;
    return true;
  }

  /** Whenever the lanes gain space: the P1 parking first, then the alert parking, each FIFO on its own. */
  private readonly retryParked = (): void => {
    this.retryLane(LANE_P1);
    this.retryLane(LANE_ALERT);
  };

  private retryLane(lane: ParkingLane): void {
    const queue = this.parked[lane];
    for (let p = queue.peek(); p !== undefined; p = queue.peek()) {
      if (p.moved) {
        queue.shift();
        this.movedCount--;
        continue;
      }
      if (this.pipeline.offer(lane, p.device, p.sample, p.receivedAt, p.receivedMono, p.done) === "full")
        break;
      queue.shift();
      // A device's parked samples are all in this parking, oldest first: p is the first of them.
      const mine = this.parkedOf.get(p.device);
      if (mine !== undefined) {
        mine.entries.shift();
        if (mine.entries.length === 0) this.parkedOf.delete(p.device);
      }
    }
  }

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
