/**
 * The property every target must hold, shared by the unit tests (bounded
 * runs, fixed seed) and the runner (`npm run fuzz`, a million inputs each).
 */
import * as fc from "fast-check";
import { type Decoder, type FuzzTarget, InvariantError, type Outcome, type Tagged } from "./target.js";

/** Valid datasheet messages are one input in `validShare`. */
export function tagged<T>(t: FuzzTarget<T>, validShare = 5): fc.Arbitrary<Tagged<T>> {
  return fc.oneof(
    { arbitrary: t.valid.map((input) => ({ valid: true, input })), weight: 1 },
    { arbitrary: t.hostile.map((input) => ({ valid: false, input })), weight: validShare - 1 },
  );
}

export class SlowInputError extends Error {
  constructor(ms: number, maxMs: number) {
    super(`took ${ms.toFixed(1)} ms of CPU (bound ${maxMs} ms) on three runs`);
    this.name = "SlowInputError";
  }
}

export interface Tally {
  inputs: number;
  valid: number;
  accepted: number;
  refused: Map<string, number>;
}

export const newTally = (): Tally => ({ inputs: 0, valid: 0, accepted: 0, refused: new Map() });

/**
 * Runs one input and checks it: accepted or refused with a reason, never a
 * throw; a valid input accepted. With `maxMs`, an input that costs more CPU
 * time than that on three runs in a row is a failure. CPU time, not wall time:
 * on a shared machine the wall clock measures the neighbours.
 */
export function check<T>(
  decoder: Decoder<T>,
  x: Tagged<T>,
  tally: Tally | null,
  maxMs: number | null = null,
): Outcome {
  if (x.valid) decoder.reset();
  let outcome: Outcome;
  if (maxMs === null) {
    outcome = decoder.run(x.input);
  } else {
    for (let attempt = 0; ; attempt++) {
      if (x.valid) decoder.reset();
      const before = process.cpuUsage();
      outcome = decoder.run(x.input);
      const used = process.cpuUsage(before);
      const ms = (used.user + used.system) / 1000;
      if (ms <= maxMs) break;
      if (attempt === 2) throw new SlowInputError(ms, maxMs);
    }
  }
  if (x.valid && !outcome.accepted)
    throw new InvariantError(`a valid datasheet message was refused: ${outcome.reason}`);
  if (!outcome.accepted && (typeof outcome.reason !== "string" || outcome.reason.length === 0))
    throw new InvariantError("refused without a reason");
  if (tally) {
    tally.inputs++;
    if (x.valid) tally.valid++;
    if (outcome.accepted) tally.accepted++;
    else tally.refused.set(outcome.reason, (tally.refused.get(outcome.reason) ?? 0) + 1);
  }
  return outcome;
}

/** A short, printable view of an input for failure reports. */
export function show(x: unknown): string {
  return fc.stringify(x).slice(0, 2000);
}
