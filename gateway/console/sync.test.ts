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
interface Resolver {
  state: string;
  round: number;
  last: { fetched: number; dropped: number; retryAfterMs: number };
  start(summary: unknown, priorities?: number[], now?: number): boolean;
  onResult(body: unknown): boolean;
}
interface Io {
  request(priority: number, after: string, ref: string): void;
  fetch(topics: string[]): void;
  drop(topic: string): void;
}
interface Sync {
  fnv1a64: (text: string) => [number, number];
  HeldAlerts: new () => Held;
  SyncResolver: new (held: Held, io: Io) => Resolver;
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

describe("console sync: resolving a mismatch with list (docs/topics.md 0.13.31)", () => {
  /**
   * The gateway's side (AlertSummary, answering `list` pages as ops.ts does) and a broker that
   * holds the retained states: what the console's resolver asks and fetches, end to end, no MQTT.
   */
  function site(open: Map<string, Body>, pageSize = 7) {
    let summary: unknown = null;
    const gw = new AlertSummary((p) => {
      summary = JSON.parse(p);
    }, Date.now);
    for (const [topic, b] of open) gw.set(topic, b.priority, b.id, b.rev);
    gw.flush();
    const answers: unknown[] = [];
    const fetched: string[][] = [];
    const dropped: string[] = [];
    const io: Io = {
      request: (priority, after, ref) => {
        const page = gw.page(priority, after, pageSize);
        answers.push({ action: "list", target: `p${priority}`, ok: true, result: "listed", ref, ...page });
      },
      fetch: (topics) => fetched.push(topics),
      drop: (topic) => dropped.push(topic),
    };
    return { gw, summary: () => summary, answers, fetched, dropped, io };
  }

  it("finds the states a broker dropped, the stale ones and the closed ones, pages through, and then matches", async () => {
    const { HeldAlerts, SyncResolver } = await load();
    const open = new Map<string, Body>();
    for (let i = 0; i < 40; i++) open.set(...state(i, 1 + (i % 3)));
    const s = site(open);
    const held = new HeldAlerts();
    const arrived = [...open];
    // The broker dropped 5, sent one at an older rev, and the client holds a ghost closed long ago.
    for (const [topic, body] of arrived.slice(5)) held.apply(topic, body);
    const [staleTopic, staleBody] = arrived[10] as [string, Body];
    held.apply(staleTopic, { ...staleBody, rev: staleBody.rev - 1 });
    const [ghostTopic, ghostBody] = state(99, 3, 2);
    held.apply(ghostTopic, ghostBody);
    expect(held.matches(s.summary())).toBe(false);

    const r = new SyncResolver(held, s.io);
    expect(r.start(s.summary())).toBe(true);
    expect(r.start(s.summary())).toBe(false); // one round at a time
    // A state raised after the request, arriving before its answer, is newer than the list: kept.
    const [lateTopic, lateBody] = state(200, 1, 3);
    open.set(lateTopic, lateBody);
    held.apply(lateTopic, lateBody);
    while (s.answers.length > 0) expect(r.onResult(s.answers.shift())).toBe(true);
    expect(r.state).toBe("idle");
    expect(s.dropped).toEqual([ghostTopic]);
    const want = [...arrived.slice(0, 5).map(([t]) => t), staleTopic].sort();
    expect(s.fetched.flat().sort()).toEqual(want);
    expect(r.last).toEqual({ fetched: 6, dropped: 1, retryAfterMs: 0 });
    // The broker sends the fetched topics' retained states: the client then holds the set.
    for (const t of s.fetched.flat()) held.apply(t, open.get(t) as Body);
    s.gw.set(lateTopic, lateBody.priority, lateBody.id, lateBody.rev);
    s.gw.flush();
    expect(held.matches(s.summary())).toBe(true);
    // Matching: nothing to do.
    expect(r.start(s.summary())).toBe(false);
    s.gw.stop();
  });

  it("ignores answers that are not its own, and gives up a round whose answers were lost", async () => {
    const { HeldAlerts, SyncResolver } = await load();
    const open = new Map<string, Body>([state(1, 1, 1)]);
    const s = site(open);
    const held = new HeldAlerts();
    const r = new SyncResolver(held, { ...s.io, request: () => {} });
    expect(r.start(s.summary(), undefined, 0)).toBe(true);
    expect(r.onResult({ action: "ack", ref: "sync-1-p1-1" })).toBe(false);
    expect(r.onResult({ action: "list", ref: "mine" })).toBe(false);
    // Another console's round (same account, or upstream): not taken for this one's answer.
    expect(r.onResult({ action: "list", ref: "sync-other-1-p1-1", ok: true, alerts: [], next: null })).toBe(
      true,
    );
    expect(r.state).toBe("listing");
    expect(r.start(s.summary(), undefined, 1000)).toBe(false);
    expect(r.start(s.summary(), undefined, 31_000)).toBe(true);
    expect(r.round).toBe(2);
    s.gw.stop();
  });

  it("a page refused for its rate (0.13.34) ends the round for that priority and says when to ask again", async () => {
    const { HeldAlerts, SyncResolver } = await load();
    const open = new Map<string, Body>([state(1, 1, 1), state(2, 1, 2)]);
    const s = site(open);
    const held = new HeldAlerts();
    const r = new SyncResolver(held, s.io);
    expect(r.start(s.summary())).toBe(true);
    const [p1, p2] = s.answers.splice(0) as Record<string, unknown>[];
    expect(r.onResult(p1)).toBe(true);
    const refusal = { action: "list", ref: (p2 as { ref: string }).ref, ok: false, reason: "rate-limited" };
    expect(r.onResult({ ...refusal, retryAfterMs: 1500 })).toBe(true);
    expect(r.state).toBe("idle");
    expect(r.last).toEqual({ fetched: 1, dropped: 0, retryAfterMs: 1500 });
    s.gw.stop();
  });
});
