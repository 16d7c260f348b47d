import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTimeZone, SiteTime } from "./site-time.js";

const HOUR = 3_600_000;

/** Local wall time read straight from Intl, no cache: the reference. */
function reference(fmt: Intl.DateTimeFormat, t: number): { minute: number; ymd: string } {
  const parts = fmt.formatToParts(t);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return {
    minute: Number(get("hour")) * 60 + Number(get("minute")),
    ymd: `${get("year")}-${get("month")}-${get("day")}`,
  };
}

describe("SiteTime: the site's calendar, whatever the process's zone", () => {
  const savedTz = process.env.TZ;
  beforeAll(() => {
    process.env.TZ = "UTC";
  });
  afterAll(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  it("Asia/Shanghai: 01:00 UTC is 09:00 local, midnight local is 16:00 UTC", () => {
    const sh = new SiteTime("Asia/Shanghai");
    expect(new Date(Date.UTC(2026, 0, 5, 1, 0)).getHours()).toBe(1); // the process is in UTC
    expect(sh.offsetMs(Date.UTC(2026, 0, 5, 1, 0))).toBe(8 * HOUR);
    expect(sh.minuteOfDay(Date.UTC(2026, 0, 5, 1, 0))).toBe(9 * 60);
    expect(sh.dayNumber(Date.UTC(2026, 0, 5, 15, 59, 59))).toBe(sh.dayNumber(Date.UTC(2026, 0, 5, 1, 0)));
    expect(sh.dayNumber(Date.UTC(2026, 0, 5, 16, 0))).toBe(sh.dayNumber(Date.UTC(2026, 0, 5, 1, 0)) + 1);
    expect(sh.msOfDay(Date.UTC(2026, 0, 5, 16, 0, 0, 250))).toBe(250);
  });

  it("agrees with Intl every 47 minutes over a year, across DST and odd offsets", () => {
    for (const zone of ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "UTC"]) {
      const st = new SiteTime(zone);
      const fmt = new Intl.DateTimeFormat("en-CA", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
      });
      let mismatches = 0;
      // 47 min 13 s steps: every minute of the hour and every quarter-hour cache slot gets visited.
      for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 47 * 60_000 + 13_000) {
        const ref = reference(fmt, t);
        const day = new Date(st.dayNumber(t) * 86_400_000).toISOString().slice(0, 10);
        if (st.minuteOfDay(t) !== ref.minute || day !== ref.ymd) mismatches++;
      }
      expect({ zone, mismatches }).toEqual({ zone, mismatches: 0 });
    }
  });

  it("a DST change takes effect at the transition (Europe/Berlin, 2026-03-29 01:00 UTC)", () => {
    const be = new SiteTime("Europe/Berlin");
    expect(be.minuteOfDay(Date.UTC(2026, 2, 29, 0, 59))).toBe(1 * 60 + 59);
    expect(be.minuteOfDay(Date.UTC(2026, 2, 29, 1, 0))).toBe(3 * 60);
  });

  it("an unknown zone is refused", () => {
    expect(() => new SiteTime("Mars/Olympus")).toThrow(RangeError);
  });

  it("in the process's own zone it agrees with Intl every 47 minutes over a year, and makes no Intl.DateTimeFormat", () => {
    // Names ICU lists as canonical (Intl.supportedValuesOf): "Asia/Katmandu", not "Asia/Kathmandu".
    const zones = [
      "Asia/Shanghai",
      "Europe/Berlin",
      "America/New_York",
      "Asia/Katmandu",
      "Australia/Lord_Howe",
    ];
    // The references first: the counter below is for SiteTime's own formats only.
    const refs = zones.map(
      (zone) =>
        new Intl.DateTimeFormat("en-CA", {
          timeZone: zone,
          hourCycle: "h23",
          year: "numeric",
          month: "2-digit",
          day: "2-digit",
          hour: "2-digit",
          minute: "2-digit",
        }),
    );
    const Real = Intl.DateTimeFormat;
    let made = 0;
    Intl.DateTimeFormat = new Proxy(Real, {
      construct(target, args) {
        made++;
        return Reflect.construct(target, args);
      },
    });
    try {
      zones.forEach((zone, i) => {
        process.env.TZ = zone;
        // Named as TZ names it, and unset (the process's zone): both read Date.
        for (const st of [new SiteTime(zone), new SiteTime()]) {
          let mismatches = 0;
          for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 47 * 60_000 + 13_000) {
            const ref = reference(refs[i] as Intl.DateTimeFormat, t);
            const day = new Date(st.dayNumber(t) * 86_400_000).toISOString().slice(0, 10);
            if (st.minuteOfDay(t) !== ref.minute || day !== ref.ymd) mismatches++;
          }
          expect({ zone, named: st.timeZone, mismatches }).toEqual({
            zone,
            named: st.timeZone,
            mismatches: 0,
          });
        }
      });
      // ~8 MB resident for the first format of a process (ICU data and its pattern generator).
      expect(made).toBe(0);
      // Another zone than the process's still goes through Intl, made once.
      process.env.TZ = "UTC";
      const sh = new SiteTime("Asia/Shanghai");
      expect(sh.offsetMs(Date.UTC(2026, 0, 5, 1, 0))).toBe(8 * HOUR);
      expect(sh.offsetMs(Date.UTC(2026, 6, 5, 1, 0))).toBe(8 * HOUR);
      expect(made).toBe(1);
    } finally {
      Intl.DateTimeFormat = Real;
      process.env.TZ = "UTC";
    }
  });

  it("a zero offset is +0 on both paths", () => {
    expect(Object.is(new SiteTime().offsetMs(Date.UTC(2026, 0, 1)), 0)).toBe(true);
    expect(Object.is(new SiteTime("UTC").offsetMs(Date.UTC(2026, 0, 1)), 0)).toBe(true);
    expect(Object.is(new SiteTime("Africa/Abidjan").offsetMs(Date.UTC(2026, 0, 1)), 0)).toBe(true);
  });

  it("isTimeZone: canonical names and aliases as Intl takes them, unknown ones refused", () => {
    for (const tz of ["Asia/Shanghai", "UTC", "Asia/Calcutta", "US/Eastern", "Etc/GMT-8", "asia/shanghai"]) {
      let intl = true;
      try {
        new Intl.DateTimeFormat("en", { timeZone: tz });
      } catch {
        intl = false;
      }
      expect({ tz, ok: isTimeZone(tz) }).toEqual({ tz, ok: intl });
    }
    expect(isTimeZone("Mars/Olympus")).toBe(false);
    expect(isTimeZone("")).toBe(false);
  });
});
