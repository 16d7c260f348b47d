/**
 * Rule settings for tests of device rules (devices/, gateway/) and the fuzz targets (fuzz/): one
 * definition for all of them. devices/ tests and fuzz/ may not import test/ (test/layers.test.ts),
 * so it sits in the lowest layer they share. Not used by the gateway, which derives settings from
 * the site file.
 */
import { SiteTime } from "../core/index.js";
import type { Gk3Settings } from "./gk3.js";
import type { Lv4Sample } from "./lv4.js";
import type { Mfs8Settings } from "./mfs8.js";
import type { DeviceSettings } from "./profile.js";

/**
 * The site-wide part of the settings the gateway gives a device's rules (DeviceSettings), with the
 * config's defaults for the alert figures (60 s emergency-call window, battery low under 15 % and
 * clear from 20 %, 200 ms contact debounce); a test names what it depends on (the heartbeat or poll
 * period, the site's time zone: UTC unless given) and adds the model's own settings.
 */
export function siteSettings(
  own: Partial<Omit<DeviceSettings, "siteTime">> & { timezone?: string } = {},
): DeviceSettings {
  const { timezone = "UTC", ...rest } = own;
  return {
    heartbeatIntervalMs: 0,
    pollIntervalMs: 0,
    emergencyCallWindowMs: 60_000,
    batteryLowPercent: 15,
    batteryClearPercent: 20,
    contactDebounceMs: 200,
    siteTime: new SiteTime(timezone),
    ...rest,
  };
}

/**
 * The Modbus panels (MFS-8, GK-3) as the datasheets' examples run them: a site in Asia/Shanghai
 * polling every 2 s, the models' config defaults (0.15 MPa, 120 s extinguisher grace, 300 s out of
 * service, open 08:30-17:30).
 */
export const PANEL_SETTINGS: DeviceSettings & Mfs8Settings & Gk3Settings = {
  ...siteSettings({ pollIntervalMs: 2_000, timezone: "Asia/Shanghai" }),
  minPressureMpa: 0.15,
  extinguisherGraceMs: 120_000,
  outOfServiceAfterMs: 300_000,
  openingHours: { from: 510, to: 1050 },
};

/** An LV-4 poll of a 4,000 mm tank at `level` mm, 8 °C, every status bit clear unless given. */
export const lv4Sample = (level: number, status: Partial<Lv4Sample["status"]> = {}): Lv4Sample => ({
  firmware: "1.5",
  level,
  temperature: 8,
  volume: 40,
  status: { low: false, high: false, heater: false, fault: false, selfTest: false, ...status },
  faultCode: 0,
  uptime: 1,
  tankHeight: 4000,
  alarmCounter: 0,
});
