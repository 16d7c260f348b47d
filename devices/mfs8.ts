/**
 * MFS-8 micro fire-station sensor panel (datasheets/mfs8-fire-panel.md):
 * register map as data, and the panel's alert rules. Modbus RTU, fn 0x03,
 * registers 0-13 read in one request.
 */

import { z } from "zod";
import { durationOrZero, LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/index.js";
import { changedBits } from "./modbus-common.js";
import type { PointSpec, PointValue } from "./modbus-decode.js";
import {
  type DeviceSettings,
  type ModbusDeviceProfile,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";
import { ThresholdState } from "./threshold.js";

const MODEL_ID = 0x4d38; // "M8"

/** Status register bits (register 4). */
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

const FIRE_MASK = (1 << STATUS.smoke) | (1 << STATUS.heat) | (1 << STATUS.callPoint);
const FIRE_CAUSES: ReadonlyArray<[number, string]> = [
  [STATUS.smoke, "smoke"],
  [STATUS.heat, "heat"],
  [STATUS.callPoint, "call point"],
];

export const FAULT_CODES: Readonly<Record<number, string>> = {
  0: "none",
  1: "smoke head dirty",
  2: "heat sensor open circuit",
  3: "pressure transducer fault",
  4: "RS-485 noise",
  5: "internal battery fault",
};

export const MFS8_POINTS: readonly PointSpec[] = [
  { name: "model", address: 0, type: "u16" },
  { name: "firmware", address: 1, type: "u16" },
  { name: "uptime", address: 2, type: "u32", wordOrder: "ABCD", unit: "s" },
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
  status: number;
  /** Under the configured minimum, back only above it plus the deadband. */
  pressure: ThresholdState;
  faultCode: number;
  /** Per bracket: gateway time it was first seen empty, 0 while it holds an extinguisher. */
  emptySince: number[];
  missingMask: number;
}

const bit = (status: number, b: number) => (status & (1 << b)) !== 0;
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

const ALERTS = {
  FIRE_ALARM: {
    priority: 1,
    raised:
      "smoke, heat or call point: one incident per panel naming every cause in `causes` (`smoke`, `heat`, `call point`)",
    cleared: "the panel is reset (its alarm bits latch)",
  },
  HYDRANT_PRESSURE_LOW: {
    priority: 2,
    raised: "the panel's low-pressure bit, or pressure under `minPressure` (default 0.15 MPa)",
    cleared: "both gone (pressure back above minimum + 0.02 MPa)",
  },
  EXTINGUISHER_MISSING: {
    priority: 3,
    raised:
      "a fitted bracket empty longer than `extinguisherGrace` (default 120 s); `causes` names the brackets",
    cleared: "every bracket holds an extinguisher",
  },
  FAULT: {
    priority: [2, 3],
    raised:
      "status bits 4 (pump, P2), 6 (battery, P3), 8 (detector, P3): one alert naming every live cause, at the highest priority among them (below); the detector fault names its code",
    cleared: "no fault bit left",
  },
  POWER_FAIL: { priority: 3, raised: "mains failed (status bit 5)", cleared: "mains back" },
} as const;
type Mfs8Code = keyof typeof ALERTS;

export const mfs8: ModbusDeviceProfile<
  Mfs8Sample,
  Mfs8State,
  { model: "mfs8"; binding: "modbus-serial"; code: Mfs8Code; settings: Mfs8Settings; config: typeof config }
> = {
  model: "mfs8",
  label: "MFS-8",
  simulator: "sim/modbus/mfs8.ts",
  transport: "modbus",
  binding: "modbus-serial",
  interval: "2s",
  config,
  settings: (c) => ({ minPressureMpa: c.minPressure, extinguisherGraceMs: c.extinguisherGrace }),
  alerts: ALERTS,
  // "a fire station that cannot report is a fire-safety fault"
  lostPriority: 2,
  fn: 3,
  points: MFS8_POINTS,
  maxGap: 0,
  missedPollsForLost: 3,
  commands: {
    silence: { fn: 5, address: 0, value: 0xff00, doc: "coil 0 ON: silence the sounder" },
    reset: { fn: 5, address: 1, value: 0xff00, doc: "coil 1 ON: reset latched alarms" },
    test_on: { fn: 5, address: 2, value: 0xff00, doc: "coil 2 ON: test mode on" },
    test_off: { fn: 5, address: 2, value: 0x0000, doc: "coil 2 OFF: test mode off" },
  },

  decode(v: Readonly<Record<string, PointValue>>): Mfs8Sample | Rejection {
    if (v.model !== MODEL_ID)
      return reject("bad-field", `model register is ${String(v.model)}, not 0x4D38 (not an MFS-8)`);
    const slots = v.slots as number;
    if (slots > 8) return reject("bad-field", `extinguisher slots ${slots} > 8`);
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
    if ((s.status & FIRE_MASK) !== 0) return LANE_P1;
    const changed =
      previous === null ||
      changedBits(s.status, previous.status) ||
      s.present !== previous.present ||
      s.faultCode !== previous.faultCode;
    return changed ? LANE_ALERT : LANE_TELEMETRY;
  },

  deviceTime: () => null,
  isActivity: () => false,
  suppressed: (s) => (bit(s.status, STATUS.testMode) ? "test" : false),

  metrics: (s) => ({
    smoke: { value: round(s.smoke, 2), unit: "%/m" },
    temperature: { value: round(s.temperature, 1), unit: "°C" },
    hydrantPressure: { value: round(s.pressure, 3), unit: "MPa" },
    extinguishersPresent: { value: popcount(s.present & ((1 << s.slots) - 1)) },
    extinguisherSlots: { value: s.slots },
    sounder: { value: bit(s.status, STATUS.sounder) },
    testMode: { value: bit(s.status, STATUS.testMode) },
    faultCode: { value: s.faultCode },
    eventCounter: { value: s.events },
    uptime: { value: s.uptime, unit: "s" },
  }),

  initialState: () => ({
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
    const prev = st.status;
    st.status = s.status;

    // One fire incident per station naming every cause (datasheet); the panel latches until reset.
    if (((s.status ^ prev) & FIRE_MASK) !== 0) {
      const causes = FIRE_CAUSES.filter(([b]) => bit(s.status, b)).map(([, c]) => c);
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
    const panelLow = bit(s.status, STATUS.pressureLow);
    ctx.condition("HYDRANT_PRESSURE_LOW", panelLow || low, {
      priority: 2,
      causes: [...(panelLow ? ["panel"] : []), ...(low ? [`below ${settings.minPressureMpa} MPa`] : [])],
      detail: { pressure: round(s.pressure, 3) },
    });

    // One FAULT per panel naming every live cause, at the highest priority among them: P2 while the
    // pump fault is present, else P3 (docs/topics.md); it clears when no cause is left.
    if (
      changedBits(s.status, prev, STATUS.pumpFault) ||
      changedBits(s.status, prev, STATUS.detectorFault) ||
      changedBits(s.status, prev, STATUS.batteryFault) ||
      s.faultCode !== st.faultCode
    ) {
      st.faultCode = s.faultCode;
      const pump = bit(s.status, STATUS.pumpFault);
      const detector = bit(s.status, STATUS.detectorFault);
      const battery = bit(s.status, STATUS.batteryFault);
      const causes: string[] = [];
      if (pump) causes.push("pump fault");
      if (battery) causes.push("battery fault");
      if (detector) causes.push(`detector fault: ${FAULT_CODES[s.faultCode] ?? `code ${s.faultCode}`}`);
      ctx.condition("FAULT", causes.length > 0, {
        priority: pump ? 2 : 3,
        causes,
        detail: { faultCode: s.faultCode },
      });
    }
    if (changedBits(s.status, prev, STATUS.mainsFail)) {
      ctx.condition("POWER_FAIL", bit(s.status, STATUS.mainsFail), {
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
    if (missing !== st.missingMask) {
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
