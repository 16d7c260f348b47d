/**
 * What a device model contributes to the gateway: how to read its messages
 * and which alerts its readings mean. One file per model under devices/
 * implements this; the gateway core owns scheduling, supervision, the
 * alert lifecycle and publishing (the EdgeX driver/core split).
 */
import type { AlertCode, DeviceModel, LaneId, MetricValue, Priority } from "../core/index.js";
import type { PointSpec, PointValue } from "./modbus-decode.js";

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
  /** Escalate an unacknowledged alert on the P1 schedule while it keeps its own priority (LV-4 WATER_LEVEL_CRITICAL). */
  escalateAs?: 1;
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
  /** Polled devices: the poll period. */
  pollIntervalMs: number;
  /** MFS-8: HYDRANT_PRESSURE_LOW under this, MPa. */
  minPressureMpa: number;
  /** MFS-8: a fitted bracket empty this long is EXTINGUISHER_MISSING. */
  extinguisherGraceMs: number;
  /** GK-3: state "out of service" this long is KIOSK_OUT_OF_SERVICE. */
  outOfServiceAfterMs: number;
  /** GK-3: opening hours as minutes after local midnight, for availability. */
  openingHours: { from: number; to: number };
  /** The site's local calendar (`site.timezone`), never the process's zone. */
  siteTime: LocalCalendar;
  /**
   * Numeric per-device settings by name: a YAML profile's `settings`
   * (devices[].settings), the LV-4's `reserve`. Absent: the profile's defaults.
   */
  params?: Readonly<Record<string, number>>;
}

/** Local day and time of day in the site's time zone (core/site-time.ts). */
export interface LocalCalendar {
  /** Days since 1970-01-01, local: changes at the site's midnight. */
  dayNumber(t: number): number;
  /** Minutes since the site's local midnight. */
  minuteOfDay(t: number): number;
}

/** What every device model provides, whatever its transport. */
export interface ProfileCommon<S, State> {
  readonly model: DeviceModel;
  /** Priority of DEVICE_LOST for this model (datasheet). */
  readonly lostPriority: Priority;
  /** Device clock, epoch ms (0 when the device has lost its clock); null for devices without a clock. */
  deviceTime(sample: S): number | null;
  /** Resident activity, for welfare checks (a heartbeat is not activity). */
  isActivity(sample: S): boolean;
  /** Normalised metrics for the telemetry topic. */
  metrics(sample: S, state: State): Record<string, MetricValue>;
  /** Fresh per-device rule state. */
  initialState(): State;
  /** Applies the model's alert rules to one sample. */
  rules(sample: S, state: State, settings: DeviceSettings, ctx: RuleContext): void;
  /**
   * Suppression by design (ISA-18.2): the device reports it is in test mode or
   * maintenance; its alerts are marked with the reason and page nobody. False otherwise.
   */
  suppressed(sample: S): false | "test" | "maintenance";
}

export interface MqttDeviceProfile<S = unknown, State = unknown> extends ProfileCommon<S, State> {
  readonly transport: "mqtt";
  /** Largest valid payload in bytes (datasheet). */
  readonly maxPayloadBytes: number;
  uplinkTopic(deviceId: string): string;
  downlinkTopic(deviceId: string): string | null;
  /** Validates a decoded payload; returns the typed sample or why it is refused. */
  parse(value: unknown): S | Rejection;
  seq(sample: S): number;
  /** Which lane: life-safety events must not wait behind telemetry. */
  lane(sample: S): LaneId;
  /** Operator commands sent as downlink messages (`linli/<site>/cmd/<id>/<name>`). */
  readonly commands: Readonly<Record<string, object>>;
  /** The downlink telling the device an operator acknowledged one of its alerts, if it wants one. */
  ackDownlink?(code: AlertCode, alertId: string): object | null;
}

/**
 * A write that performs an operator command: fn 5 (coil, value 0xFF00 on / 0x0000 off) or fn 6
 * (register), with a fixed value, or (`value: "request"`) the request's `value`, refused outside min..max.
 */
export type ModbusCommand =
  | { fn: 5 | 6; address: number; value: number }
  | { fn: 6; address: number; value: "request"; min: number; max: number };

export interface ModbusDeviceProfile<S = unknown, State = unknown> extends ProfileCommon<S, State> {
  readonly transport: "modbus";
  /** Function code of the poll: 3 holding registers, 4 input registers. */
  readonly fn: 3 | 4;
  /** The register map, as data (devices/modbus-decode.ts applies it). */
  readonly points: readonly PointSpec[];
  /** Read across gaps of at most this many registers in one request. */
  readonly maxGap: number;
  /** Consecutive failed polls after which the device is lost (datasheets: 3). */
  readonly missedPollsForLost: number;
  /** Turns decoded points into the typed sample, or refuses an implausible reading. */
  decode(values: Readonly<Record<string, PointValue>>): S | Rejection;
  /** Lane by content: life-safety states in P1, a change of status in the alert lane, else telemetry. */
  lane(sample: S, previous: S | null): LaneId;
  readonly commands: Readonly<Record<string, ModbusCommand>>;
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds profiles of every sample type.
export type AnyProfile = MqttDeviceProfile<any, any> | ModbusDeviceProfile<any, any>;
