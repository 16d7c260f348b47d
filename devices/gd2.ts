/**
 * GD-2 household gas detector with a motorised shut-off valve
 * (datasheets/gd2-gas-detector.md). MQTT, JSON only, at most 384 bytes:
 * uplink `devices/gd2/<id>/up`, downlink `devices/gd2/<id>/down`.
 * Emulated by sim/mqtt/gd2.ts (`Gd2`), which shares no code with this file.
 */
import { z } from "zod";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/index.js";
import {
  asInteger,
  asObject,
  badFieldOf,
  checkIntRange,
  checkSeq,
  checkTs,
  type DroppedField,
  deviceClock,
  type FieldProblem,
  missingField,
  NO_DROPS,
  sideFields,
} from "./fields.js";
import {
  type AlertDetail,
  type AlertSpec,
  type DeviceSettings,
  INACTIVE,
  type MqttDeviceProfile,
  num,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";
import { ThresholdState } from "./threshold.js";

export type GasLevel = "none" | "low" | "high";
export type ValveState = "open" | "closed" | "moving" | "fault";
export type ValveCause = "local" | "remote" | "manual";
export type ReplyResult = "ok" | "busy" | "fault" | "unknown";

const LEVELS: readonly GasLevel[] = ["none", "low", "high"];
const VALVES: readonly ValveState[] = ["open", "closed", "moving", "fault"];
const CAUSES: readonly ValveCause[] = ["local", "remote", "manual"];
const RESULTS: readonly ReplyResult[] = ["ok", "busy", "fault", "unknown"];

/** `fault` codes (datasheet). */
const FAULT_TEXT = ["none", "sensor end of life", "sensor fault", "valve motor fault", "valve not fitted"];
const SENSOR_FAULTS = new Set([1, 2]);
const VALVE_FAULTS = new Set([3, 4]);

/** GAS_LEAK clears only under this, %LEL (datasheet); also the floor of `leakThreshold`. */
const CLEAR_BELOW_LEL = 5;
/** A leak whose valve is not closed within this is GAS_VALVE_NOT_CLOSED (datasheet). */
const VALVE_CLOSE_WITHIN_MS = 20_000;
/** Mains lost longer than this is POWER_FAIL (datasheet). */
const MAINS_LOST_FOR_MS = 10 * 60_000;

interface Header {
  seq: number;
  /** Device clock, epoch ms; 0 after a power cut until the detector reaches its time server. */
  ts: number;
  /** A bad `ts` is left out (0, no clock) and counted: a gas alarm is never refused for its clock. */
  dropped: readonly DroppedField[];
}
export type Gd2Sample = Header &
  (
    | { t: "hb"; lel: number; valve: ValveState; mains: boolean; fault: number }
    | { t: "alarm"; lel: number; level: GasLevel; valve: ValveState }
    | { t: "valve"; valve: ValveState; cause: ValveCause }
    | { t: "reply"; id: string; cmd: string; result: ReplyResult }
  );

export interface Gd2State {
  /** The detector's own alarm level, from its last `alarm` message. */
  level: GasLevel;
  /** `lel` at or above the configured threshold, back only under 5 %LEL. */
  gas: ThresholdState;
  leak: boolean;
  /** The last `lel` reported (a `valve` message carries none). */
  lel: number;
  /** Peak believed `lel` of the current incident; NaN while it has had none (every reading suspect). */
  peak: number;
  /**
   * Peak `lel` the detector reported with its own `alarm` in the current incident while its sensor
   * was in fault (suspect, but its own word): what `peakLel` shows when no reading was believed.
   */
  alarmPeak: number;
  /** Gateway time the current leak was first seen, 0 without a leak. */
  leakSince: number;
  valve: ValveState | null;
  /** The last heartbeat's `fault` (an `alarm` message carries none: the last one stands). */
  fault: number;
  /** The last message's `lel` was read while `fault` named the sensor (1, 2): not believed. */
  lelSuspect: boolean;
  /** Gateway time mains was first reported lost, 0 while on mains. */
  mainsLostSince: number;
  /** The gateway sent `valve_close` for the current incident. */
  shutOffSent: boolean;
}

export interface Gd2Settings {
  /** GAS_LEAK at or above this, %LEL. */
  leakThresholdLel: number;
  /** The gateway closes the valve itself on GAS_LEAK. */
  autoShutOff: boolean;
}

const config = {
  leakThreshold: z.number().min(CLEAR_BELOW_LEL).max(100).default(10).meta({
    description:
      "GAS_LEAK when lel (%LEL) in any message is at or above this, or the detector's own alarm is on; it clears under 5 %LEL",
  }),
  autoShutOff: z.boolean().default(false).meta({
    description:
      "On GAS_LEAK the gateway sends valve_close to the detector at once (and says so in the alert)",
  }),
};

/**
 * What the duty operator needs to read in a GAS_LEAK, in order: the detector's own alarm, the peak
 * reading, whether the gateway sent the shut-off, and where the valve is now (a `changed` with each).
 */
const LEAK_WORDS = {
  "zh-CN": {
    level: { low: "报警器低浓度报警", high: "报警器高浓度报警" } as Readonly<Record<string, string>>,
    peak: (lel: number, suspect: boolean) => `最高 ${lel} %LEL${suspect ? "（传感器故障中，读数存疑）" : ""}`,
    shutOff: "网关已发送关阀命令",
    shutOffQueued: "关阀命令尚未送达：报警器未连接，将在其重新连接后发送",
    valve: {
      closed: "阀门已关闭",
      open: "阀门未关闭",
      moving: "阀门动作中",
      fault: "阀门故障",
    } as Readonly<Record<string, string>>,
    sep: "，",
  },
  en: {
    level: { low: "detector alarm low", high: "detector alarm high" } as Readonly<Record<string, string>>,
    peak: (lel: number, suspect: boolean) =>
      `peak ${lel} %LEL${suspect ? " (sensor in fault, reading doubtful)" : ""}`,
    shutOff: "valve_close sent by the gateway",
    shutOffQueued: "valve_close not delivered yet: the detector is not connected, sent when it reconnects",
    valve: {
      closed: "valve closed",
      open: "valve open",
      moving: "valve moving",
      fault: "valve fault",
    } as Readonly<Record<string, string>>,
    sep: ", ",
  },
} as const;

function leakDetail(d: AlertDetail, locale: keyof typeof LEAK_WORDS): string | null {
  const w = LEAK_WORDS[locale];
  const peak = num(d, "peakLel");
  const parts = [
    typeof d.level === "string" ? w.level[d.level] : undefined,
    peak !== null && peak > 0 ? w.peak(peak, d.peakLelSuspect === true) : undefined,
    d.autoShutOff === true ? (d.autoShutOffQueued === true ? w.shutOffQueued : w.shutOff) : undefined,
    typeof d.valve === "string" ? w.valve[d.valve] : undefined,
  ].filter((x) => x !== undefined);
  return parts.length === 0 ? null : parts.join(w.sep);
}

/** FAULT's causes (the `fault` code's meaning, a valve in fault) for duty staff. */
const FAULT_CAUSE_ZH: Readonly<Record<string, string>> = {
  "valve fault": "阀门故障",
  "sensor end of life": "传感器寿命到期",
  "sensor fault": "传感器故障",
  "valve motor fault": "阀门电机故障",
  "valve not fitted": "未安装阀门",
  "cannot detect gas": "无法检测燃气",
};

const ALERTS = {
  GAS_LEAK: {
    priority: 1,
    raised:
      '`alarm` with `level` `low` or `high`, or `lel` at or above `leakThreshold` (default 10 %LEL) in any message; one alert per incident, `detail` names the level and the peak `lel` (`peakLel`; under a sensor fault, the `lel` of the detector\'s own `alarm` with `peakLelSuspect: true`, or `"unknown"`, never 0; else `peakLelSuspect: false`), `autoShutOff`: whether the gateway sent the detector `valve_close` in this incident, and `autoShutOffQueued`: true while that waits for the detector to reconnect (since 0.13.44; the three always present, false when not so, since 0.13.49)',
    cleared: "`lel` under 5 %LEL and the detector's `level` `none`",
    text: {
      "zh-CN": {
        title: "燃气泄漏",
        detail: (d) => leakDetail(d, "zh-CN"),
        action:
          "立即致电住户：不要开关电器、不要点火，开窗通风并离开厨房；确认阀门已关闭，通知燃气公司抢修，必要时派人上门。",
      },
      en: {
        title: "Gas leak",
        detail: (d) => leakDetail(d, "en"),
        action:
          "Call the resident at once: no switches, no flames, open the windows and leave the kitchen; make sure the valve is closed, call the gas company, send someone if needed.",
      },
    },
  },
  GAS_VALVE_NOT_CLOSED: {
    priority: 1,
    raised: "a GAS_LEAK whose valve is not reported `closed` within 20 s",
    cleared: "the valve reports `closed`, or the leak clears",
    text: {
      "zh-CN": {
        title: "燃气泄漏且阀门未关闭",
        action: "立即派人上门关闭燃气总阀并通知燃气公司；住户无法撤离时拨打 119。",
      },
      en: {
        title: "Gas leak, valve not closed",
        action:
          "Send someone at once to close the main gas valve and call the gas company; call 119 if the resident cannot leave.",
      },
    },
  },
  FAULT: {
    priority: 2,
    raised:
      "`valve` `fault`, or `fault` 3 (valve motor) or 4 (valve not fitted); `fault` 1 or 2 (sensor end of life or fault: the detector cannot detect; its `lel` is suspect and moves no GAS_LEAK); `causes` names each",
    cleared: "`fault` 0 and the valve not in `fault`",
    text: {
      "zh-CN": {
        title: "燃气报警器故障",
        detail: (_d, causes) =>
          causes.length === 0 ? null : causes.map((c) => FAULT_CAUSE_ZH[c] ?? c).join("、"),
        action: "报警器可能无法检测燃气或关闭阀门：当天安排检修，期间提醒住户用气时注意通风。",
      },
      en: {
        title: "Gas detector fault",
        detail: (_d, causes) => (causes.length === 0 ? null : causes.join(", ")),
        action:
          "The detector may not detect gas or close the valve: arrange a repair today and remind the resident to ventilate while cooking.",
      },
    },
  },
  POWER_FAIL: {
    priority: 3,
    raised: "`mains` false for more than 10 minutes",
    cleared: "`mains` true",
    text: {
      "zh-CN": { title: "燃气报警器断电", action: "备用电池约可用 8 小时：联系住户或物业恢复供电。" },
      en: {
        title: "Gas detector on battery",
        action:
          "The backup battery lasts about 8 h: have the resident or the property manager restore power.",
      },
    },
  },
} as const satisfies Readonly<Record<string, AlertSpec>>;
type Gd2Code = keyof typeof ALERTS;

/** Downlink ids the gateway makes up fit a reply within 384 bytes with room to spare. */
const command = (cmd: string) => (id: string) => ({ cmd, id });

export const gd2: MqttDeviceProfile<
  Gd2Sample,
  Gd2State,
  { model: "gd2"; binding: "mqtt"; code: Gd2Code; settings: Gd2Settings; config: typeof config }
> = {
  model: "gd2",
  label: "GD-2",
  names: { "zh-CN": "燃气报警器", en: "gas detector" },
  simulator: "sim/mqtt/gd2.ts",
  transport: "mqtt",
  binding: "mqtt",
  jsonOnly: true,
  interval: "60s",
  config,
  settings: (c) => ({ leakThresholdLel: c.leakThreshold, autoShutOff: c.autoShutOff }),
  alerts: ALERTS,
  maxPayloadBytes: 384,
  // Datasheet: "silent for 3 heartbeat intervals", no grace (2 x 60 s + 60 s only at the defaults).
  lostAfter: { heartbeats: 3, plusGrace: false },
  // A gas detector that cannot report is a life-safety device out of order.
  lostPriority: 2,
  lostAction: {
    "zh-CN": "检查报警器电源和网络；失联期间无法发现燃气泄漏，请致电住户。",
    en: "Check the detector's power and network; while it is lost no gas leak can be detected: call the resident.",
  },
  uplinkTopic: (id) => `devices/gd2/${id}/up`,
  downlinkTopic: (id) => `devices/gd2/${id}/down`,

  commands: {
    valve_close: {
      names: { "zh-CN": "关闭燃气阀", en: "close the gas valve" },
      // The datasheet: the motorised valve on the gas pipe moves (at most 15 s).
      actuates: true,
      doc: 'downlink `{"cmd":"valve_close","id"}`: close the valve; the device\'s `reply` follows, then a `valve` message when it has moved (at most 15 s)',
      message: command("valve_close"),
    },
    valve_open: {
      names: { "zh-CN": "打开燃气阀", en: "open the gas valve" },
      // The datasheet: the motorised valve on the gas pipe moves (at most 15 s).
      actuates: true,
      doc: 'downlink `{"cmd":"valve_open","id"}`: open the valve; only honoured under 5 %LEL, else the reply is `busy`',
      message: command("valve_open"),
    },
    self_test: {
      names: { "zh-CN": "自检", en: "self-test" },
      doc: 'downlink `{"cmd":"self_test","id"}`: buzzer and sensor check; the `reply`, then a heartbeat with the result in `fault`',
      message: command("self_test"),
    },
  },

  parse(value): Gd2Sample | Rejection {
    const o = asObject(value);
    if (!o) return reject("bad-field", "payload is not a map");
    const seqBad = checkSeq(o);
    if (seqBad) return seqBad;
    const tsBad = missingField(o, "ts") ?? checkTs(o);
    const h: Header = {
      seq: asInteger(o.seq) as number,
      ts: tsBad === null ? deviceClock(o.ts) : 0,
      dropped: tsBad === null ? NO_DROPS : sideFields([["ts", tsBad]]),
    };
    let problem: FieldProblem | null;
    switch (o.t) {
      case "hb":
        problem =
          checkLel(o) ??
          checkOneOf(o, "valve", VALVES) ??
          (typeof o.mains !== "boolean" ? badFieldOf(o, "mains", "true or false") : null) ??
          checkIntRange(o, "fault", 0, 4);
        if (problem) return problem;
        return {
          ...h,
          t: "hb",
          lel: o.lel as number,
          valve: o.valve as ValveState,
          mains: o.mains as boolean,
          fault: asInteger(o.fault) as number,
        };
      case "alarm":
        problem = checkLel(o) ?? checkOneOf(o, "level", LEVELS) ?? checkOneOf(o, "valve", VALVES);
        if (problem) return problem;
        return {
          ...h,
          t: "alarm",
          lel: o.lel as number,
          level: o.level as GasLevel,
          valve: o.valve as ValveState,
        };
      case "valve":
        problem = checkOneOf(o, "valve", VALVES) ?? checkOneOf(o, "cause", CAUSES);
        if (problem) return problem;
        return { ...h, t: "valve", valve: o.valve as ValveState, cause: o.cause as ValveCause };
      case "reply":
        problem =
          (typeof o.id !== "string" || o.id.length === 0
            ? badFieldOf(o, "id", "a non-empty string")
            : null) ??
          (typeof o.cmd !== "string" || o.cmd.length === 0
            ? badFieldOf(o, "cmd", "a non-empty string")
            : null) ??
          checkOneOf(o, "result", RESULTS);
        if (problem) return problem;
        return {
          ...h,
          t: "reply",
          id: o.id as string,
          cmd: o.cmd as string,
          result: o.result as ReplyResult,
        };
      default:
        return badFieldOf(o, "t", '"hb", "alarm", "valve" or "reply"');
    }
  },

  suppressed: () => false,
  seq: (s) => s.seq,
  deviceTime: (s) => s.ts,
  droppedFields: (s) => s.dropped,
  // A reading the sensor itself calls faulty first: a consumer must not chart it as gas.
  quality: (s, st) => (st.lelSuspect ? "suspect" : s.dropped.length > 0 ? "field-dropped" : null),

  // A heartbeat under the clear point with nothing wrong: the lane's `hb` case, as data.
  telemetryWhen: [
    { field: "t", oneOf: ["hb"] },
    { field: "lel", below: CLEAR_BELOW_LEL },
    { field: "fault", oneOf: [0] },
    { field: "mains", oneOf: [true] },
    { field: "valve", oneOf: VALVES.filter((v) => v !== "fault") },
  ],
  lane(s) {
    switch (s.t) {
      // The detector's alarm and the valve's movement decide two P1 alerts: never behind telemetry.
      case "alarm":
      case "valve":
        return LANE_P1;
      case "reply":
        return LANE_ALERT;
      case "hb":
        // Gas at the clear point or above may be a leak at a site threshold under the detector's own.
        // A troubled heartbeat (fault, mains lost, valve fault) also sets the valve's state: in the
        // alert lane it could be applied after a newer P1 `valve: closed` and open the valve again
        // (lanes keep order within a lane only), so every heartbeat that runs the rules is P1 too;
        // calm ones, in telemetry, are skipped when older than what was applied (gateway/consume.ts).
        if (s.lel >= CLEAR_BELOW_LEL) return LANE_P1;
        return s.fault !== 0 || !s.mains || s.valve === "fault" ? LANE_P1 : LANE_TELEMETRY;
    }
  },

  // Somebody turned the knob; the heartbeat and the detector's own actions are not activity.
  isActivity: (s) => s.t === "valve" && s.cause === "manual",

  metrics(s) {
    const m: Record<string, { value: number | string | boolean; unit?: string }> = {};
    switch (s.t) {
      case "hb":
        m.lel = { value: s.lel, unit: "%LEL" };
        m.valve = { value: s.valve };
        m.mains = { value: s.mains };
        m.fault = { value: s.fault };
        break;
      case "alarm":
        m.lel = { value: s.lel, unit: "%LEL" };
        m.level = { value: s.level };
        m.valve = { value: s.valve };
        break;
      case "valve":
        m.valve = { value: s.valve };
        m.valveCause = { value: s.cause };
        break;
      case "reply":
        m.reply = { value: `${s.cmd}: ${s.result}` };
        break;
    }
    return m;
  },

  reply: (s) =>
    s.t === "reply" ? { id: s.id, command: s.cmd, result: s.result, ok: s.result === "ok" } : null,

  shiftTimes: (st, ms) => {
    if (st.leakSince !== 0) st.leakSince += ms;
    if (st.mainsLostSince !== 0) st.mainsLostSince += ms;
  },
  initialState: () => ({
    level: "none",
    gas: new ThresholdState({ above: 10, deadband: 10 - CLEAR_BELOW_LEL, inclusive: true }),
    leak: false,
    lel: 0,
    peak: Number.NaN,
    alarmPeak: Number.NaN,
    leakSince: 0,
    valve: null,
    fault: 0,
    lelSuspect: false,
    mainsLostSince: 0,
    shutOffSent: false,
  }),

  durable: {
    version: 1,
    save: (st) => [
      st.fault,
      st.level,
      st.lel,
      st.gas.active,
      st.leak,
      nanAsNull(st.peak),
      nanAsNull(st.alarmPeak),
      st.shutOffSent,
    ],
    same: (st, v) =>
      v[0] === st.fault &&
      v[1] === st.level &&
      v[2] === st.lel &&
      v[3] === st.gas.active &&
      v[4] === st.leak &&
      v[5] === nanAsNull(st.peak) &&
      v[6] === nanAsNull(st.alarmPeak) &&
      v[7] === st.shutOffSent,
    restore(st, v, now) {
      const [fault, level, lel, gas, leak, peak, alarmPeak, shutOffSent] = v;
      if (typeof fault === "number" && Number.isInteger(fault) && fault >= 0 && fault <= 4) st.fault = fault;
      if (LEVELS.includes(level as GasLevel)) st.level = level as GasLevel;
      if (typeof lel === "number" && lel >= 0 && lel <= 100) st.lel = lel;
      if (typeof gas === "boolean") st.gas.active = gas;
      if (typeof leak === "boolean") st.leak = leak;
      if (typeof peak === "number") st.peak = peak;
      if (typeof alarmPeak === "number") st.alarmPeak = alarmPeak;
      if (typeof shutOffSent === "boolean") st.shutOffSent = shutOffSent;
      // Not journaled (a time): GAS_VALVE_NOT_CLOSED's 20 s run again from the start, as any
      // pending on-delay does; an alert already raised is restored with its own times.
      if (st.leak) st.leakSince = now;
    },
  },

  rules(s: Gd2Sample, st: Gd2State, settings: DeviceSettings & Gd2Settings, ctx: RuleContext<Gd2Code>): void {
    st.lelSuspect = false;
    if (s.t === "reply") return;
    // The threshold may change on a reload; the clear point is the datasheet's.
    const threshold = settings.leakThresholdLel;
    st.gas.setSpec({ above: threshold, deadband: threshold - CLEAR_BELOW_LEL, inclusive: true });
    if (s.t === "alarm") st.level = s.level;
    // `fault` 1 or 2 (sensor end of life, sensor fault): "the detector cannot detect", so its `lel`
    // is not believed while the last heartbeat says so: the gas reading neither raises nor clears
    // GAS_LEAK (the last believed one stands). The detector's own alarm `level` still does: a P1
    // the device itself declares is never held back by the gateway. An older heartbeat run after a
    // newer message (lanes reorder) does not overrule the newer fault state.
    if (s.t === "hb" && !ctx.stale) st.fault = s.fault;
    const sensorFault = SENSOR_FAULTS.has(s.t === "hb" ? s.fault : st.fault);
    if (s.t !== "valve") st.lelSuspect = sensorFault;
    if (s.t !== "valve" && !sensorFault) {
      st.gas.update(s.lel);
      st.lel = s.lel;
    }
    st.valve = s.valve;

    // Datasheet: a leak "clears when `lel` is under 5 %LEL and `level` is `none`", whatever raised it.
    const stillGas = st.leak && st.lel >= CLEAR_BELOW_LEL;
    const leak = st.gas.active || st.level !== "none" || stillGas;
    if (leak && !st.leak) {
      st.leakSince = ctx.now;
      st.peak = Number.NaN;
      st.alarmPeak = Number.NaN;
      st.shutOffSent = false;
    }
    st.leak = leak;
    if (leak) {
      // NaN compares false: the first reading of the incident is its peak.
      if (s.t !== "valve" && !sensorFault && !(s.lel <= st.peak)) st.peak = s.lel;
      if (s.t === "alarm" && sensorFault && !(s.lel <= st.alarmPeak)) st.alarmPeak = s.lel;
      // At once, whatever the valve says short of closed: a valve stuck `moving` is worth a second order.
      if (settings.autoShutOff && !st.shutOffSent && st.valve !== "closed")
        st.shutOffSent = ctx.command("valve_close");
      const detail: Record<string, number | string | boolean> = {
        level: st.level,
        peakLel: peakLel(st),
        valve: st.valve,
      };
      // Queued for a detector that is away: the text must not say it was sent. The detector's
      // next message after it arrived (its `valve`) says sent.
      const shutOffQueued = st.shutOffSent && (ctx.commandWaiting?.("valve_close") ?? false);
      // Always named, false when not so: the engine keeps the detail fields an update leaves out,
      // and the same alert back for a new incident must not say the last one's doubt or command.
      // Suspect: only the failing sensor's own figure, not a believed reading.
      detail.peakLelSuspect = Number.isNaN(st.peak) && !Number.isNaN(st.alarmPeak);
      detail.autoShutOff = st.shutOffSent;
      detail.autoShutOffQueued = shutOffQueued;
      ctx.condition("GAS_LEAK", true, {
        priority: 1,
        causes: [
          ...(st.level !== "none" ? [`detector alarm ${st.level}`] : []),
          // The live reading, not the one that raised it: 7 %LEL is "not yet under 5", not "at or above 10".
          ...(st.lel >= threshold ? [`at or above ${threshold} %LEL`] : []),
          ...(st.lel < threshold && (st.gas.active || st.level === "none")
            ? [`not yet under ${CLEAR_BELOW_LEL} %LEL`]
            : []),
          ...(shutOffQueued
            ? ["valve_close queued by the gateway until the detector reconnects"]
            : st.shutOffSent
              ? ["valve_close sent by the gateway"]
              : []),
        ],
        detail,
      });
    } else {
      ctx.condition("GAS_LEAK", false, INACTIVE[1]);
    }
    if (leak && st.valve !== "closed")
      ctx.condition("GAS_VALVE_NOT_CLOSED", true, {
        priority: 1,
        causes: [`valve ${st.valve ?? "unknown"} ${VALVE_CLOSE_WITHIN_MS / 1000} s into the leak`],
        onDelayMs: VALVE_CLOSE_WITHIN_MS,
        since: st.leakSince,
        detail: { valve: st.valve ?? "unknown", autoShutOff: st.shutOffSent },
      });
    else ctx.condition("GAS_VALVE_NOT_CLOSED", false, INACTIVE[1]);

    faultRule(st, ctx);
    if (s.t === "hb") {
      if (!s.mains && st.mainsLostSince === 0) st.mainsLostSince = ctx.now;
      if (s.mains) st.mainsLostSince = 0;
      if (s.mains) ctx.condition("POWER_FAIL", false, INACTIVE[3]);
      else
        ctx.condition("POWER_FAIL", true, {
          priority: 3,
          causes: ["mains lost, on battery"],
          onDelayMs: MAINS_LOST_FOR_MS,
          since: st.mainsLostSince,
        });
    }
  },
};

/**
 * The incident's peak `lel` for the alert: the highest believed reading; with none (the sensor in
 * fault throughout), the highest the detector reported with its own alarm; with neither, "unknown"
 * (never 0: a leak with no figure is not a leak of 0 %LEL).
 */
function peakLel(st: Gd2State): number | string {
  if (!Number.isNaN(st.peak)) return st.peak;
  return Number.isNaN(st.alarmPeak) ? "unknown" : st.alarmPeak;
}

/** One FAULT per detector naming every live cause; all of them are P2 (datasheet). */
function faultRule(st: Gd2State, ctx: RuleContext<Gd2Code>): void {
  const valveFault = st.valve === "fault";
  const sensorFault = SENSOR_FAULTS.has(st.fault);
  const reported = VALVE_FAULTS.has(st.fault) || sensorFault;
  // The active case in a function of its own: inline here, a quiet heartbeat still allocated
  // 48 bytes (measured, Node 20); out of line, none.
  if (valveFault || reported) activeFault(st, ctx, valveFault, reported, sensorFault);
  else ctx.condition("FAULT", false, INACTIVE[2]);
}

function activeFault(
  st: Gd2State,
  ctx: RuleContext<Gd2Code>,
  valveFault: boolean,
  reported: boolean,
  sensorFault: boolean,
): void {
  const causes: string[] = [];
  if (valveFault) causes.push("valve fault");
  if (reported) causes.push(FAULT_TEXT[st.fault] as string);
  if (sensorFault) causes.push("cannot detect gas");
  ctx.condition("FAULT", true, { priority: 2, causes, detail: { fault: st.fault } });
}

const nanAsNull = (v: number): number | null => (Number.isNaN(v) ? null : v);

function checkLel(o: Record<string, unknown>): FieldProblem | null {
  const v = o.lel;
  if (typeof v !== "number" || !Number.isFinite(v)) return badFieldOf(o, "lel", "a number 0.0-100.0");
  return v < 0 || v > 100 ? reject("out-of-range", `lel ${v} is outside 0.0..100.0`) : null;
}

function checkOneOf(
  o: Record<string, unknown>,
  field: string,
  allowed: readonly string[],
): FieldProblem | null {
  const v = o[field];
  return typeof v === "string" && allowed.includes(v)
    ? null
    : badFieldOf(o, field, `one of ${allowed.join(", ")}`);
}
