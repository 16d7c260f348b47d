/**
 * Field types of the site configuration that more than one layer declares:
 * the gateway's own sections (gateway/config/schema.ts) and each device
 * profile's fragment (devices/). Durations become milliseconds; ids are safe
 * in MQTT topics.
 */
import { z } from "zod";
import { parseDuration } from "./duration.js";

/** Milliseconds from a duration field, or a named config error. */
function toMs(v: string | number, ctx: z.core.$RefinementCtx): number {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({
      code: "custom",
      message: `expected a duration such as "300s", "10m" or "24h", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
}

const DURATION_HELP =
  'Duration: seconds as a number, or a string with a unit: "250ms", "300s", "10m", "24h", "2d"';

/** A duration field with a default; parsed to milliseconds. */
export const duration = (fallback: string) =>
  z.union([z.string(), z.number()]).default(fallback).transform(toMs).meta({ description: DURATION_HELP });

/** A duration field that may be left out; parsed to milliseconds. */
export const optionalDuration = () =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => (v === undefined ? undefined : toMs(v, ctx)));

/** Ids appear in MQTT topics: no '/', '+', '#', spaces (datasheet: 1-32 of [A-Za-z0-9_-]). */
export const topicId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}$/, "must be 1 to 32 characters of A-Z a-z 0-9 _ -");

export const secret = z.string().min(1, "must not be empty");

/** Text people read (names, places, actions): one line, no control characters, at most `max` characters. */
export const label = (max: number) =>
  z
    .string()
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`)
    .refine(
      (v) => ![...v].some((c) => (c.codePointAt(0) as number) < 0x20 || c === "\u007f"),
      "must be one line without control characters",
    );
