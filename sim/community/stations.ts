/**
 * The demo's fire stations and kiosks: two MFS-8 panels and an LV-4 tank
 * sensor on one simulated RS-485 bus and four GK-3 kiosk controllers on
 * Modbus TCP (127.0.0.1), with
 * a slow script of things that happen in a community: smoke in a station, an
 * extinguisher taken from its bracket, the hydrant pressure dropping, a kiosk
 * cabinet opened, paper running out. Uses only the simulator's own tables.
 *
 * The RS-485 bus is a real pseudo-terminal pair when socat is installed (the
 * gateway then opens a real tty through serialport), else an in-memory line.
 */

import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import { type Link, MemoryLine, SerialLink } from "../../protocols/index.js";
import { Gk3Controller } from "../modbus/gk3.js";
import { Lv4Sensor } from "../modbus/lv4.js";
import { Mfs8Panel } from "../modbus/mfs8.js";
import { openPtyPair, type PtyPair, socatMissingReason } from "../modbus/pty.js";
import { RtuSlaveServer } from "../modbus/rtu-server.js";
import { ModbusTcpSlaveServer } from "../modbus/tcp-server.js";

export const STATION_UNITS = [1, 2] as const;
export const KIOSK_COUNT = 4;
/** The fire-water tank's LV-4 on the stations' bus. */
export const TANK_UNIT = 9;

/** The script's events; all but `transactions` raise an alert at the gateway. */
export type StationEvent =
  | "smoke"
  | "extinguisher"
  | "pressure"
  | "kiosk-door"
  | "paper"
  | "transactions"
  | "tank";

export interface Stations {
  /** The tty the gateway opens, or null when the bus is in memory (then use `gatewayLink`). */
  ttyPath: string | null;
  /** The gateway's end of the in-memory line (null with a pty). */
  gatewayLink: Link | null;
  panels: Map<number, Mfs8Panel>;
  tank: Lv4Sensor;
  /** Kiosk TCP ports on 127.0.0.1, in order. */
  kioskPorts: number[];
  kiosks: Gk3Controller[];
  /**
   * Starts the scripted events; one every `everyMs` on average (default 5 min; before December
   * 2026 45 s, a station or kiosk alert nearly every minute), each reported to `onEvent`.
   */
  startScript(everyMs?: number, onEvent?: (event: StationEvent) => void): void;
  stop(): Promise<void>;
}

/** The stations' script: a station or kiosk event every 5 min on average (6 of 7 kinds alert). */
export const DEFAULT_STATION_EVENT_EVERY_MS = 5 * 60_000;

export async function startStations(opts: { clock?: Clock; random?: () => number } = {}): Promise<Stations> {
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? Math.random;
  const stops: Array<() => Promise<void>> = [];
  let pty: PtyPair | null = null;
  let simLink: Link;
  let gatewayLink: Link | null = null;
  if (socatMissingReason() === undefined) {
    pty = await openPtyPair();
    simLink = new SerialLink({ path: pty.a, baudRate: 9600, parity: "even", stopBits: 1 });
  } else {
    const line = new MemoryLine("demo-rs485");
    simLink = line.b;
    gatewayLink = line.a;
  }
  // Wire time at 9600 baud, as on the real line.
  const rtu = new RtuSlaveServer(simLink, {
    clock,
    pace: { baudRate: 9600, bitsPerChar: 11 },
    turnaroundMs: 5,
  });
  const panels = new Map<number, Mfs8Panel>();
  for (const unit of STATION_UNITS) {
    const p = new Mfs8Panel({ unit, clock });
    panels.set(unit, p);
    rtu.add(p);
  }
  const tank = new Lv4Sensor({ unit: TANK_UNIT, clock });
  rtu.add(tank);
  stops.push(async () => tank.dispose());
  await rtu.start();
  stops.push(() => rtu.stop());
  if (pty) {
    const p = pty;
    stops.push(() => p.kill());
  }

  const kiosks: Gk3Controller[] = [];
  const kioskPorts: number[] = [];
  for (let i = 0; i < KIOSK_COUNT; i++) {
    const kiosk = new Gk3Controller({ clock });
    const server = new ModbusTcpSlaveServer(kiosk, { host: "127.0.0.1", port: 0, clock });
    kioskPorts.push(await server.start());
    kiosks.push(kiosk);
    stops.push(async () => {
      kiosk.dispose();
      await server.stop();
    });
  }

  const timers = new Set<ClockTimer>();
  let scripting = false;
  const later = (ms: number, fn: () => void) => {
    const t = clock.setTimeout(() => {
      timers.delete(t);
      if (scripting) fn();
    }, ms);
    timers.add(t);
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const events: Array<[StationEvent, () => void]> = [
    [
      "smoke",
      () => {
        const p = pick([...panels.values()]);
        p.raiseSmoke(1.8);
        // The air clears; the alarm stays latched until an operator resets the panel (cmd .../reset).
        later(60_000, () => p.clearAir());
      },
    ],
    [
      "extinguisher",
      () => {
        const p = pick([...panels.values()]);
        const bracket = Math.floor(random() * 5);
        p.emptyBracket(bracket);
        later(150_000 + random() * 60_000, () => p.fillBracket(bracket));
      },
    ],
    [
      "pressure",
      () => {
        const p = pick([...panels.values()]);
        p.setPressure(0.12);
        later(90_000, () => p.setPressure(0.32));
      },
    ],
    [
      "kiosk-door",
      () => {
        const k = pick(kiosks);
        k.openDoor();
        later(20_000, () => k.closeDoor());
      },
    ],
    [
      "paper",
      () => {
        const k = pick(kiosks);
        k.setPaper(6);
        later(240_000, () => k.setPaper(100));
      },
    ],
    ["transactions", () => pick(kiosks).addTransactions(1 + Math.floor(random() * 5))],
    [
      "tank",
      () => {
        // Fire fighting draws the tank down (30 mm/s) past its reserve; the refill valve opens later.
        tank.drawDown(30, 1800);
        later(180_000, () => tank.refill(30, 3600));
      },
    ],
  ];

  return {
    ttyPath: pty ? pty.b : null,
    gatewayLink,
    panels,
    tank,
    kioskPorts,
    kiosks,
    startScript(everyMs = DEFAULT_STATION_EVENT_EVERY_MS, onEvent) {
      scripting = true;
      const next = () =>
        later(everyMs * (0.5 + random()), () => {
          const [name, run] = pick(events);
          run();
          onEvent?.(name);
          next();
        });
      next();
    },
    async stop() {
      scripting = false;
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
      for (const s of stops.reverse()) await s();
    },
  };
}
