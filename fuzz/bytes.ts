/** Byte-level arbitraries shared by the targets: random bytes, mutations of good frames, chunking. */
import * as fc from "fast-check";

type Op =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; value: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; n: number }
  | { op: "truncate"; at: number }
  | { op: "repeat"; at: number; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("repeat" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
);

function apply(bytes: Uint8Array, ops: readonly Op[]): Uint8Array {
  let b = bytes;
  for (const o of ops) {
    const at = b.length === 0 ? 0 : o.at % b.length;
    switch (o.op) {
      case "flip":
        if (b.length > 0) b[at] = (b[at] as number) ^ (1 << o.bit);
        break;
      case "set":
        if (b.length > 0) b[at] = o.value;
        break;
      case "insert": {
        const out = new Uint8Array(b.length + o.bytes.length);
        out.set(b.subarray(0, at));
        out.set(o.bytes, at);
        out.set(b.subarray(at), at + o.bytes.length);
        b = out;
        break;
      }
      case "delete":
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + o.n)]);
        break;
      case "truncate":
        b = b.slice(0, at);
        break;
      case "repeat": {
        const piece = b.subarray(at, at + o.n);
        const out = new Uint8Array(b.length + piece.length);
        out.set(b.subarray(0, at + piece.length));
        out.set(piece, at + piece.length);
        out.set(b.subarray(at + piece.length), at + 2 * piece.length);
        b = out;
        break;
      }
    }
  }
  return b;
}

/** A good frame with 1 to 4 mutations (bit flips, byte changes, insertions, deletions, truncation, repeats). */
export function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(base, fc.array(op, { minLength: 1, maxLength: 4 }))
    .map(([b, ops]) => apply(Uint8Array.from(b), ops));
}

/** Splits bytes into chunks as a serial adapter or a TCP stream may deliver them. */
export function chunked(bytes: Uint8Array): fc.Arbitrary<Uint8Array[]> {
  return fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 }).map((sizes) => {
    const out: Uint8Array[] = [];
    let at = 0;
    for (const n of sizes) {
      if (at >= bytes.length) break;
      out.push(bytes.subarray(at, at + n));
      at += n;
    }
    if (at < bytes.length) out.push(bytes.subarray(at));
    return out;
  });
}

export const anyBytes = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });
