/**
 * What every simulated Modbus slave shares: register-level request handling
 * (PDU in, PDU out) and the scriptable faults that test a master's recovery.
 */

export const EX_ILLEGAL_FUNCTION = 0x01;
export const EX_ILLEGAL_DATA_ADDRESS = 0x02;
export const EX_ILLEGAL_DATA_VALUE = 0x03;

/**
 * Malformed replies a real RS-485 bus produces besides a bad CRC (RTU only), each armed for a
 * number of next replies like `corruptCrc`:
 * - `truncate`: the reply stops halfway (a slave reset or a driver released mid-frame);
 * - `trailing-garbage`: three bytes follow the reply in the same transmission (a driver
 *   released late, a ringing line);
 * - `wrong-unit`: the reply carries the next unit id (a slave with a corrupted address, or
 *   two slaves set to answer alike), CRC correct;
 * - `wrong-function`: the reply carries another function code (0x03 <-> 0x04, 0x05 <-> 0x06,
 *   0x0F <-> 0x10), CRC correct;
 * - `wrong-byte-count`: a register read's reply announces and carries one register fewer than
 *   asked, CRC correct (only register reads have a byte count: other replies leave it armed);
 * - `noise`: a burst of noise bytes on the line after the reply, once the line has been silent
 *   (between frames, where the master may be talking to another slave).
 */
export const MALFORMED_KINDS = [
  "truncate",
  "trailing-garbage",
  "wrong-unit",
  "wrong-function",
  "wrong-byte-count",
  "noise",
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

export interface SlaveFaults {
  /** No reply at all (a dead or disconnected slave). */
  silent: boolean;
  /** Answer every request with this exception code instead of the real reply. */
  exception: number | undefined;
  /** Corrupt the CRC of this many next replies (RTU only). */
  corruptCrc: number;
  /** Delay every reply by this many ms (a slow slave, or a reply that arrives after the master gave up). */
  lateMs: number;
  /** Malformed replies, by kind: how many next replies get each (RTU only; see MALFORMED_KINDS). */
  malformed: Record<MalformedKind, number>;
}

export function noFaults(): SlaveFaults {
  return { silent: false, exception: undefined, corruptCrc: 0, lateMs: 0, malformed: noMalformed() };
}

export function noMalformed(): Record<MalformedKind, number> {
  return {
    truncate: 0,
    "trailing-garbage": 0,
    "wrong-unit": 0,
    "wrong-function": 0,
    "wrong-byte-count": 0,
    noise: 0,
  };
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
