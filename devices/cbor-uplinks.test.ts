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
