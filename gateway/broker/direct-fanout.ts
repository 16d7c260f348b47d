/**
 * Telemetry to operators' connections without aedes: the gateway's own QoS 0,
 * non-retained publishes (readings, `linli/<site>/telemetry/...`) are framed
 * once and written to each matching subscriber's connection directly.
 *
 * Why: through aedes, one reading to one subscriber cost a Packet in publish,
 * the emitter's slot and queue (mqemitter, fastparallel), qlobber's match, a
 * second Packet per subscription, two setImmediate callbacks and a third
 * Packet in the client's deliver, then mqtt-packet writing it in four pieces.
 * A CPU profile at 40,000 msg/s (device listener) put aedes, qlobber,
 * mqemitter and fastparallel at 7.4 % of the main thread, before mqtt-packet
 * and the garbage they leave. Here a reading is framed once into one Buffer,
 * shared by every subscriber, and what a turn queued for a connection goes out
 * at the turn's end in one writev. Measured at 40,000 msg/s: the main thread
 * at 41-43 % of a core against 55 %, the process at 85-88 % against 100 %
 * (docs/performance.md, "Readings past aedes").
 *
 * What stays as aedes does it, and why it may:
 * - Only operators subscribe to these topics (AccessPolicy: a device may
 *   subscribe to its own downlink alone), so the subscribers are the operator
 *   connections, a few dozen at most; their subscriptions are aedes' own
 *   (`client.subscriptions`), matched here by MQTT 3.1.1 §4.7.
 * - QoS 0 goes out at QoS 0 whatever the subscription's QoS (§3.8.4), and is
 *   never queued for an offline persistent session (aedes does not either).
 * - One copy per connection when several of its filters match (§3.3.5 allows
 *   either; aedes' dedupe sends one too).
 * - Order within a topic: every reading of a topic takes this path, in the
 *   order published.
 * - The slow-subscriber rule (operator-delivery.ts) applies to every reading
 *   queued, counting what is already queued for the connection this turn.
 *
 * Bounds: the cache holds at most MAX_CACHED_TOPICS topics and is emptied
 * when full (the next readings rebuild their entries) and whenever an
 * operator's subscriptions change or an operator connects or leaves. What is
 * queued for a connection within a turn stops at the slow-subscriber bound
 * (4 MiB with what its socket holds unsent; readings beyond are dropped and
 * counted); the list of connections with something queued holds each once.
 */
import type { Writable } from "node:stream";
import type { Client } from "aedes";
import { mayQueueReading, type SlowSubscribers } from "./operator-delivery.js";
import { flushNow } from "./socket-writes.js";

/** One cache entry per telemetry topic: each device has one; 10,000 devices fit with room. */
export const MAX_CACHED_TOPICS = 65_536;

interface Subscriber {
  id: string;
  conn: Writable;
  closed: boolean;
  connected: boolean;
  /** 4 (3.1.1), 3 (3.1) or 5: a v5 PUBLISH carries a properties length after the topic. */
  version: number | null;
  subscriptions: Record<string, unknown>;
}

interface Targets {
  /** The topic as a PUBLISH carries it: two length bytes, then its UTF-8. */
  readonly topic: Buffer;
  readonly v3: Subscriber[];
  readonly v5: Subscriber[];
}

const NONE: Targets = Object.freeze({ topic: Buffer.alloc(0), v3: [], v5: [] }) as Targets;

/** A connection's readings of this turn, written at its end (a P1 goes ahead of them). */
const QUEUED = Symbol("linli.fanoutQueued");
const QUEUED_BYTES = Symbol("linli.fanoutQueuedBytes");
type Queuing = Subscriber & { [QUEUED]?: Buffer[]; [QUEUED_BYTES]?: number };

export class DirectFanout {
  private readonly operators = new Set<Subscriber>();
  private readonly cache = new Map<string, Targets>();
  /** Connections with readings queued this turn; written at its end. */
  private readonly dirty: Queuing[] = [];
  private flushScheduled = false;
  /** Readings queued for a connection (a reading to two consoles counts twice). */
  writes = 0;

  constructor(private readonly slow: SlowSubscribers) {}

  /** An operator's connection, from its login on; forgotten when it closes (`remove`). */
  add(client: Client): void {
    this.operators.add(client as unknown as Subscriber);
    this.cache.clear();
  }

  remove(client: Client): void {
    const s = client as unknown as Queuing;
    if (this.operators.delete(s)) this.cache.clear();
    s[QUEUED] = undefined;
  }

  /** An operator's subscriptions changed (SUBSCRIBE, UNSUBSCRIBE, a restored session). */
  changed(client: Client): void {
    if (this.operators.has(client as unknown as Subscriber)) this.cache.clear();
  }

  /** Queues a QoS 0, non-retained PUBLISH of `payload` on `topic` for every operator subscribed. */
  publish(topic: string, payload: string): void {
    let t = this.cache.get(topic);
    if (t === undefined) {
      t = this.targets(topic);
      if (this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
      this.cache.set(topic, t);
    }
    if (t === NONE) return;
    if (t.v3.length > 0) this.queue(t.v3, publishFrame(t.topic, payload, 0));
    if (t.v5.length > 0) this.queue(t.v5, publishFrame(t.topic, payload, 1));
  }

  /**
   * Not written at once: what a turn publishes goes out at its end in one writev per connection,
   * as aedes' deliveries did (socket-writes.ts), and a P1 alert delivered meanwhile (written at
   * once, operator-delivery.ts) goes ahead of the readings published before it in that turn.
   */
  private queue(to: readonly Queuing[], frame: Buffer): void {
    for (const s of to) {
      if (s.closed || !s.connected || s.conn.destroyed) continue;
      const queued = s[QUEUED];
      const queuedBytes = queued === undefined ? 0 : (s[QUEUED_BYTES] as number);
      if (!mayQueueReading(s, queuedBytes, this.slow)) continue;
      if (queued === undefined) {
        s[QUEUED] = [frame];
        this.dirty.push(s);
      } else queued.push(frame);
      s[QUEUED_BYTES] = queuedBytes + frame.length;
      this.writes++;
    }
    if (!this.flushScheduled && this.dirty.length > 0) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    // Only the connections listed now: one listed while these are written (a publish from a
    // write's callbacks) waits for the next flush rather than being forgotten.
    const n = this.dirty.length;
    for (let i = 0; i < n; i++) {
      const s = this.dirty[i] as Queuing;
      const frames = s[QUEUED];
      s[QUEUED] = undefined;
      if (frames === undefined || s.closed || s.conn.destroyed) continue;
      const conn = s.conn;
      conn.cork();
      for (const f of frames) conn.write(f);
      flushNow(conn);
    }
    this.dirty.splice(0, n);
    if (this.dirty.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  };

  private targets(topic: string): Targets {
    const v3: Subscriber[] = [];
    const v5: Subscriber[] = [];
    for (const s of this.operators) {
      if (s.closed) continue;
      for (const filter in s.subscriptions) {
        if (topicMatches(filter, topic)) {
          (s.version === 5 ? v5 : v3).push(s);
          break;
        }
      }
    }
    if (v3.length === 0 && v5.length === 0) return NONE;
    const length = Buffer.byteLength(topic);
    const prefix = Buffer.allocUnsafe(2 + length);
    prefix.writeUInt16BE(length, 0);
    prefix.write(topic, 2);
    return { topic: prefix, v3, v5 };
  }
}

/**
 * A whole MQTT PUBLISH, QoS 0, not retained, not dup: fixed header, remaining length (§2.2.3),
 * topic (length-prefixed, given), for v5 a zero properties length (§3.3.2.3), then the payload.
 */
export function publishFrame(topic: Buffer, payload: string, propertiesLength: 0 | 1): Buffer {
  const payloadLength = Buffer.byteLength(payload);
  const remaining = topic.length + propertiesLength + payloadLength;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  const frame = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  frame[0] = 0x30;
  let i = 1;
  let rest = remaining;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 128;
    frame[i++] = byte;
  } while (rest > 0);
  i += topic.copy(frame, i);
  if (propertiesLength === 1) frame[i++] = 0;
  frame.write(payload, i);
  return frame;
}

/** MQTT topic filter matching (§4.7): `+` one level, `#` this level and every one below. */
export function topicMatches(filter: string, topic: string): boolean {
  // A filter starting with a wildcard does not match a topic starting with $ (§4.7.2).
  if (topic.charCodeAt(0) === 36 && (filter.charCodeAt(0) === 35 || filter.charCodeAt(0) === 43))
    return false;
  let f = 0;
  let t = 0;
  const fl = filter.length;
  const tl = topic.length;
  while (f < fl) {
    const c = filter.charCodeAt(f);
    if (c === 35) return true; // '#': what is left of the topic, the parent level included
    if (c === 43) {
      // '+': up to the next '/' of the topic
      while (t < tl && topic.charCodeAt(t) !== 47) t++;
      f++;
    } else {
      // a literal level, compared up to and including its '/'
      while (f < fl && filter.charCodeAt(f) !== 47) {
        if (t >= tl || topic.charCodeAt(t) !== filter.charCodeAt(f)) return false;
        f++;
        t++;
      }
    }
    if (f >= fl) return t >= tl;
    // filter at a '/': the topic must be there too, or end where the filter goes on with "/#"
    if (t >= tl) return f + 2 === fl && filter.charCodeAt(f + 1) === 35;
    if (topic.charCodeAt(t) !== 47) return false;
    f++;
    t++;
  }
  return t >= tl;
}
