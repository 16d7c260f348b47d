/**
 * The normalised model: one reading type for every device model, one alert
 * type. Everything south of here speaks the device's language (JSON fields,
 * Modbus registers); everything north of here speaks only these types.
 */

export type DeviceModel = "ec200" | "ds10" | "mfs8" | "gk3" | "lv4";
export const DEVICE_MODELS: readonly DeviceModel[] = ["ec200", "ds10", "mfs8", "gk3", "lv4"];

/** P1 life safety, P2 urgent, P3 service fault, P4 housekeeping (datasheets/README). */
export type Priority = 1 | 2 | 3 | 4;

export type Quality =
  /** Device clock plausible, values in range. */
  | "good"
  /** Values fine, but the device's own clock is zero or far off: trust `gatewayTime`. */
  | "device-clock-invalid";

export interface MetricValue {
  value: number | string | boolean;
  unit?: string;
}

export interface Reading {
  deviceId: string;
  model: DeviceModel;
  site: string;
  household: string | null;
  /** When the gateway received it, epoch ms. */
  gatewayTime: number;
  /** The device's own timestamp, epoch ms, or null when absent or implausible. */
  deviceTime: number | null;
  metrics: Record<string, MetricValue>;
  quality: Quality;
}

export type AlertCode =
  | "EMERGENCY_CALL"
  | "FALL_DETECTED"
  | "BATTERY_LOW"
  | "TAMPER"
  | "DOOR_HELD_OPEN"
  | "DEVICE_LOST"
  | "WELFARE_CHECK"
  | "FIRE_ALARM"
  | "HYDRANT_PRESSURE_LOW"
  | "EXTINGUISHER_MISSING"
  | "FAULT"
  | "POWER_FAIL"
  | "VANDALISM"
  | "KIOSK_OUT_OF_SERVICE"
  | "PAPER_LOW"
  | "OVERHEAT"
  | "WATER_LEVEL_LOW"
  | "WATER_LEVEL_CRITICAL"
  | "FREEZE_RISK"
  /** The gateway's journal cannot write: alerts still flow live, but are not kept across a restart. */
  | "STORAGE_DEGRADED";

/**
 * Alert lifecycle (issue 2 cut of ISA-18.2): the condition is active or has
 * cleared; the operator has acknowledged or not. Closed = cleared and acknowledged.
 */
export type AlertState =
  | "active-unacknowledged"
  | "active-acknowledged"
  | "cleared-unacknowledged"
  | "closed";

/** The alert as operations staff see it on `linli/<site>/alerts/...` (docs/topics.md). */
export interface AlertView {
  id: string;
  code: AlertCode;
  priority: Priority;
  state: AlertState;
  site: string;
  /** The device, or for household alerts (WELFARE_CHECK) the household id. */
  deviceId: string;
  model: DeviceModel | "household" | "gateway";
  household: string | null;
  raisedAt: number;
  updatedAt: number;
  /** How many times the condition fired while this alert was open (a double press is one call, count 2). */
  count: number;
  causes: string[];
  cancelledByResident: boolean;
  ackedBy: string | null;
  ackedAt: number | null;
  ackNote: string | null;
  clearedAt: number | null;
  /** Resident said it is serious (EC-200 long press). */
  urgent: boolean;
  /** Raised while the device was in test mode: nobody is paged. */
  test: boolean;
  detail: Record<string, number | string | boolean>;
}
