/**
 * `alerts/summary` as the upstream broker's clients must read it (docs/topics.md "Upstream broker",
 * 0.13.31). The gateway's summary names the alert states it published; upstream, a state the
 * broker refused (set aside, upstream.ts) never arrived, and the broker keeps the alert's older
 * state there, or none. A client there held exactly what the broker has and still never matched:
 * it said "syncing" for good. The summary sent upstream names what the broker has instead: each
 * set-aside state XORed out (one fewer open), and the older state upstream XORed in when the
 * read-back at connect saw one (the gateway's own ghost check reads it anyway).
 *
 * Bounded by the set-aside marks (one per retained topic at most). Pure: upstream.ts tells it
 * what was set aside, cleared and read back, and asks for the payload to send.
 */
import { fnv1a64, summaryBody } from "./alert-summary.js";

interface Hash {
  priority: number;
  hi: number;
  lo: number;
}

/** The priority, and FNV-1a 64 of `<id>:<rev>`, of an alert state on `topic`; null if it is none. */
function stateHash(prefix: string, topic: string, payload: string): Hash | null {
  const m = /^alerts\/p([1-4])\/[^/]+\/[^/]+$/.exec(topic.slice(prefix.length));
  if (!topic.startsWith(prefix) || m === null || payload === "") return null;
  let v: { id?: unknown; rev?: unknown };
  try {
    v = JSON.parse(payload) as typeof v;
  } catch {
    return null;
  }
  if (typeof v?.id !== "string" || !Number.isSafeInteger(v.rev)) return null;
  const out: [number, number] = [0, 0];
  fnv1a64(`${v.id}:${v.rev}`, out);
  return { priority: Number(m[1]), hi: out[0], lo: out[1] };
}

export class UpstreamSummary {
  /** Set-aside alert states by topic: what the gateway's summary names and upstream lacks. */
  private readonly aside = new Map<string, Hash>();
  /** What the upstream broker was seen to hold on a set-aside topic (read back at connect). */
  private readonly there = new Map<string, Hash>();

  constructor(private readonly prefix: string) {}

  get size(): number {
    return this.aside.size;
  }

  /** The retained state on `topic` was set aside (or is kept aside: a restart republished it). */
  setAside(topic: string, payload: string): boolean {
    const h = stateHash(this.prefix, topic, payload);
    if (h === null) return false;
    const was = this.aside.get(topic);
    this.aside.set(topic, h);
    return was === undefined || was.hi !== h.hi || was.lo !== h.lo;
  }

  /** The topic's set-aside mark is gone (its next state goes upstream, or the alert is gone). */
  cleared(topic: string): boolean {
    this.there.delete(topic);
    return this.aside.delete(topic);
  }

  /** Read back at connect: the upstream broker holds `payload` on set-aside `topic`. */
  seenUpstream(topic: string, payload: string): boolean {
    if (!this.aside.has(topic)) return false;
    const h = stateHash(this.prefix, topic, payload);
    if (h === null) return this.there.delete(topic);
    this.there.set(topic, h);
    return true;
  }

  /** The gateway's summary `payload` as the upstream broker's states make it (unchanged if none set aside). */
  adjust(payload: string): string {
    if (this.aside.size === 0) return payload;
    let s: Record<string, { open: number; digest: string } | number | string>;
    try {
      s = JSON.parse(payload) as typeof s;
    } catch {
      return payload;
    }
    const tallies = [1, 2, 3, 4].map((p) => {
      const t = s[`p${p}`] as { open: number; digest: string } | undefined;
      const d = typeof t?.digest === "string" ? t.digest : "0000000000000000";
      return {
        open: typeof t?.open === "number" ? t.open : 0,
        hi: Number.parseInt(d.slice(0, 8), 16) >>> 0,
        lo: Number.parseInt(d.slice(8), 16) >>> 0,
      };
    });
    const xor = (h: Hash, delta: number) => {
      const t = tallies[h.priority - 1];
      if (t === undefined) return;
      t.open += delta;
      t.hi = (t.hi ^ h.hi) >>> 0;
      t.lo = (t.lo ^ h.lo) >>> 0;
    };
    for (const [topic, h] of this.aside) {
      xor(h, -1);
      const older = this.there.get(topic);
      if (older !== undefined) xor(older, 1);
    }
    return `{${summaryBody(tallies)},"at":${JSON.stringify(s.at ?? null)}}`;
  }
}
