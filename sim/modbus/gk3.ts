/**
 * GK-3 kiosk controller, register-exact per ../shared/datasheets/gk3-kiosk.md,
 * with its own tables (never the gateway's device profile).
 */
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
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

export const GK3_STATE = { off: 0, booting: 1, inService: 2, outOfService: 3, maintenance: 4 } as const;

/** Status bits (input register 4). */
export const GK3_BIT = {
  doorOpen: 0,
  printerFault: 1,
  cardReaderFault: 2,
  screenFault: 3,
  uplinkDown: 4,
  upsOnBattery: 5,
  tilt: 6,
} as const;

const INPUT_COUNT = 10;
const HOLDING_BASE = 100;
const HOLDING_COUNT = 2;

export interface Gk3Options {
  clock?: Clock;
  /** Default 1 (datasheet). */
  unit?: number;
  /** How long command 1 (restart the application) keeps the kiosk booting, ms. Default 3000. */
  restartMs?: number;
  /** How long commands 2/3 take before the command register reads back 0, ms. Default 200. */
  commandMs?: number;
  /**
   * The controller's local time as an offset from UTC, minutes (480 for China), for the midnight at
   * which "transactions today" resets. Default: the process's own time zone.
   */
  utcOffsetMinutes?: number;
}

export class Gk3Controller implements SimSlave {
  readonly unit: number;
  readonly faults: SlaveFaults = noFaults();
  private readonly clock: Clock;
  private readonly bootedAt: number;
  private state: number = GK3_STATE.inService;
  private temperatureRaw = 245; // ×0.1 °C
  private humidityRaw = 450; // ×0.1 %RH
  private paper = 80;
  private statusBits = 0;
  private transactions = 0;
  /** The local day the transaction count is for (days since the epoch, local midnight to midnight). */
  private transactionsDay: number;
  private readonly utcOffsetMinutes: number | undefined;
  private queue = 0;
  private command = 0;
  private pollHint = 10;
  private commandTimer: ClockTimer | undefined;
  private readonly restartMs: number;
  private readonly commandMs: number;
  /** Commands received, for tests. */
  readonly commands: number[] = [];

  constructor(options: Gk3Options = {}) {
    this.unit = options.unit ?? 1;
    this.clock = options.clock ?? systemClock;
    this.bootedAt = this.clock.monotonic();
    this.restartMs = options.restartMs ?? 3000;
    this.commandMs = options.commandMs ?? 200;
    this.utcOffsetMinutes = options.utcOffsetMinutes;
    this.transactionsDay = this.localDay();
  }

  // ---- scripting ----------------------------------------------------------

  setState(state: number): void {
    this.state = state;
  }
  getState(): number {
    return this.state;
  }
  setOutOfService(out: boolean): void {
    this.state = out ? GK3_STATE.outOfService : GK3_STATE.inService;
  }
  setBit(bit: number, on: boolean): void {
    if (on) this.statusBits |= 1 << bit;
    else this.statusBits &= ~(1 << bit);
  }
  openDoor(): void {
    this.setBit(GK3_BIT.doorOpen, true);
  }
  closeDoor(): void {
    this.setBit(GK3_BIT.doorOpen, false);
  }
  tilt(on = true): void {
    this.setBit(GK3_BIT.tilt, on);
  }
  setUpsOnBattery(on: boolean): void {
    this.setBit(GK3_BIT.upsOnBattery, on);
  }
  setTemperature(c: number): void {
    this.temperatureRaw = Math.round(c * 10);
  }
  setHumidity(pct: number): void {
    this.humidityRaw = Math.round(pct * 10);
  }
  setPaper(pct: number): void {
    this.paper = pct;
  }
  setQueue(n: number): void {
    this.queue = n;
  }
  addTransactions(n = 1): void {
    this.rollDay();
    this.transactions = (this.transactions + n) >>> 0;
  }

  dispose(): void {
    if (this.commandTimer) this.clock.clearTimeout(this.commandTimer);
  }

  // ---- registers ----------------------------------------------------------

  inputRegisters(): number[] {
    this.rollDay();
    const uptime = Math.floor((this.clock.monotonic() - this.bootedAt) / 1000) >>> 0;
    return [
      this.state,
      this.temperatureRaw & 0xffff, // int16
      this.humidityRaw,
      this.paper,
      this.statusBits,
      this.transactions >>> 16, // uint32, high word first
      this.transactions & 0xffff,
      uptime >>> 16,
      uptime & 0xffff,
      this.queue,
    ];
  }

  holdingRegisters(): number[] {
    return [this.command, this.pollHint];
  }

  handle(pdu: Uint8Array): Uint8Array {
    const fn = pdu[0]!;
    switch (fn) {
      case 0x03:
      case 0x04: {
        // MB app V1.1b3 §6.3/§6.4: the request is exactly fn, address, quantity; anything else is 0x03.
        if (pdu.length !== 5) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const address = u16at(pdu, 1);
        const count = u16at(pdu, 3);
        if (count < 1 || count > 125) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        if (fn === 0x04) {
          if (address + count > INPUT_COUNT) return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
          return readReplyPdu(fn, this.inputRegisters().slice(address, address + count));
        }
        if (address < HOLDING_BASE || address + count > HOLDING_BASE + HOLDING_COUNT)
          return exceptionPdu(fn, EX_ILLEGAL_DATA_ADDRESS);
        const off = address - HOLDING_BASE;
        return readReplyPdu(fn, this.holdingRegisters().slice(off, off + count));
      }
      case 0x06: {
        if (pdu.length !== 5) return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const address = u16at(pdu, 1);
        const value = u16at(pdu, 3);
        const ex = this.writeHolding(address, [value]);
        return ex ? exceptionPdu(fn, ex) : Uint8Array.from(pdu);
      }
      case 0x10: {
        const address = u16at(pdu, 1);
        const count = u16at(pdu, 3);
        if (count < 1 || count > 123 || pdu[5] !== 2 * count || pdu.length !== 6 + 2 * count)
          return exceptionPdu(fn, EX_ILLEGAL_DATA_VALUE);
        const values: number[] = [];
        for (let i = 0; i < count; i++) values.push(u16at(pdu, 6 + 2 * i));
        const ex = this.writeHolding(address, values);
        return ex ? exceptionPdu(fn, ex) : pdu.slice(0, 5);
      }
      default:
        return exceptionPdu(fn, EX_ILLEGAL_FUNCTION);
    }
  }

  /** Datasheet: "transactions today ... resets at midnight" (the controller's local midnight). */
  private rollDay(): void {
    const day = this.localDay();
    if (day === this.transactionsDay) return;
    this.transactionsDay = day;
    this.transactions = 0;
  }

  private localDay(): number {
    const now = this.clock.now();
    const offsetMin = this.utcOffsetMinutes ?? -new Date(now).getTimezoneOffset();
    return Math.floor((now + offsetMin * 60_000) / 86_400_000);
  }

  /** Returns an exception code, or 0 when written. */
  private writeHolding(address: number, values: number[]): number {
    if (address < HOLDING_BASE || address + values.length > HOLDING_BASE + HOLDING_COUNT)
      return EX_ILLEGAL_DATA_ADDRESS;
    for (let i = 0; i < values.length; i++) {
      const reg = address + i;
      const v = values[i]!;
      if (reg === HOLDING_BASE && (v < 1 || v > 3)) return EX_ILLEGAL_DATA_VALUE;
    }
    for (let i = 0; i < values.length; i++) {
      const reg = address + i;
      const v = values[i]!;
      if (reg === HOLDING_BASE) this.startCommand(v);
      else this.pollHint = v;
    }
    return 0;
  }

  /** Command register: 1 restart app, 2 enter maintenance, 3 leave it; reads back 0 when done. */
  private startCommand(cmd: number): void {
    this.commands.push(cmd);
    this.command = cmd;
    if (this.commandTimer) this.clock.clearTimeout(this.commandTimer);
    let ms = this.commandMs;
    if (cmd === 1) {
      this.state = GK3_STATE.booting;
      ms = this.restartMs;
    }
    this.commandTimer = this.clock.setTimeout(() => {
      this.commandTimer = undefined;
      if (cmd === 1 || cmd === 3) this.state = GK3_STATE.inService;
      else if (cmd === 2) this.state = GK3_STATE.maintenance;
      this.command = 0;
    }, ms);
    this.commandTimer.unref();
  }
}
