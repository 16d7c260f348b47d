/**
 * What a fuzz target is (docs/security.md, fuzzing): a decoder driven through the path
 * the gateway uses, fed hostile inputs and valid datasheet messages. Every
 * input must be accepted or refused with a reason; a throw, a broken
 * invariant or a refused valid message is a failure.
 */
import type * as fc from "fast-check";

export type Outcome = { accepted: true } | { accepted: false; reason: string };

export const ACCEPTED: Outcome = { accepted: true };
export const refused = (reason: string): Outcome => ({ accepted: false, reason });

/** A broken property of an accepted or refused input (not a decoder exception). */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvariantError";
  }
}

export function invariant(cond: boolean, message: string): asserts cond {
  if (!cond) throw new InvariantError(message);
}

/** One decoder instance with its state (an ingest with its seq windows, a framer). */
export interface Decoder<T> {
  /** Decodes one input; throws only on a failure (a decoder exception or an InvariantError). */
  run(input: T): Outcome;
  /** Forgets state that could refuse a valid input (remembered seq numbers). */
  reset(): void;
}

export interface FuzzTarget<T> {
  readonly name: string;
  /** Random and mutated inputs: anything may happen except a throw or a hang. */
  readonly hostile: fc.Arbitrary<T>;
  /** Valid datasheet messages: each must be accepted. */
  readonly valid: fc.Arbitrary<T>;
  /** CPU cost of an input relative to the others (the config loader's YAML parser: ~1 ms); the unit tests run fewer. */
  readonly cost?: number;
  /** A fresh decoder; targets hold no state between create() calls. */
  create(): Decoder<T>;
}

/** An input tagged with the generator it came from. */
export interface Tagged<T> {
  valid: boolean;
  input: T;
}
