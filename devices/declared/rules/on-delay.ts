import type { DeclaredSettings } from "../sample.js";
import type { DeclaredProfileDoc } from "../schema.js";
import type { Alarm } from "./codes.js";

/** An alarm's on-delay, ms: its duration, or its setting's seconds (the device's, else the default). */
export function onDelayOf(a: Alarm, settings: DeclaredSettings, doc: DeclaredProfileDoc): number | undefined {
  const d = a.onDelay;
  if (d === undefined || typeof d === "number") return d;
  // schema.ts makes sure the setting is in seconds with a number default.
  const seconds = settings.params[d.setting] ?? (doc.settings[d.setting]?.default as number);
  return seconds * 1000;
}
