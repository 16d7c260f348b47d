/**
 * What every simulated Modbus slave shares: register-level request handling
 * (PDU in, PDU out) and the scriptable faults that test a master's recovery.
 */

export const EX_ILLEGAL_FUNCTION = 0x01;
export const EX_ILLEGAL_DATA_ADDRESS = 0x02;
export const EX_ILLEGAL_DATA_VALUE = 0x03;

export interface SlaveFaults {
  /** No reply at all (a dead or disconnected slave). */
  silent: boolean;
  /** Answer every request with this exception code instead of the real reply. */
  exception: number | undefined;
  /** Corrupt the CRC of this many next replies (RTU only). */
  corruptCrc: number;
  /** Delay every reply by this many ms (a slow slave, or a reply that arrives after the master gave up). */
  lateMs: number;
}

export function noFaults(): SlaveFaults {
  return { silent: false, exception: undefined, corruptCrc: 0, lateMs: 0 };
}

export interface SimSlave {
  readonly unit: number;
  readonly faults: SlaveFaults;
  /** The device's own reply delay, ms (a datasheet's "answers within ..."); added to any `lateMs`. */
  readonly replyDelayMs?: number;
  /** Handles one request PDU; returns the reply PDU. Broadcast requests are handled but not answered by the server. */
  handle(pdu: Uint8Array): Uint8Array;
}

export function exceptionPdu(fn: number, code: number): Uint8Array {
  return Uint8Array.of(fn | 0x80, code);
}

/** Reply PDU for a register read: fn, byte count, big-endian words (MB app V1.1b3 §6.3). */
export function readReplyPdu(fn: number, words: readonly number[]): Uint8Array {
  const out = new Uint8Array(2 + 2 * words.length);
  out[0] = fn;
  out[1] = 2 * words.length;
  words.forEach((w, i) => {
    out[2 + 2 * i] = (w >>> 8) & 0xff;
    out[3 + 2 * i] = w & 0xff;
  });
  return out;
}

export const u16at = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;
