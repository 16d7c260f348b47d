// When the console has every open alert, on any MQTT broker: the gateway's retained
// `linli/<site>/alerts/summary` (docs/topics.md 0.13.28) names the set of retained alert states
// by count and digest (XOR of FNV-1a 64 of `<id>:<rev>`), and the page keeps the same over the
// states it holds. Pure (no DOM), shared by the page and its tests; the gateway's side is
// gateway/northbound/alert-summary.ts (tested to agree).

const PRIORITIES = [1, 2, 3, 4];

/** FNV-1a 64 of `text`'s UTF-8 bytes as [high 32, low 32] bits, in 16-bit limbs (no BigInt). */
export function fnv1a64(text) {
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  const bytes = /[^\x20-\x7e]/.test(text) ? new TextEncoder().encode(text) : null;
  const n = bytes === null ? text.length : bytes.length;
  for (let i = 0; i < n; i++) {
    h0 ^= bytes === null ? text.charCodeAt(i) : bytes[i];
    const t0 = h0 * 0x1b3;
    const t1 = h1 * 0x1b3 + (t0 >>> 16);
    const t2 = h2 * 0x1b3 + (h0 << 8) + (t1 >>> 16);
    const t3 = h3 * 0x1b3 + (h1 << 8) + (t2 >>> 16);
    h0 = t0 & 0xffff;
    h1 = t1 & 0xffff;
    h2 = t2 & 0xffff;
    h3 = t3 & 0xffff;
  }
  return [((h3 << 16) | h2) >>> 0, ((h1 << 16) | h0) >>> 0];
}

export function hex64(hi, lo) {
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/**
 * The retained alert states a client holds, one per alert topic, with their count and digest per
 * priority. `apply` every message on `alerts/<p>/<CODE>/<id>` (retained or live, in any order):
 * an open state replaces the topic's, a closed state or an empty payload removes it.
 */
export class HeldAlerts {
  constructor() {
    this.byTopic = new Map(); // topic -> { priority, hi, lo }
    this.tallies = PRIORITIES.map(() => ({ open: 0, hi: 0, lo: 0 }));
  }

  get size() {
    return this.byTopic.size;
  }

  clear() {
    this.byTopic.clear();
    for (const t of this.tallies) Object.assign(t, { open: 0, hi: 0, lo: 0 });
  }

  /** `body`: the parsed state, or null for an empty payload. */
  apply(topic, body) {
    this.remove(topic);
    if (body == null || body.state === "closed") return;
    const t = this.tallies[body.priority - 1];
    if (t === undefined || typeof body.id !== "string" || !Number.isSafeInteger(body.rev)) return;
    const [hi, lo] = fnv1a64(`${body.id}:${body.rev}`);
    this.byTopic.set(topic, { priority: body.priority, hi, lo });
    t.open++;
    t.hi = (t.hi ^ hi) >>> 0;
    t.lo = (t.lo ^ lo) >>> 0;
  }

  remove(topic) {
    const e = this.byTopic.get(topic);
    if (e === undefined) return;
    this.byTopic.delete(topic);
    const t = this.tallies[e.priority - 1];
    t.open--;
    t.hi = (t.hi ^ e.hi) >>> 0;
    t.lo = (t.lo ^ e.lo) >>> 0;
  }

  /**
   * Whether what is held is exactly the set `summary` names, for `priorities` (all by default; a
   * P1 desk subscribed to `alerts/p1/#` only asks for [1]).
   */
  matches(summary, priorities = PRIORITIES) {
    if (summary == null || typeof summary !== "object") return false;
    return priorities.every((p) => {
      const want = summary[`p${p}`];
      const t = this.tallies[p - 1];
      return want != null && want.open === t.open && want.digest === hex64(t.hi, t.lo);
    });
  }
}
