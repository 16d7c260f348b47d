/**
 * How the embedded broker delivers to an operator's connection (consoles,
 * dashboards, anything logged in as an operator: the only clients that may
 * subscribe to alerts and telemetry). Devices keep aedes' own functions.
 *
 * Two rules, both so that a P1 waits behind nothing:
 *
 * 1. **A P1 is written at once.** aedes delivers every message to a subscriber
 *    from a setImmediate callback (to keep the stack short under load), so a
 *    P1 alert published while the loop is reading sockets waits for the end of
 *    that poll phase and then behind every delivery queued before it: at
 *    10,000 msg/s 0.25 ms median and 1 ms p99 between our publish and the
 *    write, and under overload thousands of telemetry deliveries. For urgent
 *    topics the deliver step runs at once (the write's own completion still
 *    goes through setImmediate, so a long emitter queue cannot recurse). aedes
 *    looks setImmediate up on each call, which is what the swap relies on.
 *
 * 2. **A slow subscriber holds nobody else up.** aedes hands each message to
 *    its subscribers within a bounded number of slots (its emitter's
 *    concurrency, 1,000 here) and a delivery keeps its slot until the write
 *    to that subscriber's socket is accepted: when the socket's buffer is full,
 *    until it drains (aedes lib/write.js, waitForDrain). One consumer that
 *    reads telemetry slower than the gateway publishes it soon holds every
 *    slot, and every other delivery, a P1 alert to another operator's console
 *    included, waits in the emitter's queue behind readings. Measured with the
 *    bench at 60,000 msg/s offered (twice the gateway's ceiling), its
 *    subscriber of `linli/<site>/#` behind: emitter queue up to 1,218, and a
 *    console subscribed to the P1 topics alone received P1s 73 ms (median) /
 *    214 ms (p99) after the press, although the pipeline had handled them
 *    within 25 ms. So, per operator connection:
 *    - a delivery gives its slot back once its bytes are queued on the
 *      connection, not when the socket drains. aedes' watch on the drain stays
 *      (a reader frozen for its drainTimeout, 60 s, is disconnected by aedes);
 *    - above SUBSCRIBER_BACKLOG_BYTES queued unsent, messages published at
 *      QoS 0 (telemetry) to that connection are dropped and counted: QoS 0 is
 *      at most once, and a reader this far behind would read them late anyway.
 *      QoS 1 messages (alerts, events, status) are never dropped here;
 *    - above SUBSCRIBER_MAX_BACKLOG_BYTES, the connection is closed and
 *      counted: its memory is bounded. A persistent session gets what it missed
 *      when it reconnects (sessions.ts).
 *    The unsent bytes are Node's (`writableLength`); the kernel's buffers of the
 *    connection (a few MB on loopback) come before them, and Node cannot see or
 *    shrink those. What waits there is in order, as MQTT over one connection is:
 *    a console that must see P1s at once subscribes to the alert topics on a
 *    connection of its own, not behind a firehose of readings.
 *
 * The wrappers are per client (two closures, as aedes' own deliver functions
 * are): subscriptions capture the deliver function when they are made, so they
 * are replaced right after login, before any SUBSCRIBE is read.
 */
import type { Writable } from "node:stream";
import type { Client } from "aedes";
import { flushNow } from "./socket-writes.js";

/**
 * Unsent bytes on an operator's connection above which QoS 0 messages to it are dropped: about
 * 20,000 readings, a second of the bench's overload output, a minute and more of a site's.
 */
export const SUBSCRIBER_BACKLOG_BYTES = 4 * 1024 * 1024;
/** Unsent bytes above which an operator's connection is closed (QoS 1 alone has filled it). */
export const SUBSCRIBER_MAX_BACKLOG_BYTES = 32 * 1024 * 1024;

/** What the slow-subscriber rule did, for stats and metrics. */
export class SlowSubscribers {
  /** QoS 0 messages not delivered to a connection that was too far behind. */
  dropped = 0;
  /** Connections closed because their unsent backlog passed SUBSCRIBER_MAX_BACKLOG_BYTES. */
  disconnected = 0;
  constructor(
    /** Told once per connection each time it starts dropping (rate-limit it). */
    readonly onDropping: (clientId: string, backlogBytes: number) => void,
    readonly onDisconnect: (clientId: string, backlogBytes: number) => void,
  ) {}
}

type Done = (err?: Error | null, client?: unknown) => void;
type Deliver = (
  packet: { topic: string; qos: number; brokerId?: string; brokerCounter?: number },
  cb: () => void,
) => void;
interface DeliveringClient {
  id: string;
  /** aedes sets it once the CONNACK is written. */
  connackSent: boolean;
  conn: Writable;
  deliverQoS: Deliver;
  deliver0: Deliver;
  waitForDrain(done: Done): void;
}

const SLOW = Symbol("linli.slowSubscribers");
const DROPPING = Symbol("linli.dropping");
type Tracked = DeliveringClient & { [SLOW]: SlowSubscribers; [DROPPING]: boolean };

const noop = (): void => undefined;

/** Installs both rules on an operator's client, right after it logged in. */
export function deliverToOperator(
  client: Client,
  urgentPrefixes: readonly string[],
  slow: SlowSubscribers,
  /** Whether the session's queue sends this message instead (sessions.ts heldBack). */
  heldBack: (
    clientId: string,
    packet: { brokerId?: string; brokerCounter?: number },
    connackSent: boolean,
  ) => boolean,
): void {
  const c = client as unknown as Tracked;
  c[SLOW] = slow;
  c[DROPPING] = false;
  const originalWait = c.waitForDrain;
  c.waitForDrain = function releaseSlot(this: Tracked, done: Done): void {
    // aedes' own wait, for its frozen-reader timeout only; the slot is given back now.
    originalWait.call(this, noop);
    setImmediate(done, null, this);
  };
  for (const name of ["deliverQoS", "deliver0"] as const) {
    const deliver = c[name];
    c[name] = (packet, cb) => {
      // Before the CONNACK (a persistent session being restored: its subscriptions are live
      // already), a message its queue holds is left to the queue's flush after the CONNACK. Written
      // now, it went out before the CONNACK [MQTT-3.2.0-1] (a P1 at once: mqtt.js then waited on
      // it and never read the CONNACK) or twice (live, then from the queue). Likewise the start's
      // republication of a state the session restored: its queue sends (or sent) it once.
      if (packet.qos > 0 && heldBack(c.id, packet, c.connackSent)) {
        setImmediate(cb);
        return;
      }
      if (!isUrgent(packet.topic, urgentPrefixes)) {
        if (tooFarBehind(c, packet.qos)) {
          setImmediate(cb);
          return;
        }
        deliver(packet, cb);
        return;
      }
      const deferred = globalThis.setImmediate;
      let first = true;
      globalThis.setImmediate = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => {
        if (!first) return deferred(fn, ...args);
        first = false;
        fn(...args);
        return undefined;
      }) as typeof setImmediate;
      try {
        deliver(packet, cb);
      } finally {
        globalThis.setImmediate = deferred;
      }
      // Out now, not at the uncork ticks (mqtt-packet's writeToStream corks every packet on every
      // transport, and plain TCP is corked by our coalescing too): the P1 is delivered at the end
      // of a chain of microtasks (the retained store's promise), and what the same turn queued
      // before it ran first (PUBACKs released, the journal's sync hand-off, the rest of a drained
      // batch). The later uncorks find nothing corked.
      flushNow(c.conn);
    };
  }
}

/**
 * The slow-subscriber rule for a reading framed by direct-fanout.ts, which holds `queuedBytes` for
 * this connection until the turn ends: true when it may be queued too.
 */
export function mayQueueReading(
  client: { id: string; conn: Writable },
  queuedBytes: number,
  slow: SlowSubscribers,
): boolean {
  return !tooFarBehind(client as Tracked, 0, slow, queuedBytes);
}

/** The slow-subscriber rule for one non-urgent delivery: true when it is not to be written. */
function tooFarBehind(c: Tracked, qos: number, slow: SlowSubscribers = c[SLOW], queuedBytes = 0): boolean {
  const backlog = c.conn.writableLength + queuedBytes;
  if (backlog <= SUBSCRIBER_BACKLOG_BYTES) {
    c[DROPPING] = false;
    return false;
  }
  if (backlog > SUBSCRIBER_MAX_BACKLOG_BYTES) {
    if (!c.conn.destroyed) {
      slow.disconnected++;
      slow.onDisconnect(c.id, backlog);
      c.conn.destroy(new Error("subscriber too slow: unsent backlog over its bound"));
    }
    return true;
  }
  if (qos !== 0) return false;
  slow.dropped++;
  if (!c[DROPPING]) {
    c[DROPPING] = true;
    slow.onDropping(c.id, backlog);
    // Readings written past aedes (direct-fanout.ts) do not start aedes' watch on a reader that
    // stopped (its drainTimeout: closed when the socket has not drained for 60 s); start it here.
    if (!(c as { _drainTimer?: unknown })._drainTimer && typeof c.waitForDrain === "function")
      c.waitForDrain(noop);
  }
  return true;
}

function isUrgent(topic: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) if (topic.startsWith(p)) return true;
  return false;
}
