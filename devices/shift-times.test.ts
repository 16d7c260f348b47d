/**
 * A step of the wall clock while running moves the gateway times a model's rule state keeps
 * (`shiftTimes`): those an on-delay counts from, and the ones a duration is measured from; a time
 * not set (0) stays 0.
 */
import { describe, expect, it } from "vitest";
import { ds10 } from "./ds10.js";
import { gd2 } from "./gd2.js";
import { gk3 } from "./gk3.js";
import { lv4 } from "./lv4.js";
import { mfs8 } from "./mfs8.js";

const T = 1_800_000_000_000;
const H = 3_600_000;

describe("a model's rule state across a step of the wall clock", () => {
  it("moves every gateway time that is set, by the step, and leaves unset ones at 0", () => {
    const g = gd2.initialState();
    g.mainsLostSince = T;
    gd2.shiftTimes?.(g, H);
    expect([g.mainsLostSince, g.leakSince]).toEqual([T + H, 0]);

    const d = ds10.initialState();
    d.openSince = T;
    d.lastCloseGw = T - 5;
    ds10.shiftTimes?.(d, -H);
    expect([d.openSince, d.lastCloseGw]).toEqual([T - H, T - 5 - H]);

    const l = lv4.initialState();
    l.lowSince = T;
    lv4.shiftTimes?.(l, H);
    expect([l.lowSince, l.freezeSince]).toEqual([T + H, 0]);

    const m = mfs8.initialState();
    m.emptySince[2] = T;
    mfs8.shiftTimes?.(m, H);
    expect(m.emptySince).toEqual([0, 0, T + H, 0, 0, 0, 0, 0]);

    const k = gk3.initialState();
    k.lastAt = T;
    gk3.shiftTimes?.(k, H);
    expect(k.lastAt).toBe(T + H);
  });
});
