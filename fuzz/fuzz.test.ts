/**
 * Property tests of every decoder against hostile input, bounded for CI: a fixed
 * seed so a failure reproduces, printed with the counterexample. FUZZ_SEED
 * and FUZZ_RUNS override them; `npm run fuzz` runs a million inputs each.
 */
import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import { check, newTally, tagged } from "./property.js";
import { targets } from "./targets.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

function assertProperty<T>(arb: fc.Arbitrary<T>, predicate: (x: T) => void, numRuns: number): void {
  try {
    fc.assert(fc.property(arb, predicate), { seed: SEED, numRuns });
  } catch (err) {
    throw new Error(
      `fuzz property failed (seed ${SEED}; rerun with FUZZ_SEED=${SEED}):\n${(err as Error).message}`,
    );
  }
}

describe.each(targets.map((t) => [t.name, t] as const))("fuzz %s", (_, target) => {
  // Keeps the whole file near 10 s on a loaded 2-core machine.
  const runs = Math.ceil(RUNS / (target.cost ?? 1));

  it("accepts or refuses every input with a reason, never throws", () => {
    const decoder = target.create();
    const tally = newTally();
    assertProperty(tagged(target), (x) => void check(decoder, x, tally), runs);
    // The generators reach both sides of the decoder.
    expect(tally.accepted).toBeGreaterThan(0);
    expect(tally.refused.size).toBeGreaterThan(0);
  });

  it("accepts every valid datasheet message", () => {
    const decoder = target.create();
    assertProperty(
      target.valid.map((input) => ({ valid: true, input })),
      (x) => void check(decoder, x, null),
      Math.ceil(runs / 3),
    );
  });
});
