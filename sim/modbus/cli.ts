/**
 * Modbus simulator entry point.
 *
 *   node dist/sim/modbus/cli.js rtu --pty-link /dev/pts/7 --units 1,2 [--baud 9600 --parity even --stop-bits 1] [--pace] [--turnaround-ms 5]
 *   node dist/sim/modbus/cli.js rtu --socat --units 1,2        # makes a pty pair, prints the gateway's end
 *   node dist/sim/modbus/cli.js rtu --socat --units 1 --lv4-units 9   # an LV-4 tank sensor on the same line
 *   node dist/sim/modbus/cli.js rtu --socat --units none --lv4-units 9  # the LV-4 alone
 *   node dist/sim/modbus/cli.js tcp --port 1502 --count 4       # GK-3 kiosks on ports 1502..1505
 *
 * While running, stdin takes script lines, e.g. "5 smoke", "5 silent on",
 * "1 exception 4", "2 late 300", "1502 door open", "9 level 2350", "9 draw-down" (see `script()` below).
 * Faults: `silent on|off`, `exception CODE|off` (a code the Modbus protocol defines, 0x01-0x0B,
 * e.g. 0x04 for a failed controller), `late MS`, and for the next N replies `truncate [N]`,
 * `trailing-garbage [N]`, `wrong-unit [N]`, `wrong-function [N]`, `wrong-byte-count [N]`; RTU
 * only `corrupt-crc [N]`, `noise [N]`; Modbus TCP only `wrong-transaction [N]`,
 * `wrong-protocol [N]`, `wrong-length [N]` (slave.ts); a bad one is refused.
 * `runSimCli(argv)` does the same in-process and returns a handle (tests, demo).
 *
 * Exit status: 2 a bad option (checked before anything is started), 1 a line or port that
 * could not be opened.
 */
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { Clock } from "../../core/index.js";
import { type Parity, SerialLink } from "../../protocols/index.js";
import { Gk3Controller } from "./gk3.js";
import { Lv4Sensor } from "./lv4.js";
import { Mfs8Panel } from "./mfs8.js";
import { openPtyPair, type PtyPair } from "./pty.js";
import { RtuSlaveServer } from "./rtu-server.js";
import {
  MALFORMED_KINDS,
  type MalformedKind,
  RTU_MALFORMED_KINDS,
  type SlaveFaults,
  TCP_MALFORMED_KINDS,
} from "./slave.js";
import { ModbusTcpSlaveServer } from "./tcp-server.js";

export interface SimHandle {
  /** RTU: the tty the gateway should open (with --socat) or the one the sim opened. */
  gatewayPath?: string;
  panels: Map<number, Mfs8Panel>;
  /** RTU: LV-4 tank sensors by unit id, on the same line as the panels. */
  tanks: Map<number, Lv4Sensor>;
  /** TCP: port -> kiosk. */
  kiosks: Map<number, Gk3Controller>;
  ports: number[];
  /** Applies one script line; returns a description or throws on a bad line. */
  script(line: string): string;
  stop(): Promise<void>;
}

/** MFS-8 and LV-4 datasheets, "Link". */
const DATASHEET_BAUD_RATES: readonly number[] = [9600, 19200, 38400, 57600, 115200];

/** `--help`, and the tail of a refused mode. */
export const SIM_MODBUS_USAGE = `usage: node dist/sim/modbus/cli.js rtu|tcp [options]

rtu: MFS-8 panels and LV-4 tank sensors as Modbus RTU slaves on one serial line
  --socat                 open a socat pty pair and print the gateway's end
  --pty-link <path>       or serve on this tty (the simulator's end of a line)
  --units <list>          MFS-8 unit ids, e.g. 1,2 (default 1; "none" for no panel)
  --lv4-units <list>      LV-4 unit ids on the same line (default none)
  --baud <n>              9600 (default), 19200, 38400, 57600 or 115200
  --parity even|none      even (8E1, default) or none (8N1, 8N2)
  --stop-bits 1|2         default 1 (2 with --parity none only)
  --pace                  delay replies by the wire time at --baud
  --turnaround-ms <ms>    the slaves' reply delay (default 0)
tcp: GK-3 kiosk controllers on Modbus TCP
  --host <addr>           default 127.0.0.1
  --port <n>              first kiosk's port, the others on the next ones (default 1502; 0: free ports)
  --count <n>             how many kiosks (default 1)
  --idle-timeout-ms <ms>  close a connection idle this long (default 120000, datasheet)

While running, stdin takes script lines "<unit|port> <action> [arg]", e.g. "5 smoke",
"9 level 800", "1502 door open"; faults: silent on|off, exception CODE|off, late MS, and for
the next N replies (default 1) truncate, trailing-garbage, wrong-unit, wrong-function,
wrong-byte-count; RTU only corrupt-crc, noise; TCP only wrong-transaction, wrong-protocol,
wrong-length. A bad line is refused with the reason (docs/devices.md).
Exit status: 0 stopped by Ctrl-C or SIGTERM, 1 a line or port could not be opened, 2 a bad option,
130 a second Ctrl-C or SIGTERM while stopping.`;

function bitsPerChar(parity: Parity, stopBits: number): number {
  return 1 + 8 + (parity === "none" ? 0 : 1) + stopBits;
}

export interface SimCliOptions {
  /** The slaves' clock (tests pin uptime with a fake one); default the system clock. */
  clock?: Clock;
}

export async function runSimCli(argv: string[], options: SimCliOptions = {}): Promise<SimHandle> {
  const [mode, ...rest] = argv;
  const { values } = (() => {
    try {
      return parseArgs({
        args: rest,
        options: {
          "pty-link": { type: "string" },
          socat: { type: "boolean", default: false },
          units: { type: "string", default: "1" },
          "lv4-units": { type: "string", default: "" },
          baud: { type: "string", default: "9600" },
          parity: { type: "string", default: "even" },
          "stop-bits": { type: "string", default: "1" },
          pace: { type: "boolean", default: false },
          "turnaround-ms": { type: "string", default: "0" },
          host: { type: "string", default: "127.0.0.1" },
          port: { type: "string", default: "1502" },
          count: { type: "string", default: "1" },
          "idle-timeout-ms": { type: "string", default: "120000" },
        },
      });
    } catch (err) {
      throw usageOf(err);
    }
  })();
  const panels = new Map<number, Mfs8Panel>();
  const tanks = new Map<number, Lv4Sensor>();
  const kiosks = new Map<number, Gk3Controller>();
  const stops: (() => Promise<void>)[] = [];
  const handle: SimHandle = {
    panels,
    tanks,
    kiosks,
    ports: [],
    script: (line) => script(handle, line),
    stop: async () => {
      for (const s of stops.reverse()) await s();
    },
  };

  if (mode === "rtu") {
    // Every option is checked before socat is started: a refused option leaves no pty pair behind.
    // The line settings the MFS-8 and LV-4 datasheets offer: 9600 (default), 19200, 38400, 57600 or
    // 115200 baud; 8E1 (default), or no parity with 1 or 2 stop bits. A slave set otherwise exists
    // on no bus, and a gateway configured for it must not find one here.
    const parity = values.parity as Parity;
    if (parity !== "even" && parity !== "none")
      throw new UsageError(
        `--parity ${parity}: the panels and tank sensors have even (8E1) or none (8N1, 8N2)`,
      );
    const stopBitsText = values["stop-bits"];
    if (stopBitsText !== "1" && stopBitsText !== "2") throw new UsageError("--stop-bits must be 1 or 2");
    const stopBits: 1 | 2 = stopBitsText === "2" ? 2 : 1;
    if (parity === "even" && stopBits === 2)
      throw new UsageError("--parity even --stop-bits 2: the datasheets offer 8E1, 8N1 and 8N2 only");
    const baudRate = positiveInteger("--baud", values.baud);
    if (!DATASHEET_BAUD_RATES.includes(baudRate))
      throw new UsageError(`--baud ${baudRate}: the datasheets offer ${DATASHEET_BAUD_RATES.join(", ")}`);
    const turnaroundMs = wholeOption("--turnaround-ms", values["turnaround-ms"]);
    const unitList = (option: string, s: string) =>
      s
        .split(",")
        .filter((x) => x.trim() !== "" && x.trim() !== "none")
        .map((x) => {
          const u = /^\s*\d+\s*$/.test(x) ? Number(x) : Number.NaN;
          if (!Number.isInteger(u) || u < 1 || u > 247)
            throw new UsageError(`${option} ${s}: unit ${x} not in 1..247`);
          return u;
        });
    const mfs8Units = unitList("--units", values.units);
    const lv4Units = unitList("--lv4-units", values["lv4-units"]);
    for (const u of lv4Units)
      if (mfs8Units.includes(u)) throw new UsageError(`unit ${u} is both an MFS-8 and an LV-4`);
    if (mfs8Units.length + lv4Units.length === 0)
      throw new UsageError("no units: give --units and/or --lv4-units");
    if (!values.socat && !values["pty-link"])
      throw new UsageError("rtu needs --pty-link <tty path> or --socat");

    let path = values["pty-link"];
    let pty: PtyPair | undefined;
    if (values.socat) {
      pty = await openPtyPair();
      path = pty.a;
      handle.gatewayPath = pty.b;
    }
    const pair = pty;
    try {
      handle.gatewayPath ??= path;
      const link = new SerialLink({ path: path as string, baudRate, parity, stopBits });
      const server = new RtuSlaveServer(link, {
        clock: options.clock,
        pace: values.pace ? { baudRate, bitsPerChar: bitsPerChar(parity, stopBits) } : undefined,
        turnaroundMs,
      });
      const clock = options.clock;
      for (const u of mfs8Units) {
        const panel = new Mfs8Panel({ unit: u, clock });
        panels.set(u, panel);
        server.add(panel);
      }
      for (const u of lv4Units) {
        const tank = new Lv4Sensor({ unit: u, clock });
        tanks.set(u, tank);
        server.add(tank);
      }
      await server.start();
      stops.push(async () => {
        for (const t of tanks.values()) t.dispose();
        await server.stop();
      });
    } catch (err) {
      for (const t of tanks.values()) t.dispose();
      await pair?.kill();
      throw err;
    }
    if (pair) stops.push(() => pair.kill());
    return handle;
  }

  if (mode === "tcp") {
    const base = wholeOption("--port", values.port);
    if (base > 65535) throw new UsageError(`--port ${values.port}: not a TCP port (0 picks free ones)`);
    const count = positiveInteger("--count", values.count);
    if (base !== 0 && base + count - 1 > 65535)
      throw new UsageError(`--port ${base} --count ${count}: the ports run past 65535`);
    const idleTimeoutMs = positiveInteger("--idle-timeout-ms", values["idle-timeout-ms"]);
    for (let i = 0; i < count; i++) {
      const kiosk = new Gk3Controller();
      const server = new ModbusTcpSlaveServer(kiosk, {
        host: values.host,
        port: base === 0 ? 0 : base + i,
        idleTimeoutMs,
      });
      let port: number;
      try {
        port = await server.start();
      } catch (err) {
        kiosk.dispose();
        await handle.stop();
        throw err;
      }
      kiosks.set(port, kiosk);
      handle.ports.push(port);
      stops.push(async () => {
        kiosk.dispose();
        await server.stop();
      });
    }
    return handle;
  }

  throw new UsageError(`${mode ? `unknown mode ${mode}` : "no mode"}: give rtu or tcp\n${SIM_MODBUS_USAGE}`);
}

/** A refused option or argument: exit status 2 (a fault of the command line, not of the line). */
export class UsageError extends Error {}

/** parseArgs's refusals (an unknown option, a missing value) as usage errors that point to --help. */
function usageOf(err: unknown): unknown {
  if (!isParseArgsError(err)) return err;
  // Node's text goes on about positional arguments after `--`, which this command has none of.
  const text = (err as Error).message;
  return new UsageError(`${text.split(". ")[0] ?? text} (--help lists the options)`);
}

function positiveInteger(option: string, text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`${option} ${text}: give a positive whole number`);
  return n;
}

function wholeOption(option: string, text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${option} ${text}: give a whole number`);
  return n;
}

/**
 * A script action's number: absent gives the action's default, anything not a finite number is
 * refused (`9 level x` used to set the level to 0 mm: a low tank from a typo).
 */
function numberArg(action: string, arg: string | undefined): number | undefined {
  if (arg === undefined) return undefined;
  const n = /^-?(\d+(\.\d*)?|\.\d+)$|^0x[0-9a-f]+$/i.test(arg) ? Number(arg) : Number.NaN;
  if (!Number.isFinite(n)) throw new Error(`${action} ${arg}: give a number`);
  return n;
}

/** on/off for a fault: anything else is refused (a typo must not quietly turn the fault off). */
function strictOnOff(action: string, arg: string | undefined): boolean {
  if (arg === undefined || ["on", "1", "true"].includes(arg)) return true;
  if (["off", "0", "false"].includes(arg)) return false;
  throw new Error(`${action} ${arg}: give on or off`);
}

/**
 * Exception codes a scripted fault may put on the wire: the ones the Modbus application protocol
 * defines (v1.1b3 §7: 0x01-0x06, 0x08, 0x0A, 0x0B). A fault is by nature off the datasheet (a
 * panel whose controller fails answers 0x04 though its datasheet lists only 0x01 and 0x02), but a
 * code the protocol does not define (0x00, a word) is refused: no device could send it.
 */
const MODBUS_EXCEPTIONS: readonly number[] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x0a, 0x0b];

/** What each model's datasheet lists (its "Link" section), named in the refusal. */
const DATASHEET_EXCEPTIONS = {
  "MFS-8": [0x01, 0x02],
  "LV-4": [0x01, 0x02, 0x03],
  "GK-3": [0x01, 0x02],
} as const;

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

/** A count or a delay: a non-negative integer, else refused. */
function wholeNumber(action: string, arg: string, what: string): number {
  const n = /^\d+$/.test(arg) ? Number(arg) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new Error(`${action} ${arg}: give ${what} (a whole number)`);
  return n;
}

function applyFault(
  faults: SlaveFaults,
  model: keyof typeof DATASHEET_EXCEPTIONS,
  rtu: boolean,
  action: string,
  arg: string | undefined,
): boolean {
  switch (action) {
    case "silent":
      faults.silent = strictOnOff(action, arg);
      return true;
    case "exception": {
      if (arg === undefined || arg === "off") {
        faults.exception = undefined;
        return true;
      }
      const code = /^(0x[0-9a-f]+|\d+)$/i.test(arg) ? Number(arg) : Number.NaN;
      if (!MODBUS_EXCEPTIONS.includes(code))
        throw new Error(
          `exception ${arg}: not a Modbus exception code (${MODBUS_EXCEPTIONS.map(hex).join(", ")}; the ${model} datasheet lists ${DATASHEET_EXCEPTIONS[model].map(hex).join(", ")}) or off`,
        );
      faults.exception = code;
      return true;
    }
    case "corrupt-crc":
      // Modbus TCP frames carry no CRC (the MBAP header has none): nothing to corrupt.
      if (!rtu) throw new Error(`corrupt-crc: ${model} is on Modbus TCP, which has no CRC (RTU only)`);
      faults.corruptCrc = arg === undefined ? 1 : wholeNumber(action, arg, "how many replies");
      return true;
    case "late":
      faults.lateMs = arg === undefined ? 0 : wholeNumber(action, arg, "ms");
      return true;
    default: {
      if (!(MALFORMED_KINDS as readonly string[]).includes(action)) return false;
      // Each transport breaks its own framing: a TCP stream has no silences (noise), a serial
      // frame no MBAP header (wrong-transaction, wrong-protocol, wrong-length).
      if (!rtu && !(TCP_MALFORMED_KINDS as readonly string[]).includes(action))
        throw new Error(`${action}: ${model} is on Modbus TCP (RTU only)`);
      if (rtu && !(RTU_MALFORMED_KINDS as readonly string[]).includes(action))
        throw new Error(`${action}: ${model} is on Modbus RTU, which has no MBAP header (Modbus TCP only)`);
      faults.malformed[action as MalformedKind] =
        arg === undefined ? 1 : wholeNumber(action, arg, "how many replies");
      return true;
    }
  }
}

/** "<unit|port> <action> [arg]": scripts a panel (by unit) or a kiosk (by port). */
function script(handle: SimHandle, line: string): string {
  const [target, action, arg] = line.trim().split(/\s+/);
  const onOff = (a: string | undefined) => strictOnOff(action ?? "", a);
  const num = () => numberArg(action ?? "", arg);
  const id = Number(target);
  const panel = handle.panels.get(id);
  const tank = handle.tanks.get(id);
  const kiosk = handle.kiosks.get(id);
  const dev = panel ?? tank ?? kiosk;
  if (!dev || !action) throw new Error(`unknown target or action in "${line}"`);
  const model = panel ? "MFS-8" : tank ? "LV-4" : "GK-3";
  if (applyFault(dev.faults, model, !kiosk, action, arg)) return `${target}: ${action} ${arg ?? ""}`.trim();
  if (panel) {
    const actions: Record<string, () => void> = {
      smoke: () => panel.raiseSmoke(num()),
      heat: () => panel.raiseHeat(num()),
      "call-point": () => panel.pressCallPoint(),
      "clear-air": () => panel.clearAir(),
      "empty-bracket": () => panel.emptyBracket(num() ?? 0),
      "fill-bracket": () => panel.fillBracket(num() ?? 0),
      pressure: () => panel.setPressure(num() ?? 0.32),
      fault: () => panel.setFault(num() ?? 0),
      "mains-fail": () => panel.setMainsFailed(onOff(arg)),
      "pump-fault": () => panel.setPumpFault(onOff(arg)),
      reset: () => panel.reset(),
    };
    const f = actions[action];
    if (!f) throw new Error(`unknown panel action "${action}"`);
    f();
  } else if (tank) {
    const actions: Record<string, () => void> = {
      level: () => tank.setLevel(num() ?? 3600),
      temperature: () => tank.setTemperature(num() ?? 8),
      "draw-down": () => tank.drawDown(num() ?? 30),
      refill: () => tank.refill(num() ?? 30),
      "stop-flow": () => tank.stopFlow(),
      "winter-night": () => tank.winterNight(),
      "end-winter": () => tank.endWinter(),
      fault: () => tank.setFault(num() ?? 0),
      glitch: () => tank.glitch(num() === 0xffff ? 0xffff : 0),
      "alarm-counter": () => tank.setAlarmCounter(num() ?? 0),
    };
    const f = actions[action];
    if (!f) throw new Error(`unknown tank action "${action}"`);
    f();
  } else if (kiosk) {
    const actions: Record<string, () => void> = {
      door: () => {
        if (arg === "closed" || arg === "off") kiosk.closeDoor();
        else if (arg === undefined || arg === "open" || arg === "on") kiosk.openDoor();
        else throw new Error(`door ${arg}: give open or closed`);
      },
      tilt: () => kiosk.tilt(onOff(arg)),
      "out-of-service": () => kiosk.setOutOfService(onOff(arg)),
      state: () => kiosk.setState(num() ?? 2),
      temperature: () => kiosk.setTemperature(num() ?? 25),
      paper: () => kiosk.setPaper(num() ?? 80),
      "ups-battery": () => kiosk.setUpsOnBattery(onOff(arg)),
      bit: () => kiosk.setBit(num() ?? 0, true),
      queue: () => kiosk.setQueue(num() ?? 0),
    };
    const f = actions[action];
    if (!f) throw new Error(`unknown kiosk action "${action}"`);
    f();
  }
  return `${target}: ${action} ${arg ?? ""}`.trim();
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.some((a) => a === "-h" || a === "--help")) {
    process.stdout.write(`${SIM_MODBUS_USAGE}\n`);
    return;
  }
  // Handled from the start: a signal while socat or the ports are being opened would otherwise
  // kill this process by default and leave the socat pair it had just started running.
  let stop: (() => void) | undefined;
  let stopRequested = false;
  const onSignal = () => {
    // A second signal while stopping exits at once (130, as `linli sim`); socat goes with us (pty.ts).
    if (stopRequested) process.exit(130);
    stopRequested = true;
    stop?.();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const handle = await runSimCli(argv);
  const rl = createInterface({ input: process.stdin });
  stop = () => {
    rl.close();
    handle.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  if (stopRequested) return stop();
  if (handle.panels.size > 0)
    process.stdout.write(`MFS-8 units ${[...handle.panels.keys()].join(",")} on ${handle.gatewayPath}\n`);
  if (handle.tanks.size > 0)
    process.stdout.write(`LV-4 units ${[...handle.tanks.keys()].join(",")} on ${handle.gatewayPath}\n`);
  if (handle.ports.length > 0) process.stdout.write(`GK-3 kiosks on ports ${handle.ports.join(",")}\n`);
  rl.on("line", (line) => {
    if (!line.trim()) return;
    try {
      process.stdout.write(`${handle.script(line)}\n`);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
    }
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    // 2: a bad option (nothing was started); 1: the line or a port could not be opened.
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}
