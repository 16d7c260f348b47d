/** The journal verdicts of `npm run bench` (bench/report.ts): which points get a P1 verdict. */
import { describe, expect, it } from "vitest";
import { type JournalSummary, journalTargets } from "./report.js";

type P = JournalSummary["points"][number];
const point = (over: Partial<P>): P => ({
  rate: 2000,
  p1P99OffMs: 4,
  p1P99OnMs: 4.4,
  p1P99Ratio: 1.1,
  achievedOff: 2000,
  achievedOn: 2000,
  sustainedOff: true,
  sustainedOn: true,
  notSustainedOnBecause: [],
  otherPctOff: 3,
  otherPctOn: 3,
  p1P99LoopMs: null,
  p1P99LoopRatio: null,
  achievedLoop: null,
  records: 1,
  syncs: 1,
  lastSyncMs: 0.2,
  bytesOnDisk: 1,
  ...over,
});
const summary = (points: P[], off: number, on: number): JournalSummary => ({
  points,
  maxSustainedOff: off,
  maxSustainedOn: on,
  sustainedRatio: off > 0 ? on / off : null,
});

describe("journal targets", () => {
  it("judges the P1 ratio at every rate journal-off sustains, and only there", () => {
    const t = journalTargets(
      summary(
        [
          point({ rate: 2000 }),
          point({ rate: 5000, p1P99Ratio: 1.4, p1P99OnMs: 5.6 }),
          point({ rate: 20000, sustainedOff: false, sustainedOn: false, p1P99Ratio: 3 }),
        ],
        5000,
        5000,
      ),
    );
    expect(t.map((x) => x.pass)).toEqual([true, false, null, true]);
    expect(t[2]?.measured).toMatch(/above capacity/);
  });

  it("gives no verdict for a disturbed point, even one that looks above capacity", () => {
    const t = journalTargets(summary([point({ sustainedOff: false, otherPctOn: 150 })], 0, 0));
    expect(t[0]?.pass).toBeNull();
    expect(t[0]?.measured).toMatch(/disturbed/);
  });

  it("fails the sustained-rate target when on sustains less than 90 % of off", () => {
    const t = journalTargets(
      summary([point({ rate: 5000 }), point({ rate: 10000, sustainedOn: false })], 10000, 5000),
    );
    expect(t.at(-1)?.pass).toBe(false);
  });
});
