/**
 * The alert codes and locales as runtime values (the model has them as types):
 * the config validates `alerts.actions` keys against them, and the catalogue
 * test checks every code has text in every locale.
 */
import type { AlertCode } from "../../core/index.js";

export const LOCALES = ["zh-CN", "en"] as const;
export type Locale = (typeof LOCALES)[number];

/** Every code the gateway can raise (the type below fails to compile if one is missing or unknown). */
export const ALERT_CODES = [
  "EMERGENCY_CALL",
  "FALL_DETECTED",
  "BATTERY_LOW",
  "TAMPER",
  "DOOR_HELD_OPEN",
  "DEVICE_LOST",
  "WELFARE_CHECK",
  "FIRE_ALARM",
  "HYDRANT_PRESSURE_LOW",
  "EXTINGUISHER_MISSING",
  "FAULT",
  "POWER_FAIL",
  "VANDALISM",
  "KIOSK_OUT_OF_SERVICE",
  "PAPER_LOW",
  "OVERHEAT",
  "WATER_LEVEL_LOW",
  "WATER_LEVEL_CRITICAL",
  "FREEZE_RISK",
  "STORAGE_DEGRADED",
] as const satisfies readonly AlertCode[];

// Compile-time: AlertCode and ALERT_CODES name the same set.
type Missing = Exclude<AlertCode, (typeof ALERT_CODES)[number]>;
const _complete: [Missing] extends [never] ? true : Missing = true;
void _complete;
