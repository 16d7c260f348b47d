/**
 * Field types of the site configuration that more than one layer declares:
 * the gateway's own sections (gateway/config/schema.ts) and each device
 * profile's fragment (devices/). Durations become milliseconds; ids are safe
 * in MQTT topics.
 */
import { z } from "zod";
import { parseDuration } from "./duration.js";
import { hashProblem, isHashed } from "./password-hash.js";

/**
 * Milliseconds from a duration field, or a named config error. Zero is refused
 * unless the field gives it a meaning ("0 disables", no grace): a zero
 * heartbeat interval or bus timeout would make the gateway spin or give up at once.
 */
function toMs(v: string | number, ctx: z.core.$RefinementCtx, allowZero = false): number {
  const ms = parseDuration(v);
  if (ms === 0 && !allowZero) {
    ctx.addIssue({ code: "custom", message: `must be more than 0, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
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
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => toMs(v, ctx))
    .meta({ description: DURATION_HELP });

/** A duration field where 0 means something (disabled, no grace). */
export const durationOrZero = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => toMs(v, ctx, true))
    .meta({ description: `${DURATION_HELP}; 0 allowed` });

/** A duration field that may be left out; parsed to milliseconds. */
export const optionalDuration = () =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => (v === undefined ? undefined : toMs(v, ctx)));

/** A duration field that may be left out, where 0 means something; parsed to milliseconds. */
export const optionalDurationOrZero = () =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => (v === undefined ? undefined : toMs(v, ctx, true)))
    .meta({ description: `${DURATION_HELP}; 0 allowed` });

/** Ids appear in MQTT topics: no '/', '+', '#', spaces (datasheet: 1-32 of [A-Za-z0-9_-]). */
export const topicId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}$/, "must be 1 to 32 characters of A-Z a-z 0-9 _ -");

export const secret = z.string().min(1, "must not be empty");

/** A login password: a scrypt hash from `linli passwd` (docs/security.md), or plain text (warned about). */
export const password = secret
  .superRefine((v, ctx) => {
    const problem = isHashed(v) ? hashProblem(v) : null;
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({
    description:
      "scrypt$N$r$p$salt$hash as printed by `linli passwd` (plain text still works but is warned about at start). Optional with a listener that verifies client certificates (tls.ca)",
  });

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
