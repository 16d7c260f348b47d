/**
 * A live value of the journal, decoded for the state it restores (at start and on reload).
 *
 * cbor-x decodes the strings of a record as slices of one string that holds all of them (its
 * native extractor reads them in one call), so a string kept from a decoded value (an alert's id,
 * its subject, its topic) keeps that whole string alive: ~620 bytes per restored alert, 6 MB of
 * heap at 10,000 open alerts (heap snapshot after a start). What is restored lives for months:
 * its strings are copied out of the record's.
 */
import { decode } from "cbor-x";

/** V8 copies a substring shorter than this instead of slicing it (SlicedString::kMinLength). */
const SLICED_MIN_LENGTH = 13;

/** Decodes a value held as the latin1 string of its CBOR bytes; the result shares no string with the record. */
export function decodeValue(latin1: string): unknown {
  return ownStrings(decode(Buffer.from(latin1, "latin1")));
}

function ownStrings(v: unknown): unknown {
  if (typeof v === "string") return v.length < SLICED_MIN_LENGTH ? v : copyOf(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = ownStrings(v[i]);
    return v;
  }
  if (v !== null && typeof v === "object") {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = ownStrings(o[k]);
  }
  return v;
}

/**
 * A flat copy. JSON.parse builds a new sequential string, exact for every string (a lone
 * surrogate is escaped and restored); a copy through a Buffer would take pooled memory and
 * scatter the retained alert payloads, which share that pool, over more of its slabs.
 */
function copyOf(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
