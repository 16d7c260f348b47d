import { afterEach, describe, expect, it, vi } from "vitest";
import { mockedClocks } from "../../../test/support/mocked-clocks.js";
import { RestartBackoff } from "./restart-backoff.js";

describe("RestartBackoff", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("doubles while the worker keeps dying, up to 30 s; a worker that served a minute starts over", () => {
    let now = 0;
    const b = new RestartBackoff(() => now);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      b.died();
      delays.push(b.take());
      now += 1000;
      b.up();
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    now += 60_000;
    b.died();
    expect(b.take()).toBe(500);
  });

  it("how long a worker served is elapsed time: a step of the wall clock neither resets nor holds it", () => {
    const c = mockedClocks();
    const b = new RestartBackoff();
    b.died();
    expect(b.take()).toBe(500);
    b.up();
    // A crash loop while NTP steps the clock forward: still backed off.
    c.wall += 3_600_000;
    c.mono += 1000;
    b.died();
    expect(b.take()).toBe(1000);
    b.up();
    // A worker that served an hour while the clock was set back a day: starts over.
    c.wall -= 86_400_000;
    c.mono += 3_600_000;
    b.died();
    expect(b.take()).toBe(500);
  });
});
