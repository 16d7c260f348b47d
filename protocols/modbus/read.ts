/**
 * One-shot register read for `linli modbus read`: opens a serial or TCP link,
 * runs one transaction through a bus (same framing, timeouts and failure
 * classes as the gateway), closes, and returns the words. Printing every
 * interpretation is devices/modbus-decode.ts `formatInterpretations`.
 */
import type { Link } from "../links/link.js";
import { bitsPerChar, type Parity, SerialLink } from "../links/serial.js";
import { TcpLink } from "../links/tcp.js";
import { ModbusBus, type ModbusFailure } from "./bus.js";

export type ModbusReadTarget =
  | { serial: { path: string; baudRate: number; parity?: Parity; stopBits?: 1 | 2; dataBits?: 7 | 8 } }
  | { tcp: { host: string; port: number } };

export type ModbusReadOptions = ModbusReadTarget & {
  unit: number;
  fn: 3 | 4;
  address: number;
  count: number;
  /** Reply timeout, ms. Default 1000. */
  timeoutMs?: number;
  /** Extra attempts. Default 0: an integrator wants to see the first failure. */
  retries?: number;
};

export class ModbusReadError extends Error {
  constructor(readonly failure: ModbusFailure) {
    super(
      failure.kind === "exception"
        ? `Modbus exception 0x${failure.code.toString(16).padStart(2, "0")} ${failure.name}`
        : failure.kind === "transport"
          ? `transport error: ${failure.message}`
          : `request failed: ${failure.kind}`,
    );
    this.name = "ModbusReadError";
  }
}

export async function modbusRead(
  options: ModbusReadOptions,
): Promise<{ address: number; words: Uint16Array }> {
  let link: Link;
  let bus: ModbusBus;
  const common = { timeoutMs: options.timeoutMs ?? 1000, retries: options.retries ?? 0 };
  if ("serial" in options) {
    const s = options.serial;
    link = new SerialLink({ ...s });
    bus = new ModbusBus({
      name: s.path,
      link,
      mode: "rtu",
      baudRate: s.baudRate,
      bitsPerChar: bitsPerChar(s),
      ...common,
    });
  } else {
    link = new TcpLink({ ...options.tcp });
    bus = new ModbusBus({ name: link.name, link, mode: "tcp", ...common });
  }
  // Validate before touching the link (throws ModbusRequestError).
  const prep = bus.prepare({
    fn: options.fn,
    unit: options.unit,
    address: options.address,
    count: options.count,
  });
  try {
    // The bus retries failed opens on backoff; a one-shot read wants the first error instead.
    await link.open();
    await bus.start();
    const r = await bus.submit(prep);
    if (!r.ok) throw new ModbusReadError(r.failure);
    return { address: options.address, words: r.words ?? new Uint16Array(0) };
  } finally {
    await bus.close();
  }
}
