/**
 * devices' second public surface, for code that runs in a worker thread: a model's
 * `telemetryWhen` and its test, without the profiles (zod and the models' code: 3.5 MB of a
 * worker's heap). test/layers.test.ts lets gateway/ reach devices/ through this file.
 */
export type { TelemetryTest } from "./profile.js";
export { isCertainlyTelemetry } from "./telemetry-when.js";
