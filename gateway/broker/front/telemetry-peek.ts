/**
 * The worker's classifier: is this uplink certainly telemetry? Read from the payload's top-level
 * fields and the model's `telemetryWhen` (devices/profile.ts), never from the profile's code, which
 * stays in the main thread. "Not known" (a model without `telemetryWhen`, an unreadable payload, a
 * field that is not a scalar) answers no: the uplink then takes the alert ring, where nothing waits
 * behind telemetry. The main thread still decodes and lanes every uplink as before; this only says
 * which ring it crosses in.
 */
import { isCertainlyTelemetry, type TelemetryTest } from "../../../devices/threads.js";
import { readTopLevel, sniffEncoding, type TopLevelValue } from "../../../protocols/threads.js";

export class TelemetryPeek {
  private readonly fields: readonly string[];
  /** Scratch for the field values (one classification at a time: the worker is one thread). */
  private readonly values: TopLevelValue[];

  /** Some field is a dotted path, which only the JSON reader follows. */
  private readonly jsonOnly: boolean;

  constructor(private readonly tests: readonly TelemetryTest[]) {
    this.fields = tests.map((t) => t.field);
    this.values = new Array<TopLevelValue>(tests.length);
    this.jsonOnly = this.fields.some((f) => f.includes("."));
  }

  isTelemetry(payload: Buffer, contentType: string | undefined): boolean {
    const encoding = sniffEncoding(payload, contentType);
    if (encoding === null || (encoding === "cbor" && this.jsonOnly)) return false;
    if (!readTopLevel(payload, encoding, this.fields, this.values)) return false;
    return isCertainlyTelemetry(this.tests, this.values);
  }
}
