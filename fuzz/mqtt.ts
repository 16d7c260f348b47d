/**
 * EC-200 and DS-10 uplinks, JSON and CBOR, through the gateway's MQTT ingest
 * (gateway/ingest/mqtt-ingest.ts): size -> encoding -> profile -> duplicate seq
 * -> pipeline, exactly as a PUBLISH from the broker. The pipeline's consumer
 * checks every accepted sample against the datasheet ranges (an oracle written
 * here, independently of devices/fields.ts).
 */
import { Encoder, Tag } from "cbor-x";
import * as fc from "fast-check";
import { systemClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import { MqttIngest } from "../gateway/ingest/mqtt-ingest.js";
import { createLogger, RateLimitedLog } from "../gateway/log.js";
import { PriorityPipeline } from "../gateway/pipeline/lanes.js";
import { type DeviceEntry, Registry } from "../gateway/registry.js";
import { Counters } from "../gateway/stats.js";
import { encodeUplink } from "../sim/mqtt/codec.js";
import { anyBytes, mutated } from "./bytes.js";
import { ACCEPTED, type Decoder, type FuzzTarget, invariant, type Outcome, refused } from "./target.js";

type Model = "ec200" | "ds10";
type Encoding = "json" | "cbor";

export interface UplinkInput {
  payload: Uint8Array;
  contentType: string | undefined;
}

// ---- valid datasheet messages (datasheets/ec200-pendant.md, ds10-door.md) ---------------------------

const seq = fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(0, 0xffff_ffff));
// Epoch ms: a plausible clock, 0 after a battery change, or anything a uint64 can hold exactly in a double.
const ts = fc.oneof(
  fc.integer({ min: 1_500_000_000_000, max: 2_100_000_000_000 }),
  fc.constant(0),
  fc.maxSafeNat(),
);
const bat = fc.integer({ min: 0, max: 100 });
const rssi = fc.integer({ min: -120, max: 0 });
const alertId = fc.stringMatching(/^[a-z0-9-]{1,64}$/);

/** Fields in the datasheet's order (JSON.stringify keeps it). */
const ec200Fields: fc.Arbitrary<Record<string, string | number>> = fc.oneof(
  fc
    .record({
      t: fc.constant("evt"),
      seq,
      ts,
      evt: fc.constantFrom("press", "long_press", "fall", "cancel", "low_battery"),
      bat,
      rssi,
      ackd: alertId,
    })
    .map(withoutSometimes("ackd")),
  fc.record({ t: fc.constant("hb"), seq, ts, bat, rssi, ackd: alertId }).map(withoutSometimes("ackd")),
);

const ds10Fields: fc.Arbitrary<Record<string, string | number | boolean>> = fc.record({
  t: fc.constantFrom("state", "hb"),
  seq,
  ts,
  contact: fc.constantFrom("open", "closed"),
  tamper: fc.boolean(),
  bat,
});

/** Drops an optional field in about half the messages (its presence is decided by its first character). */
function withoutSometimes<T extends Record<string, unknown>>(key: string): (o: T) => T {
  return (o) => {
    const v = o[key];
    if (typeof v === "string" && v.charCodeAt(0) % 2 === 0) {
      const { [key]: _dropped, ...rest } = o;
      return rest as T;
    }
    return o;
  };
}

/** The datasheets' own examples, byte for byte. */
const EXAMPLES: Record<Model, string> = {
  ec200: '{"t":"evt","seq":1042,"ts":1763798400123,"evt":"press","bat":87,"rssi":-71}',
  ds10: '{"t":"state","seq":77,"ts":1763798400456,"contact":"open","tamper":false,"bat":64}',
};

// cbor-x's default encoder: 16-bit map lengths, large integers as float64 (both valid CBOR a device may send).
const plainCbor = new Encoder({ useRecords: false });

function validInputs(model: Model, encoding: Encoding): fc.Arbitrary<UplinkInput> {
  const fields = model === "ec200" ? ec200Fields : ds10Fields;
  const contentType = fc.constantFrom(undefined, `application/${encoding}`);
  const payload =
    encoding === "json"
      ? fc.oneof(
          { arbitrary: fields.map((f) => encodeUplink(f, "json")), weight: 20 },
          { arbitrary: fc.constant(Buffer.from(EXAMPLES[model])), weight: 1 },
        )
      : fc.oneof(
          { arbitrary: fields.map((f) => encodeUplink(f, "cbor")), weight: 10 },
          { arbitrary: fields.map((f) => Buffer.from(plainCbor.encode(f))), weight: 5 },
          { arbitrary: fc.constant(encodeUplink(JSON.parse(EXAMPLES[model]), "cbor")), weight: 1 },
        );
  return fc.record({ payload, contentType });
}

// ---- hostile messages -----------------------------------------------------------------------------

/** A number written out as text, beyond what a double holds (JSON only). */
class RawNumber {
  constructor(readonly text: string) {}
}

const KEYS = ["t", "seq", "ts", "evt", "bat", "rssi", "ackd", "contact", "tamper"];
const key = fc.oneof(
  { arbitrary: fc.constantFrom(...KEYS), weight: 8 },
  { arbitrary: fc.constantFrom("__proto__", "constructor", "toString", ""), weight: 1 },
  { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
);

const edgeNumbers = fc.constantFrom(
  0,
  -0,
  -1,
  1.5,
  100,
  101,
  -120,
  -121,
  1,
  0xffff_ffff,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 64,
  1e308,
  -1e308,
  Number.MIN_VALUE,
);

/** Values a JSON payload can carry, and numbers written out beyond a double. */
const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: edgeNumbers, weight: 4 },
  { arbitrary: fc.integer({ min: -(2 ** 33), max: 2 ** 33 }), weight: 3 },
  { arbitrary: fc.double(), weight: 2 },
  {
    arbitrary: fc.constantFrom("evt", "hb", "state", "press", "fall", "open", "closed", "", "87"),
    weight: 3,
  },
  { arbitrary: fc.string({ maxLength: 80 }), weight: 2 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 },
  {
    arbitrary: fc
      .stringMatching(/^-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,12})?([eE][+-]?[0-9]{1,4})?$/)
      .map((t) => new RawNumber(t)),
    weight: 3,
  },
);

/** Values a CBOR payload can carry beyond JSON's: bigints, NaN, infinities, byte strings, tags. */
const cborish: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: jsonish.map((v) => (v instanceof RawNumber ? Number(v.text) : v)), weight: 8 },
  { arbitrary: fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }), weight: 3 },
  { arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 16 }), weight: 1 },
  { arbitrary: fc.date({ noInvalidDate: true }), weight: 1 },
  {
    arbitrary: fc
      .tuple(
        fc.oneof(
          fc.constantFrom(
            0,
            1,
            2,
            3,
            4,
            5,
            14,
            15,
            21,
            27,
            28,
            29,
            51,
            64,
            72,
            85,
            105,
            256,
            258,
            259,
            55799,
          ),
          fc.nat(),
        ),
        fc.oneof(
          fc.string({ maxLength: 16 }),
          fc.integer(),
          fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
        ),
      )
      .map(([tag, v]) => new Tag(v, tag)),
    weight: 2,
  },
);

type Edit = { key: string; value: unknown } | { key: string; drop: true };

/** A valid message with a few fields changed, dropped or added. */
function nearValid(
  fields: fc.Arbitrary<Record<string, unknown>>,
  values: fc.Arbitrary<unknown>,
): fc.Arbitrary<Record<string, unknown>> {
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    { arbitrary: fc.record({ key, value: values }), weight: 4 },
    { arbitrary: fc.record({ key, drop: fc.constant(true as const) }), weight: 1 },
  );
  return fc.tuple(fields, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([f, edits]) => {
    const o: Record<string, unknown> = { ...f };
    for (const e of edits) {
      if ("drop" in e) delete o[e.key];
      else
        Object.defineProperty(o, e.key, {
          value: e.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
    return o;
  });
}

function toJson(value: unknown): Buffer {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_k, v) => {
    if (v instanceof RawNumber) {
      marks.push(v.text);
      return `\u0000raw${marks.length - 1}\u0000`;
    }
    return v;
  });
  // Numbers written out as text replace their placeholders, beyond what JSON.stringify can write.
  return Buffer.from(
    (text ?? "null").replace(/"\\u0000raw(\d+)\\u0000"/g, (_, i: string) => marks[Number(i)] as string),
    "utf8",
  );
}

const hostileCbor = new Encoder({ useRecords: false, variableMapSize: true });
function toCbor(value: unknown): Buffer {
  return Buffer.from(hostileCbor.encode(value));
}

function hostileInputs(model: Model, encoding: Encoding, limit: number): fc.Arbitrary<UplinkInput> {
  const fields = model === "ec200" ? ec200Fields : ds10Fields;
  const values = encoding === "json" ? jsonish : cborish;
  const encode = encoding === "json" ? toJson : toCbor;
  const good = fields.map((f) => encodeUplink(f, encoding));
  const objects = fc.oneof(
    { arbitrary: nearValid(fields, values), weight: 6 },
    { arbitrary: fc.dictionary(key, values, { maxKeys: 8 }), weight: 2 },
    { arbitrary: values, weight: 1 },
  );
  const mapStart = encoding === "json" ? fc.constant(0x7b) : fc.integer({ min: 0xa0, max: 0xbf });
  const payload = fc.oneof(
    { arbitrary: objects.map(encode), weight: 8 },
    { arbitrary: mutated(good), weight: 6 },
    { arbitrary: mutated(objects.map(encode)), weight: 2 },
    // A plausible first byte, then anything: the sniffer says JSON/CBOR, the parser must cope.
    {
      arbitrary: fc.tuple(mapStart, anyBytes(64)).map(([first, rest]) => Buffer.from([first, ...rest])),
      weight: 3,
    },
    { arbitrary: anyBytes(64).map((b) => Buffer.from(b)), weight: 1 },
    // Around the size limit: just under, at, and over it.
    {
      arbitrary: fc
        .tuple(fields, fc.integer({ min: limit - 120, max: limit + 64 }))
        .map(([f, n]) => encode({ ...f, pad: "x".repeat(Math.max(0, n)) })),
      weight: 1,
    },
  );
  const contentType = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 6 },
    { arbitrary: fc.constantFrom("application/json", "application/cbor"), weight: 3 },
    { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
  );
  return fc.record({ payload, contentType });
}

// ---- the decoder: a real MqttIngest ----------------------------------------------------------------

const TS_MAX = Number.MAX_SAFE_INTEGER;
const isInt = (v: unknown, min: number, max: number) =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;

/** The datasheet's ranges, checked on every sample the ingest lets through. */
function checkSample(model: Model, s: Record<string, unknown>): void {
  invariant(isInt(s.seq, 0, 0xffff_ffff), `accepted seq ${String(s.seq)} outside uint32`);
  // A side field out of range is dropped (null), never passed on; ts then reads 0 (no valid clock).
  invariant(isInt(s.ts, 0, TS_MAX), `accepted ts ${String(s.ts)} outside 0..2^53-1`);
  invariant(s.bat === null || isInt(s.bat, 0, 100), `accepted bat ${String(s.bat)} outside 0..100`);
  if (model === "ec200") {
    invariant(s.t === "evt" || s.t === "hb", `accepted t ${String(s.t)}`);
    invariant(s.rssi === null || isInt(s.rssi, -120, 0), `accepted rssi ${String(s.rssi)} outside -120..0`);
    invariant(
      s.t === "hb"
        ? s.evt === null
        : ["press", "long_press", "fall", "cancel", "low_battery"].includes(s.evt as string),
      `accepted evt ${String(s.evt)} for t ${String(s.t)}`,
    );
    invariant(
      s.ackd === null || (typeof s.ackd === "string" && s.ackd.length >= 1 && s.ackd.length <= 64),
      "accepted ackd of a bad length",
    );
  } else {
    invariant(s.t === "state" || s.t === "hb", `accepted t ${String(s.t)}`);
    invariant(s.contact === "open" || s.contact === "closed", `accepted contact ${String(s.contact)}`);
    invariant(typeof s.tamper === "boolean", "accepted a non-boolean tamper");
  }
}

/** Counters that remember the last refusal reason, so each input's outcome is known. */
class RecordingCounters extends Counters {
  last: string | null = null;
  override reject(model: string, reason: string): void {
    this.last = reason;
    super.reject(model, reason);
  }
}

class IngestDecoder implements Decoder<UplinkInput> {
  private readonly counters = new RecordingCounters();
  private readonly pipeline: PriorityPipeline;
  private readonly ingest: MqttIngest;
  private readonly device: DeviceEntry;
  private delivered = 0;

  constructor(model: Model) {
    const config = validateConfig(
      { site: { id: "fuzz" }, devices: [{ id: "dev-1", model, password: "pw" }] },
      "fuzz",
      {},
    );
    const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
    this.device = registry.devices.get("dev-1") as DeviceEntry;
    this.pipeline = new PriorityPipeline(
      { p1LaneSize: 16, alertLaneSize: 16, telemetryLaneSize: 16, telemetryBatch: 16 },
      (entry) => {
        checkSample(model, entry.sample as Record<string, unknown>);
        this.delivered++;
      },
    );
    // Drained by hand after each input (drainAll), so nothing waits for the event loop.
    this.pipeline.close();
    const log = new RateLimitedLog(createLogger({ level: "silent" }), { maxKeys: 64 });
    this.ingest = new MqttIngest(this.pipeline, this.counters, log, systemClock, 16);
  }

  run(input: UplinkInput): Outcome {
    const acceptedBefore = this.ingest.accepted;
    const deliveredBefore = this.delivered;
    this.counters.last = null;
    let acks = 0;
    let ackError: Error | null = null;
    this.ingest.uplink(this.device, Buffer.from(input.payload), input.contentType, (err) => {
      acks++;
      ackError = err;
    });
    this.pipeline.drainAll();
    // Every message is acknowledged exactly once (a PUBACK), accepted or refused.
    invariant(acks === 1, `acknowledged ${acks} times`);
    invariant(ackError === null, `acknowledged with an error: ${String(ackError)}`);
    invariant(this.ingest.parkedCount === 0, "a message was parked although the lanes were drained");
    if (this.ingest.accepted === acceptedBefore + 1) {
      invariant(this.delivered === deliveredBefore + 1, "accepted but not delivered to the pipeline");
      return ACCEPTED;
    }
    invariant(this.ingest.accepted === acceptedBefore, "accepted count jumped");
    invariant(this.counters.last !== null, "neither accepted nor refused with a reason");
    return refused(this.counters.last);
  }

  reset(): void {
    this.device.dedup.clear();
  }
}

function target(model: Model, encoding: Encoding): FuzzTarget<UplinkInput> {
  const limit = model === "ec200" ? 512 : 256;
  return {
    name: `${model}-${encoding}`,
    hostile: hostileInputs(model, encoding, limit),
    valid: validInputs(model, encoding),
    create: () => new IngestDecoder(model),
  };
}

export const mqttTargets: FuzzTarget<UplinkInput>[] = [
  target("ec200", "json"),
  target("ec200", "cbor"),
  target("ds10", "json"),
  target("ds10", "cbor"),
];
