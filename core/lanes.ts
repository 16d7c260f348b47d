/**
 * The pipeline lanes a sample travels in (gateway/pipeline/lanes.ts schedules
 * them): device profiles choose a lane, the gateway drains P1 first.
 */
export const LANE_P1 = 0;
export const LANE_ALERT = 1;
export const LANE_TELEMETRY = 2;
export type LaneId = typeof LANE_P1 | typeof LANE_ALERT | typeof LANE_TELEMETRY;
