/**
 * A declared profile (schema.ts) compiled into the profile interface the code
 * profiles implement (devices/profile.ts): Modbus points become the point
 * specs of modbus-decode.ts (the one decoder), analog alarms use the engine's
 * ThresholdState, delays are the engine's on/off delays. This file holds the
 * two transports (Modbus, MQTT); the rules they share are in rules/ (rules/core.ts).
 */
import { LANE_P1, LANE_TELEMETRY } from "../../core/index.js";
import { fieldAt } from "../../protocols/index.js";
import type { PointSpec, PointType, PointValue } from "../modbus-decode.js";
import { validatePointSpecs } from "../modbus-decode.js";
import {
  type AnyProfile,
  type CommandReply,
  type ModbusCommand,
  type ModbusDeviceProfile,
  type MqttCommand,
  type MqttDeviceProfile,
  type Rejection,
  reject,
  type TelemetryTest,
} from "../profile.js";
import type { declaredConfig } from "./config.js";
import { pointsOf, single } from "./rules/codes.js";
import { rulesCore } from "./rules/core.js";
import type { DeclaredSample, DeclaredSettings } from "./sample.js";
import { type DeclaredProfileDoc, type ModbusCommandDoc, modbusCommandSchema } from "./schema.js";
import type { DeclaredState } from "./state.js";

export type { DeclaredSample, DeclaredSettings } from "./sample.js";

const TYPE: Readonly<Record<string, PointType>> = {
  uint16: "u16",
  int16: "i16",
  uint32: "u32",
  int32: "i32",
  float32: "f32",
  bitfield: "bitfield",
  enum: "enum",
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
  // Absent unless true, as the code profiles carry it.
  const actuates = c.actuates ? { actuates: true } : {};
  if ("coil" in c)
    return {
      fn: 5,
      address: c.coil,
      value: c.value ? 0xff00 : 0,
      doc: `coil ${c.coil} ${c.value ? "ON" : "OFF"}`,
      ...actuates,
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
      ...actuates,
    };
  }
  return {
    fn: 6,
    address: c.register,
    value: c.value,
    doc: `register ${c.register} := ${c.value}`,
    ...actuates,
  };
}

/** A declared MQTT command: its top-level `actuates` is the gateway's (schema.ts), the rest is sent. */
function mqttCommand(raw: unknown): MqttCommand {
  const { actuates, ...message } = raw as Record<string, unknown>;
  return {
    doc: `downlink \`${JSON.stringify(message)}\``,
    message: (id) => withId(message, id) as object,
    ...(actuates === true ? { actuates: true } : {}),
  };
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
    commands: Object.fromEntries(Object.entries(doc.commands).map(([name, raw]) => [name, mqttCommand(raw)])),
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
