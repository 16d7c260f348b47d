/**
 * Modbus PDU codec for the function codes the gateway uses
 * (MB app V1.1b3 §6): 0x03, 0x04, 0x05, 0x06, 0x10, and exception replies (§7).
 */

export const FN_READ_HOLDING = 0x03;
export const FN_READ_INPUT = 0x04;
export const FN_WRITE_COIL = 0x05;
export const FN_WRITE_REGISTER = 0x06;
export const FN_WRITE_REGISTERS = 0x10;

/** §6.3 / §6.4: quantity of registers 1 to 125 (0x7D). */
export const MAX_READ_REGISTERS = 125;
/** §6.12: quantity of registers 1 to 123 (0x7B). */
export const MAX_WRITE_REGISTERS = 123;

export type ReadRequest = { fn: 0x03 | 0x04; unit: number; address: number; count: number };
export type WriteCoilRequest = { fn: 0x05; unit: number; address: number; value: boolean };
export type WriteRegisterRequest = { fn: 0x06; unit: number; address: number; value: number };
export type WriteRegistersRequest = { fn: 0x10; unit: number; address: number; values: readonly number[] };
export type ModbusRequest = ReadRequest | WriteCoilRequest | WriteRegisterRequest | WriteRegistersRequest;

/** §7 "MODBUS Exception Responses"; 0x07 is from the older Modicon PI-MBUS-300 and still seen. */
export const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: "ILLEGAL_FUNCTION",
  2: "ILLEGAL_DATA_ADDRESS",
  3: "ILLEGAL_DATA_VALUE",
  4: "SERVER_DEVICE_FAILURE",
  5: "ACKNOWLEDGE",
  6: "SERVER_DEVICE_BUSY",
  7: "NEGATIVE_ACKNOWLEDGE",
  8: "MEMORY_PARITY_ERROR",
  10: "GATEWAY_PATH_UNAVAILABLE",
  11: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
};

export function exceptionName(code: number): string {
  return EXCEPTION_NAMES[code] ?? `EXCEPTION_0x${code.toString(16).padStart(2, "0").toUpperCase()}`;
}

export class ModbusRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModbusRequestError";
  }
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new ModbusRequestError(message);
}

/** Validates a request against the spec's ranges; throws ModbusRequestError. */
export function validateRequest(req: ModbusRequest): void {
  // MB serial V1.02 §2.2: 0 is broadcast, 1-247 individual addresses (TCP also allows 255 for "this server").
  check(Number.isInteger(req.unit) && req.unit >= 0 && req.unit <= 255, `unit id ${req.unit} out of range`);
  check(
    Number.isInteger(req.address) && req.address >= 0 && req.address <= 0xffff,
    `address ${req.address} out of range`,
  );
  switch (req.fn) {
    case FN_READ_HOLDING:
    case FN_READ_INPUT:
      // MB app V1.1b3 §6.3/§6.4: 1 <= quantity <= 0x7D, and the block must not pass 0xFFFF.
      check(
        Number.isInteger(req.count) && req.count >= 1 && req.count <= MAX_READ_REGISTERS,
        `register count ${req.count} not in 1..125 (MB app §6.3)`,
      );
      check(req.address + req.count <= 0x10000, "read passes address 0xFFFF");
      check(req.unit !== 0, "reads cannot be broadcast (MB serial §2.2)");
      break;
    case FN_WRITE_COIL:
      break;
    case FN_WRITE_REGISTER:
      check(Number.isInteger(req.value) && req.value >= 0 && req.value <= 0xffff, "register value not u16");
      break;
    case FN_WRITE_REGISTERS:
      // MB app V1.1b3 §6.12: 1 <= quantity <= 0x7B.
      check(
        req.values.length >= 1 && req.values.length <= MAX_WRITE_REGISTERS,
        `register count ${req.values.length} not in 1..123 (MB app §6.12)`,
      );
      check(req.address + req.values.length <= 0x10000, "write passes address 0xFFFF");
      for (const v of req.values)
        check(Number.isInteger(v) && v >= 0 && v <= 0xffff, "register value not u16");
      break;
  }
}

/** Size of the request PDU in bytes. */
export function requestPduLength(req: ModbusRequest): number {
  return req.fn === FN_WRITE_REGISTERS ? 6 + 2 * req.values.length : 5;
}

/** Size of a normal (non-exception) reply PDU in bytes. */
export function replyPduLength(req: ModbusRequest): number {
  return req.fn === FN_READ_HOLDING || req.fn === FN_READ_INPUT ? 2 + 2 * req.count : 5;
}

/** Writes the request PDU at out[offset]; returns its length. */
export function encodeRequestPdu(req: ModbusRequest, out: Uint8Array, offset: number): number {
  const o = offset;
  out[o] = req.fn;
  out[o + 1] = req.address >>> 8;
  out[o + 2] = req.address & 0xff;
  switch (req.fn) {
    case FN_READ_HOLDING:
    case FN_READ_INPUT:
      out[o + 3] = req.count >>> 8;
      out[o + 4] = req.count & 0xff;
      return 5;
    case FN_WRITE_COIL:
      // MB app V1.1b3 §6.5: ON is 0xFF00, OFF is 0x0000; any other value is illegal.
      out[o + 3] = req.value ? 0xff : 0x00;
      out[o + 4] = 0x00;
      return 5;
    case FN_WRITE_REGISTER:
      out[o + 3] = req.value >>> 8;
      out[o + 4] = req.value & 0xff;
      return 5;
    case FN_WRITE_REGISTERS: {
      const n = req.values.length;
      out[o + 3] = n >>> 8;
      out[o + 4] = n & 0xff;
      out[o + 5] = 2 * n;
      for (let i = 0; i < n; i++) {
        const v = req.values[i]!;
        out[o + 6 + 2 * i] = v >>> 8;
        out[o + 7 + 2 * i] = v & 0xff;
      }
      return 6 + 2 * n;
    }
  }
}

export type ReplyCheck =
  | { kind: "ok"; words: Uint16Array | undefined }
  | { kind: "exception"; code: number; name: string }
  | { kind: "mismatch"; reason: string };

/**
 * Checks a reply PDU (pdu[start, end)) against the outstanding request. A
 * mismatch means "not the reply to this request" (e.g. a late reply to an
 * earlier one): the caller discards it and keeps waiting.
 */
export function checkReplyPdu(req: ModbusRequest, pdu: Uint8Array, start: number, end: number): ReplyCheck {
  const len = end - start;
  // The framers never hand over an empty PDU; refuse one anyway rather than read past it.
  if (len < 1) return { kind: "mismatch", reason: "empty PDU" };
  const fn = pdu[start]!;
  // MB app V1.1b3 §7: an exception reply echoes the function code with bit 7 set, then one code byte.
  if (fn === (req.fn | 0x80)) {
    if (len !== 2) return { kind: "mismatch", reason: "exception reply length" };
    const code = pdu[start + 1]!;
    return { kind: "exception", code, name: exceptionName(code) };
  }
  if (fn !== req.fn) return { kind: "mismatch", reason: `function 0x${fn.toString(16)}` };
  switch (req.fn) {
    case FN_READ_HOLDING:
    case FN_READ_INPUT: {
      // §6.3: byte count = 2 x quantity of registers.
      const byteCount = pdu[start + 1]!;
      if (byteCount !== 2 * req.count || len !== 2 + byteCount)
        return { kind: "mismatch", reason: `byte count ${byteCount}` };
      const words = new Uint16Array(req.count);
      for (let i = 0; i < req.count; i++) words[i] = (pdu[start + 2 + 2 * i]! << 8) | pdu[start + 3 + 2 * i]!;
      return { kind: "ok", words };
    }
    case FN_WRITE_COIL:
    case FN_WRITE_REGISTER: {
      // §6.5 / §6.6: the normal response is an echo of the request.
      if (len !== 5) return { kind: "mismatch", reason: "echo length" };
      const addr = (pdu[start + 1]! << 8) | pdu[start + 2]!;
      const value = (pdu[start + 3]! << 8) | pdu[start + 4]!;
      const expected = req.fn === FN_WRITE_COIL ? (req.value ? 0xff00 : 0) : req.value;
      if (addr !== req.address || value !== expected) return { kind: "mismatch", reason: "echo differs" };
      return { kind: "ok", words: undefined };
    }
    case FN_WRITE_REGISTERS: {
      // §6.12: the response returns the starting address and quantity written.
      if (len !== 5) return { kind: "mismatch", reason: "reply length" };
      const addr = (pdu[start + 1]! << 8) | pdu[start + 2]!;
      const qty = (pdu[start + 3]! << 8) | pdu[start + 4]!;
      if (addr !== req.address || qty !== req.values.length)
        return { kind: "mismatch", reason: "echo differs" };
      return { kind: "ok", words: undefined };
    }
  }
}
