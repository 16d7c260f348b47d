/**
 * GK-3 kiosk controller (datasheets/gk3-kiosk.md): register map as data and
 * the kiosk's alert rules. Modbus TCP, fn 0x04, input registers 0-9.
 */

import { LANE_ALERT, LANE_TELEMETRY } from "../core/index.js";
import { changedBits, withinHours } from "./modbus-common.js";
import type { PointSpec, PointValue } from "./modbus-decode.js";
import {
  type DeviceSettings,
  type ModbusDeviceProfile,
  type Rejection,
  type RuleContext,
  reject,
} from "./profile.js";

export const KIOSK_STATES = ["off", "booting", "in-service", "out-of-service", "maintenance"] as const;
export type KioskState = (typeof KIOSK_STATES)[number];

export const STATUS = {
  doorOpen: 0,
  printerFault: 1,
  cardReaderFault: 2,
  screenFault: 3,
  networkDown: 4,
  upsOnBattery: 5,
  tilt: 6,
} as const;

const FAULTS: ReadonlyArray<[number, string]> = [
  [STATUS.printerFault, "printer"],
  [STATUS.cardReaderFault, "ID-card reader"],
  [STATUS.screenFault, "touch screen"],
  [STATUS.networkDown, "network uplink"],
];
const FAULT_MASK = FAULTS.reduce((m, [b]) => m | (1 << b), 0);

export const GK3_POINTS: readonly PointSpec[] = [
  { name: "state", address: 0, type: "u16" },
  { name: "temperature", address: 1, type: "i16", scale: 0.1, unit: "°C" },
  { name: "humidity", address: 2, type: "u16", scale: 0.1, unit: "%RH" },
  { name: "paper", address: 3, type: "u16", unit: "%" },
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
  paperLow: boolean;
  overheat: boolean;
  /** Availability bookkeeping for the current local day. */
  day: number;
  lastAt: number;
  openMs: number;
  inServiceMs: number;
}

const PAPER_LOW = 10;
const PAPER_CLEAR = 15;
const OVERHEAT = 45;
const OVERHEAT_CLEAR = 43;
const bit = (status: number, b: number) => (status & (1 << b)) !== 0;

export const gk3: ModbusDeviceProfile<Gk3Sample, Gk3State> = {
  model: "gk3",
  transport: "modbus",
  lostPriority: 3,
  fn: 4,
  points: GK3_POINTS,
  maxGap: 0,
  missedPollsForLost: 3,
  commands: {
    restart_app: { fn: 6, address: 100, value: 1 },
    maintenance_on: { fn: 6, address: 100, value: 2 },
    maintenance_off: { fn: 6, address: 100, value: 3 },
  },

  decode(v: Readonly<Record<string, PointValue>>): Gk3Sample | Rejection {
    const state = KIOSK_STATES[v.state as number];
    if (state === undefined) return reject("bad-field", `kiosk state ${String(v.state)} is not 0-4`);
    if ((v.paper as number) > 100) return reject("bad-field", `paper level ${String(v.paper)} % > 100`);
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
    previous === null || previous.state !== s.state || changedBits(s.status, previous.status)
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

  initialState: () => ({
    state: null,
    status: 0,
    tamper: false,
    paperLow: false,
    overheat: false,
    day: -1,
    lastAt: 0,
    openMs: 0,
    inServiceMs: 0,
  }),

  rules(s: Gk3Sample, st: Gk3State, settings: DeviceSettings, ctx: RuleContext): void {
    trackAvailability(st, settings, ctx.now);
    const prevStatus = st.status;
    const stateChanged = s.state !== st.state;
    st.status = s.status;
    st.state = s.state;

    // Cabinet door: tampering only while serving the public; nothing in maintenance.
    const tamper = bit(s.status, STATUS.doorOpen) && s.state === "in-service";
    if (tamper !== st.tamper) {
      st.tamper = tamper;
      ctx.condition("TAMPER", tamper, { priority: 2, causes: ["cabinet door open"] });
    }
    if (((s.status ^ prevStatus) & FAULT_MASK) !== 0) {
      const causes = FAULTS.filter(([b]) => bit(s.status, b)).map(([, c]) => `${c} fault`);
      ctx.condition("FAULT", causes.length > 0, { priority: 3, causes });
    }
    if (changedBits(s.status, prevStatus, STATUS.upsOnBattery)) {
      ctx.condition("POWER_FAIL", bit(s.status, STATUS.upsOnBattery), {
        priority: 3,
        causes: ["UPS on battery"],
      });
    }
    if (changedBits(s.status, prevStatus, STATUS.tilt)) {
      ctx.condition("VANDALISM", bit(s.status, STATUS.tilt), { priority: 2, causes: ["tilt or shock"] });
    }
    if (stateChanged) {
      ctx.condition("KIOSK_OUT_OF_SERVICE", s.state === "out-of-service", {
        priority: 3,
        causes: ["out of service"],
        onDelayMs: settings.outOfServiceAfterMs,
      });
    }
    const paperLow = s.paper < PAPER_LOW ? true : s.paper >= PAPER_CLEAR ? false : st.paperLow;
    if (paperLow !== st.paperLow) {
      st.paperLow = paperLow;
      ctx.condition("PAPER_LOW", paperLow, {
        priority: 4,
        causes: ["paper low"],
        detail: { paper: s.paper },
      });
    }
    const hot = s.temperature > OVERHEAT ? true : s.temperature <= OVERHEAT_CLEAR ? false : st.overheat;
    if (hot !== st.overheat) {
      st.overheat = hot;
      ctx.condition("OVERHEAT", hot, {
        priority: 3,
        causes: [`cabinet over ${OVERHEAT} °C`],
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
function trackAvailability(st: Gk3State, settings: DeviceSettings, now: number): void {
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
