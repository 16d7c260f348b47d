/**
 * Flood (ISA-18.2): more than 10 new alerts in 10 minutes puts the site in
 * flood, under 5 ends it. While in flood, new P3/P4 alerts are held
 * (HOLD_FLOOD) so operators see the life-safety and urgent ones first; the
 * end of the flood publishes what is still open.
 */
import { moveRecord } from "../moved-times.js";
import { WheelTimer } from "../time/timer-wheel.js";
import type { Alert } from "./alert.js";
import { BY_GATEWAY, type FloodRecord, type FloodStatus, Policy, type PolicyHost } from "./ports.js";

/** Hold bit: a P3/P4 alert raised during a flood waits for its end. */
export const HOLD_FLOOD = 2;

/** ISA-18.2: a flood is more than 10 new alarms in 10 minutes; it ends under 5. */
export const FLOOD_ENTER_ABOVE = 10;
export const FLOOD_EXIT_BELOW = 5;
export const FLOOD_WINDOW_MS = 600_000;
/** The flood window is counted in buckets: the count is exact to one bucket (10 s). */
const FLOOD_BUCKET_MS = 10_000;
const FLOOD_BUCKETS = FLOOD_WINDOW_MS / FLOOD_BUCKET_MS;

export class Flood extends Policy {
  private readonly floodBuckets = new Int32Array(FLOOD_BUCKETS);
  private floodBucket = 0;
  private floodTotal = 0;
  private flooding = false;
  private floodSince: number;
  private readonly floodTimer: WheelTimer;

  constructor(
    host: PolicyHost,
    /** The open alerts, released at the end of a flood. */
    private readonly openAlerts: () => Iterable<Alert>,
  ) {
    super(host);
    this.floodSince = this.clock.now();
    this.floodBucket = Math.floor(this.floodSince / FLOOD_BUCKET_MS);
    this.floodTimer = new WheelTimer(this.floodTick, this);
  }

  get flood(): FloodStatus {
    this.advanceFlood(this.clock.now());
    return {
      state: this.flooding ? "flood" : "normal",
      since: this.floodSince,
      newAlerts10m: this.floodTotal,
    };
  }

  /**
   * A new alert: counted when it is meant for an operator (not suppressed,
   * not out of service); held while in flood when it is P3/P4.
   */
  noteNew(alert: Alert, meantForOperator: boolean, now: number): void {
    // Flood rate counts alerts meant for an operator (not suppressed, not out of service).
    if (meantForOperator) this.countNewAlert(now);
    // ISA-18.2 flood handling: lower-priority alerts wait until the flood is over.
    if (this.flooding && alert.priority >= 3) alert.holds |= HOLD_FLOOD;
  }

  /** The flood hold of an alert read back after a restart: only while the restored flood lasts. */
  restoredHold(alert: Alert): number {
    return this.flooding && alert.priority >= 3 && (alert.holds & HOLD_FLOOD) !== 0 ? HOLD_FLOOD : 0;
  }

  stop(): void {
    this.wheel.disarm(this.floodTimer);
  }

  /** The flood detector's state for the journal. */
  floodRecord(): FloodRecord {
    return {
      flooding: this.flooding,
      since: this.floodSince,
      bucket: this.floodBucket,
      buckets: Array.from(this.floodBuckets),
    };
  }

  restoreFlood(rec: FloodRecord): void {
    const current = Math.floor(this.clock.now() / FLOOD_BUCKET_MS);
    // A window ending after now: the clock was set back across the restart. It is moved to end
    // now, its counts in their order; as written, the flood's timer waited for the clock to catch
    // up (a day set back: P3/P4 alerts held a day).
    const back = rec.bucket > current ? rec.bucket - current : 0;
    if (rec.buckets.length === FLOOD_BUCKETS) {
      if (back === 0) {
        this.floodBuckets.set(rec.buckets);
        this.floodBucket = rec.bucket;
      } else {
        const slot = (bucket: number) => ((bucket % FLOOD_BUCKETS) + FLOOD_BUCKETS) % FLOOD_BUCKETS;
        for (let i = 0; i < FLOOD_BUCKETS; i++)
          this.floodBuckets[slot(current - i)] = rec.buckets[slot(rec.bucket - i)] ?? 0;
        this.floodBucket = current;
      }
      this.floodTotal = this.floodBuckets.reduce((a, b) => a + b, 0);
      this.advanceFlood(this.clock.now());
    }
    this.flooding = rec.flooding;
    this.floodSince = rec.since - back * FLOOD_BUCKET_MS;
    if (this.flooding) this.wheel.arm(this.floodTimer, (this.floodBucket + 1) * FLOOD_BUCKET_MS);
  }

  /**
   * The wall clock stepped by `stepMs` while running: the 10-minute window moves with it, its
   * counts in their order (a step back would leave it ahead of the clock, a step forward would age
   * it out at once), and so does the flood's `since`; journaled so.
   */
  shiftTimes(stepMs: number): void {
    const m = moveFloodRecord(this.floodRecord(), stepMs);
    this.floodBuckets.set(m.buckets);
    this.floodBucket = m.bucket;
    this.floodSince = m.since;
    if (this.flooding) this.wheel.arm(this.floodTimer, (this.floodBucket + 1) * FLOOD_BUCKET_MS);
    if (this.floodTotal > 0 || this.flooding) this.recorder?.flood(this.floodRecord());
  }

  private advanceFlood(now: number): void {
    const b = Math.floor(now / FLOOD_BUCKET_MS);
    if (b <= this.floodBucket) return;
    const steps = Math.min(b - this.floodBucket, FLOOD_BUCKETS);
    for (let i = 1; i <= steps; i++) {
      const idx = (this.floodBucket + i) % FLOOD_BUCKETS;
      this.floodTotal -= this.floodBuckets[idx]!;
      this.floodBuckets[idx] = 0;
    }
    this.floodBucket = b;
  }

  private countNewAlert(now: number): void {
    this.advanceFlood(now);
    this.floodBuckets[this.floodBucket % FLOOD_BUCKETS]!++;
    this.floodTotal++;
    const enters = !this.flooding && this.floodTotal > FLOOD_ENTER_ABOVE;
    if (enters) {
      this.flooding = true;
      this.floodSince = now;
      this.wheel.arm(this.floodTimer, (this.floodBucket + 1) * FLOOD_BUCKET_MS);
    }
    // Journaled on every count, so a crash mid-window resumes the count where it was. Bounded: one
    // fixed-size record per new alert (which writes its own record anyway); buckets that only age
    // out are not written, they are recomputed from the clock at restore.
    this.recorder?.flood(this.floodRecord());
    if (enters) this.listener.floodChanged?.(this.flood);
  }

  /** While in flood: every bucket, check whether the rate fell under the exit mark. */
  private readonly floodTick = (): void => {
    const now = this.clock.now();
    this.advanceFlood(now);
    if (this.floodTotal >= FLOOD_EXIT_BELOW) {
      this.wheel.arm(this.floodTimer, (this.floodBucket + 1) * FLOOD_BUCKET_MS);
      return;
    }
    this.flooding = false;
    this.floodSince = now;
    this.recorder?.flood(this.floodRecord());
    this.listener.floodChanged?.(this.flood);
    for (const a of [...this.openAlerts()]) {
      if ((a.holds & HOLD_FLOOD) === 0) continue;
      a.holds &= ~HOLD_FLOOD;
      if (a.holds === 0) this.emit(a, "flood-released", BY_GATEWAY, "flood ended", true);
      else this.recorder?.alert(a);
    }
  };
}

/**
 * The flood record moved by `ms` (a step of the wall clock while running, a clock set back across a
 * restart: gateway/moved-times.ts): the 10-minute window's counts in their order (a step back would
 * leave it ahead of the clock, a step forward would age it out at once), and its `since`.
 */
export function moveFloodRecord<R extends FloodRecord>(rec: R, ms: number): R {
  const by = Math.round(ms / FLOOD_BUCKET_MS);
  const out = moveRecord("flood", rec, ms);
  if (by === 0 || rec.buckets.length !== FLOOD_BUCKETS) return out;
  const slot = (bucket: number) => ((bucket % FLOOD_BUCKETS) + FLOOD_BUCKETS) % FLOOD_BUCKETS;
  const buckets = new Array<number>(FLOOD_BUCKETS).fill(0);
  for (let i = 0; i < FLOOD_BUCKETS; i++)
    buckets[slot(rec.bucket + by - i)] = rec.buckets[slot(rec.bucket - i)] ?? 0;
  return { ...out, bucket: rec.bucket + by, buckets };
}
