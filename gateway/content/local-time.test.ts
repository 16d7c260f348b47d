import { describe, expect, it } from "vitest";
import { SiteTime } from "../../core/index.js";
import { localClock, localIso } from "./local-time.js";

describe("local times in the site's zone", () => {
  const t = Date.UTC(2026, 11, 2, 14, 15, 3, 120);

  it("Asia/Shanghai: +08:00, the local wall clock", () => {
    const sh = new SiteTime("Asia/Shanghai");
    expect(localIso(t, sh)).toBe("2026-12-02T22:15:03.120+08:00");
    expect(localClock(t, sh)).toBe("22:15");
    // Past local midnight: the date moves too.
    expect(localIso(Date.UTC(2026, 11, 2, 16, 30), sh)).toBe("2026-12-03T00:30:00.000+08:00");
    expect(new Date(localIso(t, sh) as string).getTime()).toBe(t);
  });

  it("negative and half-hour offsets, and daylight saving time", () => {
    expect(localIso(t, new SiteTime("America/New_York"))).toBe("2026-12-02T09:15:03.120-05:00");
    expect(localIso(Date.UTC(2026, 6, 1, 12), new SiteTime("America/New_York"))).toBe(
      "2026-07-01T08:00:00.000-04:00",
    );
    expect(localIso(t, new SiteTime("Asia/Kolkata"))).toBe("2026-12-02T19:45:03.120+05:30");
    expect(localIso(t, new SiteTime("UTC"))).toBe("2026-12-02T14:15:03.120+00:00");
  });

  it("null stays null", () => {
    expect(localIso(null, new SiteTime("Asia/Shanghai"))).toBeNull();
  });
});
