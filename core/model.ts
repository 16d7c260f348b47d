/**
 * The normalised model: one alert type and the words around it for every
 * device model. Everything south of here speaks the device's language (JSON
 * fields, Modbus registers); everything north of here speaks only these types.
 */

/**
 * Filled in by the registered device profiles (devices/models.ts, by
 * declaration merging): the model names and alert codes below follow the
 * profiles without this bottom layer importing them.
 */
// biome-ignore lint/suspicious/noEmptyInterface: merged into by devices/models.ts.
export interface RegisteredModels {}

/** A registered device model's name ("ec200", "gd2", ...). */
export type DeviceModel = RegisteredModels extends { model: infer M extends string } ? M : string;

/**
 * Codes the gateway raises itself, whatever the devices: supervision (a
 * device lost, a household without activity), its own health (the journal
 * cannot write: alerts still flow live, but are not kept across a restart; it found its stored
 * state damaged at start, its site file refused at a start: it runs on the last good copy)
 * and its defences (a device keeps sending faster than its model's rate,
 * gateway/broker/rate.ts: its excess is dropped; any MQTT device can).
 */
export const GATEWAY_ALERT_CODES = [
  "DEVICE_LOST",
  "WELFARE_CHECK",
  "STORAGE_DEGRADED",
  "STORAGE_DAMAGED_AT_START",
  "CONFIG_REFUSED",
  "DEVICE_MISBEHAVING",
] as const;
export type GatewayAlertCode = (typeof GATEWAY_ALERT_CODES)[number];

/** Every alert code: the gateway's own and those the registered profiles declare. */
export type AlertCode =
  | GatewayAlertCode
  | (RegisteredModels extends { alertCode: infer C extends string } ? C : never);

/** P1 life safety, P2 urgent, P3 service fault, P4 housekeeping (datasheets/README). */
export type Priority = 1 | 2 | 3 | 4;

export type Quality =
  /** Device clock plausible, values in range. */
  | "good"
  /** Values fine, but the device's own clock is zero or far off: trust `gatewayTime`. */
  | "device-clock-invalid"
  /** A field out of its datasheet range or of the wrong type is left out of `metrics` (the message was taken in). */
  | "field-dropped"
  /** A reading the datasheet calls more likely a faulty sensor than real (an LV-4 level jump not yet persisted). */
  | "suspect"
  /** Taken while the device runs a self-test: not real (LV-4 status bit 4). */
  | "self-test";

export interface MetricValue {
  value: number | string | boolean;
  unit?: string;
}

/**
 * Alert lifecycle (a cut of ISA-18.2): the condition is active or has
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
