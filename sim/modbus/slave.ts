/**
 * What every simulated Modbus slave shares: register-level request handling
 * (PDU in, PDU out) and the scriptable faults that test a master's recovery.
 */

export const EX_ILLEGAL_FUNCTION = 0x01;
export const EX_ILLEGAL_DATA_ADDRESS = 0x02;
export const EX_ILLEGAL_DATA_VALUE = 0x03;

/**
 * Malformed replies a real RS-485 bus produces besides a bad CRC (RTU), each armed for a
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
export const RTU_MALFORMED_KINDS = [
  "truncate",
  "trailing-garbage",
  "wrong-unit",
  "wrong-function",
  "wrong-byte-count",
  "noise",
] as const;

/**
 * Malformed replies of a Modbus TCP controller (MBAP framing, MB TCP V1.0b §3.1.3), armed the
 * same way. A TCP stream carries no CRC and no silences, so `noise` and `corrupt-crc` have no
 * equivalent; the MBAP header's own fields can be wrong instead:
 * - `wrong-transaction`: the reply echoes another transaction id (the request's plus one), as a
 *   controller that mixes up pipelined requests does;
 * - `wrong-protocol`: the protocol identifier is 1, not 0 (not a Modbus frame);
 * - `wrong-length`: the length field counts the PDU only, not the unit id (a classic firmware
 *   slip): it announces one byte fewer than follow;
 * - `truncate`: the first half of the reply, and nothing more (a controller reset mid-write);
 * - `trailing-garbage`: three bytes (`00 FF 00`) after the reply in the same write;
 * - `wrong-unit`, `wrong-function`, `wrong-byte-count`: as on RTU, in a well-formed MBAP frame.
 */
export const TCP_MALFORMED_KINDS = [
  "wrong-transaction",
  "wrong-protocol",
  "wrong-length",
  "truncate",
  "trailing-garbage",
  "wrong-unit",
  "wrong-function",
  "wrong-byte-count",
] as const;

/** Every malformed-reply fault, of either transport. */
export const MALFORMED_KINDS = [...new Set([...RTU_MALFORMED_KINDS, ...TCP_MALFORMED_KINDS])] as readonly (
  | (typeof RTU_MALFORMED_KINDS)[number]
  | (typeof TCP_MALFORMED_KINDS)[number]
)[];
export type MalformedKind = (typeof RTU_MALFORMED_KINDS)[number] | (typeof TCP_MALFORMED_KINDS)[number];

export interface SlaveFaults {
  /** No reply at all (a dead or disconnected slave). */
  silent: boolean;
  /** Answer every request with this exception code instead of the real reply. */
  exception: number | undefined;
  /** Corrupt the CRC of this many next replies (RTU only). */
  corruptCrc: number;
  /** Delay every reply by this many ms (a slow slave, or a reply that arrives after the master gave up). */
  lateMs: number;
  /** Malformed replies, by kind: how many next replies get each (see RTU_ and TCP_MALFORMED_KINDS). */
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
    "wrong-transaction": 0,
    "wrong-protocol": 0,
    "wrong-length": 0,
  };
}

/** `wrong-function`: the function a confused slave answers instead (same reply length). */
const OTHER_FUNCTION: Readonly<Record<number, number>> = { 3: 4, 4: 3, 5: 6, 6: 5, 15: 16, 16: 15 };

/**
 * The PDU-level faults both transports share (`wrong-function`, `wrong-byte-count`) applied to a
 * reply PDU; `take` spends (and counts) one armed reply of a kind, false when none is armed.
 */
export function malformPdu(
  faults: SlaveFaults,
  replyPdu: Uint8Array,
  take: (kind: MalformedKind) => boolean,
): Uint8Array {
  let pdu = replyPdu;
  const fn = pdu[0]!;
  const other = OTHER_FUNCTION[fn & 0x7f];
  if (other !== undefined && faults.malformed["wrong-function"] > 0) {
    take("wrong-function");
    pdu = Uint8Array.from(pdu);
    pdu[0] = (fn & 0x80) | other;
  }
  // Only a register read's reply has a byte count (MB app V1.1b3 §6.3, §6.4).
  if ((pdu[0] === 0x03 || pdu[0] === 0x04) && pdu.length >= 4 && take("wrong-byte-count")) {
    pdu = pdu.slice(0, pdu.length - 2);
    pdu[1] = pdu.length - 2;
  }
  return pdu;
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
