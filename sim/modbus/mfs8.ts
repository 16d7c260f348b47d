/**
 * MFS-8 micro fire-station sensor panel, register-exact per
 * ../shared/datasheets/mfs8-fire-panel.md, with its own encoding tables
 * (never the gateway's device profile).
 */
import { type Clock, systemClock } from "../../core/index.js";
import {
  EX_ILLEGAL_DATA_ADDRESS,
  EX_ILLEGAL_DATA_VALUE,
  EX_ILLEGAL_FUNCTION,
  exceptionPdu,
  noFaults,
  readReplyPdu,
  type SimSlave,
  type SlaveFaults,
  u16at,
} from "./slave.js";

/** Register map from the datasheet, as the sim encodes it. */
const REG = {
  model: 0,
  firmware: 1,
  uptimeHi: 2,
  uptimeLo: 3,
  status: 4,
  smoke: 5,
  temperature: 6,
  pressureLowWord: 7, // float32, low word first (CD AB)
  pressureHighWord: 8,
  present: 9,
  slots: 10,
  faultCode: 11,
  eventsHi: 12,
  eventsLo: 13,
} as const;
const REGISTER_COUNT = 14;
const MODEL = 0x4d38; // "M8"

/** Status bits (register 4). */
export const MFS8_BIT = {
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

/** "heat alarm (rate of rise or > 57 °C)", in the register's 0.1 °C. */
const HEAT_ALARM_ABOVE_RAW = 570;

const ALARM_MASK = (1 << MFS8_BIT.smoke) | (1 << MFS8_BIT.heat) | (1 << MFS8_BIT.callPoint);

export interface Mfs8Options {
  unit: number;
  clock?: Clock;
  /** Firmware register: high byte major, low byte minor. Default 0x0203 (v2.3). */
  firmware?: number;
  /** Brackets fitted (0-8). Default 5, all holding an extinguisher. */
  slots?: number;
  /** Hydrant pressure, MPa. Default 0.32. */
  pressureMpa?: number;
  /** The panel's own low-pressure threshold for status bit 3, MPa. Default 0.10. */
  panelPressureThresholdMpa?: number;
  /** Uptime at creation, s. Default 0. */
  uptimeS?: number;
}

export class Mfs8Panel implements SimSlave {
  readonly unit: number;
  readonly faults: SlaveFaults = noFaults();
  private readonly clock: Clock;
  private readonly bootedAt: number;
  private readonly firmware: number;
  private readonly panelThreshold: number;
  /** Latched alarm bits and the other status bits, except what is derived on read. */
  private latched = 0;
  private sounder = false;
  private testMode = false;
  private mainsFailed = false;
  private pumpFault = false;
  private batteryFault = false;
  private smokeRaw = 0; // ×0.01 %/m
  private temperatureRaw = 215; // ×0.1 °C
  private pressureMpa: number;
  private present: number;
  private slots: number;
  private faultCode = 0;
  private events = 0;
  /** Counts of coil actions, for tests that check commands arrived. */
  readonly actions = { silence: 0, reset: 0, testOn: 0, testOff: 0 };

  constructor(options: Mfs8Options) {
    this.unit = options.unit;
    this.clock = options.clock ?? systemClock;
    this.bootedAt = this.clock.monotonic() - (options.uptimeS ?? 0) * 1000;
    this.firmware = options.firmware ?? 0x0203;
    this.slots = options.slots ?? 5;
    this.present = (1 << this.slots) - 1;
    this.pressureMpa = options.pressureMpa ?? 0.32;
    this.panelThreshold = options.panelPressureThresholdMpa ?? 0.1;
  }

  // ---- scripting (what happens in the fire station) -----------------------

  /** Smoke in the room: obscuration in %/m (default 2.5); latches the smoke alarm and sounds. */
  raiseSmoke(obscurationPctPerM = 2.5): void {
    this.smokeRaw = Math.round(obscurationPctPerM * 100);
    this.latch(MFS8_BIT.smoke);
  }

  /** Heat: temperature in °C (default 60, over the 57 °C threshold); latches the heat alarm. */
  raiseHeat(temperatureC = 60): void {
    this.temperatureRaw = Math.round(temperatureC * 10);
    this.latch(MFS8_BIT.heat);
  }

  pressCallPoint(): void {
    this.latch(MFS8_BIT.callPoint);
  }

  /** Air clears: readings go back to normal, the latched bits stay until reset. */
  clearAir(temperatureC = 21.5): void {
    this.smokeRaw = 0;
    this.temperatureRaw = Math.round(temperatureC * 10);
  }

  /** The room's temperature; over 57 °C the panel's heat detector alarms (status bit 1, latched). */
  setTemperature(temperatureC: number): void {
    this.temperatureRaw = Math.round(temperatureC * 10);
    if (this.temperatureRaw > HEAT_ALARM_ABOVE_RAW) this.latch(MFS8_BIT.heat);
  }

  setSmoke(obscurationPctPerM: number): void {
    this.smokeRaw = Math.round(obscurationPctPerM * 100);
  }

  emptyBracket(index: number): void {
    this.present &= ~(1 << index);
  }

  fillBracket(index: number): void {
    this.present |= 1 << index;
  }

  setSlots(slots: number): void {
    this.slots = slots;
  }

  /** Crossing the panel's threshold changes status bit 3, an alarm change: the event counter moves. */
  setPressure(mpa: number): void {
    const wasLow = this.pressureMpa < this.panelThreshold;
    this.pressureMpa = mpa;
    if (mpa < this.panelThreshold !== wasLow) this.events++;
  }

  setFault(code: number): void {
    if (code !== this.faultCode) this.events++;
    this.faultCode = code;
  }

  setMainsFailed(failed: boolean): void {
    if (failed !== this.mainsFailed) this.events++;
    this.mainsFailed = failed;
  }

  setPumpFault(on: boolean): void {
    if (on !== this.pumpFault) this.events++;
    this.pumpFault = on;
  }

  setBatteryFault(on: boolean): void {
    if (on !== this.batteryFault) this.events++;
    this.batteryFault = on;
  }

  /** Sets the event counter (to reproduce the datasheet's example frame). */
  setEventCounter(n: number): void {
    this.events = n >>> 0;
  }

  // ---- coils (what the gateway commands) ----------------------------------

  silence(): void {
    this.sounder = false;
    this.actions.silence++;
  }

  /** Coil 1: clears the latched alarm bits (they latch again only on a new alarm). */
  reset(): void {
    if (this.latched & ALARM_MASK) this.events++;
    this.latched &= ~ALARM_MASK;
    this.sounder = false;
    this.actions.reset++;
  }

  setTestMode(on: boolean): void {
    this.testMode = on;
    if (on) this.actions.testOn++;
    else this.actions.testOff++;
  }

  // ---- registers ----------------------------------------------------------

  status(): number {
    let s = this.latched;
    if (this.pressureMpa < this.panelThreshold) s |= 1 << MFS8_BIT.pressureLow;
    if (this.pumpFault) s |= 1 << MFS8_BIT.pumpFault;
    if (this.mainsFailed) s |= 1 << MFS8_BIT.mainsFail;
    if (this.batteryFault || this.faultCode === 5) s |= 1 << MFS8_BIT.batteryFault;
    if (this.sounder) s |= 1 << MFS8_BIT.sounder;
    if (this.faultCode !== 0) s |= 1 << MFS8_BIT.detectorFault;
    if (this.testMode) s |= 1 << MFS8_BIT.testMode;
    return s;
  }

  /** The 14 holding registers as the panel would answer them now. */
  registers(): number[] {
    const r = new Array<number>(REGISTER_COUNT).fill(0);
    const uptime = Math.floor((this.clock.monotonic() - this.bootedAt) / 1000) >>> 0;
    r[REG.model] = MODEL;
    r[REG.firmware] = this.firmware;
    r[REG.uptimeHi] = uptime >>> 16; // uint32, high word first
    r[REG.uptimeLo] = uptime & 0xffff;
    r[REG.status] = this.status();
    r[REG.smoke] = this.smokeRaw & 0xffff;
    r[REG.temperature] = this.temperatureRaw & 0xffff; // int16 two's complement
    const f = new DataView(new ArrayBuffer(4));
    f.setFloat32(0, this.pressureMpa); // big-endian bytes A B C D
    r[REG.pressureLowWord] = f.getUint16(2); // C D first: low word first
    r[REG.pressureHighWord] = f.getUint16(0);
    r[REG.present] = this.present & 0xff;
    r[REG.slots] = this.slots;
    r[REG.faultCode] = this.faultCode;
    r[REG.eventsHi] = this.events >>> 16;
    r[REG.eventsLo] = this.events & 0xffff;
    return r;
  }

  handle(pdu: Uint8Array): Uint8Array {
    const fn = pdu[0]!;
    switch (fn) {
      case 0x03: {
        if (pdu.length !== 5) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const address = u16at(pdu, 1);
        const count = u16at(pdu, 3);
        // Datasheet: "A read outside registers 0-13 gets exception 0x02", whatever the quantity (a
        // read of 126 from 0 is outside them: the panel answers 0x02 where MB app §6.3 would say
        // 0x03). Only a read of no register at all is an illegal value.
        if (count < 1) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        if (address + count > REGISTER_COUNT) return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
        return readReplyPdu(fn, this.registers().slice(address, address + count));
      }
      case 0x05: {
        if (pdu.length !== 5) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const address = u16at(pdu, 1);
        const value = u16at(pdu, 3);
        // §6.5: 0xFF00 is ON, 0x0000 OFF, anything else is an illegal value.
        if (value !== 0xff00 && value !== 0) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        if (address > 2) return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
        const on = value === 0xff00;
        if (address === 0 && on) this.silence();
        else if (address === 1 && on) this.reset();
        else if (address === 2) this.setTestMode(on);
        return Uint8Array.from(pdu); // echo
      }
      case 0x06:
      case 0x10:
        // Supported functions, but the datasheet documents no writable register.
        return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
      default:
        return exceptionPdu(fn, EX_ILLEGAL_FUNCTION);
    }
  }

  private latch(bit: number): void {
    if (!(this.latched & (1 << bit))) this.events++;
    this.latched |= 1 << bit;
    this.sounder = true;
  }
}
