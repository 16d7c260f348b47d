/**
 * The accounting of one point: every message that came out is matched against
 * the one that went in (bench/harness.ts explains the identities). Pure
 * functions over the send times, the receipts and the presses, so each rule
 * is unit-tested (accounting.test.ts).
 *
 * - baseline: receipts keyed by (device, seq);
 * - gateway telemetry: receipts keyed by (device, deviceTime = floor(send time)),
 *   matched in seq order within a millisecond bucket;
 * - gateway alerts: receipts keyed by (device, count): update `count = k` is
 *   the device's k-th press.
 */

export interface Accounting {
  /** Messages the generator handed to mqtt.js. */
  sent: number;
  /** Distinct messages that came out (matched to one sent). */
  delivered: number;
  lost: number;
  duplicated: number;
  /** Received but matching nothing sent (should be 0). */
  unexpected: number;
}

/** Where latencies go (bench/latency.ts's Latency), ms. */
export interface LatencySink {
  record(ms: number): void;
}

/** Preallocated receipt log: (device index, key, receive time). Bounded; overflow is counted. */
export class Receipts {
  readonly dev: Uint32Array;
  readonly key: Float64Array;
  readonly at: Float64Array;
  n = 0;
  overflow = 0;
  constructor(capacity: number, arrays?: { dev: Uint32Array; key: Float64Array; at: Float64Array }) {
    this.dev = arrays?.dev ?? new Uint32Array(capacity);
    this.key = arrays?.key ?? new Float64Array(capacity);
    this.at = arrays?.at ?? new Float64Array(capacity);
  }
  /** Receipts over arrays another thread writes (bench/alert-console.ts). */
  static over(dev: Uint32Array, key: Float64Array, at: Float64Array): Receipts {
    return new Receipts(dev.length, { dev, key, at });
  }
  push(dev: number, key: number, at: number): void {
    const i = this.n;
    if (i >= this.dev.length) {
      this.overflow++;
      return;
    }
    this.dev[i] = dev;
    this.key[i] = key;
    this.at[i] = at;
    this.n = i + 1;
  }
}

export function nextPow2(n: number): number {
  let s = 1;
  while (s < n) s <<= 1;
  return s;
}

/** First index whose value is not below `v` (`a` sorted ascending). */
export function lowerBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Send times per device, by seq (1-based): until `sendTime` knows no more. */
export function sendTimes(
  deviceIds: readonly string[],
  sendTime: (deviceId: string, seq: number) => number | undefined,
): Float64Array[] {
  return deviceIds.map((id) => {
    const out: number[] = [];
    for (let seq = 1; ; seq++) {
      const t = sendTime(id, seq);
      if (t === undefined) break;
      out.push(t);
    }
    return Float64Array.from(out);
  });
}

/** The first and last send of the point (first: +Infinity, last: 0 when nothing was sent). */
export function sendSpan(walls: readonly Float64Array[]): { first: number; last: number } {
  let first = Number.POSITIVE_INFINITY;
  for (const w of walls) if (w.length > 0 && (w[0] as number) < first) first = w[0] as number;
  const last = walls.reduce((a, w) => Math.max(a, w.length ? (w[w.length - 1] as number) : 0), 0);
  return { first, last };
}

const account = (sent: number): Accounting => ({ sent, delivered: 0, lost: 0, duplicated: 0, unexpected: 0 });

/**
 * Baseline: the subscriber sees the device payloads, keyed by seq. A press is a
 * message like any other and counts for the alerts too. Sends before
 * `warmupEnd` are accounted for but not recorded as latencies.
 */
export function accountBaseline(
  walls: readonly Float64Array[],
  presses: readonly (readonly number[])[],
  receipts: Receipts,
  warmupEnd: number,
  sent: number,
  messageLatency: LatencySink,
  p1Latency: LatencySink,
): { messages: Accounting; alerts: Accounting } {
  const msgAcc = account(sent);
  const alertAcc = account(presses.reduce((a, l) => a + l.length, 0));
  const pressSets = presses.map((l) => new Set(l));
  const counts = walls.map((w) => new Uint16Array(w.length + 1));
  for (let i = 0; i < receipts.n; i++) {
    const dev = receipts.dev[i] as number;
    const seq = receipts.key[i] as number;
    const c = counts[dev] as Uint16Array;
    if (seq < 1 || seq >= c.length) {
      msgAcc.unexpected++;
      continue;
    }
    if (c[seq]! > 0) {
      msgAcc.duplicated++;
      c[seq]!++;
      continue;
    }
    c[seq] = 1;
    msgAcc.delivered++;
    const sentAt = (walls[dev] as Float64Array)[seq - 1] as number;
    const isPress = (pressSets[dev] as Set<number>).has(seq);
    if (isPress) alertAcc.delivered++;
    if (sentAt < warmupEnd) continue;
    const ms = (receipts.at[i] as number) - sentAt;
    messageLatency.record(ms);
    if (isPress) p1Latency.record(ms);
  }
  msgAcc.lost = msgAcc.sent - msgAcc.delivered;
  alertAcc.lost = alertAcc.sent - alertAcc.delivered;
  return { messages: msgAcc, alerts: alertAcc };
}

/** Gateway telemetry: buckets of (device, ts = floor(send time)), matched in seq order. */
export function accountTelemetry(
  walls: readonly Float64Array[],
  receipts: Receipts,
  warmupEnd: number,
  sent: number,
  latency: LatencySink,
): Accounting {
  const msgAcc = account(sent);
  const tsOf = walls.map((w) => w.map(Math.floor));
  const matched = walls.map((w) => new Uint16Array(w.length));
  for (let i = 0; i < receipts.n; i++) {
    const dev = receipts.dev[i] as number;
    const ts = receipts.key[i] as number;
    const tsArr = tsOf[dev] as Float64Array;
    const lo = lowerBound(tsArr, ts);
    if (lo >= tsArr.length || tsArr[lo] !== ts) {
      msgAcc.unexpected++;
      continue;
    }
    const hi = lowerBound(tsArr, ts + 1);
    const m = matched[dev] as Uint16Array;
    const k = m[lo] as number;
    if (k >= hi - lo) {
      msgAcc.duplicated++;
      continue;
    }
    m[lo] = k + 1;
    msgAcc.delivered++;
    const sentAt = (walls[dev] as Float64Array)[lo + k] as number;
    if (sentAt >= warmupEnd) latency.record((receipts.at[i] as number) - sentAt);
  }
  msgAcc.lost = msgAcc.sent - msgAcc.delivered;
  return msgAcc;
}

/** Gateway alerts: update count k <-> the device's k-th press (its seq in `presses`). */
export function accountAlerts(
  walls: readonly Float64Array[],
  presses: readonly (readonly number[])[],
  receipts: Receipts,
  warmupEnd: number,
  latency: LatencySink,
): Accounting {
  const alertAcc = account(presses.reduce((a, l) => a + l.length, 0));
  const seenCount = presses.map((l) => new Uint8Array(l.length + 1));
  for (let i = 0; i < receipts.n; i++) {
    const dev = receipts.dev[i] as number;
    const count = receipts.key[i] as number;
    const list = presses[dev] as readonly number[];
    const seen = seenCount[dev] as Uint8Array;
    if (!Number.isInteger(count) || count < 1 || count > list.length) {
      alertAcc.unexpected++;
      continue;
    }
    if (seen[count] === 1) {
      alertAcc.duplicated++;
      continue;
    }
    seen[count] = 1;
    alertAcc.delivered++;
    const seq = list[count - 1] as number;
    const sentAt = (walls[dev] as Float64Array)[seq - 1] as number;
    if (sentAt >= warmupEnd) latency.record((receipts.at[i] as number) - sentAt);
  }
  alertAcc.lost = alertAcc.sent - alertAcc.delivered;
  return alertAcc;
}

/** Messages per second over a span of epoch ms (0 for an empty span). */
export function ratePerS(count: number, fromMs: number, toMs: number): number {
  return toMs > fromMs ? count / ((toMs - fromMs) / 1000) : 0;
}

/** CPU the hypervisor took from the machine during the load, % of one core (machine-load.ts). */
export function stealPct(stealMs: number, loadWallMs: number): number {
  return loadWallMs > 0 ? Math.max(0, (stealMs / loadWallMs) * 100) : 0;
}

/** Disturbed above this % of one core (disturbedPct): the point's figures are a reading, not a verdict. */
export const NOISY_PCT = 20;

/**
 * How much a point was disturbed, % of one core: by other processes or by the hypervisor's steal.
 * The larger of the two, not the sum: other load is busy time minus the bench's processes, and
 * busy time includes steal, so most of the steal is already in it (the rest shows as the bench's
 * processes using more CPU). A point above NOISY_PCT gives a reading, not a verdict.
 */
export function disturbedPct(p: { otherCpuPct: number; stealPct: number }): number {
  return Math.max(p.otherCpuPct, p.stealPct);
}

/**
 * CPU of everything else on the machine during the load, % of one core: the
 * machine's busy time minus the runner and the server child.
 */
export function otherCpuPct(
  machineBusyMs: number,
  machineTotalMs: number,
  loadWallMs: number,
  runnerPct: number,
  serverPct: number,
): number {
  if (machineTotalMs <= 0) return 0;
  return Math.max(0, (machineBusyMs / loadWallMs) * 100 - runnerPct - serverPct);
}
