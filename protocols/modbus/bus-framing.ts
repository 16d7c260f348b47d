/**
 * How a bus's frames look on its link, as one strategy per transport, so the
 * bus's single-flight core (bus.ts) has no `rtu`/`tcp` branches:
 *
 * - RTU (MB serial V1.02): unit id + PDU + CRC, frames delimited by a silent
 *   interval of 3.5 characters, broadcasts (unit 0) get no reply; a CRC or
 *   framing error is cured by waiting for silence, then retrying.
 * - TCP (MB TCP V1.0b): MBAP header with a transaction id per attempt; a
 *   reply must carry the outstanding id and protocol id 0. A header whose
 *   length field delimits its frame keeps the stream in step even when its
 *   other fields are wrong (that frame is discarded as answering nothing);
 *   one whose length delimits nothing is a framing error: what is held is
 *   dropped and the next header, at the next reply, resynchronises the
 *   stream. The link is dropped only when a second such header comes before
 *   any well-framed one (the stream cannot be resynchronised).
 */
import { encodeTcpRequest, isModbusProtocol, MbapFramer, setTransactionId, tcpReplyLength } from "./mbap.js";
import type { ModbusRequest } from "./pdu.js";
import { encodeRtuRequest, RtuReplyFramer, rtuReplyLength, silentIntervalMs } from "./rtu.js";

export type BusMode = "rtu" | "tcp";

/** A request encoded once; submit it as often as needed (polls precompute theirs). */
export interface PreparedRequest {
  readonly request: ModbusRequest;
  /** RTU ADU with CRC, or MBAP ADU whose transaction id the bus patches per send. */
  readonly frame: Uint8Array;
  readonly replyLength: number;
}

/** What the reply buffer holds next; after "frame", `bytes()` and the PDU bounds describe it. */
export type FrameEvent = "need-more" | "frame" | "crc-error" | "framing-error";

export interface BusFraming {
  readonly mode: BusMode;
  /** Silence required between frames, ms (0 on TCP). */
  readonly silenceMs: number;
  /** Reply timeout per attempt when the bus is given none. */
  readonly defaultTimeoutMs: number;
  /**
   * After a CRC or framing error: wait for silence and retry ("flush"), or drop what is held and
   * resynchronise on the next header, dropping the link if that fails too ("resync").
   */
  readonly lineErrorRecovery: "flush" | "resync";
  /** Encodes a request (validates it; throws ModbusRequestError). */
  prepare(request: ModbusRequest): PreparedRequest;
  /** Makes the frame ready for one more attempt (TCP: a new transaction id). */
  stamp(frame: Uint8Array): void;
  /** A request no slave answers (RTU broadcast): the master waits a turnaround delay instead. */
  unanswered(request: ModbusRequest): boolean;
  /** Time the request and its reply spend on the wire, ms, added to the reply timeout. */
  wireMs(prep: PreparedRequest): number;
  /** Appends received bytes; false when they cannot be a frame (buffer overflow). */
  push(chunk: Uint8Array): boolean;
  /** Drops what is buffered; returns how many bytes. */
  clear(): number;
  /** Bytes held that do not make a whole frame yet. */
  readonly buffered: number;
  next(): FrameEvent;
  /** The frame `next()` found. */
  bytes(): Uint8Array;
  readonly frameLength: number;
  /** Whether the frame found answers `request` (unit id; on TCP the transaction and protocol ids too). */
  answers(request: ModbusRequest): boolean;
  /** Where the frame's PDU lies in `bytes()`. */
  readonly pduStart: number;
  readonly pduEnd: number;
}

/** What both reply framers (RTU, MBAP) offer; the strategies hand their bytes to one. */
interface ReplyFramer {
  push(chunk: Uint8Array): boolean;
  clear(): number;
  next(): FrameEvent;
  bytes(): Uint8Array;
  readonly frameLength: number;
  readonly buffered: number;
}

/** The byte handling both strategies delegate to their reply framer. */
abstract class FramerBacked {
  protected abstract readonly framer: ReplyFramer;

  push(chunk: Uint8Array): boolean {
    return this.framer.push(chunk);
  }

  clear(): number {
    return this.framer.clear();
  }

  next(): FrameEvent {
    return this.framer.next();
  }

  bytes(): Uint8Array {
    return this.framer.bytes();
  }

  get frameLength(): number {
    return this.framer.frameLength;
  }

  get buffered(): number {
    return this.framer.buffered;
  }
}

export class RtuFraming extends FramerBacked implements BusFraming {
  readonly mode = "rtu";
  readonly silenceMs: number;
  /** MFS-8 datasheet: answers within 50 ms; allow at least 100. */
  readonly defaultTimeoutMs = 200;
  readonly lineErrorRecovery = "flush";
  readonly pduStart = 1;
  protected readonly framer = new RtuReplyFramer();

  constructor(
    private readonly baudRate: number,
    private readonly bitsPerChar: number,
  ) {
    super();
    this.silenceMs = silentIntervalMs(baudRate, bitsPerChar);
  }

  prepare(request: ModbusRequest): PreparedRequest {
    return { request, frame: encodeRtuRequest(request), replyLength: rtuReplyLength(request) };
  }

  stamp(): void {}

  unanswered(request: ModbusRequest): boolean {
    // MB serial V1.02 §2.2: a broadcast gets no reply.
    return request.unit === 0;
  }

  wireMs(prep: PreparedRequest): number {
    const bytes = prep.frame.length + prep.replyLength;
    return Math.ceil((bytes * this.bitsPerChar * 1000) / this.baudRate);
  }

  get pduEnd(): number {
    return this.framer.frameLength - 2;
  }

  answers(request: ModbusRequest): boolean {
    return this.framer.bytes()[0] === request.unit;
  }
}

export class TcpFraming extends FramerBacked implements BusFraming {
  readonly mode = "tcp";
  readonly silenceMs = 0;
  readonly defaultTimeoutMs = 1000;
  readonly lineErrorRecovery = "resync";
  readonly pduStart = 7;
  protected readonly framer = new MbapFramer();
  private tid = 0;

  prepare(request: ModbusRequest): PreparedRequest {
    return { request, frame: encodeTcpRequest(request), replyLength: tcpReplyLength(request) };
  }

  stamp(frame: Uint8Array): void {
    this.tid = (this.tid + 1) & 0xffff;
    setTransactionId(frame, this.tid);
  }

  unanswered(): boolean {
    return false;
  }

  wireMs(): number {
    return 0;
  }

  get pduEnd(): number {
    return this.framer.frameLength;
  }

  answers(request: ModbusRequest): boolean {
    const b = this.framer.bytes();
    const tid = (b[0]! << 8) | b[1]!;
    // MB TCP V1.0b §3.1.3 / GK-3 datasheet: a reply whose transaction id is not outstanding is
    // discarded; so is one with another protocol id (not a Modbus frame, only delimited like one).
    return tid === this.tid && isModbusProtocol(b) && b[6] === request.unit;
  }
}
