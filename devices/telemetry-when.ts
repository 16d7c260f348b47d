/**
 * A model's `telemetryWhen` (devices/profile.ts) applied to a payload's top-level field values
 * (protocols' readTopLevel): true when every test holds, so the message is certainly telemetry.
 * Imports nothing: the device listener's worker thread loads it (devices/threads.ts).
 */
import type { TelemetryTest } from "./profile.js";

export function isCertainlyTelemetry(tests: readonly TelemetryTest[], values: readonly unknown[]): boolean {
  for (let i = 0; i < tests.length; i++) {
    const t = tests[i] as TelemetryTest;
    const v = values[i];
    if ("below" in t) {
      if (typeof v !== "number" || !(v < t.below)) return false;
    } else if ("notOneOf" in t) {
      // A value not read (not a scalar) might be one of them.
      const type = typeof v;
      const known =
        v === undefined || v === null || type === "string" || type === "number" || type === "boolean";
      if (!known || (t.notOneOf as readonly unknown[]).includes(v)) return false;
    } else if (!(t.oneOf as readonly unknown[]).includes(v)) return false;
  }
  return true;
}
