import { describe, expect, it } from "vitest";
import { LocalClock, parseQuietHours } from "./quiet-hours.js";

describe("quiet hours", () => {
  it("parses HH:MM-HH:MM and refuses an empty window", () => {
    expect(parseQuietHours("22:00-07:00")).toEqual({ start: 1320, end: 420 });
    expect(parseQuietHours("07:00-07:00")).toBeNull();
    expect(parseQuietHours("7:00-8:00")).toBeNull();
  });

  it("a window that wraps midnight, in UTC", () => {
    const local = new LocalClock("UTC");
    const q = parseQuietHours("22:00-07:00")!;
    expect(local.inQuietHours(Date.UTC(2026, 0, 5, 23, 30), q)).toBe(true);
    expect(local.inQuietHours(Date.UTC(2026, 0, 5, 6, 59), q)).toBe(true);
    expect(local.inQuietHours(Date.UTC(2026, 0, 5, 7, 0), q)).toBe(false);
    expect(local.inQuietHours(Date.UTC(2026, 0, 5, 21, 59), q)).toBe(false);
    expect(local.quietHoursEnd(Date.UTC(2026, 0, 5, 23, 30, 15), q)).toBe(Date.UTC(2026, 0, 6, 7, 0));
    expect(local.quietHoursEnd(Date.UTC(2026, 0, 6, 3, 0), q)).toBe(Date.UTC(2026, 0, 6, 7, 0));
  });

  it("in the site's time zone (Asia/Shanghai is UTC+8)", () => {
    const local = new LocalClock("Asia/Shanghai");
    const q = parseQuietHours("22:00-07:00")!;
    // 15:00 UTC is 23:00 in Shanghai.
    expect(local.inQuietHours(Date.UTC(2026, 0, 5, 15, 0), q)).toBe(true);
    expect(local.quietHoursEnd(Date.UTC(2026, 0, 5, 15, 0), q)).toBe(Date.UTC(2026, 0, 5, 23, 0));
  });

  it("across a DST change (Europe/Berlin, 29 March 2026: 02:00 -> 03:00)", () => {
    const local = new LocalClock("Europe/Berlin");
    const q = parseQuietHours("22:00-07:00")!;
    // 23:00 local (CET, UTC+1) on the 28th; 07:00 local on the 29th is CEST (UTC+2) = 05:00 UTC.
    expect(local.quietHoursEnd(Date.UTC(2026, 2, 28, 22, 0), q)).toBe(Date.UTC(2026, 2, 29, 5, 0));
  });
});
