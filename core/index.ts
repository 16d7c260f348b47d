/**
 * The bottom layer: what every other layer may import (the clock, the site's
 * calendar, the normalised model, the pipeline lane ids). It imports nothing
 * of Linli's own (test/layers.test.ts holds every layer to its direction).
 */
export { BoundedFifo } from "./bounded-fifo.js";
export { type Clock, type ClockTimer, systemClock } from "./clock.js";
export {
  duration,
  durationOrZero,
  label,
  optionalDuration,
  optionalDurationOrZero,
  password,
  secret,
  topicId,
} from "./config-fields.js";
export { parseDuration } from "./duration.js";
export { openFileLimit } from "./fd-limit.js";
export { LANE_ALERT, LANE_P1, LANE_TELEMETRY, type LaneId } from "./lanes.js";
export type {
  AlertCode,
  AlertState,
  AlertView,
  DeviceModel,
  GatewayAlertCode,
  MetricValue,
  Priority,
  Quality,
  RegisteredModels,
} from "./model.js";
export { GATEWAY_ALERT_CODES } from "./model.js";
export { HASH_BYTES, hashProblem, isHashed, MAX_MEM, SCRYPT_PREFIX } from "./password-hash.js";
export { isRejection, type Rejection, type RejectionWhere, reject, rejectionText } from "./refusal.js";
export { isTimeZone, SiteTime } from "./site-time.js";
export {
  Doorbell,
  drainByPriority,
  RECORD_HEADER_BYTES,
  type RecordHandler,
  SpscRing,
  type SpscRingHandle,
  TAG_PAD,
} from "./spsc-ring.js";
export { formatPath, type PathKey, yamlLine } from "./yaml-path.js";
