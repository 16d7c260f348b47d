/**
 * Smoke test of the bus benchmark's TCP scenario: a few kiosks, a short
 * window. Asserts the accounting and the report's shape, not timing figures.
 */
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runKiosks } from "./bus-tcp.js";

describe("bus benchmark: kiosks on Modbus TCP", () => {
  it("polls every kiosk once a second and reports lateness, CPU and RSS", async () => {
    // bench.test.ts builds dist/ in its beforeAll; this file runs the built children too.
    if (!existsSync("dist/bench/kiosk-gateway.js"))
      throw new Error("run `npm run build` first (npm test does)");
    const r = await runKiosks(20, 2, 1.5);
    expect(r.kiosks).toBe(20);
    expect(r.online).toBe(20);
    expect(r.pollsFailed).toBe(0);
    // 20 kiosks at 1 Hz for ~2 s: about 40 polls, each with a lateness sample.
    expect(r.pollsOk).toBeGreaterThanOrEqual(30);
    expect(r.latenessMs.samples).toBe(r.pollsOk);
    expect(r.latenessMs.p99).toBeGreaterThanOrEqual(r.latenessMs.p50);
    expect(r.rssMb).toBeGreaterThan(0);
  }, 60_000);
});
