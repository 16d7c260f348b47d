/**
 * MFS-8 micro fire-station sensor panel (datasheets/mfs8-fire-panel.md):
 * register map as data, and the panel's alert rules. Modbus RTU, fn 0x03,
 * registers 0-13 read in one request.
 */

import { z } from "zod";
import { durationOrZero, LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/index.js";
import {
  type BitfieldPoint,
  type EnumPoint,
  enumName,
  flagsOf,
  type PointSpec,
  type PointValue,
} from "./modbus-decode.js";
import {
  type AlertDetail,
  type AlertSpec,
  type DeviceSettings,
  INACTIVE,
  type ModbusDeviceProfile,
  num,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";
import { ThresholdState, thresholdsDurable } from "./threshold.js";

const MODEL_ID = 0x4d38; // "M8"

/** Status register bits (register 4, datasheet "Status bits"). */
export const STATUS = {
  smoke: 0,
  heat: 1,
  callPoint: 2,
  pressureLow: 3,
  pumpFault: 4,
  mainsFail: 5,
  batteryFault: 6,
  sounder: 7,
  detectorFault: 8,
  testMode: 15,
} as const;

type StatusFlag = keyof typeof STATUS;
type Status = Record<StatusFlag, boolean>;

/** The status register as a bitfield point: the rules read its flags by name. */
export const MFS8_STATUS: BitfieldPoint<StatusFlag> = {
  name: "status",
  address: 4,
  type: "bitfield",
  bits: STATUS,
};

/** The alarm flags and the cause each gives a FIRE_ALARM (one incident naming them all). */
const FIRE_CAUSES: ReadonlyArray<[StatusFlag, string]> = [
  ["smoke", "smoke"],
  ["heat", "heat"],
  ["callPoint", "call point"],
];
/** The fault flags behind the one FAULT per panel (its priority follows the pump fault). */
const FAULT_FLAGS: readonly StatusFlag[] = ["pumpFault", "batteryFault", "detectorFault"];

const inAlarm = (f: Status) => FIRE_CAUSES.some(([flag]) => f[flag]);

export const FAULT_CODES: Readonly<Record<number, string>> = {
  0: "none",
  1: "smoke head dirty",
  2: "heat sensor open circuit",
  3: "pressure transducer fault",
  4: "RS-485 noise",
  5: "internal battery fault",
};

/** The fault code register (11) as an enum point: what a detector fault names. */
export const MFS8_FAULT: EnumPoint = { name: "faultCode", address: 11, type: "enum", values: FAULT_CODES };

export const MFS8_POINTS: readonly PointSpec[] = [
  { name: "model", address: 0, type: "u16" },
  { name: "firmware", address: 1, type: "u16" },
  { name: "uptime", address: 2, type: "u32", wordOrder: "ABCD", unit: "s" },
  // The word as the panel sends it (the lane watches any change); MFS8_STATUS names its bits.
  { name: "status", address: 4, type: "u16" },
  { name: "smoke", address: 5, type: "u16", scale: 0.01, unit: "%/m" },
  { name: "temperature", address: 6, type: "i16", scale: 0.1, unit: "°C" },
  // Low word first: the datasheet's one CD AB value.
  { name: "pressure", address: 7, type: "f32", wordOrder: "CDAB", unit: "MPa" },
  { name: "present", address: 9, type: "u16" },
  { name: "slots", address: 10, type: "u16" },
  { name: "faultCode", address: 11, type: "u16" },
  { name: "events", address: 12, type: "u32", wordOrder: "ABCD" },
];

export interface Mfs8Sample {
  firmware: string;
  uptime: number;
  status: number;
  smoke: number;
  temperature: number;
  pressure: number;
  present: number;
  slots: number;
  faultCode: number;
  events: number;
}

export interface Mfs8State {
  /**
   * No poll applied yet (a start, a restart): the first reports every condition as it is, not as
   * a change from the zeros below, so an alert restored from the journal whose cause ended while
   * the gateway was down (a panel reset) clears, and does not stay open for good.
   */
  first: boolean;
  status: number;
  /** Under the configured minimum, back only above it plus the deadband. */
  pressure: ThresholdState;
  faultCode: number;
  /** Per bracket: gateway time it was first seen empty, 0 while it holds an extinguisher. */
  emptySince: number[];
  missingMask: number;
}

/** Hysteresis above the minimum before the pressure alert clears, MPa. */
const PRESSURE_DEADBAND = 0.02;

export interface Mfs8Settings {
  /** HYDRANT_PRESSURE_LOW under this, MPa. */
  minPressureMpa: number;
  /** A fitted bracket empty this long is EXTINGUISHER_MISSING. */
  extinguisherGraceMs: number;
}

const config = {
  minPressure: z
    .number()
    .positive()
    .default(0.15)
    .meta({ description: "HYDRANT_PRESSURE_LOW under this many MPa, even if the panel's own bit is clear" }),
  extinguisherGrace: durationOrZero("120s").meta({
    description: "A fitted bracket empty this long: EXTINGUISHER_MISSING",
  }),
};

type CauseText = Readonly<Record<string, (d: AlertDetail) => string>>;

/** A FIRE_ALARM names what tripped it with the reading behind it (datasheet: smoke in %/m, heat in °C). */
const FIRE_CAUSE_TEXT: Readonly<Record<"zh-CN" | "en", CauseText>> = {
  "zh-CN": {
    smoke: (d) => reading("烟感", num(d, "smoke"), "%/m"),
    heat: (d) => reading("温感", num(d, "temperature"), "°C"),
    "call point": () => "手动报警",
  },
  en: {
    smoke: (d) => reading("smoke", num(d, "smoke"), "%/m"),
    heat: (d) => reading("heat", num(d, "temperature"), "°C"),
    "call point": () => "manual call point",
  },
};

const reading = (label: string, value: number | null, unit: string) =>
  value === null ? label : `${label} ${value} ${unit}`;

/** The fault code's meaning (register 11), as the detector fault's cause names it. */
const FAULT_CODE_ZH: Readonly<Record<number, string>> = {
  1: "烟感探头脏污",
  2: "温感探头断路",
  3: "压力传感器故障",
  4: "RS-485 干扰",
  5: "内部电池故障",
};
const FAULT_CAUSE_TEXT: CauseText = {
  "pump fault": () => "水泵故障",
  "battery fault": () => "电池故障",
  "detector fault": (d) => {
    const code = num(d, "faultCode");
    if (code === null) return "探测器故障";
    return `探测器故障：${FAULT_CODE_ZH[code] ?? `故障码 ${code}`}`;
  },
};

/** The causes in the operator's words (a cause without words as it is), or null when there are none. */
function named(causes: readonly string[], words: CauseText, d: AlertDetail, sep: string): string | null {
  if (causes.length === 0) return null;
  // A cause may carry its own particulars after a colon ("detector fault: smoke head dirty").
  return causes.map((c) => words[c.split(":")[0] as string]?.(d) ?? c).join(sep);
}

/** The reading, and whether it is the panel's own low-pressure bit that tripped it rather than the minimum. */
function pressureDetail(d: AlertDetail, causes: readonly string[], panelOnly: string, panelToo: string) {
  const p = num(d, "pressure");
  if (p === null) return null;
  const panel = causes.includes("panel");
  const belowMinimum = causes.some((c) => c.startsWith("below "));
  if (panel && !belowMinimum) return `${panelOnly}${p} MPa`;
  return `${p} MPa${panel ? panelToo : ""}`;
}

const ALERTS = {
  FIRE_ALARM: {
    priority: 1,
    raised:
      "smoke, heat or call point: one incident per panel naming every cause in `causes` (`smoke`, `heat`, `call point`)",
    cleared: "the panel is reset (its alarm bits latch)",
    text: {
      "zh-CN": {
        title: "火警",
        detail: (d, causes) => named(causes, FIRE_CAUSE_TEXT["zh-CN"], d, "、"),
        action: "立即派人到现场确认；确认起火时拨打 119 并组织疏散。处理后发送复位命令。",
      },
      en: {
        title: "Fire alarm",
        detail: (d, causes) => named(causes, FIRE_CAUSE_TEXT.en, d, ", "),
        action:
          "Send someone to the station now; if there is a fire, call 119 and evacuate. Reset the panel afterwards.",
      },
    },
  },
  HYDRANT_PRESSURE_LOW: {
    priority: 2,
    raised: "the panel's low-pressure bit, or pressure under `minPressure` (default 0.15 MPa)",
    cleared: "both gone (pressure back above minimum + 0.02 MPa)",
    text: {
      "zh-CN": {
        title: "消防水压不足",
        detail: (d, causes) => pressureDetail(d, causes, "面板低压报警，当前 ", "、面板低压报警"),
        action: "通知物业或维保单位检查消防管网和水泵。",
      },
      en: {
        title: "Hydrant pressure low",
        detail: (d, causes) =>
          pressureDetail(d, causes, "panel's low-pressure signal, now ", ", panel signal"),
        action: "Ask the property office or the maintenance contractor to check the pipes and the pump.",
      },
    },
  },
  EXTINGUISHER_MISSING: {
    priority: 3,
    raised:
      "a fitted bracket empty longer than `extinguisherGrace` (default 120 s); `causes` names the brackets",
    cleared: "every bracket holds an extinguisher",
    text: {
      // Which brackets, so the one sent knows how many to look for ("bracket 2" -> "2 号支架空").
      "zh-CN": {
        title: "灭火器不在位",
        detail: (_d, causes) => {
          const n = causes.filter((c) => c.startsWith("bracket ")).map((c) => c.slice(8));
          return n.length === 0 ? null : `${n.join("、")} 号支架空`;
        },
        action: "派人到微型消防站查看灭火器是否被取走，尽快归位或补充。",
      },
      en: {
        title: "Extinguisher missing",
        detail: (_d, causes) => (causes.length === 0 ? null : `${causes.join(", ")} empty`),
        action: "Send someone to the fire station to see whether it was taken; put it back or replace it.",
      },
    },
  },
  FAULT: {
    priority: [2, 3],
    raised:
      "status bits 4 (pump, P2), 6 (battery, P3), 8 (detector, P3): one alert naming every live cause, at the highest priority among them (below); the detector fault names its code",
    cleared: "no fault bit left",
    // The catalogue's FAULT detail reads `faultCode`, which is 0 for a pump or battery fault.
    text: {
      "zh-CN": {
        title: "设备故障",
        detail: (d, causes) => named(causes, FAULT_CAUSE_TEXT, d, "、"),
        action: "通知维保单位检修；消防设备故障期间加强人工巡查。",
      },
      en: {
        title: "Device fault",
        detail: (_d, causes) => (causes.length === 0 ? null : causes.join(", ")),
        action: "Call the maintenance contractor; patrol fire equipment by hand until it is fixed.",
      },
    },
  },
  POWER_FAIL: { priority: 3, raised: "mains failed (status bit 5)", cleared: "mains back" },
} as const satisfies Readonly<Record<string, AlertSpec>>;
type Mfs8Code = keyof typeof ALERTS;

export const mfs8: ModbusDeviceProfile<
  Mfs8Sample,
  Mfs8State,
  { model: "mfs8"; binding: "modbus-serial"; code: Mfs8Code; settings: Mfs8Settings; config: typeof config }
> = {
  model: "mfs8",
  label: "MFS-8",
  names: { "zh-CN": "微型消防站", en: "fire station" },
  simulator: "sim/modbus/mfs8.ts",
  transport: "modbus",
  binding: "modbus-serial",
  interval: "2s",
  config,
  settings: (c) => ({ minPressureMpa: c.minPressure, extinguisherGraceMs: c.extinguisherGrace }),
  alerts: ALERTS,
  // "a fire station that cannot report is a fire-safety fault"
  lostPriority: 2,
  lostAction: {
    "zh-CN": "检查总线接线和面板电源；失联期间该消防站无法报警，请加强人工巡查。",
    en: "Check the bus wiring and the panel's power; while it is lost this fire station cannot raise an alarm: patrol it by hand.",
  },
  fn: 3,
  points: MFS8_POINTS,
  maxGap: 0,
  missedPollsForLost: 3,
  // "The panel answers within 50 ms of the end of a request."
  turnaroundMs: 50,
  // "allow at least 100 ms before calling a request lost"
  minReplyTimeoutMs: 100,
  commands: {
    silence: {
      names: { "zh-CN": "消音", en: "silence" },
      // The datasheet: the panel's sounder stops; people on site are no longer warned by it.
      actuates: true,
      fn: 5,
      address: 0,
      value: 0xff00,
      doc: "coil 0 ON: silence the sounder",
    },
    reset: {
      names: { "zh-CN": "复位报警", en: "reset alarms" },
      // The datasheet: the latched alarm bits clear; a fire still burning is no longer shown latched.
      actuates: true,
      fn: 5,
      address: 1,
      value: 0xff00,
      doc: "coil 1 ON: reset latched alarms",
    },
    test_on: {
      names: { "zh-CN": "进入测试模式", en: "test mode on" },
      // The datasheet (status bit 15): the panel's alerts are marked test and page no one.
      actuates: true,
      fn: 5,
      address: 2,
      value: 0xff00,
      doc: "coil 2 ON: test mode on",
    },
    test_off: {
      names: { "zh-CN": "退出测试模式", en: "test mode off" },
      fn: 5,
      address: 2,
      value: 0x0000,
      doc: "coil 2 OFF: test mode off",
    },
  },

  decode(v: Readonly<Record<string, PointValue>>): Mfs8Sample | Rejection {
    if (v.model !== MODEL_ID)
      return reject("bad-field", `model register is ${String(v.model)}, not 0x4D38 (not an MFS-8)`);
    const slots = v.slots as number;
    // A number outside the datasheet's range is `out-of-range`, as for MQTT fields and YAML points.
    if (slots > 8) return reject("out-of-range", `extinguisher slots ${slots} > 8`);
    const pressure = v.pressure as number;
    if (!Number.isFinite(pressure)) return reject("bad-field", "hydrant pressure is not a number");
    const fw = v.firmware as number;
    return {
      firmware: `${fw >> 8}.${fw & 0xff}`,
      uptime: v.uptime as number,
      status: v.status as number,
      smoke: v.smoke as number,
      temperature: v.temperature as number,
      pressure,
      present: v.present as number,
      slots,
      faultCode: v.faultCode as number,
      events: v.events as number,
    };
  },

  // A panel in alarm is P1 on every poll; any other change of status is an alert-lane event.
  lane(s, previous) {
    if (inAlarm(flagsOf(MFS8_STATUS, s.status))) return LANE_P1;
    const changed =
      previous === null ||
      s.status !== previous.status ||
      s.present !== previous.present ||
      s.faultCode !== previous.faultCode;
    return changed ? LANE_ALERT : LANE_TELEMETRY;
  },

  deviceTime: () => null,
  isActivity: () => false,
  suppressed: (s) => (flagsOf(MFS8_STATUS, s.status).testMode ? "test" : false),

  metrics: (s) => {
    const f = flagsOf(MFS8_STATUS, s.status);
    return {
      smoke: { value: round(s.smoke, 2), unit: "%/m" },
      temperature: { value: round(s.temperature, 1), unit: "°C" },
      hydrantPressure: { value: round(s.pressure, 3), unit: "MPa" },
      extinguishersPresent: { value: popcount(s.present & ((1 << s.slots) - 1)) },
      extinguisherSlots: { value: s.slots },
      sounder: { value: f.sounder },
      testMode: { value: f.testMode },
      faultCode: { value: s.faultCode },
      eventCounter: { value: s.events },
      uptime: { value: s.uptime, unit: "s" },
    };
  },

  // The deadbands of its analog alerts across a restart: a restored alert holds until its clear point.
  durable: thresholdsDurable<Mfs8State>(1, (st) => st.pressure),

  shiftTimes: (st, ms) => {
    for (let i = 0; i < st.emptySince.length; i++)
      if (st.emptySince[i] !== 0) (st.emptySince[i] as number) += ms;
  },
  initialState: () => ({
    first: true,
    status: 0,
    pressure: new ThresholdState({ below: 0.15, deadband: PRESSURE_DEADBAND }),
    faultCode: 0,
    emptySince: new Array(8).fill(0),
    missingMask: 0,
  }),

  rules(
    s: Mfs8Sample,
    st: Mfs8State,
    settings: DeviceSettings & Mfs8Settings,
    ctx: RuleContext<Mfs8Code>,
  ): void {
    const f = flagsOf(MFS8_STATUS, s.status);
    const was = flagsOf(MFS8_STATUS, st.status);
    const first = st.first;
    st.first = false;
    const changed = (flag: StatusFlag) => first || f[flag] !== was[flag];
    st.status = s.status;

    // One fire incident per station naming every cause (datasheet); the panel latches until reset.
    if (FIRE_CAUSES.some(([flag]) => changed(flag))) {
      const causes = FIRE_CAUSES.filter(([flag]) => f[flag]).map(([, c]) => c);
      ctx.condition("FIRE_ALARM", causes.length > 0, {
        priority: 1,
        causes,
        detail: { smoke: round(s.smoke, 2), temperature: round(s.temperature, 1) },
      });
    }

    // Hydrant pressure: the panel's own bit, or the gateway's configured minimum (with a deadband).
    // The minimum may change on a reload: the test takes it on every poll.
    const low = st.pressure
      .setSpec({ below: settings.minPressureMpa, deadband: PRESSURE_DEADBAND })
      .update(s.pressure);
    const panelLow = f.pressureLow;
    // Reported on every poll: the options are built only while the pressure is low.
    if (panelLow || low)
      ctx.condition("HYDRANT_PRESSURE_LOW", true, {
        priority: 2,
        causes: [...(panelLow ? ["panel"] : []), ...(low ? [`below ${settings.minPressureMpa} MPa`] : [])],
        detail: { pressure: round(s.pressure, 3) },
      });
    else ctx.condition("HYDRANT_PRESSURE_LOW", false, INACTIVE[2]);

    // One FAULT per panel naming every live cause, at the highest priority among them: P2 while the
    // pump fault is present, else P3 (docs/topics.md); it clears when no cause is left.
    if (first || FAULT_FLAGS.some(changed) || s.faultCode !== st.faultCode) {
      st.faultCode = s.faultCode;
      const causes: string[] = [];
      if (f.pumpFault) causes.push("pump fault");
      if (f.batteryFault) causes.push("battery fault");
      if (f.detectorFault)
        causes.push(`detector fault: ${enumName(MFS8_FAULT, s.faultCode) ?? `code ${s.faultCode}`}`);
      ctx.condition("FAULT", causes.length > 0, {
        priority: f.pumpFault ? 2 : 3,
        causes,
        detail: { faultCode: s.faultCode },
      });
    }
    if (changed("mainsFail")) {
      ctx.condition("POWER_FAIL", f.mainsFail, {
        priority: 3,
        causes: ["mains failed, on battery"],
      });
    }

    // A fitted bracket left empty past the grace: someone may be carrying the extinguisher to a fire.
    let missing = 0;
    let earliest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 8; i++) {
      if (i < s.slots && (s.present & (1 << i)) === 0) {
        missing |= 1 << i;
        if (st.emptySince[i] === 0) st.emptySince[i] = ctx.now;
        earliest = Math.min(earliest, st.emptySince[i] as number);
      } else st.emptySince[i] = 0;
    }
    if (first || missing !== st.missingMask) {
      st.missingMask = missing;
      const causes: string[] = [];
      for (let i = 0; i < 8; i++) if (missing & (1 << i)) causes.push(`bracket ${i + 1}`);
      ctx.condition("EXTINGUISHER_MISSING", missing !== 0, {
        priority: 3,
        causes,
        onDelayMs: settings.extinguisherGraceMs,
        since: missing !== 0 ? earliest : undefined,
      });
    }
  },
};

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x; x &= x - 1) c++;
  return c;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
