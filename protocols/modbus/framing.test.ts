import { describe, expect, it } from "vitest";
import { appendCrc, crc16, crcOk } from "./crc.js";
import { encodeTcpRequest, MbapFramer, setTransactionId } from "./mbap.js";
import { checkReplyPdu, EXCEPTION_NAMES, exceptionName, type ModbusRequest, validateRequest } from "./pdu.js";
import { encodeRtuRequest, RtuReplyFramer, rtuReplyLength, silentIntervalMs } from "./rtu.js";

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).map((h) => Number.parseInt(h, 16)));
const toHex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0").toUpperCase()).join(" ");

// MFS-8 datasheet, "Example frames".
const READ_14 = "01 03 00 00 00 0E C4 0E";
const REPLY_5 =
  "05 03 1C 4D 38 02 03 00 01 51 A4 00 01 00 FA 00 D7 D7 0A 3E A3 00 1F 00 05 00 00 00 00 00 42 00 CD";
const SILENCE_5 = "05 05 00 00 FF 00 8D BE";
const EXC_5 = "05 83 02 81 30";

describe("CRC-16/MODBUS", () => {
  it("matches the datasheet frames, low byte first", () => {
    expect(crc16(hex("01 03 00 00 00 0E"))).toBe(0x0ec4);
    for (const f of [READ_14, REPLY_5, SILENCE_5, EXC_5]) expect(crcOk(hex(f), 0, hex(f).length)).toBe(true);
    const b = hex("05 83 02 00 00");
    appendCrc(b, 0, 3);
    expect(toHex(b)).toBe(EXC_5);
  });
});

describe("RTU request encoding: datasheet vectors", () => {
  it("read all 14 registers of slave 1", () => {
    expect(toHex(encodeRtuRequest({ fn: 3, unit: 1, address: 0, count: 14 }))).toBe(READ_14);
  });
  it("silence the sounder of slave 5 (coil 0 ON)", () => {
    expect(toHex(encodeRtuRequest({ fn: 5, unit: 5, address: 0, value: true }))).toBe(SILENCE_5);
  });
  it("write single and multiple registers", () => {
    const w6 = encodeRtuRequest({ fn: 6, unit: 1, address: 100, value: 2 });
    expect(toHex(w6.subarray(0, 6))).toBe("01 06 00 64 00 02");
    const w16 = encodeRtuRequest({ fn: 16, unit: 1, address: 100, values: [1, 0x1234] });
    expect(toHex(w16.subarray(0, 11))).toBe("01 10 00 64 00 02 04 00 01 12 34");
    expect(crcOk(w16, 0, w16.length)).toBe(true);
  });
  it("refuses requests outside the spec's ranges", () => {
    expect(() => validateRequest({ fn: 3, unit: 1, address: 0, count: 126 })).toThrow(/125/);
    expect(() => validateRequest({ fn: 3, unit: 1, address: 0, count: 0 })).toThrow();
    expect(() => validateRequest({ fn: 3, unit: 0, address: 0, count: 1 })).toThrow(/broadcast/);
    expect(() => validateRequest({ fn: 16, unit: 1, address: 0, values: new Array(124).fill(0) })).toThrow(
      /123/,
    );
    expect(() => validateRequest({ fn: 6, unit: 1, address: 0, value: 70000 })).toThrow();
  });
});

describe("RTU reply framing", () => {
  const req: ModbusRequest = { fn: 3, unit: 5, address: 0, count: 14 };

  it("decodes the 33-byte slave-5 reply to the datasheet's words", () => {
    const f = new RtuReplyFramer();
    f.push(hex(REPLY_5));
    expect(f.next()).toBe("frame");
    expect(f.frameLength).toBe(33);
    expect(rtuReplyLength(req)).toBe(33);
    const r = checkReplyPdu(req, f.bytes(), 1, f.frameLength - 2);
    expect(r.kind).toBe("ok");
    if (r.kind !== "ok" || !r.words) throw new Error("no words");
    expect(Array.from(r.words)).toEqual([
      0x4d38, 0x0203, 0x0001, 0x51a4, 0x0001, 0x00fa, 0x00d7, 0xd70a, 0x3ea3, 0x001f, 0x0005, 0, 0, 0x0042,
    ]);
  });

  it("frames bytes that arrive one at a time", () => {
    const f = new RtuReplyFramer();
    const bytes = hex(REPLY_5);
    for (let i = 0; i < bytes.length - 1; i++) {
      f.push(bytes.subarray(i, i + 1));
      expect(f.next()).toBe("need-more");
    }
    f.push(bytes.subarray(bytes.length - 1));
    expect(f.next()).toBe("frame");
  });

  it("frames a reply merged with the next one, one at a time", () => {
    const f = new RtuReplyFramer();
    f.push(Uint8Array.from([...hex(EXC_5), ...hex(SILENCE_5), ...hex(REPLY_5)]));
    expect(f.next()).toBe("frame");
    expect(toHex(f.bytes().subarray(0, f.frameLength))).toBe(EXC_5);
    expect(f.next()).toBe("frame");
    expect(toHex(f.bytes().subarray(0, f.frameLength))).toBe(SILENCE_5);
    expect(f.next()).toBe("frame");
    expect(f.frameLength).toBe(33);
    expect(f.next()).toBe("need-more");
    expect(f.buffered).toBe(0);
  });

  it("reports a bad CRC", () => {
    const bad = hex(REPLY_5);
    bad[10] = (bad[10]! ^ 0x01) & 0xff;
    const f = new RtuReplyFramer();
    f.push(bad);
    expect(f.next()).toBe("crc-error");
    expect(f.clear()).toBe(33);
  });

  it("reports a function it cannot frame, and overflow", () => {
    const f = new RtuReplyFramer();
    f.push(hex("05 2B 00"));
    expect(f.next()).toBe("framing-error");
    const g = new RtuReplyFramer();
    expect(g.push(new Uint8Array(600))).toBe(false);
  });

  it("the datasheet exception reply names ILLEGAL_DATA_ADDRESS", () => {
    const f = new RtuReplyFramer();
    f.push(hex(EXC_5));
    expect(f.next()).toBe("frame");
    expect(checkReplyPdu(req, f.bytes(), 1, 3)).toEqual({
      kind: "exception",
      code: 2,
      name: "ILLEGAL_DATA_ADDRESS",
    });
  });

  it("every exception code 0x01-0x0B decodes with its name", () => {
    const names: string[] = [];
    for (let code = 1; code <= 0x0b; code++) {
      const frame = Uint8Array.of(5, 0x83, code, 0, 0);
      appendCrc(frame, 0, 3);
      const f = new RtuReplyFramer();
      f.push(frame);
      expect(f.next()).toBe("frame");
      const r = checkReplyPdu(req, f.bytes(), 1, 3);
      if (r.kind !== "exception") throw new Error("not an exception");
      expect(r.code).toBe(code);
      names.push(r.name);
    }
    expect(names).toEqual([
      "ILLEGAL_FUNCTION",
      "ILLEGAL_DATA_ADDRESS",
      "ILLEGAL_DATA_VALUE",
      "SERVER_DEVICE_FAILURE",
      "ACKNOWLEDGE",
      "SERVER_DEVICE_BUSY",
      "NEGATIVE_ACKNOWLEDGE",
      "MEMORY_PARITY_ERROR",
      "EXCEPTION_0x09",
      "GATEWAY_PATH_UNAVAILABLE",
      "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
    ]);
    expect(Object.keys(EXCEPTION_NAMES)).toHaveLength(10);
    expect(exceptionName(0x0b)).toBe("GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND");
  });

  it("treats replies for other requests as mismatches (function, byte count, echo)", () => {
    expect(checkReplyPdu(req, hex("04 02 00 01"), 0, 4).kind).toBe("mismatch");
    expect(checkReplyPdu(req, hex("03 02 00 01"), 0, 4)).toEqual({
      kind: "mismatch",
      reason: "byte count 2",
    });
    const coil: ModbusRequest = { fn: 5, unit: 5, address: 0, value: true };
    expect(checkReplyPdu(coil, hex("05 00 00 FF 00"), 0, 5).kind).toBe("ok");
    expect(checkReplyPdu(coil, hex("05 00 01 FF 00"), 0, 5).kind).toBe("mismatch");
  });
});

describe("silent interval t3.5", () => {
  it("is 3.5 characters up to 19200 baud and 1.75 ms above", () => {
    expect(silentIntervalMs(9600, 11)).toBeCloseTo(4.0104, 3);
    expect(silentIntervalMs(19200, 11)).toBeCloseTo(2.0052, 3);
    expect(silentIntervalMs(38400, 11)).toBe(1.75);
    expect(silentIntervalMs(115200, 10)).toBe(1.75);
  });
});

describe("MBAP framing", () => {
  it("encodes the GK-3 input register read with a patched transaction id", () => {
    const f = encodeTcpRequest({ fn: 4, unit: 1, address: 0, count: 10 }, 0x0102);
    expect(toHex(f)).toBe("01 02 00 00 00 06 01 04 00 00 00 0A");
    setTransactionId(f, 0xbeef);
    expect(toHex(f.subarray(0, 2))).toBe("BE EF");
  });

  it("frames split and merged replies by the length field; a length that delimits nothing is a framing error", () => {
    const a = hex("00 01 00 00 00 05 01 04 02 00 02");
    const b = hex("00 02 00 00 00 03 01 84 02");
    const f = new MbapFramer();
    for (const byte of a) f.push(Uint8Array.of(byte));
    expect(f.next()).toBe("frame");
    f.push(Uint8Array.from([...b, ...a]));
    expect(f.next()).toBe("frame");
    expect(toHex(f.bytes().subarray(0, f.frameLength))).toBe(toHex(b));
    expect(f.next()).toBe("frame");
    expect(f.next()).toBe("need-more");
    // Another protocol id: still delimited by its length (the bus discards it), the next frame follows.
    const g = new MbapFramer();
    g.push(Uint8Array.from([...hex("00 01 00 07 00 05 01 04 02 00 02"), ...a]));
    expect(g.next()).toBe("frame");
    expect(g.frameLength).toBe(11);
    expect(g.next()).toBe("frame");
    expect(toHex(g.bytes().subarray(0, g.frameLength))).toBe(toHex(a));
    for (const length of ["00 00", "00 01", "00 FF", "FF FF"]) {
      const h = new MbapFramer();
      h.push(hex(`00 01 00 00 ${length} 01 04 02 00 02`));
      expect(h.next(), length).toBe("framing-error");
    }
  });
});
