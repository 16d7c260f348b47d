/**
 * The per-device message rate as the gateway runs it: the limiter (broker/rate.ts, which knows
 * rates and drops, not alerts) with the DEVICE_MISBEHAVING alert it raises and clears, and the
 * sweep that clears it for a device that went quiet.
 */

import type { Clock } from "../core/index.js";
import type { AlertEngine } from "./alerts/engine.js";
import { type DeviceRateConfig, DeviceRateLimiter } from "./broker/rate.js";
import type { Logger } from "./log.js";
import type { Registry } from "./registry.js";

/** The limiter, with its misbehaving devices' alert wired in. */
export function deviceRateLimiter(
  cfg: DeviceRateConfig,
  p: { registry: Registry; engine: Pick<AlertEngine, "contextFor">; log: Logger },
): DeviceRateLimiter {
  const limiter: DeviceRateLimiter = new DeviceRateLimiter(cfg, {
    // DEVICE_MISBEHAVING (P3, docs/topics.md): raised and cleared by the per-device rate limiter.
    misbehaving(deviceId, active, dropped) {
      const device = p.registry.devices.get(deviceId);
      if (!device) return;
      if (active)
        p.log.warn({ deviceId, dropped }, "device keeps sending faster than its rate: DEVICE_MISBEHAVING");
      const rate = limiter.rateOf(device.model);
      p.engine.contextFor(device).condition("DEVICE_MISBEHAVING", active, {
        priority: 3,
        causes: ["over its message rate"],
        detail: { dropped, perSecond: rate?.perSecond ?? 0, burst: rate?.burst ?? 0 },
      });
    },
  });
  return limiter;
}

/** Sweeps the limiter every 10 s; the caller clears the timer at stop. */
export function sweepDeviceRate(limiter: DeviceRateLimiter, clock: Clock): NodeJS.Timeout {
  // DEVICE_MISBEHAVING clears when a device has been quiet for clearAfter, even if it sends nothing more.
  const timer = setInterval(() => limiter.sweep(clock.monotonic()), 10_000);
  timer.unref();
  return timer;
}
