/**
 * protocols' second public surface, for code that runs in a worker thread: telling JSON from CBOR
 * and reading a payload's top-level fields, without cbor-x or the Modbus and serial modules (a
 * worker is a V8 isolate of its own: through protocols/index.ts the device listener's worker would
 * load 4.5 MB of heap more). test/layers.test.ts lets gateway/ reach protocols/ through this file.
 */
export { type PayloadEncoding, sniffEncoding } from "./codec/sniff.js";
export { NOT_SCALAR, readTopLevel, type TopLevelValue } from "./codec/top-level.js";
