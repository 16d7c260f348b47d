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
    this.byTopic = new Map(); // topic -> { priority, id, rev, seq, hi, lo }
    this.tallies = PRIORITIES.map(() => ({ open: 0, hi: 0, lo: 0 }));
    // Arrival order of states: a state that arrived after a `list` request is newer than its answer.
    this.seq = 0;
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
    this.byTopic.set(topic, { priority: body.priority, id: body.id, rev: body.rev, seq: this.seq++, hi, lo });
    t.open++;
    t.hi = (t.hi ^ hi) >>> 0;
    t.lo = (t.lo ^ lo) >>> 0;
  }

  /** Arrival marks: `mark()` before a request; states applied after it have a `seq` at least it. */
  mark() {
    return this.seq++;
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

  /** The priorities whose held states are not the set `summary` names (of `priorities`). */
  mismatched(summary, priorities = PRIORITIES) {
    return priorities.filter((p) => !this.matches(summary, [p]));
  }

  /**
   * What to do about priority `priority`, given the gateway's list of its open states (`listed`:
   * every page's `alerts`, docs/topics.md 0.13.31) answered to a request made at mark `since`:
   * `fetch`, the topics to fetch again (not held, or held at another id/rev since before the
   * request); `drop`, the topics held since before the request that are no longer open. A state
   * that arrived after the request is newer than the list, and is left alone.
   */
  resolve(priority, listed, since) {
    const fetch = [];
    const drop = [];
    const open = new Set();
    for (const a of listed) {
      open.add(a.topic);
      const e = this.byTopic.get(a.topic);
      if (e !== undefined && e.seq >= since) continue;
      if (e === undefined || e.id !== a.id || e.rev !== a.rev) fetch.push(a.topic);
    }
    for (const [topic, e] of this.byTopic)
      if (e.priority === priority && e.seq < since && !open.has(topic)) drop.push(topic);
    return { fetch, drop };
  }
}

/** How long a mismatch may last before the console asks which alerts are open, then its backoff. */
export const RESOLVE_GRACE_MS = 5000;
export const RESOLVE_MAX_MS = 60_000;
/** ...and only once no alert state arrived for this long (a big site's states still coming in). */
export const RESOLVE_QUIET_MS = 2000;
/** A round whose answers have not all come by then is given up (a result lost with its connection). */
const ROUND_TIMEOUT_MS = 30_000;
/** At most this many pages per priority and round (200 states a page: 100,000 open alerts). */
const MAX_PAGES = 500;
/** Topics per SUBSCRIBE when fetching states again (a SUBSCRIBE of 10,000 filters is ~600 KB). */
const FETCH_BATCH = 100;

/**
 * One client's resolution of a mismatch with the summary, by rounds: ask `list/p<n>` for each
 * priority that does not match, page through the answers, then drop what closed and fetch again
 * what is missing or stale (by subscribing to the exact alert topics: the broker sends their
 * retained states). Explicit states: idle -> listing -> idle. Transport-free: the page (and the
 * tests) give it `request(priority, after, ref)`, `fetch(topics)` and `drop(topic)`.
 */
export class SyncResolver {
  /** `prefix` (`linli/<site>/`): stripped from listed topics when `held` keys topics without it. */
  constructor(held, io, prefix = "") {
    this.held = held;
    this.io = io;
    this.prefix = prefix;
    this.state = "idle";
    this.round = 0;
    this.since = 0;
    this.waiting = new Map(); // ref -> { priority, alerts: [] , pages }
    this.results = new Map(); // priority -> listed alerts, once its last page came
    // What the last round did (shown to the operator); retryAfterMs: a page refused for its rate.
    this.last = { fetched: 0, dropped: 0, retryAfterMs: 0 };
    this.retryAfterMs = 0;
    this.startedAt = 0;
    // Consoles of one account, and every client upstream, share a result topic: refs tell them apart.
    this.id = Math.random().toString(36).slice(2, 10);
  }

  /** Starts a round for the priorities that do not match `summary` (none: nothing to do). */
  start(summary, priorities = PRIORITIES, now = Date.now()) {
    if (this.state === "listing" && now - this.startedAt > ROUND_TIMEOUT_MS) this.reset();
    if (this.state !== "idle" || summary == null) return false;
    const bad = this.held.mismatched(summary, priorities);
    if (bad.length === 0) return false;
    this.state = "listing";
    this.round++;
    this.startedAt = now;
    this.since = this.held.mark();
    this.waiting.clear();
    this.results.clear();
    this.retryAfterMs = 0;
    for (const p of bad) this.ask(p, "", [], 1);
    return true;
  }

  ask(priority, after, alerts, pages) {
    const ref = `sync-${this.id}-${this.round}-p${priority}-${pages}`;
    this.waiting.set(ref, { priority, alerts, pages });
    this.io.request(priority, after, ref);
  }

  /** An `ops/result` of a `list` request; true when it was one of this resolver's. */
  onResult(body) {
    if (body?.action !== "list" || typeof body.ref !== "string") return false;
    const w = this.waiting.get(body.ref);
    if (w === undefined) return body.ref.startsWith("sync-");
    this.waiting.delete(body.ref);
    if (body.ok && Array.isArray(body.alerts)) {
      for (const a of body.alerts)
        if (a != null && typeof a.topic === "string")
          w.alerts.push(
            this.prefix !== "" && a.topic.startsWith(this.prefix)
              ? { topic: a.topic.slice(this.prefix.length), id: a.id, rev: a.rev }
              : a,
          );
      if (typeof body.next === "string" && w.pages < MAX_PAGES) {
        this.ask(w.priority, body.next, w.alerts, w.pages + 1);
        return true;
      }
      this.results.set(w.priority, w.alerts);
    } else if (body.reason === "rate-limited" && Number.isFinite(body.retryAfterMs)) {
      // The gateway's bound on pages per account (docs/topics.md 0.13.34): this priority waits.
      this.retryAfterMs = Math.max(this.retryAfterMs, body.retryAfterMs);
    }
    if (this.waiting.size === 0) this.finish();
    return true;
  }

  /** The connection went: a round in flight is forgotten (its answers will not come). */
  reset() {
    this.state = "idle";
    this.waiting.clear();
    this.results.clear();
  }

  finish() {
    let fetched = [];
    let dropped = 0;
    for (const [priority, listed] of this.results) {
      const { fetch, drop } = this.held.resolve(priority, listed, this.since);
      for (const topic of drop) {
        this.held.remove(topic);
        this.io.drop(topic);
      }
      dropped += drop.length;
      fetched = fetched.concat(fetch);
    }
    for (let i = 0; i < fetched.length; i += FETCH_BATCH) this.io.fetch(fetched.slice(i, i + FETCH_BATCH));
    this.last = { fetched: fetched.length, dropped, retryAfterMs: this.retryAfterMs };
    this.state = "idle";
    this.io.done?.(this.last);
  }
}
