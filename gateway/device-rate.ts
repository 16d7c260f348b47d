/**
 * The per-device message rate as the gateway runs it: the limiter (broker/rate.ts, which knows
 * rates and drops, not alerts) with the DEVICE_MISBEHAVING alert it raises and clears, the
 * ingest's hooks into it (its rate, and its P1 share's refusals), and the sweep that clears the
 * alert for a device that went quiet.
 */

import type { Clock } from "../core/index.js";
import type { AlertEngine } from "./alerts/engine.js";
import { type DeviceRateConfig, DeviceRateLimiter, type Overrun } from "./broker/rate.js";
import type { MqttIngest } from "./ingest/mqtt-ingest.js";
import type { Logger } from "./log.js";
import type { Registry } from "./registry.js";

/**
 * DEVICE_MISBEHAVING's causes (docs/topics.md), by limit (index OVER_RATE, OVER_P1_SHARE,
 * OVER_ALERT_SHARE). The
 * catalogues (content/messages.*.ts) word them for the operators.
 */
export const MISBEHAVING_CAUSES = [
  "over its message rate",
  "over its share of the P1 lane",
  "over its share of the alert lane",
] as const satisfies Readonly<Record<Overrun, string>>;

/** The limiter, with its misbehaving devices' alert wired in. */
export function deviceRateLimiter(
  cfg: DeviceRateConfig,
  p: { registry: Registry; engine: Pick<AlertEngine, "contextFor">; log: Logger },
): DeviceRateLimiter {
  const limiter: DeviceRateLimiter = new DeviceRateLimiter(cfg, {
    // DEVICE_MISBEHAVING (P3, docs/topics.md): one alert per device whatever limits it keeps
    // hitting; `causes` names the live ones, and the counts of a limit no longer hit read 0.
    misbehaving(deviceId, m) {
      const device = p.registry.devices.get(deviceId);
      if (!device) return;
      const causes = m.over.map((k) => MISBEHAVING_CAUSES[k]);
      const active = causes.length > 0;
      if (active)
        p.log.warn(
          { deviceId, causes, dropped: m.dropped, deferred: m.deferred, deferredAlerts: m.deferredAlerts },
          "device keeps hitting its limits: DEVICE_MISBEHAVING",
        );
      const rate = limiter.rateOf(device.model);
      p.engine.contextFor(device).condition("DEVICE_MISBEHAVING", active, {
        priority: 3,
        causes,
        detail: {
          dropped: m.dropped,
          perSecond: rate?.perSecond ?? 0,
          burst: rate?.burst ?? 0,
          deferred: m.deferred,
          deferredAlerts: m.deferredAlerts,
        },
      });
    },
  });
  return limiter;
}

/**
 * The ingest's hooks into the limiter: each message through its rate, and each message left with
 * its device over the device's P1 share or alert-lane share counted against the device. Both paths (the embedded
 * broker and the device listener's worker) hand their uplinks to this one ingest.
 */
export function gateIngest(ingest: MqttIngest, limiter: DeviceRateLimiter, clock: Clock): void {
  ingest.rateGate = (device, p1) => limiter.admit(device.id, device.model, p1, clock.monotonic());
  ingest.overP1Share = (device) => limiter.overP1Share(device.id, device.model, clock.monotonic());
  ingest.overAlertShare = (device) => limiter.overAlertShare(device.id, device.model, clock.monotonic());
}

/** Sweeps the limiter every 10 s; the caller clears the timer at stop. */
export function sweepDeviceRate(limiter: DeviceRateLimiter, clock: Clock): NodeJS.Timeout {
  // DEVICE_MISBEHAVING clears when a device has been quiet for clearAfter, even if it sends nothing more.
  const timer = setInterval(() => limiter.sweep(clock.monotonic()), 10_000);
  timer.unref();
  return timer;
}
