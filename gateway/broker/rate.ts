/**
 * Message rate per device: a token bucket per device, sized from the
 * datasheet's expected traffic, so one device (a stolen credential, a
 * firmware gone wrong) cannot take the pipeline's time from the others.
 *
 * - A message beyond the rate is dropped and counted (`rate-limited`); it is
 *   acknowledged, like any refused uplink, so the device does not re-send it.
 * - A message that would raise or carry a P1 alert (press, long press, fall)
 *   is never dropped and takes no token: the limit may cost a heartbeat or a
 *   door state, never a resident's call.
 * - A device still being dropped `misbehavingAfter` after its first drop is
 *   DEVICE_MISBEHAVING (P3); it clears once nothing was dropped for `clearAfter`.
 *
 * The same watch, on a run of its own, covers the device's own limit that a P1 does meet: its
 * share of the P1 lane (gateway/ingest/mqtt-ingest.ts MAX_P1_HELD_PER_DEVICE), past which its
 * messages are left with it (not acknowledged, sent again). A device still over its share `misbehavingAfter`
 * after the first time is DEVICE_MISBEHAVING too: one alert per device, whose live causes say which
 * limits it keeps hitting (a cause ends on its own after `clearAfter` without a hit; the alert
 * clears when none is left). So is the third such limit, its share of the alert lane's parking
 * (MAX_ALERT_PARKED_PER_DEVICE): without it a device whose model has no rate (a GD-2, a declared
 * profile) flooding alert-lane messages was bounded but never reported.
 */
import { TokenBucket } from "./token-bucket.js";

export interface Rate {
  perSecond: number;
  burst: number;
}

/**
 * Defaults per model, from the datasheets:
 * - EC-200: a heartbeat every 300 s, a few events a day; a base station that
 *   lost its uplink re-sends its backlog at once. 1 msg/s sustained is 300x
 *   the heartbeat; a burst of 120 covers a backlog of several hours of events.
 * - DS-10: a heartbeat an hour, state changes a few times a day; a bouncing
 *   contact sends 3 within 200 ms. Same allowance as the EC-200.
 */
export const DEFAULT_RATES: Readonly<Record<string, Rate>> = {
  ec200: { perSecond: 1, burst: 120 },
  ds10: { perSecond: 1, burst: 120 },
};

export interface DeviceRateConfig {
  enabled: boolean;
  models: Record<string, Rate>;
  misbehavingAfter: number;
  clearAfter: number;
}

/** Messages beyond the device's rate, dropped (index of the device's runs). */
export const OVER_RATE = 0;
/** Messages beyond the device's share of the P1 lane, left with the device to send again. */
export const OVER_P1_SHARE = 1;
/** Alert-lane messages beyond the device's share of the alert lane's parking, left with it the same way. */
export const OVER_ALERT_SHARE = 2;
export type Overrun = typeof OVER_RATE | typeof OVER_P1_SHARE | typeof OVER_ALERT_SHARE;

export interface Misbehaviour {
  /** The limits the device keeps hitting, OVER_RATE first; empty: none any more. */
  over: Overrun[];
  /** Dropped over its rate in the current run; 0 unless `over` has OVER_RATE. */
  dropped: number;
  /** Left with the device over its P1 share in the current run; 0 unless `over` has OVER_P1_SHARE. */
  deferred: number;
  /** Left with the device over its alert-lane share in the current run; 0 unless `over` has OVER_ALERT_SHARE. */
  deferredAlerts: number;
}

export interface MisbehavingEvents {
  /**
   * The device's misbehaviour changed (a limit joined or left `over`): raise DEVICE_MISBEHAVING,
   * or describe it anew, with `m`; clear it when `m.over` is empty.
   */
  misbehaving(deviceId: string, m: Misbehaviour): void;
}

/** One device's run of hits of one limit. */
class Run {
  /** Start of the current run (null: none). */
  first: number | null = null;
  last = 0;
  /** Hits in the current run. */
  count = 0;
  /** Went on for misbehavingAfter: a live cause of DEVICE_MISBEHAVING until clearAfter without a hit. */
  raised = false;
}

interface DeviceState {
  /** Null: its model has no rate (only its P1 share is watched). */
  bucket: TokenBucket | null;
  /**
   * Index OVER_RATE, OVER_P1_SHARE, OVER_ALERT_SHARE; null until the device's first hit: every
   * device that sends has a state (its bucket), few ever hit a limit, and two runs each were ~170
   * bytes a connection (bench:connections, 10,000 devices).
   */
  runs: readonly [Run, Run, Run] | null;
}

export class DeviceRateLimiter {
  /**
   * Devices that were limited or hit a limit since start (bounded by the devices configured: a
   * reload forgets a removed device's entry; limits apply at start, docs/reload.md).
   */
  private readonly devices = new Map<string, DeviceState>();
  dropped = 0;

  constructor(
    private readonly cfg: DeviceRateConfig,
    private readonly events: MisbehavingEvents,
  ) {}

  /**
   * A device a reload removed or replaced (gateway/reload.ts): kept, a device of another model added
   * under its id took over its bucket (its first messages refused when the old one had spent it) and
   * its raised runs (its own misbehaviour not reported). Its DEVICE_MISBEHAVING closed with it.
   */
  forget(deviceId: string): void {
    this.devices.delete(deviceId);
  }

  rateOf(model: string): Rate | undefined {
    return this.cfg.models[model] ?? DEFAULT_RATES[model];
  }

  /**
   * May this message of the device go on? `p1` messages always may.
   * `now` in ms (monotonic or wall, as long as it is the same clock throughout).
   */
  admit(deviceId: string, model: string, p1: boolean, now: number): boolean {
    if (!this.cfg.enabled || p1) return true;
    let s = this.devices.get(deviceId);
    if (!s) {
      if (!this.rateOf(model)) return true;
      s = this.stateFor(deviceId, model, now);
    }
    if (s.bucket === null) return true;
    if (s.bucket.take(now)) {
      this.settle(deviceId, s, now);
      return true;
    }
    this.dropped++;
    this.hit(deviceId, s, OVER_RATE, now);
    return false;
  }

  /**
   * A message of the device left with it because it holds its whole share of the P1 lane. Watched
   * whatever `enabled` says: that turns the rate off, not the share, which nothing else reports.
   */
  overP1Share(deviceId: string, model: string, now: number): void {
    this.hit(deviceId, this.devices.get(deviceId) ?? this.stateFor(deviceId, model, now), OVER_P1_SHARE, now);
  }

  /**
   * An alert-lane message of the device left with it because it has its whole share of the alert
   * lane's parking waiting (gateway/ingest/mqtt-ingest.ts MAX_ALERT_PARKED_PER_DEVICE). Watched
   * whatever `enabled` says and whatever its model, as the P1 share is.
   */
  overAlertShare(deviceId: string, model: string, now: number): void {
    this.hit(
      deviceId,
      this.devices.get(deviceId) ?? this.stateFor(deviceId, model, now),
      OVER_ALERT_SHARE,
      now,
    );
  }

  /** Clears DEVICE_MISBEHAVING of devices quiet for clearAfter; call periodically (and it is on each admitted message). */
  sweep(now: number): void {
    for (const [id, s] of this.devices) this.settle(id, s, now);
  }

  private bucketFor(model: string, now: number): TokenBucket | null {
    const rate = this.rateOf(model);
    return rate ? new TokenBucket(rate.perSecond, rate.burst, now) : null;
  }

  private stateFor(deviceId: string, model: string, now: number): DeviceState {
    const s: DeviceState = { bucket: this.bucketFor(model, now), runs: null };
    this.devices.set(deviceId, s);
    return s;
  }

  private hit(deviceId: string, s: DeviceState, kind: Overrun, now: number): void {
    s.runs ??= [new Run(), new Run(), new Run()];
    const run = s.runs[kind];
    // A pause in the hits longer than the raise delay ends the run: occasional bursts are not misbehaviour.
    if (run.first === null || (!run.raised && now - run.last > this.cfg.misbehavingAfter)) {
      run.first = now;
      run.count = 0;
    }
    run.last = now;
    run.count++;
    if (!run.raised && now - run.first >= this.cfg.misbehavingAfter) {
      run.raised = true;
      this.report(deviceId, s);
    }
  }

  private settle(deviceId: string, s: DeviceState, now: number): void {
    if (s.runs === null) return;
    let changed = false;
    for (const run of s.runs) {
      if (run.first === null || now - run.last < this.cfg.clearAfter) continue;
      changed ||= run.raised;
      run.first = null;
      run.raised = false;
      run.count = 0;
    }
    if (changed) this.report(deviceId, s);
  }

  /** The device's live causes (only on a change: a raise, a cause that joins or ends, the clear). */
  private report(deviceId: string, s: DeviceState): void {
    if (s.runs === null) return;
    const [rate, share, alertShare] = s.runs;
    const over: Overrun[] = [];
    if (rate.raised) over.push(OVER_RATE);
    if (share.raised) over.push(OVER_P1_SHARE);
    if (alertShare.raised) over.push(OVER_ALERT_SHARE);
    this.events.misbehaving(deviceId, {
      over,
      dropped: rate.raised ? rate.count : 0,
      deferred: share.raised ? share.count : 0,
      deferredAlerts: alertShare.raised ? alertShare.count : 0,
    });
  }
}
