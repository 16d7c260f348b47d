import { FrameBuffer } from "./frame-buffer.js";
import {
  encodeRequestPdu,
  type ModbusRequest,
  replyPduLength,
  requestPduLength,
  validateRequest,
} from "./pdu.js";

/** MB TCP V1.0b §3.1.3: MBAP header is 7 bytes; an ADU is at most 260 bytes. */
export const MBAP_HEADER = 7;
export const MBAP_MAX_ADU = 260;

/** Builds a TCP request ADU once; the transaction id is patched per send with setTransactionId. */
export function encodeTcpRequest(req: ModbusRequest, transactionId = 0): Uint8Array {
  validateRequest(req);
  const pduLen = requestPduLength(req);
  const out = new Uint8Array(MBAP_HEADER + pduLen);
  setTransactionId(out, transactionId);
  out[2] = 0; // protocol identifier 0 = MODBUS (§3.1.3)
  out[3] = 0;
  out[4] = (pduLen + 1) >>> 8; // length counts the unit id and the PDU (§3.1.3)
  out[5] = (pduLen + 1) & 0xff;
  out[6] = req.unit;
  encodeRequestPdu(req, out, MBAP_HEADER);
  return out;
}

export function setTransactionId(frame: Uint8Array, id: number): void {
  frame[0] = (id >>> 8) & 0xff;
  frame[1] = id & 0xff;
}

export function tcpReplyLength(req: ModbusRequest): number {
  return MBAP_HEADER + replyPduLength(req);
}

export type MbapEvent = "need-more" | "frame" | "framing-error";

/**
 * MBAP reply framer: frames by the header's length field, so replies split
 * across segments or merged in one (node-modbus-serial #264) come out whole
 * and one at a time. Only the length field delimits a frame: a header whose
 * other fields are wrong (protocol id, transaction or unit id) still says
 * where its frame ends, so it comes out as a frame that answers nothing
 * (TcpFraming.answers) and the stream stays in step. A length outside
 * 2..254 delimits nothing: a framing error (the bus drops what it holds and
 * waits for the next header). Bounded: two maximum ADUs; overflow is a
 * framing error too.
 */
export class MbapFramer extends FrameBuffer<MbapEvent> {
  constructor() {
    super(2 * MBAP_MAX_ADU);
  }

  protected frame(): MbapEvent {
    if (this.len < MBAP_HEADER) return "need-more";
    const b = this.buf;
    // §3.1.3: length = unit id + PDU (2..254).
    const length = (b[4]! << 8) | b[5]!;
    if (length < 2 || length > MBAP_MAX_ADU - 6) return "framing-error";
    const need = 6 + length;
    if (this.len < need) return "need-more";
    this.take(need);
    return "frame";
  }
}

/** MB TCP V1.0b §3.1.3: protocol identifier 0 is MODBUS; any other frame is not ours to read. */
export function isModbusProtocol(frame: Uint8Array): boolean {
  return frame[2] === 0 && frame[3] === 0;
}
