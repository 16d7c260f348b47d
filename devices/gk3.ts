/**
 * GK-3 kiosk controller (datasheets/gk3-kiosk.md): register map as data and
 * the kiosk's alert rules. Modbus TCP, fn 0x04, input registers 0-9.
 */

import { z } from "zod";
import { duration, LANE_ALERT, LANE_TELEMETRY } from "../core/index.js";
import { parseOpeningHours, withinHours } from "./modbus-common.js";
import {
  type BitfieldPoint,
  type EnumPoint,
  flagsOf,
  type PointSpec,
  type PointValue,
} from "./modbus-decode.js";
import {
  type AlertSpec,
  type DeviceSettings,
  type ModbusDeviceProfile,
  num,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";
import { ThresholdState, thresholdsDurable } from "./threshold.js";

export const KIOSK_STATES = ["off", "booting", "in-service", "out-of-service", "maintenance"] as const;
export type KioskState = (typeof KIOSK_STATES)[number];

/** Status register bits (input register 4). */
export const STATUS = {
  doorOpen: 0,
  printerFault: 1,
  cardReaderFault: 2,
  screenFault: 3,
  networkDown: 4,
  upsOnBattery: 5,
  tilt: 6,
} as const;

type StatusFlag = keyof typeof STATUS;

/** The status register as a bitfield point: the rules read its flags by name. */
export const GK3_STATUS: BitfieldPoint<StatusFlag> = {
  name: "status",
  address: 4,
  type: "bitfield",
  bits: STATUS,
};
/** The kiosk state register (0) as an enum point: the sample carries the state's name. */
export const GK3_STATE: EnumPoint = { name: "state", address: 0, type: "enum", values: { ...KIOSK_STATES } };

/** The fault flags behind FAULT, and what each cause says. */
const FAULTS: ReadonlyArray<[StatusFlag, string]> = [
  ["printerFault", "printer"],
  ["cardReaderFault", "ID-card reader"],
  ["screenFault", "touch screen"],
  ["networkDown", "network uplink"],
];

export const GK3_POINTS: readonly PointSpec[] = [
  GK3_STATE,
  { name: "temperature", address: 1, type: "i16", scale: 0.1, unit: "°C" },
  { name: "humidity", address: 2, type: "u16", scale: 0.1, unit: "%RH" },
  { name: "paper", address: 3, type: "u16", unit: "%" },
  // The word as the kiosk sends it (the lane watches any change); GK3_STATUS names its bits.
  { name: "status", address: 4, type: "u16" },
  { name: "transactions", address: 5, type: "u32", wordOrder: "ABCD" },
  { name: "uptime", address: 7, type: "u32", wordOrder: "ABCD", unit: "s" },
  { name: "queue", address: 9, type: "u16" },
];

export interface Gk3Sample {
  state: KioskState;
  temperature: number;
  humidity: number;
  paper: number;
  status: number;
  transactions: number;
  uptime: number;
  queue: number;
}

export interface Gk3State {
  state: KioskState | null;
  status: number;
  tamper: boolean;
  paper: ThresholdState;
  overheat: ThresholdState;
  /** Availability bookkeeping for the current local day. */
  day: number;
  lastAt: number;
  openMs: number;
  inServiceMs: number;
}

/** PAPER_LOW under 10 %, cleared at 15 %; OVERHEAT over 45 °C, cleared at 43 °C (datasheet). */
const PAPER = { below: 10, deadband: 5 } as const;
const OVERHEAT = { above: 45, deadband: 2 } as const;

export interface Gk3Settings {
  /** State "out of service" this long is KIOSK_OUT_OF_SERVICE. */
  outOfServiceAfterMs: number;
  /** Opening hours as minutes after local midnight, for availability. */
  openingHours: { from: number; to: number };
}

const config = {
  outOfServiceAfter: duration("300s").meta({ description: "Out of service this long: KIOSK_OUT_OF_SERVICE" }),
  openingHours: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, 'must look like "08:30-17:30"')
    .default("08:30-17:30")
    .meta({ description: "Local opening hours, for the availability figure" }),
};

/** FAULT's causes in the operator's words: which part failed (the catalogue's FAULT reads a fault code the kiosk has not). */
const FAULT_CAUSE_ZH: Readonly<Record<string, string>> = {
  "printer fault": "打印机故障",
  "ID-card reader fault": "身份证读卡器故障",
  "touch screen fault": "触摸屏故障",
  "network uplink fault": "网络中断",
};
const faultParts = (
  causes: readonly string[],
  words: Readonly<Record<string, string>> | null,
  sep: string,
) => (causes.length === 0 ? null : causes.map((c) => words?.[c] ?? c).join(sep));

const ALERTS = {
  FAULT: {
    priority: 3,
    raised: "printer, ID-card reader, touch screen or network uplink fault",
    cleared: "no fault bit",
    text: {
      "zh-CN": {
        title: "设备故障",
        detail: (_d, causes) => faultParts(causes, FAULT_CAUSE_ZH, "、"),
        action: "通知维保单位检修。",
      },
      en: {
        title: "Device fault",
        detail: (_d, causes) => faultParts(causes, null, ", "),
        action: "Call the maintenance contractor.",
      },
    },
  },
  POWER_FAIL: { priority: 3, raised: "UPS on battery", cleared: "power back" },
  TAMPER: {
    priority: 2,
    raised: "cabinet door open in any state but maintenance (in service, out of service, booting, off)",
    cleared: "door closed, or the kiosk in maintenance",
    // A kiosk has no resident to ask: its cabinet is opened by the maintenance contractor or by someone who should not.
    text: {
      "zh-CN": {
        title: "设备外壳被打开",
        detail: () => "机柜门打开",
        action: "联系维保确认是否在检修，否则派人查看。",
      },
      en: {
        title: "Device cover opened",
        detail: () => "cabinet door open",
        action:
          "Ask the maintenance contractor whether they are working on it; if not, send someone to look.",
      },
    },
  },
  VANDALISM: {
    priority: 2,
    raised: "tilt or shock",
    cleared: "bit clear",
    text: {
      "zh-CN": { title: "设备被撞击或倾斜", action: "查看监控或派人到现场，确认设备是否被破坏。" },
      en: {
        title: "Device knocked or tilted",
        action: "Check the cameras or send someone to see whether the device was damaged.",
      },
    },
  },
  KIOSK_OUT_OF_SERVICE: {
    priority: 3,
    raised: 'state "out of service" longer than `outOfServiceAfter` (default 300 s)',
    cleared: "any other state",
    text: {
      "zh-CN": { title: "自助终端停止服务", action: "通知维保单位检修，并在终端旁告知居民。" },
      en: {
        title: "Kiosk out of service",
        action: "Call the maintenance contractor and put a notice up for residents.",
      },
    },
  },
  OVERHEAT: {
    priority: 3,
    raised: "cabinet over 45 °C",
    cleared: "43 °C or less",
    text: {
      "zh-CN": {
        title: "机柜温度过高",
        detail: (d) => (num(d, "temperature") === null ? null : `${num(d, "temperature")} °C`),
        action: "检查机柜通风和散热风扇，必要时暂停使用。",
      },
      en: {
        title: "Cabinet overheating",
        detail: (d) => (num(d, "temperature") === null ? null : `${num(d, "temperature")} °C`),
        action: "Check the cabinet's ventilation and fan; take the kiosk out of use if needed.",
      },
    },
  },
  PAPER_LOW: {
    priority: 4,
    raised: "paper under 10 %",
    cleared: "15 % or more",
    text: {
      "zh-CN": {
        title: "打印纸将用完",
        detail: (d) => (num(d, "paper") === null ? null : `剩余 ${num(d, "paper")}%`),
        action: "安排补充打印纸。",
      },
      en: {
        title: "Paper low",
        detail: (d) => (num(d, "paper") === null ? null : `${num(d, "paper")}% left`),
        action: "Refill the kiosk's paper.",
      },
    },
  },
} as const satisfies Readonly<Record<string, AlertSpec>>;
type Gk3Code = keyof typeof ALERTS;

export const gk3: ModbusDeviceProfile<
  Gk3Sample,
  Gk3State,
  { model: "gk3"; binding: "modbus-tcp"; code: Gk3Code; settings: Gk3Settings; config: typeof config }
> = {
  model: "gk3",
  label: "GK-3",
  names: { "zh-CN": "自助服务终端", en: "kiosk" },
  simulator: "sim/modbus/gk3.ts",
  transport: "modbus",
  binding: "modbus-tcp",
  interval: "10s",
  config,
  settings: (c) => ({
    outOfServiceAfterMs: c.outOfServiceAfter,
    openingHours: parseOpeningHours(c.openingHours),
  }),
  alerts: ALERTS,
  lostPriority: 3,
  lostAction: {
    "zh-CN": "检查终端电源和网络。",
    en: "Check the kiosk's power and network.",
  },
  fn: 4,
  points: GK3_POINTS,
  maxGap: 0,
  missedPollsForLost: 3,
  // "The controller closes a connection idle for 120 s."
  peerIdleCloseMs: 120_000,
  commands: {
    restart_app: {
      names: { "zh-CN": "重启终端程序", en: "restart the kiosk app" },
      // The datasheet: the application restarts; a resident using the kiosk loses the transaction.
      actuates: true,
      fn: 6,
      address: 100,
      value: 1,
      doc: "register 100 := 1: restart the kiosk application",
    },
    maintenance_on: {
      names: { "zh-CN": "进入维护", en: "maintenance on" },
      // The datasheet: the kiosk leaves service (state 4) and its door opening raises no TAMPER.
      actuates: true,
      fn: 6,
      address: 100,
      value: 2,
      doc: "register 100 := 2: enter maintenance",
    },
    maintenance_off: {
      names: { "zh-CN": "退出维护", en: "maintenance off" },
      fn: 6,
      address: 100,
      value: 3,
      doc: "register 100 := 3: leave maintenance",
    },
  },

  decode(v: Readonly<Record<string, PointValue>>): Gk3Sample | Rejection {
    // The enum point names states 0-4 and says `unknown(n)` for anything else.
    const state = v.state as KioskState;
    if (!KIOSK_STATES.includes(state)) return reject("bad-field", `kiosk state ${String(v.state)}: not 0-4`);
    // A number outside the datasheet's range is `out-of-range`, as for MQTT fields and YAML points.
    if ((v.paper as number) > 100) return reject("out-of-range", `paper level ${String(v.paper)} % > 100`);
    return {
      state,
      temperature: v.temperature as number,
      humidity: v.humidity as number,
      paper: v.paper as number,
      status: v.status as number,
      transactions: v.transactions as number,
      uptime: v.uptime as number,
      queue: v.queue as number,
    };
  },

  lane: (s, previous) =>
    previous === null || previous.state !== s.state || s.status !== previous.status
      ? LANE_ALERT
      : LANE_TELEMETRY,

  deviceTime: () => null,
  isActivity: () => false,
  // Maintenance is suppression by design (ISA-18.2): alerts are marked and page nobody.
  suppressed: (s) => (s.state === "maintenance" ? "maintenance" : false),

  metrics: (s, st) => ({
    state: { value: s.state },
    temperature: { value: Math.round(s.temperature * 10) / 10, unit: "°C" },
    humidity: { value: Math.round(s.humidity * 10) / 10, unit: "%RH" },
    paper: { value: s.paper, unit: "%" },
    transactionsToday: { value: s.transactions },
    queue: { value: s.queue },
    uptime: { value: s.uptime, unit: "s" },
    availabilityToday: {
      value: st.openMs > 0 ? Math.round((st.inServiceMs / st.openMs) * 1000) / 1000 : 1,
      unit: "ratio",
    },
  }),

  // The deadbands of its analog alerts across a restart: a restored alert holds until its clear point.
  durable: thresholdsDurable<Gk3State>(2, (st, i) => (i === 0 ? st.paper : st.overheat)),

  // Without it a step forward counted the whole step as opening hours (trackAvailability's dt).
  shiftTimes: (st, ms) => {
    if (st.lastAt !== 0) st.lastAt += ms;
  },
  initialState: () => ({
    state: null,
    status: 0,
    tamper: false,
    paper: new ThresholdState(PAPER),
    overheat: new ThresholdState(OVERHEAT),
    day: -1,
    lastAt: 0,
    openMs: 0,
    inServiceMs: 0,
  }),

  rules(s: Gk3Sample, st: Gk3State, settings: DeviceSettings & Gk3Settings, ctx: RuleContext<Gk3Code>): void {
    trackAvailability(st, settings, ctx.now);
    const f = flagsOf(GK3_STATUS, s.status);
    const was = flagsOf(GK3_STATUS, st.status);
    // No poll applied yet (a start, a restart): every condition is reported as it is, not as a
    // change from the zeros of the initial state, so an alert restored from the journal whose
    // cause ended while the gateway was down clears instead of staying open for good.
    const first = st.state === null;
    const changed = (flag: StatusFlag) => first || f[flag] !== was[flag];
    const stateChanged = s.state !== st.state;
    st.status = s.status;
    st.state = s.state;

    // Cabinet door: datasheet "TAMPER P2 if the kiosk is in service; none in maintenance". Only
    // maintenance is exempt: a door opened on a kiosk out of service, booting or switched off is
    // no less a break-in (the kiosk left alone is when it is most likely one).
    const tamper = f.doorOpen && s.state !== "maintenance";
    if (first || tamper !== st.tamper) {
      st.tamper = tamper;
      ctx.condition("TAMPER", tamper, { priority: 2, causes: ["cabinet door open"] });
    }
    if (FAULTS.some(([flag]) => changed(flag))) {
      const causes = FAULTS.filter(([flag]) => f[flag]).map(([, c]) => `${c} fault`);
      ctx.condition("FAULT", causes.length > 0, { priority: 3, causes });
    }
    if (changed("upsOnBattery")) {
      ctx.condition("POWER_FAIL", f.upsOnBattery, {
        priority: 3,
        causes: ["UPS on battery"],
      });
    }
    if (changed("tilt")) {
      ctx.condition("VANDALISM", f.tilt, { priority: 2, causes: ["tilt or shock"] });
    }
    if (stateChanged) {
      ctx.condition("KIOSK_OUT_OF_SERVICE", s.state === "out-of-service", {
        priority: 3,
        causes: ["out of service"],
        onDelayMs: settings.outOfServiceAfterMs,
      });
    }
    const paperWas = st.paper.active;
    const paperLow = st.paper.update(s.paper);
    if (first || paperLow !== paperWas) {
      ctx.condition("PAPER_LOW", paperLow, {
        priority: 4,
        causes: ["paper low"],
        detail: { paper: s.paper },
      });
    }
    const hotWas = st.overheat.active;
    const hot = st.overheat.update(s.temperature);
    if (first || hot !== hotWas) {
      ctx.condition("OVERHEAT", hot, {
        priority: 3,
        causes: [`cabinet over ${OVERHEAT.above} °C`],
        detail: { temperature: Math.round(s.temperature * 10) / 10 },
      });
    }
  },
};

/**
 * Availability = time in service / opening time, for the current day in the
 * site's time zone (opening hours are the site's, not the gateway process's).
 * A gap longer than two polls (the kiosk was unreachable) counts as open but not in service.
 */
function trackAvailability(st: Gk3State, settings: DeviceSettings & Gk3Settings, now: number): void {
  const day = settings.siteTime.dayNumber(now);
  if (day !== st.day) {
    st.day = day;
    st.openMs = 0;
    st.inServiceMs = 0;
    st.lastAt = now;
    return;
  }
  const dt = now - st.lastAt;
  st.lastAt = now;
  if (dt <= 0 || !withinHours(settings.siteTime.minuteOfDay(now), settings.openingHours)) return;
  st.openMs += dt;
  if (st.state === "in-service" && dt <= 2 * settings.pollIntervalMs) st.inServiceMs += dt;
}
