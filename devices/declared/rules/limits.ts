/**
 * A threshold's limit and deadband as numbers for this sample: a limit is a number, a ratio of a
 * point, a point within bounds (`else` outside them) or a setting (the device's, else its default).
 */
import type { DeclaredSample, DeclaredSettings } from "../sample.js";
import type { Condition, DeclaredProfileDoc, FromPoint, Limit } from "../schema.js";
import type { DeclaredState } from "../state.js";

export type Limits = ReturnType<typeof limitsOf>;

export function limitsOf(doc: DeclaredProfileDoc) {
  const readNames = new Set(doc.modbus?.reads.map((r) => r.name) ?? []);
  /** A point's or a read register's value; NaN when it has none (not read, absent, not a number). */
  const pointValue = (s: DeclaredSample, st: DeclaredState, n: string): number => {
    const v = readNames.has(n) ? st.reads[n] : s.v[n];
    return typeof v === "number" ? v : Number.NaN;
  };
  const fromPoint = (l: FromPoint, s: DeclaredSample, st: DeclaredState): number => {
    const v = pointValue(s, st, l.point);
    const bound = (b: number | string | undefined) =>
      b === undefined ? undefined : typeof b === "number" ? b : pointValue(s, st, b);
    const min = bound(l.min);
    const max = bound(l.max);
    // NaN (never read, or a bound unreadable) fails every comparison: the `else` limit.
    if (Number.isFinite(v) && (min === undefined || v >= min) && (max === undefined || v <= max)) return v;
    return typeof l.else === "number" ? l.else : l.else.ratio * pointValue(s, st, l.else.of);
  };

  const resolve = (l: Limit, s: DeclaredSample, st: DeclaredState, settings: DeclaredSettings): number => {
    if (typeof l === "number") return l;
    if ("ratio" in l) return l.ratio * pointValue(s, st, l.of);
    if ("point" in l) return fromPoint(l, s, st);
    const given = settings.params[l.setting];
    if (given !== undefined) return given;
    const d = doc.settings[l.setting]?.default;
    if (d === undefined) return Number.NaN;
    if (typeof d === "number") return d;
    return "point" in d ? fromPoint(d, s, st) : d.ratio * pointValue(s, st, d.of);
  };
  /** A threshold's deadband: its own, or the distance from the limit back to its `clearAt` (none past it). */
  const deadbandOf = (
    w: Condition,
    limit: number,
    s: DeclaredSample,
    st: DeclaredState,
    settings: DeclaredSettings,
  ): number => {
    if (w.clearAt === undefined) return w.deadband ?? 0;
    const clear = resolve(w.clearAt, s, st, settings);
    const d = w.above !== undefined ? limit - clear : clear - limit;
    // An unresolvable clear point (NaN) holds nothing, as one on the limit's own side.
    if (!(d > 0)) return 0;
    return d;
  };
  return { resolve, deadbandOf };
}
