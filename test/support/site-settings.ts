/**
 * The site-wide part of the settings the gateway gives a device's rules (DeviceSettings), with the
 * config's defaults for the alert figures; a test names what it depends on (the heartbeat or poll
 * period, the site's time zone) and adds the model's own settings.
 */
import { SiteTime } from "../../core/site-time.js";
import type { DeviceSettings } from "../../devices/profile.js";

export function siteSettings(
  own: Partial<Omit<DeviceSettings, "siteTime">> & { timezone?: string } = {},
): DeviceSettings {
  const { timezone = "UTC", ...figures } = own;
  return {
    heartbeatIntervalMs: 0,
    pollIntervalMs: 0,
    emergencyCallWindowMs: 60_000,
    batteryLowPercent: 15,
    batteryClearPercent: 20,
    contactDebounceMs: 200,
    siteTime: new SiteTime(timezone),
    ...figures,
  };
}
