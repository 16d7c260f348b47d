/**
 * The summary sent upstream names what the upstream broker has (docs/topics.md 0.13.31): a state
 * it refused (set aside) out, the older state read back there in.
 */
import { describe, expect, it } from "vitest";
import { AlertSummary } from "./alert-summary.js";
import { UpstreamSummary } from "./upstream-summary.js";

const P = "linli/s/";
const topic = (p: number, d: string) => `${P}alerts/p${p}/CODE/${d}`;
const state = (id: string, rev: number, priority: number) =>
  JSON.stringify({ id, rev, priority, state: "active-unacknowledged" });

/** The summary the gateway would publish for these states (without `at`). */
function summaryOf(states: [string, string, number, number][]): Record<string, unknown> {
  let out = "";
  const s = new AlertSummary(
    (p) => {
      out = p;
    },
    () => 7,
  );
  for (const [t, id, rev, p] of states) s.set(t, p, id, rev);
  s.stop();
  return JSON.parse(out);
}

describe("UpstreamSummary", () => {
  it("takes a set-aside state out, puts the older state upstream in, and leaves the rest as it is", () => {
    const u = new UpstreamSummary(P);
    const gateway = JSON.stringify(
      summaryOf([
        [topic(1, "a"), "A", 3, 1],
        [topic(3, "b"), "B", 1, 3],
      ]),
    );
    expect(u.adjust(gateway)).toBe(gateway);
    expect(u.setAside(topic(1, "a"), state("A", 3, 1))).toBe(true);
    expect(u.setAside(topic(1, "a"), state("A", 3, 1))).toBe(false); // the same again: nothing new
    expect(JSON.parse(u.adjust(gateway))).toEqual(summaryOf([[topic(3, "b"), "B", 1, 3]]));
    // Read back at connect: upstream has rev 2 of it.
    expect(u.seenUpstream(topic(1, "a"), state("A", 2, 1))).toBe(true);
    expect(u.seenUpstream(topic(1, "zz"), state("Z", 1, 1))).toBe(false); // not set aside: not ours
    expect(JSON.parse(u.adjust(gateway))).toEqual(
      summaryOf([
        [topic(1, "a"), "A", 2, 1],
        [topic(3, "b"), "B", 1, 3],
      ]),
    );
    // Its next state goes upstream: the gateway's summary stands again.
    expect(u.cleared(topic(1, "a"))).toBe(true);
    expect(u.adjust(gateway)).toBe(gateway);
    // Not alert states (a status), not JSON: never set aside for the summary.
    expect(u.setAside(`${P}devices/d/status`, "online")).toBe(false);
    expect(u.setAside(topic(2, "c"), "{")).toBe(false);
    expect(u.size).toBe(0);
  });
});
