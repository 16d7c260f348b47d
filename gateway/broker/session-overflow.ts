/**
 * What a persistent session's full queue gives up first (gateway/broker/sessions.ts; the contract:
 * docs/topics.md "Persistent sessions"). Ranks, lowest dropped first:
 *
 *   copy       a message a newer one in the same queue makes redundant: an alert state or
 *              escalation followed by a newer one of the same alert on the same topic, a status
 *              (device status or service, household monitoring, gateway status, flood state)
 *              followed by a newer one on its topic, an alert event whose alert has a state of
 *              that rev or later queued (the state carries the transition, who and when). Nothing
 *              is lost: a P1 copy goes before any other message.
 *   telemetry  QoS 0, `telemetry/`
 *   other      results, command outcomes, statuses that are the last of their topic
 *   event      an event of a P2-P4 alert (not retained, but its alert's state says most of it)
 *   state      a P2-P4 alert state, the flood state (retained: a console can read it again)
 *   escalation a P2-P4 escalation (not retained: the call to act on an unacknowledged alert)
 *   p1         a P1 alert state, escalation or event: not counted against the queue's bound but
 *              against one of their own, beyond which the oldest P1 goes (sessions.ts)
 *
 * Before 2026-12-06 only the topics `alerts/p1/` and `escalations/p1/` were spared: at the start of
 * a large site a console subscribed to `alerts/#` lost P2 escalations and the events of P1 alerts
 * to the republished states of 10,000 alerts (each also queued twice: its restored copy and its
 * republication).
 *
 * A packet is classified once (a WeakMap: one publish is queued for every session), and only once a
 * queue overflows: a queue within its bound costs nothing here. An overflowing queue keeps an index
 * (OverflowIndex): the newest message per key, the alerts' queued state revs and one FIFO per
 * rank, so that a message queued costs O(1) however long the queue (10,000 P1 messages at the
 * start of a large site: scanning the queue per message took 30 s of CPU).
 */

export const DROP_RANKS = ["copy", "telemetry", "other", "event", "state", "escalation", "p1"] as const;
export type DropKind = (typeof DROP_RANKS)[number];

export interface MessageInfo {
  /** Its rank when it is not a copy. */
  kind: Exclude<DropKind, "copy">;
  /** A state or escalation: a later message with the same key makes it a copy; null: never one by key. */
  key: string | null;
  /** A state of an alert: the alert's id and rev (events of it up to that rev are copies). */
  stateOf: string | null;
  /** An event: its alert's id and rev. */
  eventOf: string | null;
  rev: number;
}

interface Classified {
  topic: string;
  payload: Buffer | string;
  qos: number;
}

const STATUS_TOPIC =
  /^(?:devices\/[^/]+\/(?:status|service)|households\/[^/]+\/monitoring|gateway\/status|alerts\/flood|alerts\/summary)$/;
const ALERT_TOPIC = /^(alerts|escalations)\/p([1-4])\/[^/]+\/[^/]+$/;

export class MessageClassifier {
  private readonly cache = new WeakMap<object, MessageInfo>();
  private readonly prefix: string;

  constructor(site: string) {
    this.prefix = `linli/${site}/`;
  }

  info(packet: Classified): MessageInfo {
    let i = this.cache.get(packet);
    if (i === undefined) {
      i = this.classify(packet);
      this.cache.set(packet, i);
    }
    return i;
  }

  private classify(p: Classified): MessageInfo {
    const info: MessageInfo = { kind: "other", key: null, stateOf: null, eventOf: null, rev: -1 };
    if (p.qos === 0) {
      info.kind = "telemetry";
      return info;
    }
    if (!p.topic.startsWith(this.prefix)) return info;
    const rest = p.topic.slice(this.prefix.length);
    if (rest.startsWith("telemetry/")) {
      info.kind = "telemetry";
      return info;
    }
    if (STATUS_TOPIC.test(rest)) {
      if (rest === "alerts/flood" || rest === "alerts/summary") info.kind = "state";
      info.key = p.topic;
      return info;
    }
    if (rest === "alerts/events") {
      const e = parse(p.payload);
      const id = typeof e?.alertId === "string" ? e.alertId : null;
      const rev =
        typeof e?.eventId === "string" ? Number(e.eventId.slice(e.eventId.lastIndexOf(":") + 1)) : Number.NaN;
      info.kind = e?.priority === 1 ? "p1" : "event";
      if (id !== null && Number.isSafeInteger(rev)) {
        info.eventOf = id;
        info.rev = rev;
      }
      return info;
    }
    const m = ALERT_TOPIC.exec(rest);
    if (m === null) return info;
    info.kind = m[2] === "1" ? "p1" : m[1] === "alerts" ? "state" : "escalation";
    if (p.payload.length === 0) {
      // The deletion of a retained state: superseded only by a later deletion (a console that keys
      // alerts by id learns from it that the alert it holds on this topic is gone).
      info.key = `${p.topic}\n`;
      return info;
    }
    const a = parse(p.payload);
    if (typeof a?.id !== "string" || a.id.length === 0) return info;
    info.key = `${p.topic}\n${a.id}`;
    if (m[1] === "alerts" && typeof a.rev === "number") {
      info.stateOf = a.id;
      info.rev = a.rev;
    }
    return info;
  }
}

function parse(payload: Buffer | string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(typeof payload === "string" ? payload : payload.toString("utf8"));
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** What the index needs of a queue's entry (gateway/broker/sessions.ts). */
export interface Queued {
  packet: Classified;
  /** Set once sent: in flight, its PUBACK due; never dropped while something unsent can be. */
  messageId: number | undefined;
  /** A newer message in the same queue makes it redundant. */
  copy: boolean;
  /** Left the queue (acknowledged or dropped). */
  gone: boolean;
}

/**
 * The overflow policy's view of one queue: built over the queue's entries in order, then told of
 * every entry appended. Entries that leave the queue are marked `gone` by the queue and skipped here
 * lazily; `added` tells the queue when a rebuild would shed them (its maps hold up to one entry
 * per key and one record per alert seen since the build).
 */
export class OverflowIndex<E extends Queued> {
  private readonly buckets: E[][] = DROP_RANKS.map(() => []);
  private readonly heads: number[] = DROP_RANKS.map(() => 0);
  private readonly latest = new Map<string, E>();
  private readonly alerts = new Map<string, { rev: number; events: E[] }>();
  /** Entries added since the build. */
  added = 0;
  /** Entries in the queue (not gone) per rank. */
  private readonly live: number[] = DROP_RANKS.map(() => 0);

  constructor(
    private readonly classifier: MessageClassifier,
    entries: readonly E[],
  ) {
    for (const e of entries) this.add(e);
  }

  add(e: E): void {
    this.added++;
    const i = this.classifier.info(e.packet);
    if (i.key !== null) {
      const prev = this.latest.get(i.key);
      if (prev !== undefined) this.markCopy(prev);
      this.latest.set(i.key, e);
    }
    if (i.stateOf !== null) {
      const a = this.alert(i.stateOf);
      if (i.rev > a.rev) {
        a.rev = i.rev;
        const keep: E[] = [];
        for (const ev of a.events) {
          if (this.classifier.info(ev.packet).rev <= a.rev) this.markCopy(ev);
          else keep.push(ev);
        }
        a.events = keep;
      }
    }
    if (i.eventOf !== null) {
      const a = this.alert(i.eventOf);
      if (a.rev >= i.rev) e.copy ||= e.messageId === undefined;
      else a.events.push(e);
    }
    const r = e.copy ? 0 : DROP_RANKS.indexOf(i.kind);
    (this.buckets[r] as E[]).push(e);
    (this.live[r] as number)++;
  }

  /** An entry left the queue (call before or after marking it gone, once). */
  removed(e: E): void {
    (this.live[this.rankOf(e)] as number)--;
  }

  /** P1 entries in the queue that are not copies. */
  get p1(): number {
    return this.live[DROP_RANKS.length - 1] as number;
  }

  rankOf(e: E): number {
    return e.copy ? 0 : DROP_RANKS.indexOf(this.classifier.info(e.packet).kind);
  }

  /** The oldest unsent entry of the lowest rank (copies: the first found redundant); null: nothing unsent. */
  victim(minRank = 0): { e: E; kind: DropKind } | null {
    for (let r = minRank; r < this.buckets.length; r++) {
      const b = this.buckets[r] as E[];
      let h = this.heads[r] as number;
      while (h < b.length) {
        const e = b[h] as E;
        if (e.gone || e.messageId !== undefined || (r > 0 && e.copy)) h++;
        else break;
      }
      if (h > 1024 && h * 2 > b.length) {
        b.splice(0, h);
        h = 0;
      }
      this.heads[r] = h;
      if (h < b.length) return { e: b[h] as E, kind: DROP_RANKS[r] as DropKind };
    }
    return null;
  }

  private markCopy(e: E): void {
    if (e.copy || e.gone || e.messageId !== undefined) return;
    (this.live[this.rankOf(e)] as number)--;
    e.copy = true;
    (this.buckets[0] as E[]).push(e);
    (this.live[0] as number)++;
  }

  private alert(id: string): { rev: number; events: E[] } {
    let a = this.alerts.get(id);
    if (a === undefined) this.alerts.set(id, (a = { rev: -1, events: [] }));
    return a;
  }
}
