import { describe, expect, it } from "vitest";
import { rssTarget } from "./report.js";

const point = (maxRssMb: number, registered: number | null, readyRssMb = 100) => ({
  server: {
    maxRssMb,
    readyRssMb,
    ...(registered === null ? {} : { gateway: { registered } }),
  } as unknown as import("./server.js").ServerSample,
});

describe("RSS target", () => {
  it("passes a peak under 150 MB with 10,000 registered devices", () => {
    const t = rssTarget([point(101, 10_000), point(98, 10_000)]);
    expect(t.pass).toBe(true);
    expect(t.measured).toContain("peak 101 MB");
  });

  it("fails a peak at or over 150 MB", () => {
    expect(rssTarget([point(101, 10_000), point(150.2, 10_000)]).pass).toBe(false);
  });

  it("gives no verdict (not FAIL) when fewer devices were registered, and says why", () => {
    const t = rssTarget([point(101, 2_000)]);
    expect(t.pass).toBeNull();
    expect(t.measured).toContain("peak 101 MB");
    expect(t.measured).toContain("2000 devices registered");
    expect(t.measured).toContain("no verdict");
    expect(rssTarget([point(101, null)]).pass).toBeNull();
  });

  it("judges by the fewest devices any gateway point registered", () => {
    expect(rssTarget([point(90, 10_000), point(95, 5_000)]).pass).toBeNull();
  });
});
