/**
 * The console's side of the alerts summary (public/sync.js): it digests what it holds exactly as
 * the gateway digests what it published (gateway/northbound/alert-summary.ts), and says complete
 * only when every state the summary names is held, in whatever order they arrived.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AlertSummary, fnv1a64 as gatewayFnv, hex64 } from "../northbound/alert-summary.js";

interface Body {
  id: string;
  rev: number;
  priority: number;
  state: string;
}
interface Held {
  size: number;
  apply(topic: string, body: Body | null): void;
  clear(): void;
  matches(summary: unknown, priorities?: number[]): boolean;
}
interface Sync {
  fnv1a64: (text: string) => [number, number];
  HeldAlerts: new () => Held;
}

const load = async () =>
  (await import(pathToFileURL(path.resolve("gateway/console/public/sync.js")).href)) as Sync;

/** The summary the gateway would publish for these open states (topic -> state). */
function summaryOf(open: Map<string, Body>): Record<string, unknown> {
  let payload = "";
  const s = new AlertSummary((p) => {
    payload = p;
  }, Date.now);
  for (const [topic, b] of open) s.set(topic, b.priority, b.id, b.rev);
  s.stop();
  return JSON.parse(payload);
}

const state = (i: number, rev = 1, priority = (i % 4) + 1): [string, Body] => [
  `linli/s/alerts/p${priority}/CODE/d-${i}`,
  { id: `mwtnm9rq-${i.toString(36)}`, rev, priority, state: "active-unacknowledged" },
];

describe("console sync (alerts/summary)", () => {
  it("hashes as the gateway does, any text", async () => {
    const { fnv1a64 } = await load();
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
        const out: [number, number] = [0, 0];
        gatewayFnv(s, out);
        expect(fnv1a64(s)).toEqual(out);
      }),
    );
  });

  it("is complete only when the last of the states arrives, in any order, and not before", async () => {
    const { HeldAlerts } = await load();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.infiniteStream(fc.nat()),
        fc.boolean(),
        (n, rand, summaryFirst) => {
          const open = new Map<string, Body>();
          for (let i = 0; i < n; i++) open.set(...state(i, 1 + (i % 3)));
          const summary = summaryOf(open);
          // The broker's order: any.
          const arrivals = [...open];
          const r = rand[Symbol.iterator]();
          for (let i = arrivals.length - 1; i > 0; i--) {
            const j = (r.next().value as number) % (i + 1);
            [arrivals[i], arrivals[j]] = [arrivals[j] as [string, Body], arrivals[i] as [string, Body]];
          }
          const held = new HeldAlerts();
          let known: unknown = summaryFirst ? summary : null;
          arrivals.forEach(([topic, body], k) => {
            expect(held.matches(known)).toBe(false);
            held.apply(topic, body);
            if (!summaryFirst && k === arrivals.length - 1) known = summary;
          });
          if (!summaryFirst) known = summary;
          expect(held.matches(known)).toBe(true);
          expect(held.size).toBe(n);
        },
      ),
    );
  });

  it("not complete with an older rev, an extra state, or a state closed since; a P1 desk checks P1 only", async () => {
    const { HeldAlerts } = await load();
    const open = new Map<string, Body>([state(1, 5, 1), state(2, 1, 3), state(3, 2, 4)]);
    const summary = summaryOf(open);
    const held = new HeldAlerts();
    for (const [topic, body] of open) held.apply(topic, body);
    expect(held.matches(summary)).toBe(true);

    const [t1, b1] = state(1, 4, 1);
    held.apply(t1, b1); // rev 4 where the summary names rev 5
    expect(held.matches(summary)).toBe(false);
    expect(held.matches(summary, [3, 4])).toBe(true);
    held.apply(t1, { ...b1, rev: 5 });
    expect(held.matches(summary)).toBe(true);

    const [t9, b9] = state(9, 1, 2);
    held.apply(t9, b9); // raised after the summary
    expect(held.matches(summary)).toBe(false);
    held.apply(t9, { ...b9, rev: 2, state: "closed" }); // its closed state, then the empty payload
    held.apply(t9, null);
    expect(held.matches(summary)).toBe(true);

    const [t3] = state(3, 2, 4);
    held.apply(t3, null); // closed since the summary: the next summary will say so
    expect(held.matches(summary)).toBe(false);
    open.delete(t3);
    expect(held.matches(summaryOf(open))).toBe(true);

    // Only P1 subscribed: P1 checked alone.
    const p1 = new HeldAlerts();
    p1.apply(t1, { ...b1, rev: 5 });
    expect(p1.matches(summary)).toBe(false);
    expect(p1.matches(summary, [1])).toBe(true);
    // No summary (yet), or a malformed one: never complete.
    expect(p1.matches(null, [1])).toBe(false);
    expect(p1.matches({ p1: "x" }, [1])).toBe(false);
    expect(hex64(0, 0)).toBe("0000000000000000");
  });
});
