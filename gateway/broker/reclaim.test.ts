import { afterEach, describe, expect, it, vi } from "vitest";
import { FloodReclaim } from "./reclaim.js";

describe("FloodReclaim", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs one GC once a flood of closed connections has been quiet for quietMs", () => {
    vi.useFakeTimers();
    let gcs = 0;
    const r = new FloodReclaim(100, 10_000, () => gcs++);
    for (let i = 0; i < 99; i++) r.closedBeforeLogin();
    vi.advanceTimersByTime(60_000);
    expect(gcs).toBe(0);
    for (let i = 0; i < 500; i++) {
      r.closedBeforeLogin();
      vi.advanceTimersByTime(10);
    }
    // Still flooding 9 s after the threshold: nothing yet.
    vi.advanceTimersByTime(9_000);
    expect(gcs).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(gcs).toBe(1);
    vi.advanceTimersByTime(60_000);
    expect(gcs).toBe(1);
    r.stop();
  });

  it("reaches V8's gc without --expose-gc on the command line", () => {
    expect(() => new FloodReclaim().stop()).not.toThrow();
  });
});
