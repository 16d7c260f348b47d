/**
 * Register blocks of the MFS-8 and GK-3 profiles, through the southbound's
 * path (devices/modbus-sample.ts: point specs -> profile decode), then the
 * profile's lane, metrics and rules on every accepted sample, which must not
 * throw either. Valid blocks are built from the datasheets' register tables
 * and must decode to what was written.
 */
import * as fc from "fast-check";
import { gk3 } from "../devices/gk3.js";
import { mfs8 } from "../devices/mfs8.js";
import type { RegisterBlock } from "../devices/modbus-decode.js";
import { decodePollSample } from "../devices/modbus-sample.js";
import type { ModbusDeviceProfile, RuleContext } from "../devices/profile.js";
import { isRejection } from "../devices/profile.js";
import { PANEL_SETTINGS } from "../devices/test-fixtures.js";
import { ACCEPTED, type Decoder, type FuzzTarget, invariant, type Outcome, refused } from "./target.js";

export interface RegistersInput {
  blocks: RegisterBlock[];
  /** Valid inputs: fields the sample must carry exactly. */
  expect?: Record<string, number | string>;
}

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const i16 = fc.integer({ min: -0x8000, max: 0x7fff });
const hi = (v: number) => Math.floor(v / 0x10000);
const lo = (v: number) => v & 0xffff;
/** A subset of the given bits. */
const bits = (defined: readonly number[]) =>
  fc.subarray([...defined]).map((bs) => bs.reduce((m, b) => m | (1 << b), 0));

function float32Words(x: number): [number, number] {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x);
  return [v.getUint16(0), v.getUint16(2)];
}

// ---- MFS-8 (datasheets/mfs8-fire-panel.md, holding registers 0-13) ------------------------------------

const mfs8Valid: fc.Arbitrary<RegistersInput> = fc
  .record({
    firmware: u16,
    uptime: u32,
    status: bits([0, 1, 2, 3, 4, 5, 6, 7, 8, 15]),
    smoke: u16,
    temperature: i16,
    pressure: fc.oneof(
      fc.float({ min: 0, max: 10, noNaN: true }),
      fc.float({ noNaN: true, noDefaultInfinity: true }),
    ),
    slots: fc.integer({ min: 0, max: 8 }),
    present: u16,
    faultCode: fc.integer({ min: 0, max: 5 }),
    events: u32,
  })
  .map((r) => {
    const [pAB, pCD] = float32Words(r.pressure);
    const present = r.present & ((1 << r.slots) - 1);
    const words = [
      0x4d38,
      r.firmware,
      hi(r.uptime),
      lo(r.uptime),
      r.status,
      r.smoke,
      r.temperature & 0xffff,
      pCD, // low word first (CD AB): the datasheet's one such value
      pAB,
      present,
      r.slots,
      r.faultCode,
      hi(r.events),
      lo(r.events),
    ];
    const expect = {
      firmware: `${r.firmware >> 8}.${r.firmware & 0xff}`,
      uptime: r.uptime,
      status: r.status,
      smoke: r.smoke * 0.01,
      temperature: r.temperature * 0.1,
      pressure: Number.parseFloat(Math.fround(r.pressure).toPrecision(7)),
      present,
      slots: r.slots,
      faultCode: r.faultCode,
      events: r.events,
    };
    return { blocks: [{ address: 0, words }], expect };
  });

/** The datasheet's example reply (slave 5: smoke alarm, 2.50 %/m, 21.5 °C, 0.32 MPa, 5 of 5, counter 66). */
const MFS8_EXAMPLE: RegistersInput = {
  blocks: [
    {
      address: 0,
      words: [
        0x4d38, 0x0203, 0x0001, 0x51a4, 0x0001, 0x00fa, 0x00d7, 0xd70a, 0x3ea3, 0x001f, 0x0005, 0, 0, 0x0042,
      ],
    },
  ],
  expect: { status: 1, smoke: 2.5, temperature: 21.5, pressure: 0.32, present: 0x1f, slots: 5, events: 66 },
};

// ---- GK-3 (datasheets/gk3-kiosk.md, input registers 0-9) ----------------------------------------------

const gk3Valid: fc.Arbitrary<RegistersInput> = fc
  .record({
    state: fc.integer({ min: 0, max: 4 }),
    temperature: i16,
    humidity: fc.integer({ min: 0, max: 1000 }),
    paper: fc.integer({ min: 0, max: 100 }),
    status: bits([0, 1, 2, 3, 4, 5, 6]),
    transactions: u32,
    uptime: u32,
    queue: u16,
  })
  .map((r) => ({
    blocks: [
      {
        address: 0,
        words: [
          r.state,
          r.temperature & 0xffff,
          r.humidity,
          r.paper,
          r.status,
          hi(r.transactions),
          lo(r.transactions),
          hi(r.uptime),
          lo(r.uptime),
          r.queue,
        ],
      },
    ],
    expect: {
      state: ["off", "booting", "in-service", "out-of-service", "maintenance"][r.state] as string,
      temperature: r.temperature * 0.1,
      humidity: r.humidity * 0.1,
      paper: r.paper,
      status: r.status,
      transactions: r.transactions,
      uptime: r.uptime,
      queue: r.queue,
    },
  }));

// ---- hostile blocks ------------------------------------------------------------------------------------

/** Random words, often with the plausible values that get a block past the first checks. */
function hostileBlocks(
  count: number,
  plausible: Record<number, fc.Arbitrary<number>>,
): fc.Arbitrary<RegistersInput> {
  const word = (i: number) =>
    plausible[i]
      ? fc.oneof(
          { arbitrary: plausible[i] as fc.Arbitrary<number>, weight: 3 },
          { arbitrary: u16, weight: 1 },
        )
      : u16;
  const full = fc.tuple(...Array.from({ length: count }, (_, i) => word(i))).map((words) => ({
    blocks: [{ address: 0, words }],
  }));
  // A reply shorter or longer than asked for, split in two blocks, or read from the wrong address.
  const odd = fc
    .record({
      address: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
      words: fc.array(u16, { maxLength: count + 4 }),
      split: fc.nat({ max: count }),
    })
    .map(({ address, words, split }) => ({
      blocks:
        split > 0 && split < words.length
          ? [
              { address, words: words.slice(0, split) },
              { address: address + split, words: words.slice(split) },
            ]
          : [{ address, words }],
    }));
  return fc.oneof({ arbitrary: full, weight: 5 }, { arbitrary: odd, weight: 1 });
}

const NAN_WORDS = fc.constantFrom(0x7fc0, 0x7f80, 0xff80, 0xffff, 0x0000, 0x3ea3);

const mfs8Hostile = hostileBlocks(14, {
  0: fc.constant(0x4d38),
  7: NAN_WORDS,
  8: NAN_WORDS,
  10: fc.integer({ min: 0, max: 10 }),
});
const gk3Hostile = hostileBlocks(10, {
  0: fc.integer({ min: 0, max: 6 }),
  3: fc.integer({ min: 0, max: 120 }),
});

// ---- the decoder ---------------------------------------------------------------------------------------

const settings = PANEL_SETTINGS;

const quietContext: RuleContext = {
  now: Date.UTC(2026, 0, 5, 9, 0, 0),
  stale: false,
  readAt: 0,
  raise: () => {},
  condition: () => {},
  markCancelled: () => 0,
  confirmDelivered: () => {},
  command: () => false,
};

/** Detail with its numbers taken out, so refusals group by kind ("model register is N, ..."). */
const kind = (detail: string) => detail.replace(/0x[0-9a-f]+|-?\d+(\.\d+)?(e[+-]?\d+)?/gi, "N");

class RegistersDecoder<S> implements Decoder<RegistersInput> {
  private previous: S | null = null;
  private readonly state: unknown;

  constructor(private readonly profile: ModbusDeviceProfile<S>) {
    this.state = profile.initialState();
  }

  run(input: RegistersInput): Outcome {
    const sample = decodePollSample(this.profile, input.blocks);
    if (isRejection(sample)) return refused(`${sample.reason} (${kind(sample.detail)})`);
    const s = sample as Record<string, unknown>;
    for (const [k, v] of Object.entries(s))
      invariant(typeof v !== "number" || Number.isFinite(v), `accepted ${k} = ${String(v)}`);
    if (input.expect)
      for (const [k, v] of Object.entries(input.expect))
        invariant(
          typeof v === "number" && typeof s[k] === "number"
            ? Math.abs((s[k] as number) - v) < 1e-9
            : s[k] === v,
          `${k} decoded as ${String(s[k])}, written ${String(v)}`,
        );
    const lane = this.profile.lane(sample, this.previous);
    invariant(lane === 0 || lane === 1 || lane === 2, `lane ${String(lane)}`);
    this.profile.metrics(sample, this.state);
    this.profile.rules(sample, this.state, settings, quietContext);
    this.previous = sample;
    return ACCEPTED;
  }

  reset(): void {}
}

export const registerTargets: FuzzTarget<RegistersInput>[] = [
  {
    name: "mfs8-registers",
    hostile: mfs8Hostile,
    valid: fc.oneof(
      { arbitrary: mfs8Valid, weight: 20 },
      { arbitrary: fc.constant(MFS8_EXAMPLE), weight: 1 },
    ),
    create: () => new RegistersDecoder(mfs8),
  },
  {
    name: "gk3-registers",
    hostile: gk3Hostile,
    valid: gk3Valid,
    create: () => new RegistersDecoder(gk3),
  },
];
