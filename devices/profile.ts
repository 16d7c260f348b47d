/**
 * What a device model contributes to the gateway: how to read its messages
 * and which alerts its readings mean. One file per model under devices/
 * implements this; the gateway core owns scheduling, supervision, the
 * alert lifecycle and publishing (the EdgeX driver/core split).
 */
import type { AlertCode, DeviceModel, MetricValue, Priority } from "../gateway/model.js";

/** The pipeline lane a sample travels in (gateway/pipeline/lanes.ts). */
export const LANE_P1 = 0;
export const LANE_ALERT = 1;
export const LANE_TELEMETRY = 2;
export type LaneId = typeof LANE_P1 | typeof LANE_ALERT | typeof LANE_TELEMETRY;

/** A message the profile refuses, with a reason that is counted per model. */
export interface Rejection {
  rejected: true;
  reason: string;
  detail: string;
}

export function reject(reason: string, detail: string): Rejection {
  return { rejected: true, reason, detail };
}

export function isRejection(x: unknown): x is Rejection {
  return typeof x === "object" && x !== null && (x as Rejection).rejected === true;
}

export interface AlertOptions {
  priority: Priority;
  causes?: readonly string[];
  urgent?: boolean;
  test?: boolean;
  /** Suppressed by design (ISA-18.2): the alert is published, marked, and never paged or escalated. */
  suppressedFor?: "test" | "maintenance";
  detail?: Record<string, number | string | boolean>;
}

export interface ConditionOptions extends AlertOptions {
  /** The condition must hold this long before the alert is raised (hold-open time, grace periods). */
  onDelayMs?: number;
  /** When the condition started, if earlier than now (a bouncing contact keeps its first opening). */
  since?: number;
  /** The condition must be gone this long before the alert clears (analog values near a limit). */
  offDelayMs?: number;
}

/** What rules may do; implemented by the alert engine for one device at a time. */
export interface RuleContext {
  readonly now: number;
  /** A momentary event (button press, fall): opens the alert or, within its window, counts it again. */
  raise(code: AlertCode, opts: AlertOptions & { windowMs: number }): void;
  /** A condition that holds until it is reported gone (tamper, low battery, door open). */
  condition(code: AlertCode, active: boolean, opts: ConditionOptions): void;
  /** Marks the open alerts of these codes as cancelled by the resident; returns how many. */
  markCancelled(codes: readonly AlertCode[]): number;
  /** The device confirmed that it told the resident about an operator's ack (EC-200 `ackd`). */
  confirmDelivered(alertId: string): void;
}

/** Per-device settings the rules need, resolved from the config. */
export interface DeviceSettings {
  heartbeatIntervalMs: number;
  holdOpenMs: number;
  emergencyCallWindowMs: number;
  batteryLowPercent: number;
  batteryClearPercent: number;
  contactDebounceMs: number;
}

export interface MqttDeviceProfile<S = unknown, State = unknown> {
  readonly model: DeviceModel;
  readonly transport: "mqtt";
  /** Largest valid payload in bytes (datasheet). */
  readonly maxPayloadBytes: number;
  /** Priority of DEVICE_LOST for this model (datasheet). */
  readonly lostPriority: Priority;
  uplinkTopic(deviceId: string): string;
  downlinkTopic(deviceId: string): string | null;
  /** Validates a decoded payload; returns the typed sample or why it is refused. */
  parse(value: unknown): S | Rejection;
  seq(sample: S): number;
  /** Device clock, epoch ms (0 when the device has lost its clock). */
  deviceTime(sample: S): number;
  /** Which lane: life-safety events must not wait behind telemetry. */
  lane(sample: S): LaneId;
  /** Resident activity, for welfare checks (a heartbeat is not activity). */
  isActivity(sample: S): boolean;
  /** Normalised metrics for the telemetry topic. */
  metrics(sample: S): Record<string, MetricValue>;
  /** Fresh per-device rule state. */
  initialState(): State;
  /** Applies the model's alert rules to one sample. */
  rules(sample: S, state: State, settings: DeviceSettings, ctx: RuleContext): void;
}
