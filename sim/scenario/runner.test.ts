import { describe, expect, it } from "vitest";
import { drawdownCodes, drawdownTarget } from "./runner.js";

describe("tank drawn down: what it must cause (LV-4 datasheet)", () => {
  it("`to` in mm or as a share of the tank height, half the tank by default", () => {
    expect(drawdownTarget(undefined, 4000)).toBe(2000);
    expect(drawdownTarget("25%", 4000)).toBe(1000);
    expect(drawdownTarget("12.5%", 4000)).toBe(500);
    expect(drawdownTarget(1800, 4000)).toBe(1800);
  });

  it("low under the reserve, critical too under 30 % of the height, nothing above the reserve", () => {
    // The sensor's default set-point 2400 mm, 30 % of a 4000 mm tank is 1200 mm.
    expect(drawdownCodes(2000, 2400, 1200)).toEqual(["WATER_LEVEL_LOW"]);
    expect(drawdownCodes(1000, 2400, 1200)).toEqual(["WATER_LEVEL_LOW", "WATER_LEVEL_CRITICAL"]);
    expect(drawdownCodes(2400, 2400, 1200)).toEqual(["none"]);
    expect(drawdownCodes(3000, 2400, 1200)).toEqual(["none"]);
  });
});
