/**
 * Quiet hours in a site's local time (welfare checks wait for them to end).
 * SiteTime (core) does the time-zone arithmetic, so DST and zones without DST
 * both work; only used when a welfare timer fires, never on the message path.
 */
import { SiteTime } from "../../core/index.js";

export interface QuietHours {
  /** Minutes after local midnight; start !== end. A window may wrap midnight ("22:00-07:00"). */
  readonly start: number;
  readonly end: number;
}

/** "22:00-07:00" -> {start: 1320, end: 420}; null when malformed or empty. */
export function parseQuietHours(text: string): QuietHours | null {
  const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (!m) return null;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  return start === end ? null : { start, end };
}

const DAY_MS = 86_400_000;

export class LocalClock {
  private readonly site: SiteTime;

  /** `timeZone` undefined: the system's zone. Throws RangeError for an unknown zone. */
  constructor(readonly timeZone?: string) {
    this.site = new SiteTime(timeZone);
  }

  /** Milliseconds since local midnight at epoch `t`. */
  msOfDay(t: number): number {
    return this.site.msOfDay(t);
  }

  inQuietHours(t: number, q: QuietHours): boolean {
    const min = Math.floor(this.msOfDay(t) / 60_000);
    return q.start < q.end ? min >= q.start && min < q.end : min >= q.start || min < q.end;
  }

  /** The next epoch ms, after `t`, at which local time reads the end of the quiet hours. */
  quietHoursEnd(t: number, q: QuietHours): number {
    const target = q.end * 60_000;
    let at = t + ((target - this.msOfDay(t) + DAY_MS) % DAY_MS || DAY_MS);
    // A DST change in between moves local time by the offset difference: correct once.
    const drift = this.msOfDay(at) - target;
    if (drift !== 0 && Math.abs(drift) < DAY_MS / 2) at -= drift;
    return at;
  }
}
