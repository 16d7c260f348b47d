/**
 * Modbus replies as the master reads them (protocols/modbus): the RTU reply
 * framer and the MBAP framer fed byte streams in arbitrary chunks, each frame
 * then checked against the outstanding request by the PDU decoder, following
 * the bus's loop (bus.ts parseRtu/parseTcp): an RTU error clears the buffer
 * and reading goes on (the bus flushes the line); an MBAP framing error or
 * overflow drops what is held and reading goes on (the bus resynchronises on
 * the next header), a second before any well-framed frame ends the stream
 * (the bus drops the connection). The device side
 * (reply frames, CRC) is written here and in sim/, never borrowed from protocols/.
 */
import * as fc from "fast-check";
import { MbapFramer } from "../protocols/modbus/mbap.js";
import { checkReplyPdu, type ModbusRequest, type ReplyCheck } from "../protocols/modbus/pdu.js";
import { RTU_MAX_ADU, RtuReplyFramer } from "../protocols/modbus/rtu.js";
import { simCrc16 } from "../sim/modbus/crc.js";
import { anyBytes, chunked, mutated } from "./bytes.js";
import { ACCEPTED, type Decoder, type FuzzTarget, invariant, type Outcome, refused } from "./target.js";

// ---- requests the gateway sends (MB app V1.1b3 §6.3-§6.12 ranges) -------------------------------------

const read = (fn: 3 | 4) =>
  fc
    .record({ unit: fc.integer({ min: 1, max: 247 }), address: fc.integer({ min: 0, max: 0xffff }) })
    .chain(({ unit, address }) =>
      fc
        .integer({ min: 1, max: Math.min(125, 0x10000 - address) })
        .map((count): ModbusRequest => ({ fn, unit, address, count })),
    );

const request: fc.Arbitrary<ModbusRequest> = fc.oneof(
  { arbitrary: read(3), weight: 4 },
  { arbitrary: read(4), weight: 3 },
  {
    arbitrary: fc.record({
      fn: fc.constant(5 as const),
      unit: fc.integer({ min: 1, max: 247 }),
      address: fc.integer({ min: 0, max: 0xffff }),
      value: fc.boolean(),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      fn: fc.constant(6 as const),
      unit: fc.integer({ min: 1, max: 247 }),
      address: fc.integer({ min: 0, max: 0xffff }),
      value: fc.integer({ min: 0, max: 0xffff }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc
      .record({ unit: fc.integer({ min: 1, max: 247 }), address: fc.integer({ min: 0, max: 0xff00 }) })
      .chain(({ unit, address }) =>
        fc
          .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 123 })
          .map((values): ModbusRequest => ({ fn: 0x10, unit, address, values })),
      ),
    weight: 1,
  },
);

// ---- replies, as a device writes them ----------------------------------------------------------------

/** The normal reply PDU to req (register values for reads, the echo for writes). */
function replyPdu(req: ModbusRequest, words: readonly number[]): number[] {
  switch (req.fn) {
    case 3:
    case 4:
      return [req.fn, 2 * words.length, ...words.flatMap((w) => [w >>> 8, w & 0xff])];
    case 5:
      return [5, req.address >>> 8, req.address & 0xff, req.value ? 0xff : 0, 0];
    case 6:
      return [6, req.address >>> 8, req.address & 0xff, req.value >>> 8, req.value & 0xff];
    case 0x10:
      return [0x10, req.address >>> 8, req.address & 0xff, req.values.length >>> 8, req.values.length & 0xff];
  }
}

function rtuFrame(unit: number, pdu: readonly number[]): Uint8Array {
  const out = new Uint8Array(pdu.length + 3);
  out[0] = unit;
  out.set(pdu, 1);
  const crc = simCrc16(out, 0, pdu.length + 1);
  out[pdu.length + 1] = crc & 0xff; // CRC low byte first (MB serial V1.02 §2.5.1.2)
  out[pdu.length + 2] = crc >>> 8;
  return out;
}

function mbapFrame(
  tid: number,
  unit: number,
  pdu: readonly number[],
  protocol = 0,
  length?: number,
): Uint8Array {
  const n = length ?? pdu.length + 1;
  return Uint8Array.from([
    tid >>> 8,
    tid & 0xff,
    protocol >>> 8,
    protocol & 0xff,
    n >>> 8,
    n & 0xff,
    unit,
    ...pdu,
  ]);
}

/** What a correct reply carries: the register values, or an exception code. */
type Expect = { words: number[] } | { exception: number };

const u16s = (n: number) => fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: n, maxLength: n });
const exceptionCode = fc.oneof(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 0, max: 255 }));

/** A correct reply PDU to req and what it must decode to. */
function goodReply(req: ModbusRequest): fc.Arbitrary<{ pdu: number[]; expect: Expect }> {
  const normal =
    req.fn === 3 || req.fn === 4
      ? u16s(req.count).map((words) => ({ pdu: replyPdu(req, words), expect: { words } as Expect }))
      : fc.constant({ pdu: replyPdu(req, []), expect: { words: [] } as Expect });
  const exception = exceptionCode.map((code) => ({
    pdu: [req.fn | 0x80, code],
    expect: { exception: code } as Expect,
  }));
  return fc.oneof({ arbitrary: normal, weight: 4 }, { arbitrary: exception, weight: 1 });
}

/** Some PDU: a reply to req, to another request, or junk. */
function anyPdu(req: ModbusRequest): fc.Arbitrary<number[]> {
  return fc.oneof(
    { arbitrary: goodReply(req).map((r) => r.pdu), weight: 3 },
    {
      arbitrary: request.map((other) =>
        replyPdu(other, other.fn === 3 || other.fn === 4 ? new Array(other.count).fill(0x1234) : []),
      ),
      weight: 2,
    },
    { arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 260 }), weight: 2 },
    {
      arbitrary: fc
        .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), anyBytes(40))
        .map(([fn, n, rest]) => [fn, n, ...rest]),
      weight: 2,
    },
  );
}

// ---- RTU -----------------------------------------------------------------------------------------------

export interface StreamInput {
  req: ModbusRequest;
  /** MBAP only: the outstanding transaction id. */
  tid: number;
  chunks: Uint8Array[];
  /** Valid inputs: what the reply must decode to. */
  expect?: Expect;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function rtuFrameFor(req: ModbusRequest): fc.Arbitrary<Uint8Array> {
  const good = goodReply(req).map((r) => rtuFrame(req.unit, r.pdu));
  return fc.oneof(
    { arbitrary: good, weight: 3 },
    { arbitrary: mutated(good), weight: 4 },
    {
      arbitrary: fc
        .tuple(fc.integer({ min: 0, max: 255 }), anyPdu(req))
        .map(([unit, pdu]) => rtuFrame(unit, pdu)),
      weight: 3,
    },
    { arbitrary: anyBytes(300), weight: 1 },
  );
}

const tid = fc.integer({ min: 0, max: 0xffff });

const rtuHostile: fc.Arbitrary<StreamInput> = fc.tuple(request, tid).chain(([req, t]) =>
  fc
    .array(rtuFrameFor(req), { minLength: 1, maxLength: 4 })
    .chain((frames) => chunked(concat(frames)))
    .map((chunks) => ({ req, tid: t, chunks })),
);

const rtuValid: fc.Arbitrary<StreamInput> = fc
  .tuple(request, tid)
  .chain(([req, t]) =>
    goodReply(req).chain(({ pdu, expect }) =>
      chunked(rtuFrame(req.unit, pdu)).map((chunks) => ({ req, tid: t, chunks, expect })),
    ),
  );

/** "function 0x5" -> "function", "byte count 7" -> "byte-count": a bounded set of reasons. */
function mismatchReason(check: ReplyCheck & { kind: "mismatch" }): string {
  return `mismatch:${check.reason.replace(/ (0x[0-9a-f]+|\d+)$/, "").replace(/ /g, "-")}`;
}

/** Tracks a stream's outcome: accepted once a reply matched, else the first refusal. */
class StreamOutcome {
  matched: Expect | null = null;
  firstRefusal: string | null = null;
  note(reason: string): void {
    this.firstRefusal ??= reason;
  }
  match(req: ModbusRequest, check: ReplyCheck): void {
    if (check.kind === "mismatch") {
      this.note(mismatchReason(check));
      return;
    }
    if (check.kind === "exception") {
      invariant(
        Number.isInteger(check.code) && check.code >= 0 && check.code <= 255,
        "exception code not a byte",
      );
      this.matched ??= { exception: check.code };
      return;
    }
    const words = check.words ? Array.from(check.words) : [];
    if (req.fn === 3 || req.fn === 4)
      invariant(words.length === req.count, `${words.length} words for ${req.count}`);
    this.matched ??= { words };
  }
  result(expect: Expect | undefined, leftover: number): Outcome {
    if (expect) {
      invariant(
        this.matched !== null,
        `a correct reply was not taken (${this.firstRefusal ?? "incomplete"})`,
      );
      invariant(
        JSON.stringify(this.matched) === JSON.stringify(expect),
        `decoded ${JSON.stringify(this.matched)}, sent ${JSON.stringify(expect)}`,
      );
    }
    if (this.matched) return ACCEPTED;
    return refused(this.firstRefusal ?? (leftover > 0 ? "incomplete" : "no-frame"));
  }
}

class RtuDecoder implements Decoder<StreamInput> {
  run(input: StreamInput): Outcome {
    const { req } = input;
    const framer = new RtuReplyFramer();
    const out = new StreamOutcome();
    for (const chunk of input.chunks) {
      if (!framer.push(chunk)) {
        out.note("overflow");
        framer.clear();
        continue;
      }
      invariant(framer.buffered <= 2 * RTU_MAX_ADU, "framer holds more than its bound");
      for (;;) {
        const ev = framer.next();
        if (ev === "need-more") break;
        if (ev === "crc-error" || ev === "framing-error") {
          out.note(ev);
          framer.clear();
          break;
        }
        const len = framer.frameLength;
        invariant(len >= 4 && len <= RTU_MAX_ADU, `frame of ${len} bytes`);
        const b = framer.bytes();
        if (b[0] !== req.unit) {
          out.note("other-unit");
          continue;
        }
        out.match(req, checkReplyPdu(req, b, 1, len - 2));
      }
    }
    return out.result(input.expect, framer.buffered);
  }
  reset(): void {}
}

// ---- MBAP ----------------------------------------------------------------------------------------------

function mbapFrameFor(req: ModbusRequest, t: number): fc.Arbitrary<Uint8Array> {
  const good = goodReply(req).map((r) => mbapFrame(t, req.unit, r.pdu));
  return fc.oneof(
    { arbitrary: good, weight: 3 },
    { arbitrary: mutated(good), weight: 3 },
    // Another transaction, another unit, a wrong protocol id or a length that lies.
    {
      arbitrary: fc
        .record({
          tid: fc.oneof(fc.constant(t), tid),
          unit: fc.oneof(fc.constant(req.unit), fc.integer({ min: 0, max: 255 })),
          pdu: anyPdu(req),
          protocol: fc.oneof(
            { arbitrary: fc.constant(0), weight: 4 },
            { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 },
          ),
          length: fc.option(fc.integer({ min: 0, max: 0xffff }), { freq: 4 }),
        })
        .map((f) => mbapFrame(f.tid, f.unit, f.pdu, f.protocol, f.length ?? undefined)),
      weight: 3,
    },
    { arbitrary: anyBytes(300), weight: 1 },
  );
}

const mbapHostile: fc.Arbitrary<StreamInput> = fc.tuple(request, tid).chain(([req, t]) =>
  fc
    .array(mbapFrameFor(req, t), { minLength: 1, maxLength: 4 })
    .chain((frames) => chunked(concat(frames)))
    .map((chunks) => ({ req, tid: t, chunks })),
);

const mbapValid: fc.Arbitrary<StreamInput> = fc
  .tuple(request, tid)
  .chain(([req, t]) =>
    goodReply(req).chain(({ pdu, expect }) =>
      chunked(mbapFrame(t, req.unit, pdu)).map((chunks) => ({ req, tid: t, chunks, expect })),
    ),
  );

class MbapDecoder implements Decoder<StreamInput> {
  run(input: StreamInput): Outcome {
    const { req } = input;
    const framer = new MbapFramer();
    const out = new StreamOutcome();
    let unsynced = false;
    stream: for (const chunk of input.chunks) {
      // Overflow and framing errors drop what is held; a second before a well-framed frame ends the stream.
      if (!framer.push(chunk)) {
        out.note("overflow");
        framer.clear();
        if (unsynced) break;
        unsynced = true;
        continue;
      }
      for (;;) {
        const ev = framer.next();
        if (ev === "need-more") break;
        if (ev === "framing-error") {
          out.note("framing-error");
          framer.clear();
          if (unsynced) break stream;
          unsynced = true;
          break;
        }
        unsynced = false;
        const len = framer.frameLength;
        invariant(len >= 8 && len <= 260, `frame of ${len} bytes`);
        const b = framer.bytes();
        if (b[2] !== 0 || b[3] !== 0) {
          out.note("other-protocol");
          continue;
        }
        if (((b[0] as number) << 8) + (b[1] as number) !== input.tid) {
          out.note("other-transaction");
          continue;
        }
        if (b[6] !== req.unit) {
          out.note("other-unit");
          continue;
        }
        out.match(req, checkReplyPdu(req, b, 7, len));
      }
    }
    return out.result(input.expect, framer.buffered);
  }
  reset(): void {}
}

// ---- the PDU decoder alone -----------------------------------------------------------------------------

export interface PduInput {
  req: ModbusRequest;
  /** The PDU sits at [start, end) of bytes, as inside a frame buffer. */
  bytes: Uint8Array;
  start: number;
  end: number;
  expect?: Expect;
}

function placed(pdu: readonly number[]): fc.Arbitrary<{ bytes: Uint8Array; start: number; end: number }> {
  return fc.tuple(anyBytes(8), anyBytes(8)).map(([before, after]) => ({
    bytes: Uint8Array.from([...before, ...pdu, ...after]),
    start: before.length,
    end: before.length + pdu.length,
  }));
}

const pduHostile: fc.Arbitrary<PduInput> = request.chain((req) =>
  fc
    .oneof(
      anyPdu(req),
      mutated(anyPdu(req).map((p) => Uint8Array.from(p))).map((b) => Array.from(b)),
    )
    .chain(placed)
    .map((p) => ({ req, ...p })),
);

const pduValid: fc.Arbitrary<PduInput> = request.chain((req) =>
  goodReply(req).chain(({ pdu, expect }) => placed(pdu).map((p) => ({ req, ...p, expect }))),
);

class PduDecoder implements Decoder<PduInput> {
  run(input: PduInput): Outcome {
    const out = new StreamOutcome();
    out.match(input.req, checkReplyPdu(input.req, input.bytes, input.start, input.end));
    return out.result(input.expect, 0);
  }
  reset(): void {}
}

export const modbusTargets: FuzzTarget<StreamInput | PduInput>[] = [
  { name: "modbus-rtu", hostile: rtuHostile, valid: rtuValid, create: () => new RtuDecoder() },
  { name: "modbus-mbap", hostile: mbapHostile, valid: mbapValid, create: () => new MbapDecoder() },
  { name: "modbus-pdu", hostile: pduHostile, valid: pduValid, create: () => new PduDecoder() },
] as FuzzTarget<StreamInput | PduInput>[];
