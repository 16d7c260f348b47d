/**
 * LV-4 fire-water tank level sensor (datasheets/lv4-water-tank.md): register
 * map as data and the tank's alert rules. Modbus RTU on the fire station's
 * RS-485 bus, fn 0x04, input registers 0-11 read in one request; set-points
 * (holding registers 0-1, fn 0x06) and the self-test (coil 0) as commands.
 */
import { z } from "zod";
import { LANE_ALERT, LANE_TELEMETRY } from "../core/index.js";
import { type EnumPoint, enumName, type PointSpec, type PointValue } from "./modbus-decode.js";
import {
  type AlertSpec,
  type DeviceSettings,
  type ModbusDeviceProfile,
  num,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";
import { ThresholdState } from "./threshold.js";

const MODEL_ID = 0x4c34; // "L4"

export const LV4_FAULTS: Readonly<Record<number, string>> = {
  0: "none",
  1: "pressure cell open circuit",
  2: "pressure cell over range",
  3: "temperature probe fault",
  4: "supply voltage low",
};

/** The fault codes' meanings for duty staff (a code not listed is named by number). */
const LV4_FAULTS_ZH: Readonly<Record<string, string>> = {
  "pressure cell open circuit": "压力传感器断路",
  "pressure cell over range": "压力传感器超量程",
  "temperature probe fault": "温度探头故障",
  "supply voltage low": "供电电压过低",
};

/** FAULT's cause ("sensor fault: supply voltage low", "sensor fault: code 9") in Chinese. */
function sensorFaultZh(causes: readonly string[]): string | null {
  const cause = causes[0];
  if (cause === undefined) return null;
  const meaning = cause.slice(cause.indexOf(":") + 1).trim();
  const code = /^code (\d+)$/.exec(meaning);
  return `传感器故障：${code ? `故障码 ${code[1]}` : (LV4_FAULTS_ZH[meaning] ?? meaning)}`;
}

/** The fault code register (7) as an enum point: what a sensor fault names. */
export const LV4_FAULT: EnumPoint = { name: "faultCode", address: 7, type: "enum", values: LV4_FAULTS };

export const LV4_POINTS: readonly PointSpec[] = [
  { name: "model", address: 0, type: "u16" },
  { name: "firmware", address: 1, type: "u16" },
  { name: "level", address: 2, type: "u16", unit: "mm" },
  { name: "temperature", address: 3, type: "i16", scale: 0.1, unit: "°C" },
  // The datasheet's float is high word first (AB CD).
  { name: "volume", address: 4, type: "f32", wordOrder: "ABCD", unit: "m³" },
  {
    name: "status",
    address: 6,
    type: "bitfield",
    bits: { low: 0, high: 1, heater: 2, fault: 3, selfTest: 4 },
  },
  { name: "faultCode", address: 7, type: "u16" },
  { name: "uptime", address: 8, type: "u32", wordOrder: "ABCD", unit: "s" },
  { name: "tankHeight", address: 10, type: "u16", unit: "mm" },
  { name: "alarmCounter", address: 11, type: "u16" },
];

export interface Lv4Sample {
  firmware: string;
  level: number;
  temperature: number;
  volume: number;
  /** Status register 6, decoded by its bitfield point. */
  status: { low: boolean; high: boolean; heater: boolean; fault: boolean; selfTest: boolean };
  faultCode: number;
  uptime: number;
  tankHeight: number;
  alarmCounter: number;
}

export interface Lv4State {
  low: ThresholdState | null;
  critical: ThresholdState | null;
  /** The limits the two detectors were built for (a changed reserve or tank height rebuilds them). */
  lowLimit: number;
  criticalLimit: number;
  freeze: ThresholdState;
  /** Last level believed real; NaN before the first. */
  goodLevel: number;
  /**
   * When the previous reading the rules saw was read (`RuleContext.readAt`, monotonic), a reading
   * under a pressure-cell fault code not counted (the fault is a gap); NaN before the first.
   */
  lastReadAt: number;
  /** A jump faster than 20 % of the tank height per second is suspect from this time (`readAt`) until it persists 30 s; NaN when none. */
  suspectSince: number;
  /** Whether the level reading of the last sample was suspect (for telemetry). */
  suspect: boolean;
  /** Whether the last sample's fault code named the temperature probe (its reading suspect). */
  temperatureSuspect: boolean;
  /** Water under 4.0 °C itself since (gateway time), 0 when not (5.0 °C is the way back). */
  freezeSince: number;
  /** Level under the reserve itself since (gateway time), 0 when not (the 50 mm deadband is the way back). */
  lowSince: number;
  /** The sensor's low set-point (holding register 0), mm; null until read. */
  lowSetPoint: number | null;
}

/** "clearing 50 mm above it" */
export const LEVEL_DEADBAND_MM = 50;
/** "held 30 s" */
export const LEVEL_LOW_HOLD_MS = 30_000;
/** "under 30 % of tank height" */
export const CRITICAL_RATIO = 0.3;
/** "else 60 % of tank height" */
export const DEFAULT_RESERVE_RATIO = 0.6;
/** "under 4.0 °C for 10 minutes, clearing at 5.0 °C" */
export const FREEZE_BELOW_C = 4.0;
export const FREEZE_CLEAR_C = 5.0;
export const FREEZE_HOLD_MS = 600_000;
/**
 * "jumps by more than 20 % of tank height between two polls a second apart ... unless it persists
 * for 30 s", read as a rate: 20 % of the tank height per second between the two polls (after a
 * communication gap, or at a slower poll, a drained tank is believed at once).
 */
export const JUMP_RATIO_PER_S = 0.2;
export const JUMP_PERSIST_MS = 30_000;

/**
 * Register 7 "fault code: ... 1 pressure cell open circuit, 2 pressure cell over range, 3
 * temperature probe fault, 4 supply voltage low": the codes that name the level's sensor and the
 * temperature's. While one is reported, that reading is not believed (4 names no reading).
 */
export const LEVEL_FAULT_CODES: readonly number[] = [1, 2];
export const TEMPERATURE_FAULT_CODES: readonly number[] = [3];

/** The low set-point's range (holding register 0): "100 to tank height". */
export const LOW_SET_POINT_MIN_MM = 100;
/** How often the set-point is read again (an installer may change it at the sensor). */
export const SET_POINT_REFRESH_MS = 600_000;

export interface Lv4Settings {
  /** WATER_LEVEL_LOW under this many mm; null: the sensor's low set-point, else 60 % of the tank height. */
  reserve: number | null;
}

/**
 * The reserve in mm (datasheet: "default: the sensor's low set-point, else 60 % of tank
 * height"): the device's configured `reserve`, else the set-point read from the sensor when it
 * is within its range, else 60 % of the tank height.
 */
export function lv4Reserve(
  settings: Lv4Settings,
  tankHeight: number,
  lowSetPoint: number | null = null,
): number {
  if (settings.reserve !== null) return settings.reserve;
  if (lowSetPoint !== null && lowSetPoint >= LOW_SET_POINT_MIN_MM && lowSetPoint <= tankHeight)
    return lowSetPoint;
  return DEFAULT_RESERVE_RATIO * tankHeight;
}

const config = {
  reserve: z.number().int().positive().optional().meta({
    description:
      "WATER_LEVEL_LOW under this many mm (held 30 s, clears 50 mm above); default the sensor's low set-point (holding register 0), else 60 % of the tank height",
  }),
};

const ALERTS = {
  WATER_LEVEL_LOW: {
    priority: 2,
    raised:
      "level under the device's `reserve` (default the sensor's low set-point, else 60 % of the tank height) for 30 s; `detail.reserveMm`",
    cleared: "level 50 mm above the reserve",
    text: {
      "zh-CN": {
        title: "消防水箱水位低",
        detail: (d) => (num(d, "reserveMm") === null ? null : `低于储备水位 ${num(d, "reserveMm")} mm`),
        action: "通知物业检查补水阀和水泵，尽快补水；确认消防用水储备。",
      },
      en: {
        title: "Fire-water tank low",
        detail: (d) =>
          num(d, "reserveMm") === null ? null : `under the reserve of ${num(d, "reserveMm")} mm`,
        action:
          "Have the refill valve and pump checked and the tank refilled; the fire-fighting reserve is short.",
      },
    },
  },
  WATER_LEVEL_CRITICAL: {
    priority: 2,
    raised:
      "level under 30 % of the tank height, escalated like a P1 (on `alerts.escalation.p1`); replaces `WATER_LEVEL_LOW` while it lasts (that one clears, and comes back at once after it if the tank is still under the reserve)",
    cleared: "level 50 mm above 30 % of the height",
    text: {
      "zh-CN": {
        title: "消防水箱水位严重不足",
        detail: (d) => (num(d, "limitMm") === null ? null : `低于 ${num(d, "limitMm")} mm，即水箱高度的 30%`),
        action: "立即通知物业和维保单位补水；消防用水不足，必要时报告消防部门。",
      },
      en: {
        title: "Fire-water tank critically low",
        detail: (d) =>
          num(d, "limitMm") === null ? null : `under ${num(d, "limitMm")} mm, 30 % of the tank height`,
        action:
          "Get the tank refilled now; tell the fire brigade if the water for fire fighting stays short.",
      },
    },
  },
  FREEZE_RISK: {
    priority: 3,
    raised: "water under 4.0 °C for 10 minutes",
    cleared: "5.0 °C or more",
    text: {
      "zh-CN": { title: "消防水箱有结冰风险", action: "检查水箱加热器和保温，必要时采取防冻措施。" },
      en: {
        title: "Fire-water tank may freeze",
        action: "Check the tank's heater and insulation; protect it against frost.",
      },
    },
  },
  FAULT: {
    priority: 3,
    raised: "status bit 3; `causes`: `sensor fault: <meaning of the fault code>`",
    cleared: "bit clear",
    // The catalogue's FAULT reads a `faultCode` detail; the LV-4's cause names the code's meaning.
    text: {
      "zh-CN": {
        title: "设备故障",
        detail: (_d, causes) => sensorFaultZh(causes),
        action: "通知维保单位检修；故障期间派人查看水位。",
      },
      en: {
        title: "Device fault",
        detail: (_d, causes) => causes[0] ?? null,
        action: "Call the maintenance contractor; check the water level by hand until it is fixed.",
      },
    },
  },
} as const satisfies Readonly<Record<string, AlertSpec>>;
type Lv4Code = keyof typeof ALERTS;

export const lv4: ModbusDeviceProfile<
  Lv4Sample,
  Lv4State,
  { model: "lv4"; binding: "modbus-serial"; code: Lv4Code; settings: Lv4Settings; config: typeof config }
> = {
  model: "lv4",
  label: "LV-4",
  names: { "zh-CN": "消防水箱液位计", en: "tank level sensor" },
  simulator: "sim/modbus/lv4.ts",
  transport: "modbus",
  binding: "modbus-serial",
  // The datasheet's jump filter is worded for polls a second apart (the rate holds at any period).
  interval: "1s",
  config,
  settings: (c) => ({ reserve: c.reserve ?? null }),
  alerts: ALERTS,
  // A tank that cannot report is a fire-safety fault, like the fire station it serves.
  lostPriority: 2,
  lostAction: {
    "zh-CN": "检查液位计电源和 RS-485 线路。",
    en: "Check the level sensor's power and its RS-485 line.",
  },
  fn: 4,
  points: LV4_POINTS,
  maxGap: 0,
  missedPollsForLost: 3,
  settingReads: [{ name: "lowSetPoint", fn: 3, address: 0, refreshMs: SET_POINT_REFRESH_MS }],
  applySetting(st, name, value) {
    if (name === "lowSetPoint") st.lowSetPoint = value;
  },
  // "Answers within 80 ms of the end of a request."
  turnaroundMs: 80,
  // A shorter timeout gives up on replies the datasheet says may still come.
  minReplyTimeoutMs: 80,
  commands: {
    self_test: {
      names: { "zh-CN": "自检", en: "self-test" },
      // The datasheet (status bit 4): readings are not real for up to 10 s and raise no level alert.
      actuates: true,
      fn: 5,
      address: 0,
      value: 0xff00,
      doc: "coil 0 ON: start a self-test (readings not real for up to 10 s)",
    },
    // Set-points, mm; the sensor refuses a value outside its ranges with exception 0x03.
    set_low: {
      names: { "zh-CN": "设置低液位", en: "set the low level" },
      // The datasheet: the sensor's own low-level alarm (status bit 0), and WATER_LEVEL_LOW's default reserve.
      actuates: true,
      fn: 6,
      address: 0,
      value: "request",
      min: 100,
      max: 0xffff,
      doc: "holding register 0 := the request's `value`: low-level set-point, mm",
    },
    set_high: {
      names: { "zh-CN": "设置高液位", en: "set the high level" },
      // The datasheet: the sensor's own overflow alarm (status bit 1).
      actuates: true,
      fn: 6,
      address: 1,
      value: "request",
      min: 200,
      max: 0xffff,
      doc: "holding register 1 := the request's `value`: high-level set-point, mm",
    },
  },

  decode(v: Readonly<Record<string, PointValue>>): Lv4Sample | Rejection {
    if (v.model !== MODEL_ID)
      return reject("bad-field", `model register is ${String(v.model)}, not 0x4C34 (not an LV-4)`);
    const tankHeight = v.tankHeight as number;
    // A number outside the plausible range is `out-of-range`, as the YAML profile's `min: 1` says.
    if (tankHeight === 0) return reject("out-of-range", "tank height is 0 mm");
    const volume = v.volume as number;
    if (!Number.isFinite(volume)) return reject("bad-field", "volume is not a number");
    const fw = v.firmware as number;
    return {
      firmware: `${fw >> 8}.${fw & 0xff}`,
      level: v.level as number,
      temperature: v.temperature as number,
      volume,
      status: v.status as Lv4Sample["status"],
      faultCode: v.faultCode as number,
      uptime: v.uptime as number,
      tankHeight,
      alarmCounter: v.alarmCounter as number,
    };
  },

  // The sensor's alarm counter moves on every change of its low, high and fault bits. A level
  // across one of the rules' own limits (the reserve, 30 % of the height, or 50 mm above either)
  // raises or clears an alert with no bit of the sensor's moving: not behind telemetry either.
  lane: (s, previous, st, settings) =>
    previous === null ||
    s.alarmCounter !== previous.alarmCounter ||
    s.status.selfTest !== previous.status.selfTest ||
    s.faultCode !== previous.faultCode ||
    LEVEL_BAND.some((flag) => s.status[flag] !== previous.status[flag]) ||
    levelBand(s.level, s.tankHeight, st, settings) !==
      levelBand(previous.level, previous.tankHeight, st, settings)
      ? LANE_ALERT
      : LANE_TELEMETRY,

  deviceTime: () => null,
  // Datasheet: self-test readings "are marked as such"; a suspect jump is reported "with a quality flag".
  // A reading whose sensor the fault code names (register 7) is suspect too.
  quality: (s, st) =>
    s.status.selfTest ? "self-test" : st.suspect || st.temperatureSuspect ? "suspect" : null,
  isActivity: () => false,
  suppressed: () => false,

  metrics: (s, st) => ({
    level: { value: s.level, unit: "mm" },
    levelSuspect: { value: st.suspect },
    volume: { value: s.volume, unit: "m³" },
    temperature: { value: round1(s.temperature), unit: "°C" },
    heater: { value: s.status.heater },
    selfTest: { value: s.status.selfTest },
    aboveHighSetPoint: { value: s.status.high },
    belowLowSetPoint: { value: s.status.low },
    faultCode: { value: s.faultCode },
    tankHeight: { value: s.tankHeight, unit: "mm" },
    alarmCounter: { value: s.alarmCounter },
    uptime: { value: s.uptime, unit: "s" },
  }),

  // The deadbands of the level and freeze alerts across a restart (a restored WATER_LEVEL_LOW holds
  // until 50 mm above the reserve, as without the restart); the level limits with them, since the
  // level detectors are built at the first reading. Times (holds, the last poll) are not kept.
  durable: {
    version: 1,
    save: (st) => [
      lv4Limit(st.lowLimit),
      st.low?.active ?? false,
      lv4Limit(st.criticalLimit),
      st.critical?.active ?? false,
      st.freeze.active,
    ],
    same: (st, v) =>
      v[0] === lv4Limit(st.lowLimit) &&
      v[1] === (st.low?.active ?? false) &&
      v[2] === lv4Limit(st.criticalLimit) &&
      v[3] === (st.critical?.active ?? false) &&
      v[4] === st.freeze.active,
    restore(st, v) {
      const [lowLimit, low, criticalLimit, critical, freeze] = v;
      if (typeof lowLimit === "number" && Number.isFinite(lowLimit) && typeof low === "boolean") {
        st.low = new ThresholdState({ below: lowLimit, deadband: LEVEL_DEADBAND_MM });
        st.low.active = low;
        st.lowLimit = lowLimit;
      }
      if (
        typeof criticalLimit === "number" &&
        Number.isFinite(criticalLimit) &&
        typeof critical === "boolean"
      ) {
        st.critical = new ThresholdState({ below: criticalLimit, deadband: LEVEL_DEADBAND_MM });
        st.critical.active = critical;
        st.criticalLimit = criticalLimit;
      }
      if (typeof freeze === "boolean") st.freeze.active = freeze;
    },
  },

  shiftTimes: (st, ms) => {
    if (st.lowSince !== 0) st.lowSince += ms;
    if (st.freezeSince !== 0) st.freezeSince += ms;
  },
  initialState: () => ({
    low: null,
    critical: null,
    lowLimit: Number.NaN,
    criticalLimit: Number.NaN,
    freeze: new ThresholdState({ below: FREEZE_BELOW_C, deadband: FREEZE_CLEAR_C - FREEZE_BELOW_C }),
    goodLevel: Number.NaN,
    lastReadAt: Number.NaN,
    suspectSince: Number.NaN,
    suspect: false,
    temperatureSuspect: false,
    freezeSince: 0,
    lowSince: 0,
    lowSetPoint: null,
  }),

  rules(s: Lv4Sample, st: Lv4State, settings: DeviceSettings & Lv4Settings, ctx: RuleContext<Lv4Code>): void {
    // A sensor fault holds whatever the readings say.
    const fault = s.status.fault;
    ctx.condition("FAULT", fault, {
      priority: 3,
      causes: fault ? [`sensor fault: ${enumName(LV4_FAULT, s.faultCode) ?? `code ${s.faultCode}`}`] : [],
    });

    // "Readings taken while bit 4 (self-test) is set are marked as such and raise no level alert"
    // ("readings are not real"): value alerts stay as they were until the test is over.
    st.suspect = false;
    st.temperatureSuspect = false;
    // Datasheet, register 7: while the fault code names a sensor (1-2 the pressure cell, 3 the
    // temperature probe), its readings are not believed: suspect, its alerts neither raise nor
    // clear, and their holds start again from the first believed reading after the fault (the
    // fault's time counts for nothing). Code 4 (supply voltage low) names no reading.
    const levelFault = LEVEL_FAULT_CODES.includes(s.faultCode);
    const temperatureFault = TEMPERATURE_FAULT_CODES.includes(s.faultCode);
    // Every poll is the "previous poll" of the next one, a self-test reading too; a poll under a
    // pressure-cell fault is not (no level was read): the fault is a gap in the level's polls, and
    // the first level after it is judged over the whole gap, as after a silent bus.
    const sinceLastMs = ctx.readAt - st.lastReadAt;
    if (!levelFault) st.lastReadAt = ctx.readAt;
    if (levelFault) {
      st.lowSince = 0;
      st.suspectSince = Number.NaN;
    }
    if (temperatureFault) st.freezeSince = 0;
    if (s.status.selfTest) {
      holdLevelLow(st, ctx);
      holdFreeze(st, ctx);
      return;
    }
    if (temperatureFault) {
      st.temperatureSuspect = true;
      holdFreeze(st, ctx);
    } else freezeRule(s, st, ctx);
    if (levelFault) {
      st.suspect = true;
      holdLevelLow(st, ctx);
      return;
    }
    if (!levelBelievable(s, st, ctx.readAt, sinceLastMs)) {
      st.suspect = true;
      holdLevelLow(st, ctx);
      return;
    }

    const reserve = lv4Reserve(settings, s.tankHeight, st.lowSetPoint);
    const criticalLimit = CRITICAL_RATIO * s.tankHeight;
    if (st.low === null || st.lowLimit !== reserve) {
      st.low = new ThresholdState({ below: reserve, deadband: LEVEL_DEADBAND_MM });
      st.lowLimit = reserve;
    }
    if (st.critical === null || st.criticalLimit !== criticalLimit) {
      st.critical = new ThresholdState({ below: criticalLimit, deadband: LEVEL_DEADBAND_MM });
      st.criticalLimit = criticalLimit;
    }
    const critical = st.critical.update(s.level);
    const low = st.low.update(s.level);
    // "held 30 s" under the reserve itself; 50 mm above it is where a raised alert clears.
    const under = st.low.beyond;
    if (under && st.lowSince === 0) st.lowSince = ctx.now;
    if (!under) st.lowSince = 0;
    ctx.condition("WATER_LEVEL_CRITICAL", critical, {
      priority: 2,
      escalateAs: 1,
      causes: [`level under ${Math.round(CRITICAL_RATIO * 100)} % of the tank height`],
      detail: { limitMm: round1(criticalLimit), tankHeightMm: s.tankHeight },
    });
    // CRITICAL replaces LOW while it lasts; LOW comes back at once if the tank stayed under the reserve.
    ctx.condition("WATER_LEVEL_LOW", low && !critical, {
      priority: 2,
      causes: LOW_CAUSES,
      detail: { reserveMm: round1(reserve) },
      onDelayMs: LEVEL_LOW_HOLD_MS,
      onset: under,
      since: under ? st.lowSince : undefined,
    });
  },
};

/** A level limit as journaled: null before the detectors were built (NaN). */
const lv4Limit = (v: number): number | null => (Number.isNaN(v) ? null : v);

/**
 * A reading that is not a real level (self-test, a suspect jump): "held 30 s" cannot be confirmed
 * by it, so an on-delay that runs out meanwhile must not raise. Reported active within the
 * deadband only (onset false), a raised WATER_LEVEL_LOW holds and a pending one ends; the next
 * real reading decides, counting from when the level went under (lowSince, kept meanwhile).
 */
function holdLevelLow(st: Lv4State, ctx: RuleContext<Lv4Code>): void {
  if (st.low === null || !st.low.active) return;
  ctx.condition("WATER_LEVEL_LOW", true, {
    priority: 2,
    causes: LOW_CAUSES,
    detail: { reserveMm: round1(st.lowLimit) },
    onset: false,
  });
}

/**
 * A level further from the last real one than 20 % of the tank height per second since the
 * previous poll is more likely a failing cell than the tank (polls a second apart: the
 * datasheet's 20 %); it becomes the real level once it has persisted 30 s. A level above the tank
 * height (the failing cell's 65535 mm) is never real, whatever the time: suspect while it lasts,
 * and never the level a later reading is compared with.
 */
function levelBelievable(s: Lv4Sample, st: Lv4State, readAt: number, sinceLastMs: number): boolean {
  if (s.level > s.tankHeight) return false;
  // NaN before the first poll: no jump to judge.
  const allowed = JUMP_RATIO_PER_S * s.tankHeight * (sinceLastMs / 1000);
  const jump = Math.abs(s.level - st.goodLevel) > allowed;
  if (jump && !Number.isNaN(st.goodLevel)) {
    if (Number.isNaN(st.suspectSince)) st.suspectSince = readAt;
    if (readAt - st.suspectSince < JUMP_PERSIST_MS) return false;
  }
  st.goodLevel = s.level;
  st.suspectSince = Number.NaN;
  return true;
}

/**
 * "under 4.0 °C for 10 minutes, clearing at 5.0 °C": the 10 minutes under 4.0 °C without a
 * break (a heater that switched on at 4 °C and holds the water at 4-5 °C is working); 5.0 °C
 * is where a raised FREEZE_RISK clears. Counted from the first reading under 4.0 °C, so that
 * a hold that ran out during a self-test raises at the first real reading after it.
 */
function freezeRule(s: Lv4Sample, st: Lv4State, ctx: RuleContext<Lv4Code>): void {
  const freezing = st.freeze.update(s.temperature);
  const cold = st.freeze.beyond;
  if (cold && st.freezeSince === 0) st.freezeSince = ctx.now;
  if (!cold) st.freezeSince = 0;
  ctx.condition("FREEZE_RISK", freezing, {
    priority: 3,
    causes: FREEZE_CAUSES,
    onDelayMs: FREEZE_HOLD_MS,
    onset: cold,
    since: cold ? st.freezeSince : undefined,
  });
}

const LOW_CAUSES: readonly string[] = ["level under the reserve"];
const FREEZE_CAUSES: readonly string[] = [`water under ${FREEZE_BELOW_C.toFixed(1)} °C`];

/**
 * The self-test's temperature is no more real than its level ("readings are not real for up to
 * 10 s"): a FREEZE_RISK hold that runs out meanwhile must not raise (as holdLevelLow).
 */
function holdFreeze(st: Lv4State, ctx: RuleContext<Lv4Code>): void {
  if (!st.freeze.active) return;
  ctx.condition("FREEZE_RISK", true, { priority: 3, causes: FREEZE_CAUSES, onset: false });
}

/**
 * How many of the rules' level limits (30 % of the height and the reserve, each with its 50 mm
 * way back) a level is under: a level in another band than the last poll's may change an alert.
 * Without the rule state or settings (tests), the reserve the rules would take by default.
 */
function levelBand(level: number, tankHeight: number, st?: Lv4State, settings?: Lv4Settings): number {
  const critical = CRITICAL_RATIO * tankHeight;
  const reserve = lv4Reserve(settings ?? DEFAULT_SETTINGS, tankHeight, st?.lowSetPoint ?? null);
  // Four comparisons, no list: this runs on every poll.
  return (
    Number(level < critical) +
    Number(level < critical + LEVEL_DEADBAND_MM) +
    Number(level < reserve) +
    Number(level < reserve + LEVEL_DEADBAND_MM)
  );
}

const DEFAULT_SETTINGS: Lv4Settings = { reserve: null };

/** The sensor's own comparisons and its fault: a change of any is an alert-lane event. */
const LEVEL_BAND = ["low", "high", "fault"] as const;

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
