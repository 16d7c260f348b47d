import { describe, expect, it } from "vitest";
import {
  allInterpretations,
  decodePoint,
  decodePointsFromBlocks,
  formatInterpretations,
  type PointSpec,
  PointSpecError,
  validatePointSpecs,
  WORD_ORDERS,
} from "./modbus-decode.js";

// The MFS-8 datasheet's example reply from slave 5, registers 0-13.
const SLAVE5 = [
  0x4d38, 0x0203, 0x0001, 0x51a4, 0x0001, 0x00fa, 0x00d7, 0xd70a, 0x3ea3, 0x001f, 0x0005, 0, 0, 0x0042,
];

const MFS8_POINTS: PointSpec[] = [
  { name: "model", address: 0, type: "u16" },
  { name: "uptime", address: 2, type: "u32", wordOrder: "ABCD", unit: "s" },
  { name: "status", address: 4, type: "bitfield", bits: { smoke: 0, heat: 1, callPoint: 2, testMode: 15 } },
  { name: "smoke", address: 5, type: "u16", scale: 0.01, unit: "%/m" },
  { name: "temperature", address: 6, type: "i16", scale: 0.1, unit: "°C" },
  { name: "pressure", address: 7, type: "f32", wordOrder: "CDAB", unit: "MPa" },
  { name: "fault", address: 11, type: "enum", values: { 0: "none", 1: "smoke head dirty" } },
  { name: "events", address: 12, type: "u32" },
];

describe("declarative decoding", () => {
  it("decodes the datasheet's slave-5 reply to its engineering values", () => {
    validatePointSpecs(MFS8_POINTS);
    expect(decodePointsFromBlocks(MFS8_POINTS, [{ address: 0, words: SLAVE5 }])).toEqual({
      model: 0x4d38,
      uptime: 86436,
      status: { smoke: true, heat: false, callPoint: false, testMode: false },
      smoke: 2.5,
      temperature: 21.5,
      pressure: 0.32,
      fault: "none",
      events: 66,
    });
  });

  it("handles negative int16 (winter), offsets, unknown enum values, and a block not at 0", () => {
    const block = { address: 6, words: [0xff9c] };
    expect(decodePoint({ name: "t", address: 6, type: "i16", scale: 0.1 }, block)).toBe(-10);
    expect(decodePoint({ name: "t", address: 6, type: "u16", offset: -65000 }, block)).toBe(436);
    expect(decodePoint({ name: "e", address: 6, type: "enum", values: { 0: "off" } }, block)).toBe(
      "unknown(65436)",
    );
    expect(() => decodePoint({ name: "x", address: 7, type: "u16" }, block)).toThrow(PointSpecError);
  });

  it("reads the same 32-bit value in each word order", () => {
    const wire: Record<string, number[]> = {
      ABCD: [0x1234, 0x5678],
      CDAB: [0x5678, 0x1234],
      BADC: [0x3412, 0x7856],
      DCBA: [0x7856, 0x3412],
    };
    for (const order of WORD_ORDERS) {
      const block = { address: 0, words: wire[order]! };
      expect(decodePoint({ name: "v", address: 0, type: "u32", wordOrder: order }, block)).toBe(0x12345678);
    }
    expect(decodePoint({ name: "v", address: 0, type: "i32" }, { address: 0, words: [0xffff, 0xfffe] })).toBe(
      -2,
    );
  });

  it("decodes across several blocks", () => {
    const v = decodePointsFromBlocks(
      [
        { name: "a", address: 1, type: "u16" },
        { name: "b", address: 100, type: "u16" },
      ],
      [
        { address: 0, words: [5, 6] },
        { address: 100, words: [7] },
      ],
    );
    expect(v).toEqual({ a: 6, b: 7 });
  });

  it("refuses malformed specs at load time", () => {
    expect(() => validatePointSpecs([{ name: "a", address: 0, type: "bitfield" }])).toThrow(/needs bits/);
    expect(() => validatePointSpecs([{ name: "a", address: 0, type: "u16", wordOrder: "CDAB" }])).toThrow(
      /32-bit/,
    );
    expect(() =>
      validatePointSpecs([
        { name: "a", address: 0, type: "u16" },
        { name: "a", address: 1, type: "u16" },
      ]),
    ).toThrow(/duplicate/);
    expect(() =>
      validatePointSpecs([{ name: "a", address: 0, type: "enum", values: {}, scale: 2 }]),
    ).toThrow();
  });
});

describe("every interpretation (linli modbus read)", () => {
  it("shows the pressure registers in every word order; only CDAB gives 0.32", () => {
    const it = allInterpretations([0xd70a, 0x3ea3], 7);
    expect(it.words.map((w) => [w.address, w.u16, w.i16])).toEqual([
      [7, 0xd70a, 0xd70a - 0x10000],
      [8, 0x3ea3, 0x3ea3],
    ]);
    const f32 = Object.fromEntries(it.pairs.map((p) => [p.order, p.f32]));
    expect(f32.CDAB).toBeCloseTo(0.32, 6);
    expect(Math.abs(f32.ABCD!)).not.toBeCloseTo(0.32, 2);
    expect(it.pairs.find((p) => p.order === "ABCD")?.u32).toBe(0xd70a3ea3);
  });

  it("formats a table with one row per register and one per pair and order", () => {
    const text = formatInterpretations([0xd70a, 0x3ea3], 7);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(/address\s+hex\s+u16\s+i16/);
    expect(lines[1]).toMatch(/7\s+0xD70A\s+55050\s+-10486\s+1101 0111 0000 1010/);
    expect(text).toMatch(/7-8\s+CDAB\s+1050924810\s+1050924810\s+0\.32/);
    expect(lines.filter((l) => /^\s*7-8/.test(l))).toHaveLength(4);
  });
});
