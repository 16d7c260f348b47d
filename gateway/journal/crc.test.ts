import { crc32c } from "@node-rs/crc32";
import { expect, it } from "vitest";
import { crc32cOf, crc32cTable } from "./crc.js";

it("the table CRC-32C matches the native one and the standard check value", () => {
  expect(crc32cTable(Buffer.from("123456789"), 0, 9)).toBe(0xe3069283);
  const buf = Buffer.alloc(2000);
  let x = 12345;
  for (let i = 0; i < buf.length; i++) buf[i] = x = (x * 1103515245 + 12345) & 0xff;
  for (let len = 0; len <= 600; len++) {
    for (const start of [0, 1, 3, 7]) {
      const want = crc32c(buf.subarray(start, start + len));
      expect(crc32cTable(buf, start, start + len)).toBe(want);
      expect(crc32cOf(buf, start, start + len)).toBe(want);
    }
  }
});
