/**
 * What a device model contributes to the gateway. One file per model under
 * devices/ declares everything about it (the EdgeX driver/core split: the
 * gateway core owns scheduling, supervision, the alert lifecycle and
 * publishing); devices/models.ts registers it with one line, and from that
 * list the gateway derives the rest:
 *
 *   declared by the profile               derived from the registered profiles
 *   ------------------------------------  ----------------------------------------------------
 *   model, label, binding, interval       config entry: binding fields + model + `config`
 *   config (zod fields), settings()       (devices/config.ts), the config schema's device
 *                                         union, docs/config.schema.json, typed settings
 *   alerts (code -> priority, doc rows)   `AlertCode` and `DeviceModel` (core/model.ts, by
 *                                         declaration merging), the alert-code and command
 *                                         tables of docs/topics.md (devices/docs.ts)
 *   binding + transport members           southbound: MQTT topics and heartbeat supervision,
 *                                         or a serial/TCP Modbus bus and missed-poll supervision
 *   commands (with doc), reply(),         operator commands and their results, the device's
 *   acknowledged()                        replies, downlinks on acknowledgement
 *   simulator                             the emulator's file in sim/: named, never imported
 *                                         (the simulator shares no code with the gateway)
 *
 * A model the gateway could neither poll nor supervise is refused when it is
 * registered, when a config names it and at start (`profileProblem`), never ignored.
 *
 * A profile compiled at run time (a device described in YAML) is the same
 * kind of object: check it with `profileProblem`, give the config schema its
 * entry with `deviceSchema(profile)`, and make `profileFor` (or its caller)
 * find it; everything derived then follows, as for a code profile.
 *
 * Changes in 0.2 for profile authors: `binding`, `label`, `simulator`,
 * `interval`, `config`, `settings`, `alerts` are new and required; rules get
 * `DeviceSettings & <own settings>` and a `RuleContext<Code>` that only
 * accepts the declared codes and may send one of the model's commands
 * (`ctx.command`); MQTT commands are `{ doc, message(id) }`, Modbus commands
 * carry a `doc`; an alert code may bring its operator text per locale
 * (`AlertSpec.text`). The third type parameter names what the derived types
 * need: `{ model: "gd2"; binding: "mqtt"; code: ...; settings: ...; config: typeof config }`.
 */
import type { z } from "zod";
import type { LaneId, MetricValue, Priority, Quality, Rejection } from "../core/index.js";
import { parseDuration } from "../core/index.js";
import type { DroppedField } from "./fields.js";
import type { PointSpec, PointValue } from "./modbus-decode.js";

/** A message the profile refuses (the one refusal shape, core/refusal.ts), counted per model and reason. */
export { isRejection, type Rejection, reject } from "../core/index.js";

/**
 * How the gateway reaches a device: an MQTT client of its broker (supervised
 * by heartbeat), a slave on an RS-485 line (`buses[]`), or a Modbus TCP
 * endpoint (both supervised by missed polls).
 */
export type Binding = "mqtt" | "modbus-serial" | "modbus-tcp";
export const BINDINGS: readonly Binding[] = ["mqtt", "modbus-serial", "modbus-tcp"];

/** One alert code of a model: its priority and its row in docs/topics.md. */
export interface AlertSpec {
  /** The priority its rules raise it with; a code whose priority follows its cause lists each. */
  priority: Priority | readonly Priority[];
  /** When it is raised, for operators (Markdown). */
  raised: string;
  /** When it clears (Markdown). */
  cleared: string;
  /**
   * What operators read, per locale (`site.locale`): a short title and the
   * default action. An alert of this model reads these words even for a code
   * the gateway's catalogue also has (FAULT, POWER_FAIL: the model says what
   * its fault means); a catalogue that lacks the code takes it from here, so a
   * new model brings its own words.
   */
  text?: Readonly<Record<"zh-CN" | "en", AlertText>>;
}

export interface AlertText {
  /** What happened, a short phrase ("燃气泄漏", "Gas leak"). */
  title: string;
  /**
   * The figure that matters from the alert's `detail` ("剩余 12%"), or null when it has none;
   * `causes` are the alert's (an alert with several possible causes names the ones that tripped it).
   */
  detail?: (d: AlertDetail, causes: readonly string[]) => string | null;
  /** What the operator should do. */
  action: string;
}

/** An alert's `detail`, as its operator text reads it. */
export type AlertDetail = Readonly<Record<string, number | string | boolean>>;

/** A detail field as a number, or null when absent. */
export const num = (d: AlertDetail, key: string): number | null =>
  typeof d[key] === "number" ? (d[key] as number) : null;

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
  /**
   * An analog condition with a deadband: whether the value is beyond the limit itself. False
   * while `active` only because of the deadband (back over the limit, not yet past the deadband):
   * that holds a raised alert, but raises nothing and ends a pending on-delay, which runs again
   * from the next reading beyond the limit ("under 4.0 °C for 10 minutes, clearing at 5.0 °C").
   * Default: `active`.
   */
  onset?: boolean;
}

/**
 * The options of a condition reported inactive, by priority: shared and frozen, so a quiet
 * sample builds no options, causes or detail. Clearing reads none of them; a condition
 * with an off-delay (`offDelayMs`, `since`) passes its own.
 */
export const INACTIVE: Readonly<Record<Priority, ConditionOptions>> = Object.freeze({
  1: Object.freeze({ priority: 1 }),
  2: Object.freeze({ priority: 2 }),
  3: Object.freeze({ priority: 3 }),
  4: Object.freeze({ priority: 4 }),
});

/** What the alert engine does for rules, for one device at a time. */
export interface AlertContext<Code extends string = string> {
  readonly now: number;
  /** A momentary event (button press, fall): opens the alert or, within its window, counts it again. */
  raise(code: Code, opts: AlertOptions & { windowMs: number }): void;
  /** A condition that holds until it is reported gone (tamper, low battery, door open). */
  condition(code: Code, active: boolean, opts: ConditionOptions): void;
  /** Marks the open alerts of these codes as cancelled by the resident; returns how many. */
  markCancelled(codes: readonly Code[]): number;
  /** The device confirmed that it told the resident about an operator's ack (EC-200 `ackd`). */
  confirmDelivered(alertId: string): void;
}

/** What rules may do: the alert engine's part, and automatic actions on the device. */
export interface RuleContext<Code extends string = string> extends AlertContext<Code> {
  /**
   * A newer message of this device has already been through the rules: lanes reorder (a P1 press
   * is drained before an older alert-lane message; gateway/consume.ts). What this one says about a
   * lasting condition (a battery level) is older than what the rules already know and must not
   * overrule it; a momentary event it reports (a press, a fall) still counts.
   */
  readonly stale: boolean;
  /**
   * When this sample was read (a poll's reply, an uplink's receipt) on the gateway's monotonic
   * clock, ms: the time between two readings of a device (a rate of change), whatever the lanes'
   * delays before the rules ran and however the wall clock was stepped. Not comparable with `now`.
   */
  readonly readAt: number;
  /**
   * Sends one of this model's commands to the device now, as the gateway's
   * own action (the GD-2's automatic shut-off). False when it could not be sent.
   */
  command(name: string): boolean;
  /**
   * A command sent on the rules' behalf (command()) has not reached the device yet: it is away,
   * and the gateway sends it at its next login (or again there: its connection closed before the
   * device acknowledged it). Absent: the gateway cannot tell (taken as delivered).
   */
  commandWaiting?(name: string): boolean;
}

/** Settings every model's rules may read: the binding's and the site's (`alerts.*`, `site.timezone`). */
export interface DeviceSettings {
  /** MQTT devices: the heartbeat period (0 for polled devices). */
  heartbeatIntervalMs: number;
  /** Polled devices: the poll period (0 for MQTT devices). */
  pollIntervalMs: number;
  emergencyCallWindowMs: number;
  batteryLowPercent: number;
  batteryClearPercent: number;
  contactDebounceMs: number;
  /** The site's local calendar (`site.timezone`), never the process's zone. */
  siteTime: LocalCalendar;
}

/** Local day and time of day in the site's time zone (core/site-time.ts). */
export interface LocalCalendar {
  /** Days since 1970-01-01, local: changes at the site's midnight. */
  dayNumber(t: number): number;
  /** Minutes since the site's local midnight. */
  minuteOfDay(t: number): number;
}

/**
 * The types a profile declares, from which the gateway's types are derived
 * (its model name, binding, alert codes, typed settings and config fields).
 */
export interface ProfileTypes {
  model: string;
  binding: Binding;
  code: string;
  settings: object;
  config: z.ZodRawShape;
}

/** What every device model declares, whatever its transport. */
export interface ProfileCommon<S, State, T extends ProfileTypes> {
  readonly model: T["model"];
  /** The datasheet's name of the model ("GD-2"), for documentation and logs. */
  readonly label: string;
  /**
   * What operators call the model, as the operators' guide and the console do ("燃气报警器",
   * "gas detector"): a device with no configured name is called this and its id ("燃气报警器 g-7").
   */
  readonly names?: Readonly<Record<"zh-CN" | "en", string>>;
  /** The emulator of this model under sim/ (a path, never imported). */
  readonly simulator: string;
  readonly binding: T["binding"];
  /** Default heartbeat (MQTT) or poll (Modbus) interval of the config entry, e.g. "60s". */
  readonly interval: string;
  /** The model's own config fields, beyond its binding's (devices/config.ts adds those). */
  readonly config: T["config"];
  /** The model's typed settings from its validated config entry (re-read on a reload). */
  settings(config: z.output<z.ZodObject<T["config"]>>): T["settings"];
  /** Every alert code the rules raise, with priorities and documentation. */
  readonly alerts: Readonly<Record<T["code"], AlertSpec>>;
  /** Priority of DEVICE_LOST for this model (datasheet). */
  readonly lostPriority: Priority;
  /**
   * What the operator should do when this model is lost, where the catalogue's words (power,
   * network, call the resident) would not say what is at stake: a fire station that cannot alarm.
   */
  readonly lostAction?: Readonly<Record<"zh-CN" | "en", string>>;
  /** Device clock, epoch ms (0 when the device has lost its clock); null for devices without a clock. */
  deviceTime(sample: S): number | null;
  /**
   * What is wrong with this reading's values, for the telemetry's `quality` (docs/topics.md):
   * a field dropped, an implausible or a self-test reading. Null or omitted: the values are
   * fine (the gateway then judges the device clock).
   */
  quality?(sample: S, state: State): Quality | null;
  /** Resident activity, for welfare checks (a heartbeat is not activity). */
  isActivity(sample: S): boolean;
  /** Normalised metrics for the telemetry topic. */
  metrics(sample: S, state: State): Record<string, MetricValue>;
  /** Fresh per-device rule state. */
  initialState(): State;
  /**
   * The part of the rule state that decides alerts and must survive a restart (a sensor fault that
   * makes readings suspect, a detector's own alarm level): journaled when it changes, put back at
   * start (docs/durability.md, `rule/<device>`). Omitted: the model's rules start fresh.
   */
  readonly durable?: DurableRuleState<State>;
  /**
   * A step of the wall clock while running (gateway/clock-step.ts): moves the rule state's gateway
   * times by `ms` in place (0: not set, stays 0). Those an on-delay counts from (`since`) must move
   * as the engine's hold does, or the next reading re-arms the hold at the old time: an hour set
   * forward raised a GD-2's POWER_FAIL at once, an hour set back held it an hour longer. Omitted:
   * the model keeps no gateway time.
   */
  shiftTimes?(state: State, ms: number): void;
  /** Applies the model's alert rules to one sample. */
  rules(sample: S, state: State, settings: DeviceSettings & T["settings"], ctx: RuleContext<T["code"]>): void;
  /**
   * Suppression by design (ISA-18.2): the device reports it is in test mode or
   * maintenance; its alerts are marked with the reason and page nobody. False otherwise.
   */
  suppressed(sample: S): false | "test" | "maintenance";
}

/** One value of a journaled rule state: no times (a time would have to move with the clock). */
export type DurableValue = number | string | boolean | null;

/**
 * A model's rule state as it is journaled: a short, fixed-length list of values (the layout is the
 * model's own, versioned by `version`; a record of another version or length is not restored).
 */
export interface DurableRuleState<State> {
  /**
   * The layout's version: a changed layout is a new number. A record of an older version is given
   * to `restore` with its number (it restores what that layout holds); a newer one restores nothing.
   */
  readonly version: number;
  /** The values, a fresh array (called only when `same` says they changed). */
  save(state: State): DurableValue[];
  /** Whether the state still holds these values (after every message: allocates nothing). */
  same(state: State, saved: readonly DurableValue[]): boolean;
  /**
   * Puts journaled values back into a fresh state (at start; `now`: the gateway's time then, from
   * which a time of the state that is not journaled starts); values of a wrong type are skipped.
   * `version`: the record's, 1 to `version` (absent: `version`).
   */
  restore(state: State, saved: readonly unknown[], now: number, version?: number): void;
}

/** An operator command of an MQTT device: a downlink message. */
export interface MqttCommand {
  /** What it does (docs/topics.md, Markdown). */
  doc: string;
  /** What operators call it ("打开燃气阀"), as the console does; a YAML profile's command has none: its name is said. */
  names?: Readonly<Record<"zh-CN" | "en", string>>;
  /** It moves something on site (a gas valve): the console asks the operator to confirm before sending it. */
  actuates?: boolean;
  /** The downlink; `id` is the operator's request id, or one the gateway makes up (the device's reply carries it). */
  message(id: string): object;
}

/** A device's answer to a command (GD-2 `reply`), published as a second command result. */
export interface CommandReply {
  id: string;
  command: string;
  /** The device's word (`ok`, `busy`, ...). */
  result: string;
  ok: boolean;
}

export interface MqttTypes extends ProfileTypes {
  binding: "mqtt";
}

export interface MqttDeviceProfile<S = unknown, State = unknown, T extends MqttTypes = MqttTypes>
  extends ProfileCommon<S, State, T> {
  readonly transport: "mqtt";
  /** Largest valid payload in bytes (datasheet). */
  readonly maxPayloadBytes: number;
  /**
   * When a silent device is lost, as its datasheet words it: after `heartbeats` intervals, plus
   * `alerts.lostGrace` when `plusGrace`. Omitted: 2 intervals plus the grace (`mqttLostRule`).
   */
  readonly lostAfter?: MqttLostRule;
  /** The device speaks JSON only (a CBOR payload is refused as `unknown-encoding`). */
  readonly jsonOnly?: boolean;
  uplinkTopic(deviceId: string): string;
  downlinkTopic(deviceId: string): string | null;
  /** Validates a decoded payload; returns the typed sample or why it is refused. */
  parse(value: unknown): S | Rejection;
  /** Side fields the sample left out (out of range, wrong type): counted per reason and logged, never refused. */
  droppedFields?(sample: S): readonly DroppedField[];
  seq(sample: S): number;
  /**
   * Which lane: life-safety events must not wait behind telemetry. The gateway passes the device's
   * rule state and settings: a threshold's limit may be a setting or another point, and whether a
   * reading is back from it depends on what came before. Omitted (tests): no state, the defaults.
   */
  lane(sample: S, state?: State, settings?: DeviceSettings & T["settings"]): LaneId;
  /**
   * Every message carries every point the rules read, as a poll does: an older message is
   * superseded by a newer one already applied, whatever its lane (gateway/consume.ts). Omitted:
   * messages are partial, and the profile's lanes keep its state-changing messages in order.
   */
  readonly snapshot?: boolean;
  /**
   * When a payload is certainly telemetry, told from its top-level fields alone (every test
   * holds), without this profile's code: the device listener's worker thread reads only this, so
   * that telemetry can wait apart from what may be an alert (gateway/broker/front). It must be
   * sound: a message it accepts is parsed and laned as telemetry (devices/profiles.test.ts).
   * Omitted: every message of the model is treated as possibly an alert.
   */
  readonly telemetryWhen?: readonly TelemetryTest[];
  /** Operator commands sent as downlink messages (`linli/<site>/cmd/<id>/<name>`). */
  readonly commands: Readonly<Record<string, MqttCommand>>;
  /** The device's answer to a command, when this sample is one. */
  reply?(sample: S): CommandReply | null;
  /** The downlink telling the device an operator acknowledged one of its alerts, if it wants one (EC-200 `ack_call`). */
  ackDownlink?(code: T["code"], alertId: string): object | null;
}

/** How many heartbeat intervals of silence make an MQTT device lost, and whether `alerts.lostGrace` is added. */
export interface MqttLostRule {
  readonly heartbeats: number;
  readonly plusGrace: boolean;
}

/** EC-200 and DS-10: "silent for 2 intervals plus 60 s" (the 60 s is `alerts.lostGrace`). */
export const DEFAULT_LOST_RULE: MqttLostRule = { heartbeats: 2, plusGrace: true };

/** The model's lost rule, the default when it declares none. */
export function mqttLostRule(p: { readonly lostAfter?: MqttLostRule }): MqttLostRule {
  return p.lostAfter ?? DEFAULT_LOST_RULE;
}

/**
 * One test of `telemetryWhen` on a field: one of these values, none of them (absent or null
 * counts as none), or a number below. `field` is a top-level key, or a dotted path into JSON
 * objects (as declared profiles' `path`; in a CBOR payload a dotted path is never known).
 */
export type TelemetryTest =
  | { readonly field: string; readonly oneOf: readonly (string | number | boolean)[] }
  | { readonly field: string; readonly notOneOf: readonly (string | number | boolean)[] }
  | { readonly field: string; readonly below: number };

/**
 * A write that performs an operator command: fn 5 (coil, value 0xFF00 on / 0x0000 off) or fn 6
 * (register), with a fixed value, or (`value: "request"`) the request's `value`, refused outside min..max.
 */
export type ModbusCommand = (
  | { fn: 5 | 6; address: number; value: number }
  | { fn: 6; address: number; value: "request"; min: number; max: number }
) & {
  /** What it does (docs/topics.md, Markdown). */
  doc: string;
  /** What operators call it ("打开燃气阀"), as the console does; a YAML profile's command has none: its name is said. */
  names?: Readonly<Record<"zh-CN" | "en", string>>;
  /** It moves something on site: the console asks the operator to confirm before sending it. */
  actuates?: boolean;
};

/** One register read beside the poll (`ModbusDeviceProfile.settingReads`). */
export interface SettingRead {
  name: string;
  fn: 3 | 4;
  address: number;
  /** Read again this long after the last read. */
  refreshMs: number;
}

export interface ModbusTypes extends ProfileTypes {
  binding: "modbus-serial" | "modbus-tcp";
}

export interface ModbusDeviceProfile<S = unknown, State = unknown, T extends ModbusTypes = ModbusTypes>
  extends ProfileCommon<S, State, T> {
  readonly transport: "modbus";
  /** Function code of the poll: 3 holding registers, 4 input registers. */
  readonly fn: 3 | 4;
  /** The register map, as data (devices/modbus-decode.ts applies it). */
  readonly points: readonly PointSpec[];
  /** Read across gaps of at most this many registers in one request. */
  readonly maxGap: number;
  /** How soon the slave answers, ms, by its datasheet ("answers within 80 ms"): the line budget's turnaround. */
  readonly turnaroundMs?: number;
  /**
   * The least reply timeout its datasheet asks a master to allow, ms (MFS-8 "allow at least 100 ms
   * before calling a request lost"); a bus set shorter is warned about (`linli config check`).
   */
  readonly minReplyTimeoutMs?: number;
  /**
   * Modbus TCP: the device closes a connection idle this long, ms (GK-3: 120 s); the bus replaces
   * an idle link before then, so a device polled slowly is neither lost nor counted as a link fault.
   */
  readonly peerIdleCloseMs?: number;
  /**
   * Registers the poll does not cover, read when the device is attached, every `refreshMs`, and
   * after one of its commands writes them (the LV-4's low set-point: a holding register, while its
   * poll reads input registers). Each value reaches the rules through `applySetting`.
   */
  readonly settingReads?: readonly SettingRead[];
  /** A setting read's register word into the rule state. */
  applySetting?(state: State, name: string, value: number): void;
  /** Consecutive failed polls after which the device is lost (datasheets: 3). */
  readonly missedPollsForLost: number;
  /** Turns decoded points into the typed sample, or refuses an implausible reading. */
  decode(values: Readonly<Record<string, PointValue>>): S | Rejection;
  /**
   * Lane by content: life-safety states in P1, a change of status in the alert lane, else
   * telemetry. `state` and `settings` as for an MQTT profile's `lane`.
   */
  lane(sample: S, previous: S | null, state?: State, settings?: DeviceSettings & T["settings"]): LaneId;
  readonly commands: Readonly<Record<string, ModbusCommand>>;
}

/** Any profile's declared types: what the registry may rely on whatever the model. */
interface AnyTypes<B extends Binding> {
  model: string;
  binding: B;
  code: string;
  // biome-ignore lint/suspicious/noExplicitAny: settings and config fields differ by model.
  settings: any;
  // biome-ignore lint/suspicious/noExplicitAny: settings and config fields differ by model.
  config: any;
}
export type AnyProfile =
  // biome-ignore lint/suspicious/noExplicitAny: the registry holds profiles of every sample and state type.
  | MqttDeviceProfile<any, any, AnyTypes<"mqtt">>
  // biome-ignore lint/suspicious/noExplicitAny: the registry holds profiles of every sample and state type.
  | ModbusDeviceProfile<any, any, AnyTypes<"modbus-serial" | "modbus-tcp">>;

/** The alert codes a profile declares. */
export type AlertCodeOf<P> = P extends {
  readonly alerts: Readonly<Record<infer C extends string, AlertSpec>>;
}
  ? C
  : never;

/**
 * Why a profile cannot run: a binding that does not match its transport, a
 * polled model that is never called lost, a heartbeat model without a
 * default interval, a command without documentation. Null when it can.
 */
export function profileProblem(p: AnyProfile): string | null {
  const where = `device model "${p.model}"`;
  // Profiles may come from outside the type checker (declarative devices): test the plain values.
  const binding: string = p.binding;
  const transport: string = p.transport;
  if (!(BINDINGS as readonly string[]).includes(binding)) return `${where}: unknown binding "${binding}"`;
  if (transport === "mqtt" && binding !== "mqtt")
    return `${where}: an MQTT profile bound as ${binding} could never be polled`;
  if (p.transport === "modbus") {
    if (binding === "mqtt") return `${where}: a Modbus profile bound as mqtt would never be polled`;
    if (!(p.missedPollsForLost >= 1))
      return `${where}: missedPollsForLost must be at least 1, or a silent device is never called lost`;
    if (p.points.length === 0) return `${where}: no points to poll`;
  } else if (transport !== "mqtt") return `${where}: unknown transport "${transport}"`;
  else if (!(mqttLostRule(p).heartbeats > 0))
    return `${where}: lostAfter.heartbeats must be above 0, or a silent device is never called lost`;
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(p.model))
    return `${where}: a model name is lower-case letters, digits, _ and -`;
  const interval = typeof p.interval === "string" ? parseDuration(p.interval) : null;
  if (interval === null || interval <= 0)
    return `${where}: no default ${p.transport === "mqtt" ? "heartbeat" : "poll"} interval, so it could not be supervised`;
  for (const [name, c] of Object.entries(p.commands))
    if (!c.doc) return `${where}: command ${name} has no doc`;
  return null;
}
