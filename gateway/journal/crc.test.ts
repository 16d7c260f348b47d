import { crc32c } from "@node-rs/crc32";
import { expect, it } from "vitest";
import { crc32cOf } from "./crc.js";

it("CRC-32C matches the standard check value and a native implementation at every length and alignment", () => {
  expect(crc32cOf(Buffer.from("123456789"), 0, 9)).toBe(0xe3069283);
  const buf = Buffer.alloc(70_000);
  let x = 12345;
  for (let i = 0; i < buf.length; i++) buf[i] = x = (x * 1103515245 + 12345) & 0xff;
  for (let len = 0; len <= 600; len++) {
    for (const start of [0, 1, 3, 7]) {
      expect(crc32cOf(buf, start, start + len)).toBe(crc32c(buf.subarray(start, start + len)));
    }
  }
  // A snapshot slice (64 KiB) and beyond.
  for (const len of [65_536, 69_999])
    expect(crc32cOf(buf, 1, 1 + len)).toBe(crc32c(buf.subarray(1, 1 + len)));
});
