import { readFileSync } from "node:fs";
import { decode as cborDecode, encode as cborEncode } from "cbor-x";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { LANE_TELEMETRY } from "../../../core/index.js";
import {
  compileProfile,
  declaredProfileSchema,
  isRejection,
  type MqttDeviceProfile,
  PROFILES,
} from "../../../devices/index.js";
import { decodePayload } from "../../../protocols/index.js";
import { NOT_SCALAR, readTopLevel, type TopLevelValue } from "../../../protocols/threads.js";
import { seededRandom } from "../../../sim/mqtt/random.js";
import { TelemetryPeek } from "./telemetry-peek.js";

const mqttProfiles = PROFILES.filter(
  (p): p is (typeof PROFILES)[number] & MqttDeviceProfile => p.transport === "mqtt",
);

/** Valid messages of each MQTT model (datasheets' examples), the starting points of the mutations. */
const SEEDS: Record<string, Record<string, unknown>[]> = {
  ec200: [
    { t: "hb", seq: 7, ts: 1763798400123, bat: 87, rssi: -71 },
    { t: "hb", seq: 8, ts: 1763798400123, bat: 87, rssi: -71, ackd: "a-1" },
    { t: "evt", seq: 9, ts: 1763798400123, evt: "press", bat: 87, rssi: -71 },
    { t: "evt", seq: 10, ts: 0, evt: "low_battery", bat: 12, rssi: -90 },
  ],
  ds10: [
    { t: "hb", seq: 1, ts: 1763798400123, contact: "closed", tamper: false, bat: 90 },
    { t: "state", seq: 2, ts: 1763798400123, contact: "open", tamper: false, bat: 90 },
    { t: "hb", seq: 3, ts: 1763798400123, contact: "closed", tamper: true, bat: 90 },
  ],
  gd2: [
    { t: "hb", seq: 1, ts: 1763798400123, lel: 0.4, valve: "open", mains: true, fault: 0 },
    { t: "hb", seq: 2, ts: 1763798400123, lel: 5, valve: "open", mains: true, fault: 0 },
    { t: "alarm", seq: 3, ts: 1763798400123, lel: 31.5, level: "high", valve: "closed" },
    { t: "valve", seq: 4, ts: 1763798400123, valve: "closed", cause: "manual" },
    { t: "reply", seq: 5, ts: 1763798400123, id: "c1", cmd: "self_test", result: "ok" },
  ],
};

const VALUES: unknown[] = [
  "hb",
  "evt",
  "state",
  "alarm",
  "valve",
  "reply",
  "press",
  "fall",
  "open",
  "closed",
  "moving",
  "fault",
  "high",
  "",
  true,
  false,
  null,
  0,
  -0,
  1,
  2,
  4,
  4.99,
  4.999999,
  5,
  5.01,
  30,
  -1,
  100,
  101,
  Number.NaN,
  [],
  ["hb"],
  { t: "hb" },
  undefined,
];
const KEYS = [
  "t",
  "seq",
  "ts",
  "evt",
  "bat",
  "rssi",
  "contact",
  "tamper",
  "lel",
  "valve",
  "mains",
  "fault",
  "x",
];

function encodings(o: Record<string, unknown>): Buffer[] {
  const json = JSON.stringify(o);
  return [Buffer.from(json), Buffer.from(JSON.stringify(o, null, 2)), Buffer.from(cborEncode(o))];
}

describe("TelemetryPeek: what the worker calls telemetry is telemetry to the gateway", () => {
  for (const profile of mqttProfiles) {
    it(`${profile.model}: sound over 20,000 mutated messages, and it knows its heartbeat`, () => {
      const tests = profile.telemetryWhen;
      expect(tests, `${profile.model} declares telemetryWhen`).toBeDefined();
      const peek = new TelemetryPeek(tests ?? []);
      const rnd = seededRandom(0x5eed + profile.model.length);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
      const seeds = SEEDS[profile.model] ?? [];
      let telemetry = 0;
      let other = 0;
      for (let i = 0; i < 20_000; i++) {
        const o: Record<string, unknown> = { ...pick(seeds) };
        const changes = 1 + Math.floor(rnd() * 3);
        for (let k = 0; k < changes; k++) {
          const key = pick(KEYS);
          const v = pick(VALUES);
          if (v === undefined) delete o[key];
          else o[key] = v;
        }
        for (const payload of encodings(o)) {
          if (!peek.isTelemetry(payload, undefined)) {
            other++;
            continue;
          }
          telemetry++;
          const decoded = decodePayload(payload);
          if (!decoded.ok) continue;
          const sample = profile.parse(decoded.value);
          if (isRejection(sample)) continue;
          expect(profile.lane(sample as never), `${profile.model} ${payload.toString("hex")}`).toBe(
            LANE_TELEMETRY,
          );
        }
      }
      // Not vacuous: both answers were given many times.
      expect(telemetry).toBeGreaterThan(1000);
      expect(other).toBeGreaterThan(1000);
      const heartbeat = seeds[0] as Record<string, unknown>;
      for (const payload of encodings(heartbeat)) expect(peek.isTelemetry(payload, undefined)).toBe(true);
      for (const s of seeds.slice(1))
        for (const payload of encodings(s)) {
          const d = decodePayload(payload);
          const lane = d.ok ? profile.lane(profile.parse(d.value) as never) : null;
          expect(peek.isTelemetry(payload, undefined)).toBe(lane === LANE_TELEMETRY);
        }
    });
  }

  it("a declared model (examples/profiles/template-mqtt.yaml): its derived telemetryWhen is sound, in JSON and never in CBOR", () => {
    const template = declaredProfileSchema.parse(
      parseYaml(readFileSync("examples/profiles/template-mqtt.yaml", "utf8")),
    );
    // BATTERY_LOW is a threshold: its lane depends on the device's setting and last reading, which
    // no test on the payload alone can know, so the model has no telemetryWhen.
    expect((compileProfile(template) as MqttDeviceProfile).telemetryWhen).toBeUndefined();
    const doc = { ...template, alarms: template.alarms.filter((a) => a.code !== "BATTERY_LOW") };
    const profile = compileProfile(doc) as MqttDeviceProfile;
    // FIRE_ALARM (alarm = true), TAMPER (tamper = true) and FAULT (state = fault).
    expect(profile.telemetryWhen).toEqual([
      { field: "data.alarm", notOneOf: [true] },
      { field: "tamper", notOneOf: [true] },
      { field: "state", notOneOf: ["fault"] },
    ]);
    const peek = new TelemetryPeek(profile.telemetryWhen ?? []);
    const base = { seq: 1, ts: 1763798400123, data: { smoke: 0.1, alarm: false }, bat: 80, state: "ok" };
    const rnd = seededRandom(0xdec1);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const paths = ["data.smoke", "data.alarm", "data", "bat", "state", "tamper", "seq", "x"];
    const values: unknown[] = [
      true,
      false,
      null,
      0,
      1,
      3,
      50,
      101,
      "ok",
      "fault",
      "true",
      [],
      [true],
      { alarm: true },
      undefined,
    ];
    let telemetry = 0;
    let other = 0;
    for (let i = 0; i < 20_000; i++) {
      const o = structuredClone(base) as Record<string, unknown>;
      for (let k = 0, n = 1 + Math.floor(rnd() * 3); k < n; k++) {
        const [head, tail] = pick(paths).split(".") as [string, string | undefined];
        const v = pick(values);
        const target = tail === undefined ? o : (o[head] as Record<string, unknown> | undefined);
        if (typeof target !== "object" || target === null || Array.isArray(target)) continue;
        const key = tail ?? head;
        if (v === undefined) delete target[key];
        else target[key] = structuredClone(v);
      }
      const json = Buffer.from(JSON.stringify(o));
      expect(peek.isTelemetry(Buffer.from(cborEncode(o)), undefined)).toBe(false);
      if (!peek.isTelemetry(json, undefined)) {
        other++;
        continue;
      }
      telemetry++;
      const d = decodePayload(json);
      if (!d.ok) continue;
      const sample = profile.parse(d.value);
      if (isRejection(sample)) continue;
      expect(profile.lane(sample as never), json.toString()).toBe(LANE_TELEMETRY);
    }
    expect(telemetry).toBeGreaterThan(1000);
    expect(other).toBeGreaterThan(1000);
    expect(peek.isTelemetry(Buffer.from(JSON.stringify(base)), undefined)).toBe(true);
  });

  it("says no for an unknown encoding or a malformed payload", () => {
    const peek = new TelemetryPeek([{ field: "t", oneOf: ["hb"] }]);
    expect(peek.isTelemetry(Buffer.from('{"t":"hb"'), undefined)).toBe(false);
    expect(peek.isTelemetry(Buffer.from('["hb"]'), "application/json")).toBe(false);
    expect(peek.isTelemetry(Buffer.from("hb"), undefined)).toBe(false);
    expect(peek.isTelemetry(Buffer.from('{"t":"hb"}'), "application/cbor")).toBe(false);
    expect(peek.isTelemetry(Buffer.from(cborEncode({ t: "hb" })), "application/cbor")).toBe(true);
  });
});

describe("readTopLevel (CBOR) agrees with cbor-x", () => {
  const fields = ["a", "b", "c"];
  const out: TopLevelValue[] = [];
  const read = (bytes: Buffer) => (readTopLevel(bytes, "cbor", fields, out) ? [...out] : null);

  it("reads scalars of every width, and marks what is not one", () => {
    const values: unknown[] = [
      0,
      23,
      24,
      255,
      256,
      65_535,
      65_536,
      2 ** 32,
      2 ** 53 - 1,
      -1,
      -25,
      -(2 ** 40),
      1.5,
      0.1,
      -0,
      "héllo",
      "",
      true,
      false,
      null,
      new Date(0),
      [1, [2, { x: 3 }]],
      { nested: { deeper: [true] } },
      new Uint8Array([1, 2, 3]),
    ];
    for (const v of values) {
      const bytes = Buffer.from(cborEncode({ z: [1, 2], a: v, b: "x" }));
      const decoded = cborDecode(bytes) as Record<string, unknown>;
      const scalar =
        decoded.a === null || ["string", "number", "boolean"].includes(typeof decoded.a)
          ? decoded.a
          : NOT_SCALAR;
      expect(read(bytes), String(v)).toEqual([scalar, "x", undefined]);
    }
  });

  it("reads half-precision floats (RFC 8949 Appendix D)", () => {
    // {"a": 1.0, "b": -2.0, "c": 2^-24 (the smallest subnormal)} in half precision
    const bytes = Buffer.from("a36161f93c006162f9c0006163f90001", "hex");
    expect(read(bytes)).toEqual([1, -2, 2 ** -24]);
    expect(cborDecode(bytes)).toEqual({ a: 1, b: -2, c: 2 ** -24 });
  });

  it("takes the last of duplicate keys, as cbor-x does", () => {
    const bytes = Buffer.from("a2616101616102", "hex"); // {"a": 1, "a": 2}
    expect(read(bytes)?.[0]).toBe((cborDecode(bytes) as { a: number }).a);
  });

  it("refuses what it does not take whole", () => {
    const whole = Buffer.from(cborEncode({ a: 1 }));
    expect(read(whole)).toEqual([1, undefined, undefined]);
    for (let cut = 1; cut < whole.length; cut++) expect(read(whole.subarray(0, cut))).toBeNull();
    expect(read(Buffer.concat([whole, Buffer.from([0])]))).toBeNull(); // trailing bytes
    expect(read(Buffer.from("bf616101ff", "hex"))).toBeNull(); // indefinite-length map
    expect(read(Buffer.from("a1016161", "hex"))).toBeNull(); // integer key
    expect(read(Buffer.from("a161617f6161ff", "hex"))).toBeNull(); // indefinite-length text
    expect(read(Buffer.from("a16161fb", "hex"))).toBeNull(); // truncated double
    expect(read(Buffer.from("83010203", "hex"))).toBeNull(); // an array at the top
    const deep = Buffer.from(`a16178${"81".repeat(40)}01`, "hex"); // {"x": [[[...1]]]} beyond the depth
    expect(read(deep)).toBeNull();
  });
});
