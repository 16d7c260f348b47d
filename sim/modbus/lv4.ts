/**
 * LV-4 fire-water tank level sensor, register-exact per
 * ../shared/datasheets/lv4-water-tank.md, with its own tables (never the
 * gateway's device profile): input registers 0-11 (fn 0x04), set-points in
 * holding registers 0-1 (fn 0x03 / 0x06), self-test on coil 0 (fn 0x05).
 *
 * Behaviour the datasheet asks to simulate: a tank drawn down by fire
 * fighting (30 mm/s) and refilled, a winter night (the water cools, the heater
 * switches on at 4 °C), and a failing pressure cell whose level jumps to 0 or
 * 65535 mm for single polls. Scenarios advance on a 1 s tick of the clock.
 */
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import type { Random } from "../mqtt/random.js";
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

/** Input registers (fn 0x04), as the sim encodes them. */
const IR = {
  model: 0,
  firmware: 1,
  level: 2,
  temperature: 3,
  volumeHighWord: 4, // float32, high word first (AB CD)
  volumeLowWord: 5,
  status: 6,
  faultCode: 7,
  uptimeHi: 8,
  uptimeLo: 9,
  tankHeight: 10,
  alarmCounter: 11,
} as const;
const INPUT_COUNT = 12;
/** Holding registers (fn 0x03 / 0x06). */
const HR = { low: 0, high: 1 } as const;
const HOLDING_COUNT = 2;
const SELF_TEST_COIL = 0;
const MODEL = 0x4c34; // "L4"

/** Status bits (input register 6). */
export const LV4_BIT = { low: 0, high: 1, heater: 2, fault: 3, selfTest: 4 } as const;
/** Bits whose every change counts in the alarm counter (register 11). */
const COUNTED_BITS = [LV4_BIT.low, LV4_BIT.high, LV4_BIT.fault] as const;

/** Fault codes (input register 7). */
export const LV4_FAULT = {
  none: 0,
  cellOpenCircuit: 1,
  cellOverRange: 2,
  temperatureProbe: 3,
  supplyLow: 4,
} as const;

/** Lowest low set-point, and the least gap from low to high (datasheet's ranges), mm. */
const MIN_LOW_MM = 100;
const MIN_GAP_MM = 100;
/** "answers within 80 ms of the end of a request" */
const MAX_TURNAROUND_MS = 80;
/** "readings are not real for up to 10 s" */
const MAX_SELF_TEST_MS = 10_000;
/** The anti-freeze heater: on at 4.0 °C (datasheet), off again at 5.0 °C (the sim's choice). */
const HEATER_ON_C = 4.0;
const HEATER_OFF_C = 5.0;
const TICK_MS = 1000;

export interface Lv4Options {
  unit: number;
  clock?: Clock;
  /** High byte major, low byte minor. Default 0x0105 (v1.5, the datasheet's example). */
  firmware?: number;
  /** Installation setting, mm. Default 4000. */
  tankHeightMm?: number;
  /** Tank geometry for the volume: floor area, m². Default 18 (2350 mm is 42.3 m³, as in the example). */
  floorAreaM2?: number;
  /** Water level, mm. Default 3600. */
  levelMm?: number;
  /** Water temperature, °C. Default 8.0. */
  temperatureC?: number;
  /** Set-points, mm. Defaults 2400 / 3800 (the datasheet's example). */
  lowSetPointMm?: number;
  highSetPointMm?: number;
  /** Uptime at creation, s. Default 0. */
  uptimeS?: number;
  /** How long a self-test runs, ms (at most 10 s). Default 10 000. */
  selfTestMs?: number;
  /** The sensor's reply delay, ms (at most the datasheet's 80). Default 0. */
  turnaroundMs?: number;
}

export class Lv4Sensor implements SimSlave {
  readonly unit: number;
  readonly faults: SlaveFaults = noFaults();
  readonly replyDelayMs: number;
  private readonly clock: Clock;
  private readonly bootedAt: number;
  private readonly firmware: number;
  private readonly tankHeight: number;
  private readonly floorArea: number;
  private readonly selfTestMs: number;
  private level: number;
  private temperature: number;
  private heater = false;
  private faultCode = 0;
  private low: number;
  private high: number;
  private alarmCounter = 0;
  /** Status bits 0, 1, 3 as last counted. */
  private countedBits = 0;
  private selfTestStartedAt: number | undefined;
  private selfTestTimer: ClockTimer | undefined;
  // scenarios
  private flowMmPerS = 0;
  private flowUntilMm = 0;
  private winter: WinterModel | undefined;
  private failing: { probability: number; random: Random } | undefined;
  private readonly glitches: number[] = [];
  private tickTimer: ClockTimer | undefined;
  /** Coil writes and set-point writes received, for tests. */
  readonly actions = { selfTests: 0, setPointWrites: 0 };

  constructor(options: Lv4Options) {
    this.unit = options.unit;
    this.clock = options.clock ?? systemClock;
    this.bootedAt = this.clock.monotonic() - (options.uptimeS ?? 0) * 1000;
    this.firmware = options.firmware ?? 0x0105;
    this.tankHeight = options.tankHeightMm ?? 4000;
    this.floorArea = options.floorAreaM2 ?? 18;
    this.level = options.levelMm ?? 3600;
    this.temperature = options.temperatureC ?? 8.0;
    this.low = options.lowSetPointMm ?? 2400;
    this.high = options.highSetPointMm ?? 3800;
    this.selfTestMs = options.selfTestMs ?? MAX_SELF_TEST_MS;
    this.replyDelayMs = options.turnaroundMs ?? 0;
    if (!Number.isInteger(this.unit) || this.unit < 1 || this.unit > 247)
      throw new RangeError(`unit ${this.unit} not in 1..247 (datasheet's slave addresses)`);
    if (this.selfTestMs < 0 || this.selfTestMs > MAX_SELF_TEST_MS)
      throw new RangeError(`selfTestMs must be 0-${MAX_SELF_TEST_MS} (datasheet: up to 10 s)`);
    if (this.replyDelayMs < 0 || this.replyDelayMs > MAX_TURNAROUND_MS)
      throw new RangeError(`turnaroundMs must be 0-${MAX_TURNAROUND_MS} (datasheet: within 80 ms)`);
    if (!this.setPointsValid(this.low, this.high))
      throw new RangeError(`set-points ${this.low}/${this.high} outside the datasheet's ranges`);
    this.applyThermostat();
    this.countedBits = this.status() & countedMask();
  }

  // ---- scripting (what happens in the tank) ----------------------------------

  setLevel(mm: number): void {
    this.level = Math.max(0, Math.min(0xffff, mm));
    this.recount();
  }

  getLevel(): number {
    return this.level;
  }

  setTemperature(c: number): void {
    this.temperature = c;
    this.applyThermostat();
  }

  getTemperature(): number {
    return this.temperature;
  }

  /** 0 clears; 1-4 per the datasheet (status bit 3 follows). */
  setFault(code: number): void {
    this.faultCode = code & 0xffff;
    this.recount();
  }

  /** Sets the alarm counter (to reproduce the datasheet's example frame). */
  setAlarmCounter(n: number): void {
    this.alarmCounter = n & 0xffff;
  }

  get heaterOn(): boolean {
    return this.heater;
  }

  get selfTestRunning(): boolean {
    return this.selfTestStartedAt !== undefined;
  }

  /** Installation setting, mm (input register 10). */
  get tankHeightMm(): number {
    return this.tankHeight;
  }

  setPoints(): { low: number; high: number } {
    return { low: this.low, high: this.high };
  }

  /** Fire fighting draws the tank down (datasheet: 30 mm/s) until `untilMm` (default empty). */
  drawDown(mmPerS = 30, untilMm = 0): void {
    this.flowMmPerS = -Math.abs(mmPerS);
    this.flowUntilMm = untilMm;
    this.arm();
  }

  /** The refill valve opens: the level rises until `untilMm` (default 100 mm under the high set-point). */
  refill(mmPerS = 30, untilMm = this.high - 100): void {
    this.flowMmPerS = Math.abs(mmPerS);
    this.flowUntilMm = untilMm;
    this.arm();
  }

  stopFlow(): void {
    this.flowMmPerS = 0;
  }

  /**
   * A winter night: the water cools slowly; the heater switches on at 4 °C and
   * warms it back (net of the cold) until 5 °C, so the water hovers there.
   */
  winterNight(coolingCPerMin = 0.1, heaterCPerMin = 0.3): void {
    this.winter = { coolingCPerMin, heaterCPerMin };
    this.arm();
  }

  endWinter(): void {
    this.winter = undefined;
  }

  /**
   * How long until the temperature register (0.1 °C) first reads under `belowC`
   * if a winter night with these rates began now, ms on the 1 s tick, or null
   * when it does not within `horizonMs` (the heater keeps up). The same step as
   * the night itself, from the water's temperature and the heater's state now.
   */
  winterForecast(
    belowC: number,
    coolingCPerMin = 0.1,
    heaterCPerMin = 0.3,
    horizonMs = 24 * 3_600_000,
  ): number | null {
    const w: WinterModel = { coolingCPerMin, heaterCPerMin };
    let t = this.temperature;
    let heater = this.heater;
    for (let ms = 0; ms <= horizonMs; ms += TICK_MS) {
      if (Math.round(t * 10) < Math.round(belowC * 10)) return ms;
      [t, heater] = winterStep(t, heater, w, TICK_MS / 1000);
    }
    return null;
  }

  /** The next read of the level register returns this instead (0 or 65535 mm: a failing cell). */
  glitch(valueMm: 0 | 0xffff = 0): void {
    if (this.glitches.length < 64) this.glitches.push(valueMm);
  }

  /** A failing pressure cell: each read of the level has this chance of being 0 or 65535 mm. */
  failingCell(probability: number, random: Random): void {
    this.failing = probability > 0 ? { probability, random } : undefined;
  }

  /** Stops the scenario tick and the self-test timer. */
  dispose(): void {
    if (this.tickTimer) this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    if (this.selfTestTimer) this.clock.clearTimeout(this.selfTestTimer);
    this.selfTestTimer = undefined;
  }

  // ---- registers --------------------------------------------------------------

  status(): number {
    let s = 0;
    // The sensor's own comparison, no hysteresis (datasheet), on the real level.
    if (this.level < this.low) s |= 1 << LV4_BIT.low;
    if (this.level > this.high) s |= 1 << LV4_BIT.high;
    if (this.heater) s |= 1 << LV4_BIT.heater;
    if (this.faultCode !== 0) s |= 1 << LV4_BIT.fault;
    if (this.selfTestStartedAt !== undefined) s |= 1 << LV4_BIT.selfTest;
    return s;
  }

  /** The 12 input registers as the sensor would answer them now (a glitch is not consumed here). */
  inputRegisters(levelOverride?: number): number[] {
    const r = new Array<number>(INPUT_COUNT).fill(0);
    const uptime = Math.floor((this.clock.monotonic() - this.bootedAt) / 1000) >>> 0;
    const level = levelOverride ?? this.readingMm();
    r[IR.model] = MODEL;
    r[IR.firmware] = this.firmware;
    r[IR.level] = Math.round(level) & 0xffff;
    r[IR.temperature] = Math.round(this.temperature * 10) & 0xffff; // int16 two's complement
    const f = new DataView(new ArrayBuffer(4));
    f.setFloat32(0, (this.floorArea * Math.min(level, this.tankHeight)) / 1000); // big-endian: A B C D
    r[IR.volumeHighWord] = f.getUint16(0); // high word first
    r[IR.volumeLowWord] = f.getUint16(2);
    r[IR.status] = this.status();
    r[IR.faultCode] = this.faultCode;
    r[IR.uptimeHi] = uptime >>> 16; // uint32, high word first
    r[IR.uptimeLo] = uptime & 0xffff;
    r[IR.tankHeight] = this.tankHeight;
    r[IR.alarmCounter] = this.alarmCounter;
    return r;
  }

  holdingRegisters(): number[] {
    return [this.low, this.high];
  }

  handle(pdu: Uint8Array): Uint8Array {
    const fn = pdu[0]!;
    switch (fn) {
      case 0x03:
      case 0x04: {
        if (pdu.length !== 5) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const address = u16at(pdu, 1);
        const count = u16at(pdu, 3);
        // Datasheet: "Outside the listed addresses: exception 0x02", whatever the quantity (a read
        // of 126 is outside them); only a read of no register is an illegal value.
        if (count < 1) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const size = fn === 0x04 ? INPUT_COUNT : HOLDING_COUNT;
        if (address + count > size) return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
        if (fn === 0x03) return readReplyPdu(fn, this.holdingRegisters().slice(address, address + count));
        const covers = address <= IR.level && IR.level < address + count;
        const regs = this.inputRegisters(covers ? this.takeGlitch() : undefined);
        return readReplyPdu(fn, regs.slice(address, address + count));
      }
      case 0x06: {
        if (pdu.length !== 5) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const address = u16at(pdu, 1);
        const value = u16at(pdu, 3);
        if (address >= HOLDING_COUNT) return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
        const low = address === HR.low ? value : this.low;
        const high = address === HR.high ? value : this.high;
        if (!this.setPointsValid(low, high)) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        this.low = low;
        this.high = high;
        this.actions.setPointWrites++;
        this.recount();
        return Uint8Array.from(pdu); // echo
      }
      case 0x05: {
        if (pdu.length !== 5) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const address = u16at(pdu, 1);
        const value = u16at(pdu, 3);
        // §6.5: 0xFF00 is ON, 0x0000 OFF, anything else is an illegal value.
        if (value !== 0xff00 && value !== 0) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        if (address !== SELF_TEST_COIL) return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
        // OFF is accepted and does nothing: "the sensor clears it when done".
        if (value === 0xff00) this.startSelfTest();
        return Uint8Array.from(pdu); // echo
      }
      default:
        return exceptionPdu(fn, EX_ILLEGAL_FUNCTION);
    }
  }

  // ---- internals ----------------------------------------------------------------

  /**
   * Low: 100 mm to the tank height; high: low + 100 mm to the tank height. A
   * write that would break the pair (a low set-point too close to the high one)
   * is refused too, so the pair always reads back within the datasheet's ranges.
   */
  private setPointsValid(low: number, high: number): boolean {
    return low >= MIN_LOW_MM && low <= this.tankHeight && high >= low + MIN_GAP_MM && high <= this.tankHeight;
  }

  /** The level the cell reports: a ramp over the cell's range during a self-test ("not real"). */
  private readingMm(): number {
    if (this.selfTestStartedAt === undefined || this.selfTestMs === 0) return this.level;
    const f = Math.min(1, (this.clock.monotonic() - this.selfTestStartedAt) / this.selfTestMs);
    return f * this.tankHeight;
  }

  private takeGlitch(): number | undefined {
    const g = this.glitches.shift();
    if (g !== undefined) return g;
    const f = this.failing;
    if (f && f.random() < f.probability) return f.random() < 0.5 ? 0 : 0xffff;
    return undefined;
  }

  private startSelfTest(): void {
    this.actions.selfTests++;
    if (this.selfTestStartedAt !== undefined) return; // one at a time: a second ON while running changes nothing
    this.selfTestStartedAt = this.clock.monotonic();
    this.selfTestTimer = this.clock.setTimeout(() => {
      this.selfTestTimer = undefined;
      this.selfTestStartedAt = undefined;
    }, this.selfTestMs);
    this.selfTestTimer.unref();
  }

  private applyThermostat(): void {
    this.heater = thermostat(this.temperature, this.heater);
  }

  /** Every change of status bits 0, 1 or 3 counts once (wrapping at 65535). */
  private recount(): void {
    const bits = this.status() & countedMask();
    let changed = bits ^ this.countedBits;
    this.countedBits = bits;
    for (; changed; changed &= changed - 1) this.alarmCounter = (this.alarmCounter + 1) & 0xffff;
  }

  private arm(): void {
    if (this.tickTimer) return;
    this.tickTimer = this.clock.setTimeout(() => this.tick(), TICK_MS);
    this.tickTimer.unref();
  }

  private tick(): void {
    this.tickTimer = undefined;
    const s = TICK_MS / 1000;
    if (this.flowMmPerS !== 0) {
      const next = this.level + this.flowMmPerS * s;
      const done = this.flowMmPerS < 0 ? next <= this.flowUntilMm : next >= this.flowUntilMm;
      this.setLevel(done ? this.flowUntilMm : next);
      if (done) this.flowMmPerS = 0;
    }
    if (this.winter) this.setTemperature(winterStep(this.temperature, this.heater, this.winter, s)[0]);
    if (this.flowMmPerS !== 0 || this.winter) this.arm();
  }
}

interface WinterModel {
  coolingCPerMin: number;
  heaterCPerMin: number;
}

/** The heater's thermostat: on at 4.0 °C, off at 5.0 °C, as it was in between. */
function thermostat(c: number, heaterOn: boolean): boolean {
  return c <= HEATER_ON_C ? true : c >= HEATER_OFF_C ? false : heaterOn;
}

/** One step of a winter night: the water cools, and warms (net of the cold) while the heater is on. */
function winterStep(c: number, heaterOn: boolean, w: WinterModel, seconds: number): [number, boolean] {
  const perMin = heaterOn ? w.heaterCPerMin - w.coolingCPerMin : -w.coolingCPerMin;
  const next = Math.round((c + (perMin * seconds) / 60) * 1000) / 1000;
  return [next, thermostat(next, heaterOn)];
}

function countedMask(): number {
  let m = 0;
  for (const b of COUNTED_BITS) m |= 1 << b;
  return m;
}
