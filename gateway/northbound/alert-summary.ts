/**
 * `linli/<site>/alerts/summary` (docs/topics.md 0.13.28): what set of retained alert states a
 * console must hold to have the whole picture, on any MQTT 3.1.1 broker. The gateway's broker
 * promises an order of retained messages (gateway/status last); mosquitto, EMQX and a proxy in
 * between do not, so a console there could not tell "all in" from "more to come".
 *
 * The summary names the set by its size and a digest: per priority and in all, the count of
 * retained alert states and the XOR of FNV-1a 64 of `<id>:<rev>` over them. A console keeps the
 * same XOR over the states it holds (XOR: adding and removing one is O(1), in any order) and is
 * complete when both match. Fixed size whatever the number of open alerts (10,000 ids with revs
 * were ~240 KB a summary, to send upstream over a cellular uplink at every change); a console
 * that wants to know which are missing compares ids with the alert states themselves.
 *
 * Tracked from what is published (Publisher.alert), not from the engine: a held alert's change
 * is not published, and the digest must describe the broker's retained states. Coalesced: at
 * most one summary per `intervalMs`, and none when the set is unchanged. The first change after a
 * quiet interval goes at the end of the event-loop turn (the changes of one turn in one summary),
 * so that a console connecting right after a lone change is not matched against the summary
 * before it for long; changes in a burst wait for the interval to end.
 */

const OFFSET = [0x2325, 0x8422, 0x9ce4, 0xcbf2] as const; // 0xcbf29ce484222325, 16-bit limbs, low first

/**
 * FNV-1a 64 of `text`'s UTF-8 bytes into `out` ([high 32, low 32] bits). In 16-bit limbs: no
 * BigInt allocated per byte. The prime is 2^40 + 0x1b3, so h * prime = h * 0x1b3 + (h << 40).
 */
export function fnv1a64(text: string, out: [number, number]): void {
  let h0: number = OFFSET[0];
  let h1: number = OFFSET[1];
  let h2: number = OFFSET[2];
  let h3: number = OFFSET[3];
  // Ids and revs are ASCII (one byte a character); anything else is hashed as its UTF-8 bytes.
  let bytes: Buffer | null = null;
  for (let i = 0; i < text.length && bytes === null; i++)
    if (text.charCodeAt(i) > 0x7f) bytes = Buffer.from(text, "utf8");
  const n = bytes === null ? text.length : bytes.length;
  for (let i = 0; i < n; i++) {
    h0 ^= bytes === null ? text.charCodeAt(i) : (bytes[i] as number);
    const t0 = h0 * 0x1b3;
    const t1 = h1 * 0x1b3 + (t0 >>> 16);
    const t2 = h2 * 0x1b3 + (h0 << 8) + (t1 >>> 16);
    const t3 = h3 * 0x1b3 + (h1 << 8) + (t2 >>> 16);
    h0 = t0 & 0xffff;
    h1 = t1 & 0xffff;
    h2 = t2 & 0xffff;
    h3 = t3 & 0xffff;
  }
  out[0] = ((h3 << 16) | h2) >>> 0;
  out[1] = ((h1 << 16) | h0) >>> 0;
}

export function hex64(hi: number, lo: number): string {
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

interface Entry {
  priority: number;
  /** The alert's id and rev (references to strings the alert holds anyway): for `page`. */
  id: string;
  rev: number;
  hi: number;
  lo: number;
}

/** One retained alert state as `page` lists it. */
export interface ListedAlert {
  topic: string;
  id: string;
  rev: number;
}

/** A page of one priority's retained alert states, in topic order (docs/topics.md "Which alerts"). */
export interface AlertPage {
  /** The priority's count and digest when the page was made (as the summary's `p<n>`). */
  open: number;
  digest: string;
  alerts: ListedAlert[];
  /** The last topic of this page when more follow (the next request's `after`), else null. */
  next: string | null;
}

interface Tally {
  open: number;
  hi: number;
  lo: number;
}

export class AlertSummary {
  /** Retained alert topic -> what its state adds to the digest. One per open alert: bounded by them. */
  private readonly held = new Map<string, Entry>();
  private readonly tallies: Tally[] = [1, 2, 3, 4].map(() => ({ open: 0, hi: 0, lo: 0 }));
  private readonly scratch: [number, number] = [0, 0];
  /** Per priority, its topics sorted (for `page`); null when a topic came or went since. */
  private readonly sorted: (string[] | null)[] = [null, null, null, null];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** performance.now() of the last flush: the rate limit, immune to steps of the wall clock. */
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private lastPublished = "";
  private stopped = false;
  published = 0;

  constructor(
    private readonly publish: (payload: string) => void,
    private readonly now: () => number,
    private readonly intervalMs = 1000,
  ) {}

  /** The retained state on `topic` is now alert `id` at `rev`. */
  set(topic: string, priority: number, id: string, rev: number): void {
    const t = this.tallies[priority - 1];
    if (t === undefined) return;
    fnv1a64(`${id}:${rev}`, this.scratch);
    const [hi, lo] = this.scratch;
    const e = this.held.get(topic);
    if (e === undefined) {
      this.held.set(topic, { priority, id, rev, hi, lo });
      this.sorted[priority - 1] = null;
    } else {
      // The topic's next state (the usual case): its entry reused, nothing allocated.
      this.untally(e);
      if (e.priority !== priority) {
        this.sorted[e.priority - 1] = null;
        this.sorted[priority - 1] = null;
      }
      e.priority = priority;
      e.id = id;
      e.rev = rev;
      e.hi = hi;
      e.lo = lo;
    }
    t.open++;
    t.hi = (t.hi ^ hi) >>> 0;
    t.lo = (t.lo ^ lo) >>> 0;
    this.changed();
  }

  /** No retained state on `topic` any more (the alert closed). */
  delete(topic: string): void {
    if (this.remove(topic)) this.changed();
  }

  private remove(topic: string): boolean {
    const e = this.held.get(topic);
    if (e === undefined) return false;
    this.held.delete(topic);
    this.untally(e);
    this.sorted[e.priority - 1] = null;
    return true;
  }

  /**
   * Up to `limit` of priority `priority`'s retained alert states whose topic sorts after `after`
   * ("" for the first page), with the priority's count and digest now. Topic order is stable while
   * alerts come and go, so paging with `after` lists every state open throughout exactly once.
   * The order is sorted again only after a topic came or went (at most once per request).
   */
  page(priority: number, after: string, limit: number): AlertPage {
    const t = this.tallies[priority - 1] as Tally;
    let topics = this.sorted[priority - 1];
    if (topics == null) {
      topics = [];
      for (const [topic, e] of this.held) if (e.priority === priority) topics.push(topic);
      topics.sort();
      this.sorted[priority - 1] = topics;
    }
    // The first topic after `after`: binary search.
    let lo = 0;
    let hi = topics.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((topics[mid] as string) <= after) lo = mid + 1;
      else hi = mid;
    }
    const alerts: ListedAlert[] = [];
    for (let i = lo; i < topics.length && alerts.length < limit; i++) {
      const topic = topics[i] as string;
      const e = this.held.get(topic) as Entry;
      alerts.push({ topic, id: e.id, rev: e.rev });
    }
    const last = alerts[alerts.length - 1];
    const more = lo + alerts.length < topics.length;
    return {
      open: t.open,
      digest: hex64(t.hi, t.lo),
      alerts,
      next: more && last !== undefined ? last.topic : null,
    };
  }

  private untally(e: Entry): void {
    const t = this.tallies[e.priority - 1] as Tally;
    t.open--;
    t.hi = (t.hi ^ e.hi) >>> 0;
    t.lo = (t.lo ^ e.lo) >>> 0;
  }

  private changed(): void {
    if (this.timer !== null || this.immediate !== null || this.stopped) return;
    const wait = this.lastFlushAt + this.intervalMs - performance.now();
    if (wait <= 0) {
      this.immediate = setImmediate(() => this.flush());
      this.immediate.unref();
    } else {
      this.timer = setTimeout(() => this.flush(), wait);
      this.timer.unref();
    }
  }

  /** Publishes the summary now if it differs from the last one published (at start, at stop). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    this.lastFlushAt = performance.now();
    const body = this.body();
    if (body === this.lastPublished) return;
    this.lastPublished = body;
    this.published++;
    this.publish(`{${body},"at":${this.now()}}`);
  }

  /** Publishes what is pending and arms no timer again (the gateway is stopping). */
  stop(): void {
    this.flush();
    this.stopped = true;
  }

  /** `"open":N,"digest":"…","p1":{…},…`: the part that says what set it is (no time). */
  private body(): string {
    return summaryBody(this.tallies);
  }
}

/**
 * `"open":N,"digest":"…","p1":{…},…` of four priorities' tallies: the set part of the summary, the
 * same for the gateway's and for the one sent upstream (upstream-summary.ts).
 */
export function summaryBody(tallies: readonly Tally[]): string {
  let open = 0;
  let hi = 0;
  let lo = 0;
  let parts = "";
  tallies.forEach((t, i) => {
    open += t.open;
    hi = (hi ^ t.hi) >>> 0;
    lo = (lo ^ t.lo) >>> 0;
    parts += `,"p${i + 1}":{"open":${t.open},"digest":"${hex64(t.hi, t.lo)}"}`;
  });
  return `"open":${open},"digest":"${hex64(hi, lo)}"${parts}`;
}
