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

export interface Bound {
  /** The slope after warm-up must be under this, per hour. */
  maxSlopePerHour: number;
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
  const slope = slopePerHour(rest);
  const max = points.length === 0 ? null : Math.max(...points.map((p) => p.value));
  let failure: string | null = null;
  if (slope === null) failure = `too few samples after the warm-up (${rest.length}) for a slope`;
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
