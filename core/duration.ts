/** Durations in the config: a number of seconds, or a string such as "250ms", "300s", "10m", "24h", "2d". */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;

/** Returns milliseconds, or null when the text is not a duration. */
export function parseDuration(input: string | number): number | null {
  if (typeof input === "number")
    return Number.isFinite(input) && input >= 0 ? Math.round(input * 1000) : null;
  const m = DURATION.exec(input);
  if (!m) return null;
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
}
