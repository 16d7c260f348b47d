import { Encoder, Tag } from "cbor-x";
import { describe, expect, it } from "vitest";
import { decodePayload } from "../protocols/index.js";
import { type Ds10Sample, ds10 } from "./ds10.js";
import { type Ec200Sample, ec200 } from "./ec200.js";
import { isRejection } from "./profile.js";

// Datasheets: firmware 2.x sends CBOR (RFC 8949) with the JSON field names; `ts` is a uint64.
const cbor = new Encoder({ variableMapSize: true, useRecords: false });

describe("CBOR uplinks with a tagged field (RFC 8949 §3.4)", () => {
  it("a press whose ts is tag 1 holding a uint64 is decoded, not refused as malformed; the press stands, ts is dropped", () => {
    const payload = Buffer.from(
      cbor.encode({
        t: "evt",
        seq: 1042,
        ts: new Tag(1763798400123n, 1), // epoch date, a uint64 content (0xC1 0x1B ...)
        evt: "press",
        bat: 87,
        rssi: -71,
      }),
    );
    expect(payload[0]).toBe(0xa6);
    const decoded = decodePayload(payload);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const s = ec200.parse(decoded.value);
    expect(isRejection(s)).toBe(false);
    const sample = s as Ec200Sample;
    expect(sample.evt).toBe("press");
    expect(sample.ts).toBe(0);
    expect(sample.dropped.map((d) => [d.field, d.reason])).toEqual([["ts", "field-bad-type"]]);
  });

  it("tag 1 keeps cbor-x's reading for a number (a Date), and a door state with it is taken too", () => {
    const withNumber = decodePayload(Buffer.from(cbor.encode({ ts: new Tag(1763798400, 1) })));
    expect(withNumber.ok && (withNumber.value as { ts: unknown }).ts).toEqual(new Date(1763798400000));
    const payload = Buffer.from(
      cbor.encode({
        t: "state",
        seq: 77,
        ts: new Tag(2n ** 63n, 1),
        contact: "open",
        tamper: false,
        bat: 64,
      }),
    );
    const decoded = decodePayload(payload, "application/cbor");
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const s = ds10.parse(decoded.value) as Ds10Sample;
    expect(isRejection(s)).toBe(false);
    expect(s.contact).toBe("open");
    expect(s.dropped.map((d) => d.field)).toEqual(["ts"]);
  });

  it("still refuses CBOR that is not well-formed", () => {
    const r = decodePayload(Buffer.from([0xa1, 0x61, 0x74])); // a map of one pair, cut short
    expect(r).toMatchObject({ ok: false, reason: "malformed" });
  });
});

/** A CBOR text string (short). */
const text = (s: string) => [0x60 + s.length, ...Buffer.from(s)];
/** {t:"evt", seq:<seq bytes>, ts:<ts bytes>, evt:"press", bat:<bat bytes>, rssi:-71} as raw CBOR. */
function press(
  seq: number[],
  bat: number[] = [0x18, 87],
  ts: number[] = [0x1b, 0, 0, 1, 0x9a, 0xa0, 0x57, 0x7c, 0x7b],
) {
  return Buffer.from([
    0xa6,
    ...text("t"),
    ...text("evt"),
    ...text("seq"),
    ...seq,
    ...text("ts"),
    ...ts,
    ...text("evt"),
    ...text("press"),
    ...text("bat"),
    ...bat,
    ...text("rssi"),
    0x38,
    70,
  ]);
}
const SEQ_1042 = [0x19, 0x04, 0x12];

function parsed(payload: Buffer) {
  const d = decodePayload(payload, "application/cbor");
  if (!d.ok) return d.reason;
  const s = ec200.parse(d.value);
  return isRejection(s) ? s.reason : (s as Ec200Sample);
}

describe("CBOR tags other than 1 (RFC 8949 §3.4): decoded by the datasheet's type or refused, never a wrong value", () => {
  it("a bignum (tag 2/3) holding a byte string is its integer; holding anything else is not a number", () => {
    expect(parsed(press([0xc2, 0x42, 0x04, 0x12]))).toMatchObject({ seq: 1042 });
    // Tag 2 around the integer 5, an empty array or a text: cbor-x read them as the bignum 0.
    expect(parsed(press([0xc2, 0x05]))).toBe("bad-field");
    expect(parsed(press([0xc2, 0x80]))).toBe("bad-field");
    expect(parsed(press([0xc3, 0x61, 0x41]))).toBe("bad-field");
    // A side field so written is dropped, the press kept.
    const s = parsed(press(SEQ_1042, [0xc2, 0x05])) as Ec200Sample;
    expect(s.evt).toBe("press");
    expect(s.dropped.map((d) => [d.field, d.reason])).toEqual([["bat", "field-bad-type"]]);
    // A negative bignum is negative: a battery of -88 % is out of range, dropped.
    expect((parsed(press(SEQ_1042, [0xc3, 0x41, 87])) as Ec200Sample).dropped.map((d) => d.reason)).toEqual([
      "field-out-of-range",
    ]);
    // A bignum past uint32 is refused as out of range, not wrapped.
    expect(parsed(press([0xc2, 0x50, ...Array(16).fill(0xff)]))).toBe("out-of-range");
  });

  it("date strings, typed arrays, sets, maps, decimal fractions and unknown tags in a side field are dropped as bad type", () => {
    const sideFields: Record<string, number[]> = {
      "tag 0 date string": [0xc0, ...text("2025-11-22T08:00:00Z")],
      "tag 0 around an integer": [0xc0, 0x01],
      "tag 4 decimal fraction 87.09": [0xc4, 0x82, 0x21, 0x19, 0x22, 0x05],
      "tag 64 uint8 array": [0xd8, 0x40, 0x41, 87],
      "tag 72 sint8 array around an integer": [0xd8, 0x48, 0x05],
      "tag 258 set": [0xd9, 0x01, 0x02, 0x81, 0x01],
      "tag 259 map": [0xd9, 0x01, 0x03, 0xa0],
      "tag 27 constructor": [0xd8, 0x1b, 0x82, ...text("Function"), ...text("return 1")],
      "tag 21 (unknown here)": [0xd5, 0x18, 87],
    };
    for (const [name, bat] of Object.entries(sideFields)) {
      const s = parsed(press(SEQ_1042, bat));
      expect(typeof s === "string" ? s : s.dropped.map((d) => `${d.field} ${d.reason}`), name).toEqual([
        "bat field-bad-type",
      ]);
      expect((s as Ec200Sample).evt, name).toBe("press");
    }
  });

  it("the self-describe tag 55799 changes nothing; CBOR that cbor-x cannot read is refused as malformed, never thrown", () => {
    expect(parsed(press(SEQ_1042, [0xd9, 0xd9, 0xf7, 0x18, 87]))).toMatchObject({ seq: 1042, bat: 87 });
    // A whole message so prefixed: with its content type it is CBOR; by its first byte (0xD9, a
    // 3.1.1 device) it is neither a map nor JSON, as the datasheet's rule says.
    const whole = Buffer.concat([Buffer.from([0xd9, 0xd9, 0xf7]), press(SEQ_1042)]);
    expect(parsed(whole)).toMatchObject({ seq: 1042 });
    expect(decodePayload(whole)).toMatchObject({ ok: false, reason: "unknown-encoding" });
    for (const bat of [
      [0xd8, 0x55, 0x43, 1, 2, 3], // float32 array of 3 bytes
      [0xd8, 0x1d, 0x05], // shared reference to nothing
      [0xd8, 0x69, 0x80], // a cbor-x record definition without its structure
    ])
      expect(parsed(press(SEQ_1042, bat))).toBe("malformed");
  });
});
