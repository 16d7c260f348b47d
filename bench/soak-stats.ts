/**
 * The soak's figures and verdicts (bench/soak.ts), pure: a series of samples over the run gives
 * the value after warm-up, the end value and the least-squares slope per hour over the rest, judged
 * against a bound; the presses' alerts are counted through their lifecycle (raised, acknowledged,
 * closed) and judged complete or not.
 */

import { atPercentile } from "./interval.js";

/** At least the first fifth of a run is left out: connections, first heartbeats and the heap settle there. */
export const WARMUP_FRACTION = 0.2;

export interface Point {
  /** Seconds since the load started. */
  tS: number;
  value: number;
}

/**
 * Seconds of a run left out of its slopes: the first fifth, or the load's first round if longer
 * (bench/soak.ts firstRoundS: every pendant pressed once, every device's first heartbeat sent). A
 * device's first message and first alert make state that lives as long as the device (its rate
 * budget, its rule and alert slots): in the 2026-12-07 soaks the heap's floor rose through that
 * round. Growth bounded by the site's size is what the connected-devices ceiling measures; a soak
 * looks for growth that is not.
 */
export function warmupSeconds(durationS: number, firstRoundS = 0): number {
  return Math.max(durationS * WARMUP_FRACTION, firstRoundS);
}

/** The points at or after `fromS` seconds (the end of the warm-up). */
export function afterWarmup(points: readonly Point[], fromS: number): Point[] {
  return points.filter((p) => p.tS >= fromS);
}

/** The least-squares line through the points: their mean time and value, slope per second, time spread. */
function fitLine(
  points: readonly Point[],
): { meanT: number; meanV: number; perS: number; spreadT: number } | null {
  const n = points.length;
  if (n < 2) return null;
  let st = 0;
  let sv = 0;
  for (const p of points) {
    st += p.tS;
    sv += p.value;
  }
  const meanT = st / n;
  const meanV = sv / n;
  let num = 0;
  let spreadT = 0;
  for (const p of points) {
    num += (p.tS - meanT) * (p.value - meanV);
    spreadT += (p.tS - meanT) ** 2;
  }
  return spreadT === 0 ? null : { meanT, meanV, perS: num / spreadT, spreadT };
}

/** Least-squares slope of value over time, per hour; null with fewer than two distinct times. */
export function slopePerHour(points: readonly Point[]): number | null {
  const line = fitLine(points);
  return line === null ? null : line.perS * 3600;
}

/**
 * The slope's uncertainty: the half-width of its one-sided 95 % interval, Student's t at n - 2
 * degrees of freedom times the least-squares standard error; null under three points (no residual
 * left to estimate the scatter from).
 */
export function slopeHalfWidthPerHour(points: readonly Point[]): number | null {
  const n = points.length;
  const line = fitLine(points);
  if (n < 3 || line === null) return null;
  let residuals = 0;
  for (const p of points) residuals += (p.value - (line.meanV + line.perS * (p.tS - line.meanT))) ** 2;
  const standardError = Math.sqrt(residuals / (n - 2) / line.spreadT) * 3600;
  return studentT95(n - 2) * standardError;
}

/** One-sided 95 % quantiles of Student's t, 1 to 10 degrees of freedom; the normal's beyond 30. */
const T95 = [6.314, 2.92, 2.353, 2.132, 2.015, 1.943, 1.895, 1.86, 1.833, 1.812];
function studentT95(df: number): number {
  if (df <= T95.length) return T95[df - 1] as number;
  return df <= 30 ? 1.697 + ((30 - df) / 20) * (1.812 - 1.697) : 1.645;
}

/**
 * A garbage-collected heap grows between major collections and drops at each: in a 40-minute soak
 * of 2,000 households (2026-12-07) V8's heap went 47 -> 61 MB over about 11 minutes and back, and
 * RSS 105 -> 128 MB with it. A slope through every sample then depends on where the run ends in
 * that saw-tooth. What a leak raises is the floor the collections return to, so memory is judged on
 * troughs: the lowest sample of each span of at least TROUGH_WINDOW_S after the warm-up, a span
 * longer than one such cycle (a shorter one may hold no trough at all).
 */
export const TROUGH_WINDOW_S = 900;

/**
 * Troughs for a verdict: the floors jitter by a few MB from one cycle to the next (RSS after a
 * collection: 89.8, 85.9, 92.0 MB in the 500-household soak), so two or three say nothing about
 * 5 MB/h; with four or more the slope's interval (`slopeHalfWidthPerHour`) says whether they do.
 */
export const MIN_TROUGHS = 4;

/** How much shorter than its window a span may be (its samples' timers run late), as a share of it. */
const SPAN_SLACK = 0.01;

/**
 * The lowest value of each of the equal spans, each at least `windowS` long (less SPAN_SLACK), that `points` divide
 * into (as many as fit; empty spans left out), dated at its span's centre: a span stands for its
 * floor, and the moment a collection happened to fall in it would move a slope through troughs
 * more than the floor does (two troughs 4 minutes apart, 6 MB apart, read as 99 MB/h).
 */
export function troughs(points: readonly Point[], windowS = TROUGH_WINDOW_S): Point[] {
  if (points.length === 0) return [];
  const t0 = (points[0] as Point).tS;
  const span = (points.at(-1) as Point).tS - t0;
  // A sample comes a little after its time (a timer on an event loop): a two-hour run's first
  // sample after its hour of warm-up came 0.2 ms late, and its 3,599.9998 s made three spans of
  // 15 minutes, not four, and no verdict. A span may fall short of the window by 1 %.
  const windows = Math.max(1, Math.floor((span + windowS * SPAN_SLACK) / windowS));
  const lowest: (number | undefined)[] = new Array(windows).fill(undefined);
  for (const p of points) {
    const w = span === 0 ? 0 : Math.min(windows - 1, Math.floor(((p.tS - t0) / span) * windows));
    const cur = lowest[w];
    if (cur === undefined || p.value < cur) lowest[w] = p.value;
  }
  const out: Point[] = [];
  lowest.forEach((value, w) => {
    if (value !== undefined) out.push({ tS: t0 + ((w + 0.5) * span) / windows, value });
  });
  return out;
}

export interface Bound {
  /** The slope after warm-up must be under this, per hour. */
  maxSlopePerHour: number;
  /**
   * The slope is taken through the troughs (`troughs()`), not every sample: a garbage-collected
   * heap. Then the upper end of its interval must be under the bound, not only the slope.
   */
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
  /** On troughs: the one-sided 95 % half-width of the slope; else null. */
  slopeHalfWidthPerHour: number | null;
  bound: Bound;
  pass: boolean;
  /** Why it failed, or null. */
  failure: string | null;
}

/** A series judged against its bound, the points before `warmupS` seconds left out of the slope. */
export function judgeSeries(
  name: string,
  unit: string,
  points: readonly Point[],
  warmupS: number,
  bound: Bound,
): Figure {
  const rest = afterWarmup(points, warmupS);
  const lows = bound.troughs ? troughs(rest) : rest;
  const enough = bound.troughs ? lows.length >= MIN_TROUGHS : lows.length >= 2;
  const slope = enough ? slopePerHour(lows) : null;
  const halfWidth = enough && bound.troughs ? slopeHalfWidthPerHour(lows) : null;
  const max = points.length === 0 ? null : Math.max(...points.map((p) => p.value));
  let failure: string | null = null;
  if (slope === null)
    failure = bound.troughs
      ? `too short to judge on troughs: ${lows.length} span(s) of ${TROUGH_WINDOW_S / 60} min or more after the warm-up, ${MIN_TROUGHS} needed`
      : `too few samples after the warm-up (${rest.length}) for a slope`;
  else if (!(slope < bound.maxSlopePerHour))
    failure = `grows ${fmt(slope)} ${unit}/h, bound < ${fmt(bound.maxSlopePerHour)} ${unit}/h`;
  else if (halfWidth !== null && !(slope + halfWidth < bound.maxSlopePerHour))
    failure =
      `not settled: ${fmt(slope)} ± ${fmt(halfWidth)} ${unit}/h over ${lows.length} troughs reaches the ` +
      `bound (< ${fmt(bound.maxSlopePerHour)} ${unit}/h): a longer run narrows it`;
  else if (bound.maxValue !== undefined && max !== null && max > bound.maxValue)
    failure = `reached ${fmt(max)} ${unit}, over ${fmt(bound.maxValue)} ${unit}`;
  return {
    name,
    unit,
    afterWarmup: rest[0]?.value ?? null,
    end: points.at(-1)?.value ?? null,
    max,
    slopePerHour: slope,
    slopeHalfWidthPerHour: halfWidth,
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

/** How long the operator waited, in one span of the run: press -> raised seen, raised -> acknowledged seen. */
export interface LatencySpan {
  /** Minutes since the load started, the span's start and end. */
  fromMin: number;
  toMin: number;
  /** Presses made in the span whose alert was seen raised. */
  raised: number;
  raiseP50Ms: number | null;
  raiseP99Ms: number | null;
  raiseMaxMs: number | null;
  /** Of those, acknowledged (the operator's request to the transition it saw). */
  acknowledged: number;
  ackP99Ms: number | null;
}

/**
 * The presses' latencies per span of `windowS` (the last span may be shorter), by when the press was
 * made: something that grows with the hours (a list scanned per alert, a map never trimmed) shows
 * as a p99 that climbs from span to span while the load stays the same.
 */
export function latencyBySpan(
  presses: readonly PressRecord[],
  startedAt: number,
  durationS: number,
  windowS = TROUGH_WINDOW_S,
): LatencySpan[] {
  const spans = Math.max(1, Math.ceil(durationS / windowS));
  const raise: number[][] = Array.from({ length: spans }, () => []);
  const ack: number[][] = Array.from({ length: spans }, () => []);
  for (const p of presses) {
    if (p.raisedAt === undefined) continue;
    const w = Math.min(spans - 1, Math.max(0, Math.floor((p.pressedAt - startedAt) / 1000 / windowS)));
    (raise[w] as number[]).push(p.raisedAt - p.pressedAt);
    if (p.acknowledgedAt !== undefined) (ack[w] as number[]).push(p.acknowledgedAt - p.raisedAt);
  }
  return raise.map((r, w) => {
    const a = ack[w] as number[];
    return {
      fromMin: (w * windowS) / 60,
      toMin: Math.min(durationS, (w + 1) * windowS) / 60,
      raised: r.length,
      raiseP50Ms: quantile(r, 0.5),
      raiseP99Ms: quantile(r, 0.99),
      raiseMaxMs: quantile(r, 1),
      acknowledged: a.length,
      ackP99Ms: quantile(a, 0.99),
    };
  });
}

/** The q-quantile by nearest rank (bench/interval.ts `atPercentile`); null when there are no values. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  return atPercentile(Float64Array.from(values).sort(), q * 100);
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
