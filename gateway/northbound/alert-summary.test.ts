/**
 * The summary of the retained alert states (docs/topics.md 0.13.28): FNV-1a 64 as specified,
 * the digest independent of the order of changes, and published coalesced, never per change.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AlertSummary, fnv1a64, hex64 } from "./alert-summary.js";

const fnvHex = (text: string): string => {
  const out: [number, number] = [0, 0];
  fnv1a64(text, out);
  return hex64(out[0], out[1]);
};

/** The textbook definition, in BigInt: what the limbs must agree with. */
const reference = (text: string): string => {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(text, "utf8")) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
};

describe("fnv1a64", () => {
  it("gives the published FNV-1a 64 test vectors", () => {
    expect(fnvHex("")).toBe("cbf29ce484222325");
    expect(fnvHex("a")).toBe("af63dc4c8601ec8c");
    expect(fnvHex("foobar")).toBe("85944171f73967e8");
    // docs/topics.md's example.
    expect(fnvHex("mwtnm9rq-11f9000:2")).toBe("8647dd93619f9dfc");
  });

  it("agrees with the BigInt definition on any text, non-ASCII as UTF-8", () => {
    expect(fnvHex("门磁-1:3")).toBe(reference("门磁-1:3"));
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => fnvHex(s) === reference(s)));
  });
});

describe("AlertSummary", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const topic = (p: number, i: number) => `linli/s/alerts/p${p}/CODE/d-${i}`;

  it("names the same set by the same digest whatever the order of changes; empty is zeros", () => {
    const a: string[] = [];
    const b: string[] = [];
    const s1 = new AlertSummary(
      (x) => a.push(x),
      () => 1,
    );
    const s2 = new AlertSummary(
      (x) => b.push(x),
      () => 1,
    );
    s1.flush();
    expect(JSON.parse(a[0] as string)).toMatchObject({
      open: 0,
      digest: "0000000000000000",
      p1: { open: 0, digest: "0000000000000000" },
      at: 1,
    });
    s1.set(topic(1, 1), 1, "x-1", 1);
    s1.set(topic(3, 2), 3, "x-2", 4);
    s1.set(topic(1, 1), 1, "x-1", 2); // a new rev replaces the topic's state
    s1.set(topic(4, 3), 4, "x-3", 1);
    s1.delete(topic(4, 3));
    s2.set(topic(3, 2), 3, "x-2", 4);
    s2.set(topic(1, 1), 1, "x-1", 2);
    s1.flush();
    s2.flush();
    const got = JSON.parse(a[1] as string);
    expect(got).toEqual(JSON.parse(b[0] as string));
    expect(got.open).toBe(2);
    expect(got.p1).toEqual({ open: 1, digest: fnvHex("x-1:2") });
    expect(got.p4).toEqual({ open: 0, digest: "0000000000000000" });
    const [h1, h2] = [BigInt(`0x${fnvHex("x-1:2")}`), BigInt(`0x${fnvHex("x-2:4")}`)];
    expect(got.digest).toBe((h1 ^ h2).toString(16).padStart(16, "0"));
    s1.stop();
    s2.stop();
  });

  it("publishes at the end of a quiet turn, then at most once an interval, and never an unchanged set", async () => {
    vi.useFakeTimers({
      toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate", "performance"],
    });
    const out: string[] = [];
    const s = new AlertSummary(
      (x) => out.push(x),
      () => 0,
      1000,
    );
    // 10,000 changes in one turn: one summary.
    for (let i = 0; i < 10_000; i++) s.set(topic(3, i), 3, `id-${i}`, 1);
    expect(out).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0] as string).open).toBe(10_000);
    // A burst right after: coalesced to the end of the interval.
    for (let i = 0; i < 100; i++) s.set(topic(3, i), 3, `id-${i}`, 2);
    await vi.advanceTimersByTimeAsync(999);
    expect(out).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(out).toHaveLength(2);
    // Deleting what is not held changes nothing; the same set again publishes nothing.
    s.delete(topic(2, 1));
    s.set(topic(4, 1), 4, "gone", 1);
    s.delete(topic(4, 1));
    await vi.advanceTimersByTimeAsync(5000);
    expect(out).toHaveLength(2);
    // Stop publishes what is pending and arms nothing after.
    s.set(topic(1, 1), 1, "last", 1);
    s.stop();
    expect(out).toHaveLength(3);
    s.set(topic(1, 2), 1, "after", 1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(out).toHaveLength(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("lists a priority's states a page at a time, in topic order, each once while others come and go", () => {
    const s = new AlertSummary(
      () => {},
      () => 0,
    );
    for (let i = 0; i < 25; i++) s.set(topic(2, i), 2, `id-${i}`, 1);
    s.set(topic(1, 1), 1, "p1-only", 3);
    s.set(topic(2, 7), 2, "id-7", 5); // a new rev: listed as it is now
    const seen: string[] = [];
    let after = "";
    let pages = 0;
    for (;;) {
      const page = s.page(2, after, 10);
      pages++;
      seen.push(...page.alerts.map((a) => `${a.topic}=${a.id}:${a.rev}`));
      if (pages === 1) {
        // Between pages: one before the cursor goes, one after it comes; neither disturbs the rest.
        s.delete(topic(2, 0));
        s.set(topic(2, 99), 2, "late", 1);
      }
      if (page.next === null) break;
      after = page.next;
    }
    expect(pages).toBe(3);
    const topics = seen.map((x) => x.slice(0, x.indexOf("=")));
    expect(topics).toEqual([...topics].sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toContain(`${topic(2, 7)}=id-7:5`);
    expect(seen).toContain(`${topic(2, 99)}=late:1`);
    expect(seen.some((x) => x.includes("p1-only"))).toBe(false);
    // The page carries the priority's count and digest as the summary's `p<n>`.
    const whole = s.page(1, "", 10);
    expect(whole).toEqual({
      open: 1,
      digest: fnvHex("p1-only:3"),
      alerts: [{ topic: topic(1, 1), id: "p1-only", rev: 3 }],
      next: null,
    });
    expect(s.page(4, "", 10)).toEqual({ open: 0, digest: "0000000000000000", alerts: [], next: null });
    s.stop();
  });
});
