/**
 * The alert codes and locales as runtime values (the model has them as types):
 * the config validates `alerts.actions` keys against them, and the catalogue
 * test checks every code has text in every locale.
 */
import { type AlertCode, GATEWAY_ALERT_CODES } from "../../core/index.js";
import { PROFILES } from "../../devices/index.js";

export const LOCALES = ["zh-CN", "en"] as const;
export type Locale = (typeof LOCALES)[number];

/**
 * Every code the gateway can raise: the registered profiles' (devices/models.ts)
 * and the gateway's own (supervision, storage, defences), derived, never listed by hand.
 */
export const ALERT_CODES = [
  ...new Set<AlertCode>([
    ...PROFILES.flatMap((p) => Object.keys(p.alerts) as AlertCode[]),
    ...GATEWAY_ALERT_CODES,
  ]),
] as [AlertCode, ...AlertCode[]];
