/**
 * The site's local calendar (`site.timezone`), for what operators read as
 * "today" and "opening hours": a kiosk in Shanghai opens at 08:30 Shanghai
 * time whatever zone the gateway's process runs in (edge boxes run in UTC).
 *
 * ICU does the zone arithmetic (DST and zones without DST alike). It runs on
 * the poll path (every kiosk sample), so the zone's offset is cached per
 * quarter hour of UTC: offsets change only at transitions, which fall on
 * quarter hours in every IANA zone in use, so one ICU call per quarter hour
 * instead of one per sample.
 *
 * When the site's zone is the process's own (`site.timezone` unset, or equal
 * to `TZ`, which `linli start` sets to it), the offset is read from `Date`,
 * which V8 computes with the same ICU zone rules: the first
 * `Intl.DateTimeFormat` of a process touches ~6 MB of ICU data in the `node`
 * binary and ~2 MB of heap for its pattern generator, resident from then on
 * (docs/performance.md, "Memory, sixth pass"). Any other zone is read through
 * an `Intl.DateTimeFormat`, made when first needed.
 */

const MINUTE_MS = 60_000;
const QUARTER_MS = 15 * MINUTE_MS;
export const DAY_MS = 86_400_000;

/** Canonical IANA zone names as ICU knows them (the list costs no locale data, unlike a format). */
let canonicalZones: ReadonlySet<string> | null = null;

/** A zone `Intl.DateTimeFormat` accepts: canonical names without making one, aliases by making one. */
export function isTimeZone(tz: string): boolean {
  canonicalZones ??= new Set(Intl.supportedValuesOf("timeZone"));
  if (canonicalZones.has(tz)) return true;
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export class SiteTime {
  private fmt: Intl.DateTimeFormat | null = null;
  private cachedQuarter = Number.NaN;
  private cachedOffset = 0;

  /** `timeZone` undefined: the process's zone (the documented default of `site.timezone`). Throws RangeError for an unknown zone. */
  constructor(readonly timeZone?: string) {
    if (timeZone !== undefined && !isTimeZone(timeZone))
      throw new RangeError(`Invalid time zone specified: ${timeZone}`);
  }

  /** True while the site's zone is the one `Date` computes local time in. */
  private inProcessZone(): boolean {
    return this.timeZone === undefined || this.timeZone === process.env.TZ;
  }

  private format(): Intl.DateTimeFormat {
    this.fmt ??= new Intl.DateTimeFormat("en-US", {
      timeZone: this.timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    return this.fmt;
  }

  /** Local time minus UTC at epoch `t`, ms (Asia/Shanghai: +8 h). */
  offsetMs(t: number): number {
    const quarter = Math.floor(t / QUARTER_MS);
    if (quarter !== this.cachedQuarter) {
      this.cachedQuarter = quarter;
      this.cachedOffset = this.computeOffset(quarter * QUARTER_MS);
    }
    return this.cachedOffset;
  }

  /** Days since 1970-01-01 in local time: changes at local midnight ("today"). */
  dayNumber(t: number): number {
    return Math.floor((t + this.offsetMs(t)) / DAY_MS);
  }

  /** Milliseconds since local midnight. */
  msOfDay(t: number): number {
    const local = t + this.offsetMs(t);
    return local - Math.floor(local / DAY_MS) * DAY_MS;
  }

  /** Minutes since local midnight (opening hours are in minutes). */
  minuteOfDay(t: number): number {
    return Math.floor(this.msOfDay(t) / MINUTE_MS);
  }

  private computeOffset(t: number): number {
    // 0 - x: a zero offset is +0, not -0.
    if (this.inProcessZone()) return (0 - new Date(t).getTimezoneOffset()) * MINUTE_MS;
    const v: Record<string, number> = {};
    for (const p of this.format().formatToParts(t)) if (p.type !== "literal") v[p.type] = Number(p.value);
    const asUtc = Date.UTC(
      v.year ?? 1970,
      (v.month ?? 1) - 1,
      v.day ?? 1,
      v.hour ?? 0,
      v.minute ?? 0,
      v.second ?? 0,
    );
    // Whole seconds: `t` is on a quarter hour, the formatted time has no milliseconds.
    return asUtc - t;
  }
}
