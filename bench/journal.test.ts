import { describe, expect, it } from "vitest";
import { journalPointSeconds } from "./journal.js";

const o = { durationS: 10, warmupS: 1, alarmFraction: 0.01 };

describe("journal pair points' length", () => {
  it("runs long enough at low rates for the P1 alerts asked for, after the warm-up", () => {
    // 2,000 msg/s, 1 % presses: 20 P1 a second; 800 of them take 40 s, plus the 1 s warm-up.
    expect(journalPointSeconds(2_000, o, 800)).toBe(41);
    expect(journalPointSeconds(5_000, o, 800)).toBe(17);
    expect(journalPointSeconds(3_000, o, 800)).toBe(Math.ceil(1 + 800 / 30));
  });

  it("never runs shorter than --duration", () => {
    expect(journalPointSeconds(10_000, o, 800)).toBe(10);
    expect(journalPointSeconds(20_000, { ...o, durationS: 30 }, 800)).toBe(30);
  });

  it("keeps --duration when no minimum is asked or no presses are sent", () => {
    expect(journalPointSeconds(2_000, o, 0)).toBe(10);
    expect(journalPointSeconds(2_000, { ...o, alarmFraction: 0 }, 800)).toBe(10);
  });
});
