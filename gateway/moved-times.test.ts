import { describe, expect, it } from "vitest";
import { MOVED_TIMES, type MovedKind, moveLive, moveRecord } from "./moved-times.js";

const KINDS = Object.keys(MOVED_TIMES) as MovedKind[];

describe("moved times: one list for a step while running and a clock set back across a restart", () => {
  it.each(KINDS)("%s: the running object and the journal's record move the same times, each once", (kind) => {
    const pairs = Object.entries(MOVED_TIMES[kind]) as [string, string][];
    const live: Record<string, number | null> = {};
    const rec: Record<string, number | null> = {};
    for (const [r, l] of pairs) {
      live[l] = 1_000;
      rec[r] = 1_000;
    }
    moveLive(kind, live as never, -300);
    const moved = moveRecord(kind, rec as never, -300) as Record<string, number>;
    for (const [r, l] of pairs) {
      expect(live[l], l).toBe(700);
      expect(moved[r], r).toBe(700);
    }
  });

  it("0 and null are not set and stay so; a move by 0 returns the record itself", () => {
    const live = { windowUntil: 0, unackSince: 5, escalationNextAt: null, shelvedUntil: null };
    moveLive("alert", live, 10);
    expect(live).toEqual({ windowUntil: 0, unackSince: 15, escalationNextAt: null, shelvedUntil: null });
    const rec = { by: "x", since: 1, until: null };
    expect(moveRecord("away", rec, 0)).toBe(rec);
    expect(moveRecord("away", rec, 2)).toEqual({ by: "x", since: 3, until: null });
  });
});
