import { appendCrc, crcOk } from "./crc.js";
import { FrameBuffer } from "./frame-buffer.js";
import {
  encodeRequestPdu,
  type ModbusRequest,
  replyPduLength,
  requestPduLength,
  validateRequest,
} from "./pdu.js";

/** MB serial V1.02 §2.5.1: an RTU frame (address + PDU + CRC) is at most 256 bytes. */
export const RTU_MAX_ADU = 256;

/**
 * Silent interval t3.5 in ms (MB serial V1.02 §2.5.1.1): 3.5 character times,
 * fixed at 1.75 ms above 19200 baud, where character timing gets too tight for UARTs.
 */
export function silentIntervalMs(baudRate: number, bitsPerChar = 11): number {
  if (baudRate > 19200) return 1.75;
  return (3.5 * bitsPerChar * 1000) / baudRate;
}

/** Builds the complete RTU request frame once (callers precompute and reuse it). */
export function encodeRtuRequest(req: ModbusRequest): Uint8Array {
  validateRequest(req);
  const pduLen = requestPduLength(req);
  const out = new Uint8Array(1 + pduLen + 2);
  out[0] = req.unit;
  encodeRequestPdu(req, out, 1);
  appendCrc(out, 0, 1 + pduLen);
  return out;
}

/** Length of the normal RTU reply to req, in bytes on the wire. */
export function rtuReplyLength(req: ModbusRequest): number {
  return 1 + replyPduLength(req) + 2;
}

export type RtuEvent = "need-more" | "frame" | "crc-error" | "framing-error";

/**
 * Master-side RTU reply framer. Frames by the length the header announces, not
 * by silence: on a pty or a USB adapter bytes arrive in arbitrary chunks, and
 * the gaps say nothing (DESIGN "Library notes"). Several replies in one chunk
 * come out one `next()` at a time.
 *
 * Bounded: one preallocated buffer of two maximum frames; overflow is a framing
 * error (the bus flushes the line).
 */
export class RtuReplyFramer extends FrameBuffer<RtuEvent> {
  constructor() {
    super(2 * RTU_MAX_ADU);
  }

  protected frame(): RtuEvent {
    const b = this.buf;
    if (this.len < 2) return "need-more";
    const fn = b[1]!;
    let need: number;
    if (fn & 0x80) {
      need = 5; // address, fn|0x80, exception code, CRC (MB app V1.1b3 §7)
    } else if (fn === 0x03 || fn === 0x04) {
      if (this.len < 3) return "need-more";
      need = 5 + b[2]!; // address, fn, byte count, data, CRC
    } else if (fn === 0x05 || fn === 0x06 || fn === 0x10) {
      need = 8; // echo / address+quantity (MB app V1.1b3 §6.5, §6.6, §6.12)
    } else {
      return "framing-error"; // a function we never ask for: cannot know its length
    }
    if (need > RTU_MAX_ADU) return "framing-error";
    if (this.len < need) return "need-more";
    // MB serial V1.02 §2.5.1.2: a frame whose CRC does not match is discarded.
    if (!crcOk(b, 0, need)) return "crc-error";
    this.take(need);
    return "frame";
  }
}
