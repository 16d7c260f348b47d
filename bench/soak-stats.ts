/**
 * The soak's figures and verdicts (bench/soak.ts), pure: a series of samples over the run gives
 * the value after warm-up, the end value and the least-squares slope per hour over the rest, judged
 * against a bound; the presses' alerts are counted through their lifecycle (raised, acknowledged,
 * closed) and judged complete or not.
 */

/** The first fifth of a run is left out: connections, first heartbeats and the heap settle there. */
export const WARMUP_FRACTION = 0.2;

export interface Point {
  /** Seconds since the load started. */
  tS: number;
  value: number;
}

/** The points at or after the warm-up of a run of `durationS` seconds. */
export function afterWarmup(
  points: readonly Point[],
  durationS: number,
  fraction = WARMUP_FRACTION,
): Point[] {
  const from = durationS * fraction;
  return points.filter((p) => p.tS >= from);
}

/** Least-squares slope of value over time, per hour; null with fewer than two distinct times. */
export function slopePerHour(points: readonly Point[]): number | null {
  const n = points.length;
  if (n < 2) return null;
  let st = 0;
  let sv = 0;
  for (const p of points) {
    st += p.tS;
    sv += p.value;
  }
  const mt = st / n;
  const mv = sv / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.tS - mt) * (p.value - mv);
    den += (p.tS - mt) ** 2;
  }
  return den === 0 ? null : (num / den) * 3600;
}

/**
 * A garbage-collected heap grows between major collections and drops at each: in a 40-minute soak
 * of 2,000 households (2026-12-07) V8's heap went 47 -> 61 MB over about 11 minutes and back, and
 * RSS 105 -> 128 MB with it. A slope through every sample then depends on where the run ends in
 * that saw-tooth. What a leak raises is the floor the collections return to, so memory is judged on
 * troughs: the lowest sample of each span of at least TROUGH_WINDOW_S after the warm-up, a span
 * longer than one such cycle (a shorter one may hold no trough at all). At least two spans are
 * needed: a run of under about 38 minutes cannot be judged on them.
 */
export const TROUGH_WINDOW_S = 900;

/**
 * The lowest point of each of the equal spans, each at least `windowS` long, that `points` divide
 * into (as many as fit; empty spans left out).
 */
export function troughs(points: readonly Point[], windowS = TROUGH_WINDOW_S): Point[] {
  if (points.length === 0) return [];
  const t0 = (points[0] as Point).tS;
  const span = (points.at(-1) as Point).tS - t0;
  const windows = Math.max(1, Math.floor(span / windowS));
  const lowest: (Point | undefined)[] = new Array(windows).fill(undefined);
  for (const p of points) {
    const w = span === 0 ? 0 : Math.min(windows - 1, Math.floor(((p.tS - t0) / span) * windows));
    const cur = lowest[w];
    if (cur === undefined || p.value < cur.value) lowest[w] = p;
  }
  return lowest.filter((p): p is Point => p !== undefined);
}

export interface Bound {
  /** The slope after warm-up must be under this, per hour. */
  maxSlopePerHour: number;
  /** The slope is taken through the troughs (`troughs()`), not every sample: a garbage-collected heap. */
  troughs?: boolean;
  /** Every sample of the run, warm-up included, must be at or under this (a quota), if given. */
  maxValue?: number;
  /** Why this bound (printed beside the verdict). */
  why: string;
}

export interface Figure {
  name: string;
  unit: string;
  /** The first value after warm-up, null when no sample is left after it. */
  afterWarmup: number | null;
  end: number | null;
  max: number | null;
  slopePerHour: number | null;
  bound: Bound;
  pass: boolean;
  /** Why it failed, or null. */
  failure: string | null;
}

/** A series judged against its bound over a run of `durationS` seconds. */
export function judgeSeries(
  name: string,
  unit: string,
  points: readonly Point[],
  durationS: number,
  bound: Bound,
): Figure {
  const rest = afterWarmup(points, durationS);
  const lows = bound.troughs ? troughs(rest) : rest;
  const slope = lows.length >= 2 ? slopePerHour(lows) : null;
  const max = points.length === 0 ? null : Math.max(...points.map((p) => p.value));
  let failure: string | null = null;
  if (slope === null)
    failure = bound.troughs
      ? `too short to judge on troughs: ${lows.length} span(s) of ${TROUGH_WINDOW_S / 60} min after the warm-up, 2 needed`
      : `too few samples after the warm-up (${rest.length}) for a slope`;
  else if (!(slope < bound.maxSlopePerHour))
    failure = `grows ${fmt(slope)} ${unit}/h, bound < ${fmt(bound.maxSlopePerHour)} ${unit}/h`;
  else if (bound.maxValue !== undefined && max !== null && max > bound.maxValue)
    failure = `reached ${fmt(max)} ${unit}, over ${fmt(bound.maxValue)} ${unit}`;
  return {
    name,
    unit,
    afterWarmup: rest[0]?.value ?? null,
    end: points.at(-1)?.value ?? null,
    max,
    slopePerHour: slope,
    bound,
    pass: failure === null,
    failure,
  };
}

const fmt = (n: number): string => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(2));

/** One press and what the operator saw of its alert (epoch ms, undefined: not seen). */
export interface PressRecord {
  device: string;
  pressedAt: number;
  raisedAt?: number;
  acknowledgedAt?: number;
  closedAt?: number;
}

export interface AlertCounts {
  presses: number;
  raised: number;
  acknowledged: number;
  /** Closed: acknowledged and its call window over (docs/topics.md "Lifecycle"). */
  cleared: number;
  /** Presses whose alert the operator never saw raised. */
  missing: number;
  /** Raised but never seen acknowledged. */
  notAcknowledged: number;
  /** Alerts whose call window had ended (plus grace) by the end, not seen closed. */
  notCleared: number;
  /** Alerts raised too late in the run for their window to end: not expected closed. */
  stillInWindow: number;
}

/**
 * Counts the presses' alerts at `endAt`: an alert is expected closed once it was acknowledged and
 * `windowMs` (the emergency-call window) plus `graceMs` have passed since its press; later ones are
 * still in their window, not missing.
 */
export function countAlerts(
  presses: readonly PressRecord[],
  endAt: number,
  windowMs: number,
  graceMs: number,
): AlertCounts {
  const c: AlertCounts = {
    presses: presses.length,
    raised: 0,
    acknowledged: 0,
    cleared: 0,
    missing: 0,
    notAcknowledged: 0,
    notCleared: 0,
    stillInWindow: 0,
  };
  for (const p of presses) {
    if (p.raisedAt === undefined) {
      c.missing++;
      continue;
    }
    c.raised++;
    if (p.acknowledgedAt === undefined) c.notAcknowledged++;
    else c.acknowledged++;
    if (p.closedAt !== undefined) c.cleared++;
    else if (p.pressedAt + windowMs + graceMs <= endAt) c.notCleared++;
    else c.stillInWindow++;
  }
  return c;
}

/** Every press's alert raised, acknowledged and (its window over) closed; null when so, else why not. */
export function alertFailure(c: AlertCounts): string | null {
  if (c.presses === 0) return "no press was made";
  const why: string[] = [];
  if (c.missing > 0) why.push(`${c.missing} press(es) without an alert`);
  if (c.notAcknowledged > 0) why.push(`${c.notAcknowledged} alert(s) not seen acknowledged`);
  if (c.notCleared > 0) why.push(`${c.notCleared} alert(s) not seen closed after their window`);
  return why.length === 0 ? null : why.join(", ");
}
