/**
 * core's second public surface, for code that runs in a worker thread: the single-producer
 * single-consumer ring and its doorbell, and nothing else. A worker is a V8 isolate of its own, so
 * every module it loads is memory again: through core/index.ts the device front end's worker also
 * loaded zod (config fields), 3.4 MB of its heap (bench/connections.ts). test/layers.test.ts lets
 * gateway/ reach core/ through this file as well as index.ts.
 */
export { Doorbell, type RecordHandler, SpscRing, type SpscRingHandle } from "./spsc-ring.js";
