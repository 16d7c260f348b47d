import v8 from "node:v8";
import { decode, encode, isNativeAccelerationEnabled } from "cbor-x";
import { describe, expect, it } from "vitest";
import { decodeValue } from "./value.js";

const asLatin1 = (v: unknown): string => Buffer.from(encode(v)).toString("latin1");

describe("decodeValue", () => {
  it("gives back the value put: strings of one and two bytes a character, short and long", () => {
    const value = {
      id: "rmxa0r6bc-4f83b51ced",
      subject: "ec200-000001",
      names: ["王秀英, 3 号楼 2 单元 501", "x".repeat(300)],
      nested: { topic: "linli/site/alerts/p1/EMERGENCY_CALL/ec200-000001", count: 3, at: null },
      bytes: Buffer.from([1, 2, 3]),
      short: "ok",
    };
    const back = decodeValue(asLatin1(value)) as typeof value;
    expect(back).toEqual({ ...value, bytes: expect.anything() });
    expect(Buffer.from(back.bytes)).toEqual(value.bytes);
  });

  it("keeps no part of the record alive through a string kept from it", () => {
    // V8's own test hook: a sliced string (a view into a longer one, which it keeps alive) has a
    // map of its own. The flag must be set before the function using it is compiled.
    v8.setFlagsFromString("--allow-natives-syntax");
    const sameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: string, b: string) => boolean;
    const sliced = "-".repeat(100).slice(1, 30);
    const record = asLatin1({ id: "rmxa0r6bc-4f83b51ced", note: "-".repeat(560) });
    // What cbor-x itself gives with its native string extractor: the id is a slice of a string of
    // the whole record's text.
    const plain = (decode(Buffer.from(record, "latin1")) as { id: string }).id;
    if (isNativeAccelerationEnabled) expect(sameMap(plain, sliced)).toBe(true);
    const kept = (decodeValue(record) as { id: string }).id;
    expect(kept).toBe("rmxa0r6bc-4f83b51ced");
    expect(sameMap(kept, sliced)).toBe(false);
  });
});
