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

export interface MisbehavingEvents {
  /** `active` true: raise DEVICE_MISBEHAVING; false: clear it. */
  misbehaving(deviceId: string, active: boolean, dropped: number): void;
}

interface DeviceState {
  bucket: TokenBucket;
  /** Start of the current run of drops (null: none). */
  firstDrop: number | null;
  lastDrop: number;
  /** Dropped in the current run. */
  dropped: number;
  raised: boolean;
}

export class DeviceRateLimiter {
  private readonly devices = new Map<string, DeviceState>();
  dropped = 0;

  constructor(
    private cfg: DeviceRateConfig,
    private readonly events: MisbehavingEvents,
  ) {}

  /** Reload: new rates apply at once (buckets start full); a raised DEVICE_MISBEHAVING stays until it clears. */
  configure(cfg: DeviceRateConfig, now: number, modelOf: (deviceId: string) => string | undefined): void {
    this.cfg = cfg;
    for (const [id, s] of this.devices) {
      const model = modelOf(id);
      const rate = model === undefined ? undefined : this.rateOf(model);
      if (rate) s.bucket = new TokenBucket(rate.perSecond, rate.burst, now);
      else this.devices.delete(id);
    }
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
      const rate = this.rateOf(model);
      if (!rate) return true;
      s = {
        bucket: new TokenBucket(rate.perSecond, rate.burst, now),
        firstDrop: null,
        lastDrop: 0,
        dropped: 0,
        raised: false,
      };
      this.devices.set(deviceId, s);
    }
    if (s.bucket.take(now)) {
      this.settle(deviceId, s, now);
      return true;
    }
    this.dropped++;
    // A pause in the drops longer than the raise delay ends the run: occasional bursts are not misbehaviour.
    if (s.firstDrop === null || (!s.raised && now - s.lastDrop > this.cfg.misbehavingAfter)) {
      s.firstDrop = now;
      s.dropped = 0;
    }
    s.lastDrop = now;
    s.dropped++;
    if (!s.raised && now - s.firstDrop >= this.cfg.misbehavingAfter) {
      s.raised = true;
      this.events.misbehaving(deviceId, true, s.dropped);
    }
    return false;
  }

  /** Clears DEVICE_MISBEHAVING of devices quiet for clearAfter; call periodically (and it is on each admitted message). */
  sweep(now: number): void {
    for (const [id, s] of this.devices) this.settle(id, s, now);
  }

  /** Forget a removed device. */
  forget(deviceId: string): void {
    this.devices.delete(deviceId);
  }

  private settle(deviceId: string, s: DeviceState, now: number): void {
    if (s.firstDrop === null || now - s.lastDrop < this.cfg.clearAfter) return;
    const wasRaised = s.raised;
    s.firstDrop = null;
    s.raised = false;
    s.dropped = 0;
    if (wasRaised) this.events.misbehaving(deviceId, false, 0);
  }
}
