/**
 * A declared profile (schema.ts) compiled into the profile interface the code
 * profiles implement (devices/profile.ts): Modbus points become the point
 * specs of modbus-decode.ts (the one decoder), analog alarms use the engine's
 * ThresholdState, delays are the engine's on/off delays.
 */
import { z } from "zod";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY, type LaneId, type MetricValue } from "../../core/index.js";
import { fieldAt } from "../../protocols/index.js";
import type { PointSpec, PointType, PointValue } from "../modbus-decode.js";
import { validatePointSpecs } from "../modbus-decode.js";
import {
  type AlertSpec,
  type AnyProfile,
  type CommandReply,
  type DeviceSettings,
  type ModbusCommand,
  type ModbusDeviceProfile,
  type MqttCommand,
  type MqttDeviceProfile,
  type Rejection,
  type RuleContext,
  reject,
  type TelemetryTest,
} from "../profile.js";
import { ThresholdState } from "../threshold.js";
import { declaredDurable } from "./durable.js";
import {
  type AutoCommandDoc,
  type Condition,
  type ConditionPart,
  type DeclaredProfileDoc,
  type FromPoint,
  type HoldWhile,
  type Limit,
  type ModbusCommandDoc,
  modbusCommandSchema,
} from "./schema.js";
import type { DeclaredState } from "./state.js";

/** What a declared profile's rules see: the decoded points (or JSON fields) by name. */
export interface DeclaredSample {
  v: Readonly<Record<string, PointValue | boolean>>;
  seq: number;
  ts: number | null;
}

type Alarm = DeclaredProfileDoc["alarms"][number];

/** An alarm's single condition; null for an `all:` one. */
const single = (a: Alarm): Condition | null => ("all" in a.when ? null : a.when);
/** The points an alarm's condition reads (its own; an `all:` alarm's parts' points). */
const pointsOf = (a: Alarm): string[] =>
  "all" in a.when ? a.when.all.flatMap((c) => (c.point !== undefined ? [c.point] : [])) : [a.when.point];

const TYPE: Readonly<Record<string, PointType>> = {
  uint16: "u16",
  int16: "i16",
  uint32: "u32",
  int32: "i32",
  float32: "f32",
  bitfield: "bitfield",
  enum: "enum",
};

/** A declared profile's device-level settings for the rules (`devices[].settings`). */
export interface DeclaredSettings {
  params: Readonly<Record<string, number>>;
}

/**
 * The config fields of a declared profile's devices, beyond their binding's:
 * the values of its settings by name (checked against the profile's settings
 * in gateway/config/checks.ts, which knows the document).
 */
const declaredConfig = {
  settings: z
    .record(z.string(), z.number())
    .default({})
    .meta({ description: "Values of the profile's settings, by name" }),
};

interface DeclaredTypes<B extends "mqtt" | "modbus-serial" | "modbus-tcp"> {
  model: string;
  binding: B;
  code: string;
  settings: DeclaredSettings;
  config: typeof declaredConfig;
}

export function compileProfile(doc: DeclaredProfileDoc): AnyProfile {
  return doc.transport === "modbus" ? compileModbus(doc) : compileMqtt(doc);
}

function compileModbus(
  doc: DeclaredProfileDoc,
): ModbusDeviceProfile<DeclaredSample, DeclaredState, DeclaredTypes<"modbus-serial" | "modbus-tcp">> {
  const m = doc.modbus!;
  const points: PointSpec[] = m.points.map((p) => ({
    name: p.name,
    address: p.address,
    type: TYPE[p.type]!,
    ...(p.wordOrder ? { wordOrder: p.wordOrder as PointSpec["wordOrder"] } : {}),
    ...(p.scale !== undefined ? { scale: p.scale } : {}),
    ...(p.offset !== undefined ? { offset: p.offset } : {}),
    ...(p.unit !== undefined ? { unit: p.unit } : {}),
    ...(p.bits ? { bits: p.bits } : {}),
    ...(p.values
      ? { values: Object.fromEntries(Object.entries(p.values).map(([k, v]) => [Number(k), v])) }
      : {}),
  }));
  validatePointSpecs(points);
  const commands: Record<string, ModbusCommand> = {};
  for (const [name, raw] of Object.entries(doc.commands))
    commands[name] = modbusCommand(modbusCommandSchema.parse(raw));
  const core = rulesCore(doc);
  const reads = new Map(m.reads.map((r) => [r.name, r]));
  let seq = 0;
  return {
    ...core,
    transport: "modbus",
    settingReads: m.reads.map((r) => ({
      name: r.name,
      fn: r.registers === "input" ? 4 : 3,
      address: r.address,
      refreshMs: r.every,
    })),
    applySetting(st, name, word) {
      const r = reads.get(name);
      if (!r) return;
      const raw = r.type === "int16" && word >= 0x8000 ? word - 0x10000 : word;
      st.reads[name] = raw * (r.scale ?? 1) + (r.offset ?? 0);
    },
    binding: m.link === "tcp" ? "modbus-tcp" : "modbus-serial",
    interval: `${m.pollInterval}ms`,
    ...(m.turnaround !== undefined ? { turnaroundMs: m.turnaround } : {}),
    ...(m.minReplyTimeout !== undefined ? { minReplyTimeoutMs: m.minReplyTimeout } : {}),
    ...(m.idleClose !== undefined ? { peerIdleCloseMs: m.idleClose } : {}),
    fn: m.registers === "input" ? 4 : 3,
    points,
    maxGap: m.maxGap,
    missedPollsForLost: m.missedPollsForLost,
    commands,
    decode(values): DeclaredSample | Rejection {
      for (const p of m.points) {
        const v = values[p.name];
        if (p.expect !== undefined && v !== p.expect)
          return reject(
            "bad-field",
            `${p.name} is ${String(v)}, expected ${p.expect} (another device model?)`,
          );
        if (typeof v === "number") {
          if (!Number.isFinite(v)) return reject("bad-field", `${p.name} is not a number`);
          if ((p.min !== undefined && v < p.min) || (p.max !== undefined && v > p.max))
            return reject("out-of-range", `${p.name} ${v} is outside ${p.min ?? "-∞"}..${p.max ?? "∞"}`);
        }
      }
      return { v: values, seq: ++seq, ts: null };
    },
    lane: (s, previous, st, settings) => core.laneOf(s, previous, st, settings),
  };
}

function modbusCommand(c: ModbusCommandDoc): ModbusCommand {
  if ("coil" in c)
    return {
      fn: 5,
      address: c.coil,
      value: c.value ? 0xff00 : 0,
      doc: `coil ${c.coil} ${c.value ? "ON" : "OFF"}`,
    };
  if (c.value === "request") {
    const min = c.min ?? 0;
    const max = c.max ?? 0xffff;
    return {
      fn: 6,
      address: c.register,
      value: "request",
      min,
      max,
      doc: `register ${c.register} := the request's \`value\` (${min}-${max})`,
    };
  }
  return { fn: 6, address: c.register, value: c.value, doc: `register ${c.register} := ${c.value}` };
}

function compileMqtt(
  doc: DeclaredProfileDoc,
): MqttDeviceProfile<DeclaredSample, DeclaredState, DeclaredTypes<"mqtt">> {
  const q = doc.mqtt!;
  const core = rulesCore(doc);
  let counter = 0;
  // Rules evaluate every alarm from each message, and lanes reorder: a message older than one
  // already applied may run after it. A message carrying every alarm's point is the device's whole
  // state, superseded by the newer one (gateway/consume.ts). Otherwise, for a model with a P1
  // alarm, its alert-lane messages take the P1 lane, so an older one never clears a newer P1.
  // A field an `unreliableWhen` names decides alarms too (it holds them).
  const alarmPoints = new Set([
    ...doc.alarms.flatMap(pointsOf),
    ...q.fields.flatMap((f) => (f.unreliableWhen ? [f.unreliableWhen.point] : [])),
  ]);
  const snapshot = q.fields.every((f) => f.required || !alarmPoints.has(f.name));
  const alertsInP1 = !snapshot && doc.alarms.some((a) => a.priority === 1);
  const kinds = q.kinds;
  const pathOf = new Map(q.fields.map((f) => [f.name, f.path]));
  const kindPath = kinds === undefined ? "" : pathOf.get(kinds.field);
  return {
    ...core,
    transport: "mqtt",
    snapshot,
    binding: "mqtt",
    jsonOnly: q.jsonOnly,
    interval: `${q.heartbeatInterval}ms`,
    lostAfter: q.lostAfter,
    maxPayloadBytes: q.maxPayloadBytes,
    uplinkTopic: (id) => q.uplink.replaceAll("{id}", id),
    downlinkTopic: (id) => (q.downlink ? q.downlink.replaceAll("{id}", id) : null),
    // A declared downlink is sent as written, a string value "{id}" (at any depth) as the request's
    // id: the one the device's reply names (the GD-2's `{"cmd":"valve_close","id":"<string>"}`).
    commands: Object.fromEntries(
      Object.entries(doc.commands).map(([name, message]): [string, MqttCommand] => [
        name,
        { doc: `downlink \`${JSON.stringify(message)}\``, message: (id) => withId(message, id) as object },
      ]),
    ),
    ...(q.reply ? { reply: (s: DeclaredSample) => replyOf(q.reply!, s) } : {}),
    parse(value): DeclaredSample | Rejection {
      if (typeof value !== "object" || value === null || Array.isArray(value))
        return reject("bad-field", "payload is not a JSON object");
      const v: Record<string, PointValue | boolean> = {};
      for (const f of q.fields) {
        const x = fieldAt(value, f.path);
        if (x === undefined || x === null) {
          if (f.required) return reject("bad-field", `${f.path} is missing`);
          continue;
        }
        const ok =
          f.type === "number"
            ? typeof x === "number" && Number.isFinite(x)
            : f.type === "integer"
              ? Number.isSafeInteger(x)
              : typeof x === f.type;
        if (!ok)
          return reject("bad-field", `${f.path} must be ${f.type === "integer" ? "an" : "a"} ${f.type}`);
        if (
          typeof x === "number" &&
          ((f.min !== undefined && x < f.min) || (f.max !== undefined && x > f.max))
        )
          return reject("out-of-range", `${f.path} ${x} is outside ${f.min ?? "-∞"}..${f.max ?? "∞"}`);
        v[f.name] = x as PointValue | boolean;
      }
      // The fields its kind carries (mqtt.kinds): absent, refused as the code profiles refuse it.
      if (kinds !== undefined) {
        const k = v[kinds.field];
        const want = k === undefined ? undefined : kinds.require[String(k)];
        if (want === undefined) {
          if (kinds.others === "refuse")
            return reject(
              "bad-field",
              `${kindPath} must be one of ${Object.keys(kinds.require).join(", ")}, got ${k === undefined ? "none" : JSON.stringify(k)}`,
            );
        } else
          for (const n of want)
            if (v[n] === undefined)
              return reject("bad-field", `${pathOf.get(n)} is missing (a ${String(k)} message carries it)`);
      }
      let seq = ++counter;
      if (q.seq !== undefined) {
        const s = fieldAt(value, q.seq);
        if (!Number.isSafeInteger(s) || (s as number) < 0)
          return reject(
            "bad-field",
            s === undefined
              ? `${q.seq} is missing (a non-negative integer)`
              : `${q.seq} must be a non-negative integer`,
          );
        seq = s as number;
      }
      let ts: number | null = null;
      if (q.time !== undefined) {
        const t = fieldAt(value, q.time);
        if (!Number.isSafeInteger(t) || (t as number) < 0)
          return reject(
            "bad-field",
            t === undefined
              ? `${q.time} is missing (epoch milliseconds)`
              : `${q.time} must be epoch milliseconds`,
          );
        ts = t as number;
      }
      return { v, seq, ts };
    },
    seq: (s) => s.seq,
    // No previous message to compare with: a message with an alarm condition goes in the alert lane.
    lane: alertsInP1
      ? (s, st, settings) => (core.laneNow(s, st, settings) === LANE_TELEMETRY ? LANE_TELEMETRY : LANE_P1)
      : (s, st, settings) => core.laneNow(s, st, settings),
    telemetryWhen: telemetryWhenOf(doc),
  };
}

/**
 * laneNow as data: a message is telemetry when no alarm's `equals` holds (absent and null are
 * stored as absent, and equal nothing). `bit` conditions are not expressed, nor `below` / `above`
 * ones (their lane depends on the device's settings and on whether the last reading was beyond):
 * a model with one has none, and its messages all take the device listener's alert ring.
 */
function telemetryWhenOf(doc: DeclaredProfileDoc): TelemetryTest[] | undefined {
  const q = doc.mqtt!;
  const values = new Map<string, (string | number | boolean)[]>();
  // A hold's lane depends on whether its alert is raised (the rule state).
  if (doc.alarms.some((a) => a.holdWhile !== undefined)) return undefined;
  for (const a of doc.alarms) {
    const w = single(a);
    if (w === null || w.bit !== undefined || w.equals === undefined) return undefined;
    const path = q.fields.find((f) => f.name === w.point)?.path;
    if (path === undefined) return undefined;
    values.set(path, [...(values.get(path) ?? []), w.equals]);
  }
  return [...values].map(([field, notOneOf]) => ({ field, notOneOf }));
}

/** Everything but the transport: metrics, rules, suppression. */
function rulesCore(doc: DeclaredProfileDoc) {
  const alarms = doc.alarms;
  // Alarms sharing a code are one alert (its causes every one that holds): the indices of each code.
  const byCode = new Map<string, number[]>();
  alarms.forEach((a, i) => {
    byCode.set(a.code, [...(byCode.get(a.code) ?? []), i]);
  });
  const groups = [...byCode.values()];
  /** Each code's `holdWhile` (schema.ts: on one of its alarms), with that alarm's priority. */
  const holdOf = groups.map((g) => {
    const i = g.find((j) => alarms[j]!.holdWhile !== undefined);
    return i === undefined ? null : { ...alarms[i]!.holdWhile!, priority: alarms[i]!.priority };
  });
  const groupOf = new Map([...byCode.keys()].map((code, k) => [code, k]));
  /** Each code's `peak` and automatic `command` (schema.ts: on one of its alarms). */
  const peakOf = groups.map((g) => alarms[g.find((j) => alarms[j]!.peak !== undefined) ?? -1]?.peak ?? null);
  const commandOf = groups.map(
    (g) => alarms[g.find((j) => alarms[j]!.command !== undefined) ?? -1]?.command ?? null,
  );
  const unlessPoints = [...new Set(commandOf.flatMap((c) => (c?.unless ? [c.unless.point] : [])))];
  /** Whether a code's condition holds in the state: one of its alarms, or its hold alone. */
  const codeOn = (st: DeclaredState, code: string): boolean =>
    byCode.get(code)!.some((j) => st.alarms[j]!.active) || st.holding[groupOf.get(code)!]!.on;
  const metricPoints =
    doc.transport === "modbus"
      ? doc.modbus!.points.filter((p) => p.metric).map((p) => ({ name: p.name, unit: p.unit, bits: p.bits }))
      : doc
          .mqtt!.fields.filter((f) => f.metric)
          .map((f) => ({ name: f.name, unit: f.unit, bits: undefined }));
  const spikeOf = new Map(doc.spikes.map((s, i) => [s.point, i]));
  const num = (s: DeclaredSample, point: string) => s.v[point] as number;
  const readNames = new Set(doc.modbus?.reads.map((r) => r.name) ?? []);
  /** A point's or a read register's value; NaN when it has none (not read, absent, not a number). */
  const pointValue = (s: DeclaredSample, st: DeclaredState, n: string): number => {
    const v = readNames.has(n) ? st.reads[n] : s.v[n];
    return typeof v === "number" ? v : Number.NaN;
  };
  const fromPoint = (l: FromPoint, s: DeclaredSample, st: DeclaredState): number => {
    const v = pointValue(s, st, l.point);
    const bound = (b: number | string | undefined) =>
      b === undefined ? undefined : typeof b === "number" ? b : pointValue(s, st, b);
    const min = bound(l.min);
    const max = bound(l.max);
    // NaN (never read, or a bound unreadable) fails every comparison: the `else` limit.
    if (Number.isFinite(v) && (min === undefined || v >= min) && (max === undefined || v <= max)) return v;
    return typeof l.else === "number" ? l.else : l.else.ratio * pointValue(s, st, l.else.of);
  };

  const resolve = (l: Limit, s: DeclaredSample, st: DeclaredState, settings: DeclaredSettings): number => {
    if (typeof l === "number") return l;
    if ("ratio" in l) return l.ratio * pointValue(s, st, l.of);
    if ("point" in l) return fromPoint(l, s, st);
    const given = settings.params[l.setting];
    if (given !== undefined) return given;
    const d = doc.settings[l.setting]?.default;
    if (d === undefined) return Number.NaN;
    if (typeof d === "number") return d;
    return "point" in d ? fromPoint(d, s, st) : d.ratio * pointValue(s, st, d.of);
  };
  /** A threshold's deadband: its own, or the distance from the limit back to its `clearAt` (none past it). */
  const deadbandOf = (
    w: Condition,
    limit: number,
    s: DeclaredSample,
    st: DeclaredState,
    settings: DeclaredSettings,
  ): number => {
    if (w.clearAt === undefined) return w.deadband ?? 0;
    const clear = resolve(w.clearAt, s, st, settings);
    const d = w.above !== undefined ? limit - clear : clear - limit;
    // An unresolvable clear point (NaN) holds nothing, as one on the limit's own side.
    if (!(d > 0)) return 0;
    return d;
  };
  const bitOf = (s: DeclaredSample, point: string, bit: string | number): boolean => {
    const v = s.v[point];
    if (typeof v === "object" && v !== null) return (v as Record<string, boolean>)[bit as string] === true;
    return typeof v === "number" && typeof bit === "number" && Math.floor(v / 2 ** bit) % 2 === 1;
  };
  /** A bit or (in)equality; a point without a value (never received) is neither equal nor unequal. */
  const holds = (w: Condition | ConditionPart, s: DeclaredSample): boolean | null => {
    const point = w.point!;
    if (w.bit !== undefined) return bitOf(s, point, w.bit);
    if (w.equals !== undefined) return s.v[point] === w.equals;
    if (w.notEquals !== undefined) return s.v[point] !== undefined && s.v[point] !== w.notEquals;
    return null;
  };
  /**
   * A `holdWhile` condition on this sample; null when it says nothing (its point absent or not
   * believed, a limit that cannot be resolved): the hold stays as it was.
   */
  const holdHolds = (
    h: HoldWhile,
    s: DeclaredSample,
    st: DeclaredState | undefined,
    settings: DeclaredSettings,
  ): boolean | null => {
    const v = s.v[h.point];
    if (v === undefined || doubtful(s, h.point, st)) return null;
    if (h.equals !== undefined) return v === h.equals;
    if (h.notEquals !== undefined) return v !== h.notEquals;
    if (typeof v !== "number") return null;
    const high = h.above !== undefined;
    const limit = resolve((high ? h.above : h.below)!, s, st ?? blankState, settings);
    if (!Number.isFinite(limit)) return null;
    if (high) return h.inclusive ? v >= limit : v > limit;
    return h.inclusive ? v <= limit : v < limit;
  };
  /** Conditions that need no setting or history: bits and (in)equality (for the lane); null for others. */
  const raw = (a: Alarm, s: DeclaredSample): boolean | null => {
    const w = single(a);
    return w === null ? null : holds(w, s);
  };
  /**
   * For the lane: whether an `all:` alarm may hold with this sample (its parts whose point it
   * carries hold, and each code it names holds in the state or is raised by this sample); null: it
   * carries none of them, or not an `all:` alarm. Without a state (tests), a named code may hold.
   */
  const allHolds = (a: Alarm, s: DeclaredSample, st?: DeclaredState): boolean | null => {
    if (!("all" in a.when)) return null;
    let present = false;
    for (const c of a.when.all) {
      if (c.alarm !== undefined) {
        if (st === undefined) continue;
        const k = groupOf.get(c.alarm)!;
        const on =
          (holdOf[k] !== null && st.holding[k]!.was) ||
          byCode
            .get(c.alarm)!
            .some((j) => st.alarms[j]!.active || st.alarms[j]!.laneHeld || raw(alarms[j]!, s) === true);
        if (!on) return false;
      } else if (s.v[c.point!] !== undefined) {
        present = true;
        if (holds(c, s) !== true) return false;
      }
    }
    return present ? true : null;
  };
  const bitfields = metricPoints.filter((p) => p.bits).map((p) => p.name);
  // `unreliableWhen`: a point not believed while another holds one of the given values (an enum's
  // register values stand for their names, which is what the enum decodes to).
  const unreliable = new Map<string, { point: string; values: Set<PointValue | boolean> }>();
  for (const p of doc.modbus?.points ?? []) {
    const u = p.unreliableWhen;
    if (!u) continue;
    const enumValues = doc.modbus!.points.find((o) => o.name === u.point)?.values;
    const values = u.oneOf.map((v) => (enumValues && typeof v === "number" ? enumValues[String(v)]! : v));
    unreliable.set(p.name, { point: u.point, values: new Set(values) });
  }
  for (const f of doc.mqtt?.fields ?? [])
    if (f.unreliableWhen)
      unreliable.set(f.name, { point: f.unreliableWhen.point, values: new Set(f.unreliableWhen.oneOf) });
  const unreliablePoints = [...unreliable.keys()];
  const unreliableSources = [...new Set([...unreliable.values()].map((u) => u.point))];
  /**
   * Whether a point is not believed: the fault field's value in this sample, else (an MQTT message
   * without it) its last one (`lastOf`; none without a state: the lane of a test).
   */
  const doubtful = (s: DeclaredSample, point: string, st?: DeclaredState): boolean => {
    const u = unreliable.get(point);
    if (u === undefined) return false;
    return u.values.has((s.v[u.point] ?? st?.lastOf[u.point]) as PointValue);
  };
  const initialState = (): DeclaredState => ({
    alarms: alarms.map((a) => ({
      threshold: null,
      limit: Number.NaN,
      deadband: Number.NaN,
      active: false,
      onset: false,
      since: 0,
      laneHeld: false,
      parts: "all" in a.when ? a.when.all.map(() => ({ held: false, since: 0, known: false })) : [],
    })),
    spikes: doc.spikes.map(() => ({
      good: Number.NaN,
      lastAt: Number.NaN,
      suspectSince: Number.NaN,
      suspect: false,
    })),
    testing: false,
    doubted: false,
    reads: {},
    lastOf: {},
    codeSince: {},
    holding: groups.map(() => ({ was: false, hold: false, on: false })),
    incidents: groups.map(() => ({ on: false, peak: Number.NaN, suspectPeak: Number.NaN, sent: false })),
    seen: {},
  });
  /** A command's `unless` on the last value of its point; a point never had holds neither. */
  const unlessHolds = (c: AutoCommandDoc, st: DeclaredState): boolean => {
    const u = c.unless;
    if (u === undefined) return false;
    const v = st.seen[u.point];
    if (v === undefined) return false;
    return u.equals !== undefined ? v === u.equals : v !== u.notEquals;
  };
  /**
   * A code's incident (`peak`, `command`) as its condition is reported: begun (reset) when it turns
   * active, the peak taken from this sample, the command sent once; the alert's detail fields, or
   * undefined for a code with neither or an inactive condition.
   */
  const incident = (
    k: number,
    active: boolean,
    s: DeclaredSample,
    st: DeclaredState,
    settings: DeclaredSettings,
    ctx: RuleContext,
  ): Record<string, number | string | boolean> | undefined => {
    const pk = peakOf[k] ?? null;
    const cmd = commandOf[k] ?? null;
    if (pk === null && cmd === null) return undefined;
    const inc = st.incidents[k]!;
    if (!active) {
      inc.on = false;
      return undefined;
    }
    if (!inc.on) {
      inc.on = true;
      inc.peak = Number.NaN;
      inc.suspectPeak = Number.NaN;
      inc.sent = false;
    }
    const detail: Record<string, number | string | boolean> = {};
    if (pk !== null) {
      const v = s.v[pk.point];
      // NaN compares false: the first value of the incident is its peak.
      if (typeof v === "number") {
        if (!doubtful(s, pk.point, st)) {
          if (!(v <= inc.peak)) inc.peak = v;
        } else if (
          pk.suspectFrom !== undefined &&
          s.v[pk.suspectFrom.point] === pk.suspectFrom.equals &&
          !(v <= inc.suspectPeak)
        )
          inc.suspectPeak = v;
      }
      // Never 0 without a figure: an incident with no value is not one of value 0.
      detail[pk.as] = !Number.isNaN(inc.peak)
        ? inc.peak
        : Number.isNaN(inc.suspectPeak)
          ? "unknown"
          : inc.suspectPeak;
      // Named false too (and the command's fields below): the engine keeps the detail fields an
      // update leaves out, and a later believed peak or a new incident must not keep them true.
      if (pk.suspectFrom !== undefined)
        detail[`${pk.as}Suspect`] = Number.isNaN(inc.peak) && !Number.isNaN(inc.suspectPeak);
    }
    if (cmd !== null) {
      // schema.ts makes sure the switch is a 0/1 setting with a default.
      const on =
        cmd.setting === undefined ||
        (settings.params[cmd.setting] ?? (doc.settings[cmd.setting]?.default as number)) === 1;
      if (on && !inc.sent && !unlessHolds(cmd, st)) inc.sent = ctx.command(cmd.name);
      const as = (cmd.as ?? cmd.setting)!;
      detail[as] = inc.sent;
      // Queued for a device that is away: the text must not say it was sent.
      detail[`${as}Queued`] = inc.sent && (ctx.commandWaiting?.(cmd.name) ?? false);
    }
    return detail;
  };
  const isThreshold = (a: Alarm) => {
    const w = single(a);
    return w !== null && w.bit === undefined && w.equals === undefined && w.notEquals === undefined;
  };
  const thresholds = alarms.flatMap((a, i) => (isThreshold(a) ? [i] : []));
  const blankState = initialState();
  // The alarms whose state a message may not decide by itself, journaled: a threshold (its
  // deadband) and a bit or equals alarm on an optional MQTT field (a message without it keeps the
  // state). One on a point every message carries is decided again by the first message after a
  // restart: not journaled (null), so its flips (a door held open's) write nothing.
  const optionalFields = new Set((doc.mqtt?.fields ?? []).filter((f) => !f.required).map((f) => f.name));
  // An `all:` alarm is decided again from its parts (a part's field: the next message carrying it).
  const keptAlarms = alarms.map((a) => {
    const w = single(a);
    return w !== null && (isThreshold(a) || optionalFields.has(w.point));
  });
  const noSettings: DeclaredSettings = { params: {} };
  /**
   * The lane threshold alarms ask for, as the rules would evaluate them (the device's settings,
   * its reads): beyond the limit or not yet back across the deadband, the alarm's lane (P1 for a
   * P1 one); crossing back, at least the alert lane (a clear must not wait behind telemetry).
   * Without a state (tests), the defaults and no memory.
   */
  const thresholdLane = (s: DeclaredSample, st?: DeclaredState, settings?: DeclaredSettings): LaneId => {
    if (thresholds.length === 0) return LANE_TELEMETRY;
    // The rules leave thresholds alone while the device tests itself.
    if (doc.testWhile && bitOf(s, doc.testWhile.point, doc.testWhile.bit)) return LANE_TELEMETRY;
    const state = st ?? blankState;
    let lane: LaneId = LANE_TELEMETRY;
    for (const i of thresholds) {
      const a = alarms[i]!;
      const w = single(a)!;
      const v = s.v[w.point];
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      // Not believed: the rules hold its alarm, and the lane's memory too.
      if (doubtful(s, w.point, st)) continue;
      const high = w.above !== undefined;
      const limit = resolve((high ? w.above : w.below)!, s, state, settings ?? noSettings);
      if (!Number.isFinite(limit)) continue;
      const as = state.alarms[i]!;
      const held = as.active || as.laneHeld;
      const deadband = deadbandOf(w, limit, s, state, settings ?? noSettings);
      const back = high ? limit - deadband : limit + deadband;
      // As ThresholdState.update: an inclusive limit is crossed at the limit and held at its way back.
      const on = w.inclusive
        ? high
          ? v >= limit || (held && v >= back)
          : v <= limit || (held && v <= back)
        : high
          ? v > limit || (held && v > back)
          : v < limit || (held && v < back);
      if (st !== undefined) as.laneHeld = on;
      if (on && a.priority === 1) lane = LANE_P1;
      else if ((on || held) && lane === LANE_TELEMETRY) lane = LANE_ALERT;
    }
    return lane;
  };

  /**
   * The lane a raised alert's `holdWhile` asks for: still holding, the alert's own (P1 for a P1
   * one); no longer, at least the alert lane (its clear must not wait behind telemetry). Without a
   * state (tests), or before the alert is raised, none.
   */
  const holdLane = (s: DeclaredSample, st?: DeclaredState, settings?: DeclaredSettings): LaneId => {
    let lane: LaneId = LANE_TELEMETRY;
    if (st === undefined) return lane;
    holdOf.forEach((h, k) => {
      if (h === null || !st.holding[k]!.was) return;
      const c = holdHolds(h, s, st, settings ?? noSettings);
      if (c === null) return;
      if (c && h.priority === 1) lane = LANE_P1;
      else if (lane === LANE_TELEMETRY) lane = LANE_ALERT;
    });
    return lane;
  };

  const namedCodes = [
    ...new Set(alarms.flatMap((a) => ("all" in a.when ? a.when.all.flatMap((c) => c.alarm ?? []) : []))),
  ];
  const specs: Record<string, AlertSpec> = {};
  for (const a of alarms) {
    // Operators' words (title, action) come from the document (gateway/content/alert-content.ts).
    const same = alarms.filter((o) => o.code === a.code);
    const priorities = [...new Set(same.map((o) => o.priority))].sort();
    specs[a.code] = {
      priority: priorities.length === 1 ? priorities[0]! : priorities,
      raised: same.map((o) => o.cause ?? describe(o)).join(", or "),
      cleared: "the condition no longer holds",
    };
  }
  return {
    model: doc.model,
    label: doc.model,
    simulator: "(described as data: no emulator of its own)",
    config: declaredConfig,
    settings: (c: z.output<z.ZodObject<typeof declaredConfig>>): DeclaredSettings => ({ params: c.settings }),
    alerts: specs,
    lostPriority: doc.lostPriority,
    deviceTime: (s: DeclaredSample) => s.ts,
    isActivity: (s: DeclaredSample): boolean => {
      const w = doc.activityWhen;
      if (w === undefined) return false;
      return w.bit !== undefined ? bitOf(s, w.point, w.bit) : s.v[w.point] === w.equals;
    },
    suppressed: (s: DeclaredSample): false | "test" | "maintenance" => {
      const w = doc.suppressWhen;
      if (w === undefined) return false;
      return (w.bit !== undefined ? bitOf(s, w.point, w.bit) : s.v[w.point] === w.equals) ? w.as : false;
    },

    laneOf(
      s: DeclaredSample,
      previous: DeclaredSample | null,
      st?: DeclaredState,
      settings?: DeclaredSettings,
    ): LaneId {
      // First: it keeps the lane's memory of every threshold, whatever the other alarms say.
      const threshold = thresholdLane(s, st, settings);
      if (threshold === LANE_P1) return LANE_P1;
      const hold = holdLane(s, st, settings);
      if (hold === LANE_P1) return LANE_P1;
      let changed = previous === null || threshold === LANE_ALERT || hold === LANE_ALERT;
      for (const [i, a] of alarms.entries()) {
        const r = raw(a, s) ?? allHolds(a, s, st);
        if (r === true && a.priority === 1) return LANE_P1;
        if ("all" in a.when) {
          // A part changed, or a raised one no longer holds (its clear).
          const was = previous;
          if (was !== null && a.when.all.some((c) => c.point !== undefined && holds(c, s) !== holds(c, was)))
            changed = true;
          if (r === false && st?.alarms[i]?.active) changed = true;
          continue;
        }
        if (r !== null && previous !== null && r !== raw(a, previous)) changed = true;
      }
      // A sensor named faulty, or no longer: its alarms hold, or are judged again.
      if (previous !== null) for (const n of unreliableSources) if (s.v[n] !== previous.v[n]) changed = true;
      if (previous !== null)
        for (const b of bitfields)
          for (const [flag, v] of Object.entries(s.v[b] as Record<string, boolean>))
            if ((previous.v[b] as Record<string, boolean>)[flag] !== v) changed = true;
      return changed ? LANE_ALERT : LANE_TELEMETRY;
    },

    laneNow(s: DeclaredSample, st?: DeclaredState, settings?: DeclaredSettings): LaneId {
      const threshold = thresholdLane(s, st, settings);
      if (threshold === LANE_P1) return LANE_P1;
      const hold = holdLane(s, st, settings);
      if (hold === LANE_P1) return LANE_P1;
      let any = threshold === LANE_ALERT || hold === LANE_ALERT;
      for (const [i, a] of alarms.entries()) {
        const r = raw(a, s) ?? allHolds(a, s, st);
        // An `all:` alarm's clear must not wait behind telemetry.
        if (r === false && "all" in a.when && st?.alarms[i]?.active) any = true;
        if (r !== true) continue;
        if (a.priority === 1) return LANE_P1;
        any = true;
      }
      return any ? LANE_ALERT : LANE_TELEMETRY;
    },

    metrics(s: DeclaredSample, st: DeclaredState): Record<string, MetricValue> {
      const out: Record<string, MetricValue> = {};
      for (const p of metricPoints) {
        const v = s.v[p.name];
        if (v === undefined) continue;
        if (typeof v === "object") {
          for (const [flag, on] of Object.entries(v as Record<string, boolean>)) out[flag] = { value: on };
        } else out[p.name] = p.unit ? { value: v, unit: p.unit } : { value: v };
      }
      for (const [point, i] of spikeOf) out[`${point}Suspect`] = { value: st.spikes[i]!.suspect };
      if (doc.testWhile) out.testing = { value: st.testing };
      return out;
    },

    // Readings during the device's test, and a jump not yet believed, are flagged, not reported as real.
    quality: (_s: DeclaredSample, st: DeclaredState) =>
      st.testing ? "self-test" : st.doubted || st.spikes.some((sp) => sp.suspect) ? "suspect" : null,

    initialState,
    shiftTimes: (st: DeclaredState, ms: number) => {
      for (const a of st.alarms) if (a.since !== 0) a.since += ms;
    },

    // The last value of each `unreliableWhen` field (a fault flag a partial message does not
    // carry) survives a restart: after it, a reading the device called unreliable stays so. So
    // does whether each alarm is active: a restored alert inside its deadband holds until its
    // clear point, and one whose optional field a message leaves out stays as it was.
    ...(unreliableSources.length > 0 || alarms.length > 0
      ? {
          durable: declaredDurable(
            unreliableSources,
            keptAlarms,
            holdOf.flatMap((h, k) => (h === null ? [] : [k])),
            groups.flatMap((_g, k) => (peakOf[k] === null && commandOf[k] === null ? [] : [k])),
          ),
        }
      : {}),

    rules(
      s: DeclaredSample,
      st: DeclaredState,
      settings: DeviceSettings & DeclaredSettings,
      ctx: RuleContext,
    ): void {
      st.testing = doc.testWhile ? bitOf(s, doc.testWhile.point, doc.testWhile.bit) : false;
      // A fault field's value stands until a message carries it again; an older message (lanes
      // reorder) does not overrule what a newer one said.
      if (!ctx.stale)
        for (const n of unreliableSources) {
          const v = s.v[n];
          if (v !== undefined) st.lastOf[n] = v;
        }
      // What a command's `unless` reads: the point's last value, whatever the message's age.
      for (const n of unlessPoints) {
        const v = s.v[n];
        if (v !== undefined) st.seen[n] = v;
      }
      st.doubted = false;
      // Suspect: a reading of this sample not believed (a message without the reading is not).
      for (const n of unreliablePoints) if (s.v[n] !== undefined && doubtful(s, n, st)) st.doubted = true;
      // Jump filter: a reading far from the last believed one (for the time since the previous
      // poll, with `per`) is suspect until it persists; one outside min..max is never believed.
      doc.spikes.forEach((sp, i) => {
        const ss = st.spikes[i]!;
        ss.suspect = false;
        const sinceLast = ctx.readAt - ss.lastAt;
        // Not believed (`unreliableWhen`): no persistence counted, and no poll of the point either
        // (the fault is a gap: the first believed value after it is judged over the whole gap).
        const doubted = doubtful(s, sp.point, st);
        if (doubted) ss.suspectSince = Number.NaN;
        else ss.lastAt = ctx.readAt;
        if (st.testing) return;
        // Suspect, and never the reference.
        if (doubted) {
          ss.suspect = true;
          return;
        }
        const v = num(s, sp.point);
        if (
          (sp.max !== undefined && v > resolve(sp.max, s, st, settings)) ||
          (sp.min !== undefined && v < resolve(sp.min, s, st, settings))
        ) {
          ss.suspect = true;
          return;
        }
        const allowed =
          resolve(sp.maxJump, s, st, settings) * (sp.per === undefined ? 1 : sinceLast / sp.per);
        if (Math.abs(v - ss.good) > allowed && !Number.isNaN(ss.good)) {
          if (Number.isNaN(ss.suspectSince)) ss.suspectSince = ctx.readAt;
          if (ctx.readAt - ss.suspectSince < sp.persist) {
            ss.suspect = true;
            return;
          }
        }
        ss.good = v;
        ss.suspectSince = Number.NaN;
      });
      // Own conditions first (`unless` reads another alarm's), values held while not believable.
      const evaluated = alarms.map((a, i) => {
        const as = st.alarms[i]!;
        const w = single(a);
        // After every single condition: an `all:` alarm reads the codes it names (below).
        if (w === null) return false;
        // A point not believed (`unreliableWhen`) holds its alarm: neither raised nor cleared, and
        // its on-delay starts again from the first believed reading after (`since` forgotten).
        if (doubtful(s, w.point, st)) {
          as.since = 0;
          return false;
        }
        const r = raw(a, s);
        if (r !== null) {
          // An optional field absent from this message says nothing of it: the alarm keeps its
          // state (as a threshold's does), rather than reading "not true" as cleared.
          if (s.v[w.point] !== undefined) {
            as.active = r;
            as.onset = r;
          }
        } else {
          const spike = spikeOf.get(w.point);
          if (st.testing || (spike !== undefined && st.spikes[spike]!.suspect)) return false;
          const high = w.above !== undefined;
          const limit = resolve((high ? w.above : w.below)!, s, st, settings);
          if (!Number.isFinite(limit)) return false;
          const deadband = deadbandOf(w, limit, s, st, settings);
          if (as.threshold === null || as.limit !== limit || as.deadband !== deadband) {
            const first = as.threshold === null;
            const inclusive = w.inclusive === true;
            as.threshold = new ThresholdState(
              high ? { above: limit, deadband, inclusive } : { below: limit, deadband, inclusive },
            );
            // The first build after a restart takes whether it was crossed from the journal
            // (`durable`; false on a fresh start, before any reading).
            if (first) as.threshold.active = as.active;
            as.limit = limit;
            as.deadband = deadband;
          }
          as.active = as.threshold.update(num(s, w.point));
          // The on-delay times the limit itself; the deadband is the way back of a raised alert.
          as.onset = as.threshold.beyond;
        }
        if (as.onset && as.since === 0) as.since = ctx.now;
        if (!as.onset) as.since = 0;
        return true;
      });
      // A code's hold (`holdWhile`): the alert raised before this message stays while it holds,
      // when none of the code's own alarms holds it any more.
      holdOf.forEach((h, k) => {
        if (h === null) return;
        const hs = st.holding[k]!;
        const c = holdHolds(h, s, st, settings);
        if (c !== null) hs.hold = c;
        hs.on = hs.was && hs.hold && !groups[k]!.some((i) => st.alarms[i]!.active);
      });
      // The codes `all:` parts name: since when each holds (the incident's start, as gd2.ts's leakSince).
      for (const code of namedCodes) {
        const on = codeOn(st, code);
        if (!on) delete st.codeSince[code];
        else if (st.codeSince[code] === undefined) st.codeSince[code] = ctx.now;
      }
      alarms.forEach((a, i) => {
        if (!("all" in a.when)) return;
        const as = st.alarms[i]!;
        // A part's point not believed (`unreliableWhen`) holds the alarm, as a single condition's.
        if (a.when.all.some((c) => c.point !== undefined && doubtful(s, c.point, st))) {
          as.since = 0;
          return;
        }
        a.when.all.forEach((c, j) => {
          const ps = as.parts[j]!;
          if (c.alarm !== undefined) {
            ps.held = st.codeSince[c.alarm] !== undefined;
            ps.since = st.codeSince[c.alarm] ?? 0;
            return;
          }
          // A message without the point says nothing of it: the part keeps its value.
          if (s.v[c.point!] === undefined) return;
          ps.known = true;
          const h = holds(c, s) === true;
          if (h && !ps.held) ps.since = ctx.now;
          if (!h) ps.since = 0;
          ps.held = h;
        });
        // A part's point not had since the start (a restart, then a message without it: the GD-2's
        // reply): nothing is known of the alarm, and an alert restored from the journal stands.
        if (a.when.all.some((c, j) => c.point !== undefined && !as.parts[j]!.known)) {
          as.since = 0;
          return;
        }
        as.active = as.parts.every((p) => p.held);
        as.onset = as.active;
        // The on-delay runs from the first part's onset: "not closed within 20 s" of the leak.
        as.since = as.active ? as.parts[0]!.since : 0;
        evaluated[i] = true;
      });
      // One condition per code: raised while any of its alarms holds, naming each that holds, at
      // the highest priority among them (the MFS-8's one FIRE_ALARM for smoke, heat and call point;
      // its FAULT P2 while the pump's, else P3). Alarms sharing a code share their delays and
      // `unless` (schema.ts), so one alarm's group behaves as that alarm alone.
      for (const [k, group] of groups.entries()) {
        const first = alarms[group[0]!]!;
        const onDelayMs = onDelayOf(first, settings, doc);
        const replaced =
          first.unless !== undefined && byCode.get(first.unless)!.some((j) => st.alarms[j]!.active);
        const causes: string[] = [];
        let priority = first.priority;
        let anyEvaluated = false;
        let onset = false;
        let since = Number.NaN;
        for (const i of group) {
          const a = alarms[i]!;
          const as = st.alarms[i]!;
          if (evaluated[i]) anyEvaluated = true;
          // The earliest onset of the group (NaN compares false: the first one found).
          if (as.active && as.onset && onDelayMs !== undefined && !(as.since >= since)) since = as.since;
          if (!as.active || replaced) continue;
          // A value not believed (self-test, a suspect jump, `unreliableWhen`) cannot confirm an
          // on-delay: it holds a raised alert within the deadband only (onset false, below).
          if (evaluated[i] && as.onset) onset = true;
          let cause = a.cause ?? describe(a);
          if (a.causeFrom !== undefined) cause = `${cause}: ${String(s.v[a.causeFrom])}`;
          causes.push(cause);
          if (causes.length === 1 || a.priority < priority) priority = a.priority;
        }
        // Held by its hold alone: no onset (it raises nothing, nor confirms an on-delay).
        const hold = holdOf[k];
        if (hold !== null && hold !== undefined && st.holding[k]!.on && !replaced) {
          causes.push(hold.cause ?? describeHold(hold));
          priority = hold.priority;
        }
        const active = causes.length > 0;
        if (!anyEvaluated) {
          // Nothing believed: one that runs out meanwhile must not raise. Reported within the
          // deadband only (onset false), a raised alert holds and a pending one ends; the next real
          // value decides, from `since` (forgotten after an `unreliableWhen`).
          if (active && onDelayMs !== undefined) {
            const detail = incident(k, true, s, st, settings, ctx);
            ctx.condition(first.code, true, {
              priority,
              causes,
              onset: false,
              ...(first.escalateAs !== undefined ? { escalateAs: first.escalateAs } : {}),
              ...(detail !== undefined ? { detail } : {}),
            });
          }
          continue;
        }
        st.holding[k]!.was = active;
        const detail = incident(k, active, s, st, settings, ctx);
        ctx.condition(first.code, active, {
          priority,
          causes,
          ...(detail !== undefined ? { detail } : {}),
          ...(onDelayMs !== undefined ? { onDelayMs } : {}),
          ...(first.offDelay !== undefined ? { offDelayMs: first.offDelay } : {}),
          ...(first.escalateAs !== undefined ? { escalateAs: first.escalateAs } : {}),
          ...(active && !onset ? { onset: false } : {}),
          ...(Number.isNaN(since) ? {} : { since }),
        });
      }
    },
  };
}

/** A command's JSON with every string value "{id}" replaced by the request's id. */
function withId(v: unknown, id: string): unknown {
  if (v === "{id}") return id;
  if (Array.isArray(v)) return v.map((x) => withId(x, id));
  if (typeof v === "object" && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withId(x, id)]));
  return v;
}

/** A message that is the device's answer to a command, as `mqtt.reply` maps it; null for any other. */
function replyOf(
  r: NonNullable<NonNullable<DeclaredProfileDoc["mqtt"]>["reply"]>,
  s: DeclaredSample,
): CommandReply | null {
  if (s.v[r.when.point] !== r.when.equals) return null;
  const id = s.v[r.id];
  const command = s.v[r.command];
  const result = s.v[r.result];
  if (typeof id !== "string" || typeof command !== "string" || typeof result !== "string") return null;
  return { id, command, result, ok: result === r.ok };
}

/** An alarm's on-delay, ms: its duration, or its setting's seconds (the device's, else the default). */
function onDelayOf(a: Alarm, settings: DeclaredSettings, doc: DeclaredProfileDoc): number | undefined {
  const d = a.onDelay;
  if (d === undefined || typeof d === "number") return d;
  // schema.ts makes sure the setting is in seconds with a number default.
  const seconds = settings.params[d.setting] ?? (doc.settings[d.setting]?.default as number);
  return seconds * 1000;
}

/** A hold's condition in words, as `describe` says an alarm's ("lel at or over 5"). */
function describeHold(h: HoldWhile): string {
  return describe({ code: "X", priority: 1, when: h } as Alarm);
}

function describe(a: Alarm): string {
  if ("all" in a.when)
    return a.when.all
      .map((c) =>
        c.alarm !== undefined
          ? c.alarm
          : c.bit !== undefined
            ? `${c.point} ${c.bit}`
            : c.equals !== undefined
              ? `${c.point} is ${String(c.equals)}`
              : `${c.point} is not ${String(c.notEquals)}`,
      )
      .join(" and ");
  const w = a.when;
  const lim = (l: Limit) =>
    typeof l === "number"
      ? String(l)
      : "ratio" in l
        ? `${l.ratio * 100} % of ${l.of}`
        : "point" in l
          ? l.point
          : `the ${l.setting}`;
  if (w.bit !== undefined) return `${w.point} ${w.bit}`;
  if (w.equals !== undefined) return `${w.point} is ${String(w.equals)}`;
  if (w.notEquals !== undefined) return `${w.point} is not ${String(w.notEquals)}`;
  if (w.inclusive)
    return w.below !== undefined
      ? `${w.point} at or under ${lim(w.below)}`
      : `${w.point} at or over ${lim(w.above!)}`;
  return w.below !== undefined ? `${w.point} under ${lim(w.below)}` : `${w.point} over ${lim(w.above!)}`;
}
