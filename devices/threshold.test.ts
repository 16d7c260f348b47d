import { describe, expect, it } from "vitest";
import { ThresholdState } from "./threshold.js";

describe("ThresholdState", () => {
  it("above a limit, with a deadband: OVERHEAT > 45 °C, back under 43 °C", () => {
    const t = new ThresholdState({ above: 45, deadband: 2 });
    expect([44, 45, 45.1, 44, 43.5, 43, 46].map((v) => t.update(v))).toEqual([
      false,
      false,
      true,
      true,
      true,
      false,
      true,
    ]);
  });

  it("below a limit: HYDRANT_PRESSURE_LOW < 0.15 MPa, back at 0.17 MPa", () => {
    const t = new ThresholdState({ below: 0.15, deadband: 0.02 });
    expect([0.3, 0.16, 0.149, 0.16, 0.169, 0.17].map((v) => t.update(v))).toEqual([
      false,
      false,
      true,
      true,
      true,
      false,
    ]);
  });

  it("beyond: the limit itself, the deadband left out (what an on-delay times)", () => {
    const t = new ThresholdState({ below: 4.0, deadband: 1.0 });
    expect(t.beyond).toBe(false);
    expect([3.9, 4.0, 4.5, 3.9, 5.0].map((v) => [t.update(v), t.beyond])).toEqual([
      [true, true],
      [true, false],
      [true, false],
      [true, true],
      [false, false],
    ]);
    const gas = new ThresholdState({ above: 10, deadband: 5, inclusive: true });
    expect([10, 7, 4.9].map((v) => [gas.update(v), gas.beyond])).toEqual([
      [true, true],
      [true, false],
      [false, false],
    ]);
  });

  it("a value hovering on the limit does not flap", () => {
    const t = new ThresholdState({ above: 45, deadband: 1 });
    let changes = 0;
    let last = false;
    for (let i = 0; i < 100; i++) {
      const v = 45 + (i % 2 === 0 ? 0.3 : -0.3);
      if (t.update(v) !== last) changes++;
      last = t.active;
    }
    expect(changes).toBe(1);
  });

  it("a non-finite reading changes nothing", () => {
    const t = new ThresholdState({ above: 45, deadband: 2 });
    t.update(50);
    expect(t.update(Number.NaN)).toBe(true);
    expect(t.value).toBe(50);
  });

  it("refuses a negative deadband", () => {
    expect(() => new ThresholdState({ above: 1, deadband: -1 })).toThrow(RangeError);
  });
});
