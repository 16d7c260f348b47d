/**
 * The bottom layer: what every other layer may import (the clock, the site's
 * calendar, the normalised model, the pipeline lane ids). It imports nothing
 * of Linli's own (test/layers.test.ts holds every layer to its direction).
 */
export { type Clock, type ClockTimer, systemClock } from "./clock.js";
export { parseDuration } from "./duration.js";
export { LANE_ALERT, LANE_P1, LANE_TELEMETRY, type LaneId } from "./lanes.js";
export type {
  AlertCode,
  AlertState,
  AlertView,
  DeviceModel,
  MetricValue,
  Priority,
  Quality,
} from "./model.js";
export { SiteTime } from "./site-time.js";
