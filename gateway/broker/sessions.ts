/**
 * Persistent MQTT sessions (CONNECT with clean session 0) that survive a
 * gateway restart, for operators' consoles that were away.
 *
 * An aedes persistence. Retained messages are kept by retained-store.ts (their
 * payloads packed apart from short-lived Buffers). Wills, QoS 2 state and the index of
 * subscriptions stay in aedes' in-memory persistence; the gateway republishes
 * its retained state from its own journal at start. The outgoing queue is
 * ours, for every client: bounded per client, and for operators' sessions
 * written through to a DurableMap under `mqtt/`:
 *
 *   mqtt/s/<client id>          { owner, subs: [{ topic, qos }], away, cred }   one per operator session
 *   mqtt/q/<client id>/<seq>    { t: topic, p: payload, q: qos }    one per queued or in-flight message
 *
 * A queue entry is written when aedes enqueues a QoS 1 message for a session
 * whose console is away, and deleted at its PUBACK or when the session is
 * discarded (a clean-session CONNECT with that id). For a connected console a
 * message is written only if it is still unacknowledged after writeAfterMs, or
 * when the console goes: an acknowledged-at-once delivery costs the store
 * nothing (measured, bench/sessions.ts: writing every delivery through the
 * journal cost 1.55x the CPU per message). A crash (SIGKILL) therefore loses
 * the deliveries to connected consoles younger than writeAfterMs; the
 * gateway's republication of its open alerts at start queues their states in
 * the restored sessions again. setup() restores every session into
 * memory before aedes returns from createBroker, so before any listener opens.
 * Devices' persistent sessions stay in memory only: nothing a device receives
 * (commands) is worth replaying after a restart.
 *
 * `cred` fingerprints the credentials the operator had when the session was made
 * (credentials.ts): a start that finds other ones deletes the session, as a reload that changes
 * them does (the account given to someone else cannot be told from a new password).
 *
 * At a start, each restored queue remembers its last restored message per topic until the start's
 * republication is through (endRestore): a republished state it holds already (same id and rev)
 * is neither queued nor delivered live again.
 *
 * `away` orders the sessions by when their consoles went away, to discard the one away longest
 * at maxSessions. It is a counter, not a time: a wall-clock time there was not moved by a step of
 * the clock (gateway/moved-times.ts), so after a step back the console that had just left looked
 * away longest and lost its queued alerts. The counter goes on after a restart from the largest
 * restored value (records written as wall-clock ms before it keep their order among themselves).
 */
import { Readable } from "node:stream";
import type { Aedes, Client, PublishPacket } from "aedes";
import aedesPersistence from "aedes-persistence";
import { credentialFingerprint } from "./credentials.js";
import { RetainedStore } from "./retained-store.js";
import { DROP_RANKS, type DropKind, MessageClassifier, OverflowIndex } from "./session-overflow.js";

/** What this module needs of the gateway's journal (gateway/journal/journal.ts). */
export interface DurableMap {
  entries(prefix?: string): IterableIterator<[string, unknown]>;
  put(key: string, value: unknown): void;
  delete(key: string): void;
}

export interface SessionOptions {
  store: DurableMap;
  /** Who owns this connected client's persistent session if it is to be kept in the store (operators), else null. */
  owner(client: Client): string | null;
  /** Messages queued per client, in flight included, but P1 alert messages (urgentQueueLimit). */
  queueLimit: number;
  /** P1 alert messages (each the last of its alert) queued per client besides; default 10 x queueLimit. */
  urgentQueueLimit?: number;
  /** Durable sessions kept; beyond it the one away longest is discarded. */
  maxSessions: number;
  /** A delivery to a connected console still unacknowledged after this long is written to the store; 0: at once. */
  writeAfterMs: number;
  /** The site id: the topics' layout tells alerts, their priority and statuses apart (session-overflow.ts). */
  site: string;
  /**
   * Called once per message dropped from a full queue (`kind`: its rank in session-overflow.ts;
   * `copy` lost nothing), and per session discarded.
   */
  onDrop(clientId: string, reason: "queue-full" | "session-evicted", topic?: string, kind?: DropKind): void;
  /** Called when a write to the store throws. */
  onStoreError(err: Error): void;
  /**
   * Bytes the queued messages of all sessions may take in the store (default: no bound). The
   * store is the alerts' journal, under its quota: queued copies of alerts must not crowd out
   * the alerts themselves. Beyond it a queued message is kept in memory only.
   */
  storeBudgetBytes?: number;
  /** Called per message kept in memory only because the store budget is spent. */
  onOverBudget?(clientId: string, topic: string): void;
  /**
   * The operator's password as the configuration gives it now (plain or a hash; null: none), or
   * undefined when the configuration does not name it. A saved session keeps a fingerprint of the
   * credentials it was made under (credentials.ts); at restore, a session whose operator is gone
   * or whose credentials changed while the gateway was stopped (removed and added again, a new
   * password) is deleted, as a reload deletes them. Absent: every owner is kept.
   */
  ownerSecret?: (owner: string) => string | null | undefined;
  /**
   * Called per session deleted because its operator is gone or its credentials changed: at restore
   * (`at` "start") or by a reload (forgetOwners, "reload"); the caller counts both alike.
   */
  onOwnerGone?(
    clientId: string,
    owner: string,
    why: "removed" | "credentials-changed",
    at: "start" | "reload",
  ): void;
  /** Monotonic ms, for writeAfterMs (elapsed time: a step of the wall clock must not move it). */
  monotonic?: () => number;
}

export interface SessionStats {
  sessions: number;
  queued: number;
  /** Messages dropped from full queues, copies made redundant by a newer one not counted (`superseded`). */
  dropped: number;
  /** Of `dropped`: alert states, escalations and events (any priority). */
  droppedAlerts: number;
  /** Of `dropped`: P1 ones (past urgentQueueLimit). */
  droppedP1: number;
  /** Messages dropped from full queues as copies: a newer message of the same alert or status was queued. */
  superseded: number;
  evicted: number;
  /** Records found damaged or orphaned at restore, skipped and removed. */
  restoreRefused: number;
  /** Sessions deleted because their operator left the configuration (at restore or by a reload). */
  ownerRemoved: number;
  /** Sessions deleted because their operator's credentials changed (at restore or by a reload). */
  ownerChanged: number;
  /** Restored-then-republished copies not queued again: the session held that state already. */
  restoredDuplicates: number;
  restored: number;
  /** Writes the store refused (they went on in memory). */
  storeErrors: number;
  /** Queued messages kept in memory only, the store budget spent (lost to a restart). */
  overBudget: number;
  /** Bytes the queued messages' records take in the store (estimated). */
  storedBytes: number;
}

type Packet = PublishPacket & { brokerId?: string; brokerCounter: number; messageId?: number };

interface Entry {
  /**
   * The publish's own packet object, shared by every client it is queued for.
   * gateway/broker/embedded.ts re-stamps its brokerCounter when it is emitted,
   * after it was queued; keeping the object (aedes copies it) lets
   * outgoingUpdate still find it by brokerId + brokerCounter.
   */
  packet: Packet;
  /** Set once sent (outgoingUpdate); undefined while waiting. */
  messageId: number | undefined;
  /** Journal key once written (durable sessions only); "" when not written for the store budget. */
  key: string | null;
  /** When it was queued (monotonic ms), for writeAfterMs. */
  at: number;
  /** A newer message in the same queue makes it redundant (session-overflow.ts). */
  copy: boolean;
  /** Left the queue (acknowledged, dropped): the overflow index skips it. */
  gone: boolean;
}

interface Queue {
  entries: Entry[];
  /** While the queue is past its smaller bound (until back to half of it): the overflow policy's index. */
  index: OverflowIndex<Entry> | null;
  /**
   * From the restore until the start's republication is through (endRestore): per topic, the
   * session's last queued message on it when that came from the restore (sent and acknowledged
   * since, or not). A republished message that repeats it (the same bytes, or the same alert's
   * state of the same rev) is not queued again. At most one per restored entry.
   */
  restored: Map<string, Entry> | null;
  /**
   * Packets not queued as such repeats while the client is connected: not to be delivered live
   * either (heldBack), in the order published; at most SKIPPED_MAX (beyond, the oldest forgotten).
   */
  skipped: Packet[] | null;
}

interface Session {
  id: string;
  /** The operator whose session it is: no other account may take the client id over. */
  owner: string;
  prefix: string;
  subs: Map<string, number>;
  nextSeq: number;
  /** Entries of its queue not written to the store yet (its console is connected). */
  unwritten: number;
  /** Order in which its client last went away (a counter, not a time); picks the session to discard at maxSessions. */
  away: number;
  /** Fingerprint of its operator's credentials when it was made (credentials.ts); null: a record from before. */
  cred: string | null;
}

/** The promise-returning forms of aedes-persistence's in-memory implementation, as aedes 1.x calls them. */
interface Inner {
  setup(broker: Aedes): Promise<void>;
  addSubscriptions(client: { id: string }, subs: { topic: string; qos: number }[]): Promise<void>;
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<void>;
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string; qos: number }[]>;
  subscriptionsByTopic(topic: string): Promise<{ clientId: string; topic: string; qos: number }[]>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
  incomingStorePacket(client: Client, packet: Packet): Promise<void>;
  incomingGetPacket(client: Client, packet: Packet): Promise<Packet>;
  incomingDelPacket(client: Client, packet: Packet): Promise<void>;
  cleanIncoming(client: Client): Promise<void>;
  putWill(client: Client, packet: Packet): Promise<void>;
  getWill(client: Client): Promise<Packet | undefined>;
  delWill(client: { id: string; brokerId?: string }): Promise<Packet | undefined>;
  streamWill(brokers: unknown): Readable;
  getClientList(topic: string): Readable;
  destroy(): Promise<void>;
}

// A CommonJS module whose types declare an ES default export: at run time the default import is the factory itself.
const memory = aedesPersistence as unknown as () => Inner;

const SESSION_PREFIX = "mqtt/s/";
/** Repeats of restored messages remembered per connected client until its delivery leaves them out. */
const SKIPPED_MAX = 1024;
const QUEUE_PREFIX = "mqtt/q/";

export class SessionPersistence {
  private readonly inner = memory();
  /** Retained messages: ours, not aedes', for their payloads' memory (retained-store.ts). */
  readonly retained = new RetainedStore();
  private readonly queues = new Map<string, Queue>();
  /** Topics whose last message restored into some session's queue has a payload (a state, not a deletion). */
  private restoredStates = new Set<string>();
  private readonly sessions = new Map<string, Session>();
  private broker: Aedes | null = null;
  /** The next `away` order: larger than every session's (restored ones included). */
  private nextAway = 1;
  private readonly monotonic: () => number;
  private dropped = 0;
  private droppedAlerts = 0;
  private droppedP1 = 0;
  private superseded = 0;
  private readonly classifier: MessageClassifier;
  private readonly urgentQueueLimit: number;
  /** The smaller bound: past it, the overflow policy looks at the queue. */
  private readonly minLimit: number;
  private evicted = 0;
  private restoreRefused = 0;
  private ownerRemoved = 0;
  private ownerChanged = 0;
  private restoredDuplicates = 0;
  /** Fingerprints of operators' credentials, per operator: recomputed when the secret changes. */
  private readonly creds = new Map<string, { secret: string | null; fp: Promise<string | null> }>();
  private restored = 0;
  private storeErrors = 0;
  private overBudget = 0;
  private storedBytes = 0;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly opts: SessionOptions) {
    this.monotonic = opts.monotonic ?? (() => performance.now());
    this.classifier = new MessageClassifier(opts.site);
    this.urgentQueueLimit = opts.urgentQueueLimit ?? opts.queueLimit * 10;
    this.minLimit = Math.min(opts.queueLimit, this.urgentQueueLimit);
  }

  stats(): SessionStats {
    let queued = 0;
    for (const q of this.queues.values()) queued += q.entries.length;
    return {
      sessions: this.sessions.size,
      queued,
      dropped: this.dropped,
      droppedAlerts: this.droppedAlerts,
      droppedP1: this.droppedP1,
      superseded: this.superseded,
      evicted: this.evicted,
      restoreRefused: this.restoreRefused,
      ownerRemoved: this.ownerRemoved,
      ownerChanged: this.ownerChanged,
      restoredDuplicates: this.restoredDuplicates,
      restored: this.restored,
      storeErrors: this.storeErrors,
      overBudget: this.overBudget,
      storedBytes: this.storedBytes,
    };
  }

  /**
   * Whether a persistent session for this client id may be kept: known, or a
   * free place, or one made by discarding the session away longest. False
   * when every place is held by a connected client.
   */
  admit(clientId: string): boolean {
    if (this.sessions.has(clientId) || this.sessions.size < this.opts.maxSessions) return true;
    let oldest: Session | null = null;
    for (const s of this.sessions.values()) {
      if (this.online(s.id)) continue;
      if (oldest === null || s.away < oldest.away) oldest = s;
    }
    if (oldest === null) return false;
    this.evicted++;
    this.opts.onDrop(oldest.id, "session-evicted");
    this.discard(oldest.id);
    this.inner.cleanSubscriptions({ id: oldest.id }).catch(() => {});
    return true;
  }

  /**
   * Deletes every session (subscriptions, queued messages, its records) of these operators: a reload
   * removed them or changed their credentials (`why`). Kept, a new operator added later under the
   * same name (another person) was handed them: the old one's subscriptions and the alerts queued
   * for them. Their connections are closed first (the caller); a disconnect that comes after finds
   * no session to save. Returns how many.
   */
  forgetOwners(owners: ReadonlySet<string>, why: "removed" | "credentials-changed" = "removed"): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (!owners.has(s.owner)) continue;
      this.discard(s.id);
      this.inner.cleanSubscriptions({ id: s.id }).catch(() => {});
      n++;
      // Counted as a start counts them (before 2026-12-06 a reload's were in the stats only).
      this.opts.onOwnerGone?.(s.id, s.owner, why, "reload");
    }
    for (const o of owners) this.creds.delete(o);
    if (why === "removed") this.ownerRemoved += n;
    else this.ownerChanged += n;
    return n;
  }

  /**
   * The start's republication is through: restored queues stop comparing what comes with what
   * they restored (a later message repeating a restored one is a new publication).
   */
  endRestore(): void {
    for (const q of this.queues.values()) {
      q.restored = null;
      q.skipped = null;
    }
  }

  /**
   * Whether a delivery to this connected client is to be left out: a repeat of a restored message
   * that was not queued (it was, or will be, sent from the queue), or, before the CONNACK, a
   * message its queue holds (the flush after the CONNACK sends it).
   */
  heldBack(
    clientId: string,
    packet: { brokerId?: string; brokerCounter?: number },
    connackSent: boolean,
  ): boolean {
    const q = this.queues.get(clientId);
    if (q === undefined) return false;
    const skipped = q.skipped;
    if (skipped !== null && skipped.length > 0) {
      // aedes hands each subscriber a copy: found by broker id and counter (re-stamped at emission,
      // after the enqueue). Deliveries come in emission order: normally the first one.
      for (let i = 0; i < skipped.length; i++) {
        const p = skipped[i] as Packet;
        if (p.brokerCounter === packet.brokerCounter && p.brokerId === packet.brokerId) {
          skipped.splice(0, i + 1);
          return true;
        }
      }
    }
    return !connackSent && this.holds(clientId, packet);
  }

  /**
   * Once, after the start: the topics whose last message restored into a session's queue carries a
   * payload. A queue entry is written after the records it stands for, so a crash between an
   * alert's close and the queueing of its closed state leaves the last active state as the
   * session's last word on the topic; the gateway deletes those it no longer holds (an empty
   * retained publish reaches the queue like a close does).
   */
  takeRestoredStates(): string[] {
    const out = [...this.restoredStates];
    this.restoredStates = new Set();
    return out;
  }

  /** The account a durable session with this client id belongs to, if there is one. */
  ownerOf(clientId: string): string | undefined {
    return this.sessions.get(clientId)?.owner;
  }

  // aedes checks that setup is a native async function.
  async setup(broker: Aedes): Promise<void> {
    this.broker = broker;
    await this.inner.setup(broker);
    await this.restore(broker);
    broker.on("clientDisconnect", (client: Client) => {
      const s = this.sessions.get(client.id);
      if (s === undefined) return;
      s.away = this.nextAway++;
      this.saveSession(s);
      this.writeUnwritten(s, Number.POSITIVE_INFINITY);
    });
    if (this.opts.writeAfterMs > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(10, this.opts.writeAfterMs / 2));
      this.sweeper.unref();
    }
  }

  /** Stops the sweep and writes what is still unwritten (clean shutdown; aedes has closed its clients). */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const s of this.sessions.values()) this.writeUnwritten(s, Number.POSITIVE_INFINITY);
  }

  // --- retained messages: retained-store.ts; wills, QoS 2: aedes' in-memory persistence ---

  async storeRetained(packet: Packet): Promise<void> {
    this.retained.store(packet);
  }
  createRetainedStreamCombi(patterns: string[]): Readable {
    return this.retained.stream(patterns);
  }
  createRetainedStream(pattern: string): Readable {
    return this.retained.stream([pattern]);
  }
  incomingStorePacket(client: Client, packet: Packet): Promise<void> {
    return this.inner.incomingStorePacket(client, packet);
  }
  incomingGetPacket(client: Client, packet: Packet): Promise<Packet> {
    return this.inner.incomingGetPacket(client, packet);
  }
  incomingDelPacket(client: Client, packet: Packet): Promise<void> {
    return this.inner.incomingDelPacket(client, packet);
  }
  cleanIncoming(client: Client): Promise<void> {
    return this.inner.cleanIncoming(client);
  }
  putWill(client: Client, packet: Packet): Promise<void> {
    return this.inner.putWill(client, packet);
  }
  getWill(client: Client): Promise<Packet | undefined> {
    return this.inner.getWill(client);
  }
  delWill(client: { id: string; brokerId?: string }): Promise<Packet | undefined> {
    return this.inner.delWill(client);
  }
  streamWill(brokers: unknown): Readable {
    return this.inner.streamWill(brokers);
  }
  getClientList(topic: string): Readable {
    return this.inner.getClientList(topic);
  }
  countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return this.inner.countOffline();
  }
  subscriptionsByTopic(topic: string): Promise<{ clientId: string; topic: string; qos: number }[]> {
    return this.inner.subscriptionsByTopic(topic);
  }
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string; qos: number }[]> {
    return this.inner.subscriptionsByClient(client);
  }
  destroy(): Promise<void> {
    return this.inner.destroy();
  }

  // --- subscriptions of persistent sessions: in memory, and in the store for operators ---

  async addSubscriptions(client: Client, subs: { topic: string; qos: number }[]): Promise<void> {
    await this.inner.addSubscriptions(client, subs);
    let s = this.sessions.get(client.id);
    if (s === undefined) {
      const owner = this.opts.owner(client);
      if (owner === null) return;
      // The credentials it is made under (a resolved promise once computed for this operator).
      const cred = await this.credentialOf(owner);
      s = this.sessions.get(client.id);
      if (s === undefined) {
        // admit() ran at CONNECT; it runs again here for connections that raced past the bound.
        if (!this.admit(client.id)) return;
        s = this.newSession(client.id, owner, this.nextAway++, cred ?? null);
        s.unwritten = this.queues.get(client.id)?.entries.length ?? 0;
      }
    }
    for (const sub of subs) s.subs.set(sub.topic, sub.qos);
    this.saveSession(s);
  }

  async removeSubscriptions(client: Client, topics: string[]): Promise<void> {
    await this.inner.removeSubscriptions(client, topics);
    const s = this.sessions.get(client.id);
    if (s === undefined) return;
    for (const t of topics) s.subs.delete(t);
    // The session itself (and its queue) lives on until a clean-session CONNECT [MQTT-3.1.2-4].
    this.saveSession(s);
  }

  /** aedes calls this on every CONNECT with clean session 1: the previous session is discarded [MQTT-3.1.2-6]. */
  async cleanSubscriptions(client: { id: string }): Promise<void> {
    await this.inner.cleanSubscriptions(client);
    this.discard(client.id);
  }

  // --- the outgoing queue: ours, bounded, written through for durable sessions ---

  async outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void> {
    this.enqueue(sub.clientId, packet);
  }

  async outgoingEnqueueCombi(subs: readonly { clientId: string }[], packet: Packet): Promise<void> {
    // Overlapping filters list a client once per filter; it must be queued once
    // (aedes' memory persistence queues it twice and replays it twice after a reconnect).
    if (subs.length === 1) {
      this.enqueue((subs[0] as { clientId: string }).clientId, packet);
      return;
    }
    const seen = new Set<string>();
    for (const sub of subs) {
      if (seen.has(sub.clientId)) continue;
      seen.add(sub.clientId);
      this.enqueue(sub.clientId, packet);
    }
  }

  /** Before a queued message is written: remember its packet id, for the PUBACK. */
  async outgoingUpdate(client: Client, packet: Packet): Promise<void> {
    const q = this.queues.get(client.id);
    if (q === undefined) return;
    // From the newest: a live delivery is of the message just queued, behind those awaiting their PUBACK.
    for (let i = q.entries.length - 1; i >= 0; i--) {
      const e = q.entries[i] as Entry;
      if (e.packet.brokerCounter === packet.brokerCounter && e.packet.brokerId === packet.brokerId) {
        e.messageId = packet.messageId;
        return;
      }
    }
    // Not queued (dropped from a full queue meanwhile): it is still delivered,
    // only not kept. aedes' memory persistence throws here, which disconnects the client.
  }

  async outgoingClearMessageId(client: Client, packet: { messageId?: number }): Promise<Packet | undefined> {
    // aedes also calls this with a packet that has no id when it skips a duplicate
    // delivery (overlapping subscriptions); the memory persistence then removes
    // whichever unsent message comes first, or fails (moscajs/aedes #543, open).
    // Only a PUBACK's id removes anything here.
    if (packet.messageId === undefined) return undefined;
    const q = this.queues.get(client.id);
    if (q === undefined) return undefined;
    const i = q.entries.findIndex((e) => e.messageId === packet.messageId);
    if (i < 0) return undefined;
    const [e] = q.entries.splice(i, 1) as [Entry];
    q.index?.removed(e);
    this.forget(client.id, e);
    if (q.entries.length * 2 <= this.minLimit) q.index = null;
    if (q.entries.length === 0 && !this.sessions.has(client.id)) this.queues.delete(client.id);
    return e.packet;
  }

  /**
   * Whether this client's queue holds this message (published at QoS 1 while its persistent
   * session was being restored: the flush after the CONNACK sends it). By its broker id and
   * counter, as outgoingUpdate finds it (aedes hands subscribers a copy of the packet).
   */
  holds(clientId: string, packet: { brokerId?: string; brokerCounter?: number }): boolean {
    const q = this.queues.get(clientId);
    if (q === undefined) return false;
    for (let i = q.entries.length - 1; i >= 0; i--) {
      const p = (q.entries[i] as Entry).packet;
      if (p.brokerCounter === packet.brokerCounter && p.brokerId === packet.brokerId) return true;
    }
    return false;
  }

  /** The client's queue at (re)connect, oldest first; messages sent before go again with DUP set [MQTT-4.4.0-1]. */
  outgoingStream(client: Client): Readable {
    const q = this.queues.get(client.id);
    const out = q === undefined ? [] : q.entries.map(toWire);
    return Readable.from(out);
  }

  private enqueue(clientId: string, packet: Packet): void {
    let q = this.queues.get(clientId);
    if (q === undefined) {
      q = { entries: [], index: null, restored: null, skipped: null };
      this.queues.set(clientId, q);
    }
    if (q.restored !== null && this.repeatsRestored(clientId, q, q.restored, packet)) {
      this.restoredDuplicates++;
      return;
    }
    const e: Entry = {
      packet,
      messageId: undefined,
      key: null,
      at: this.monotonic(),
      copy: false,
      gone: false,
    };
    q.entries.push(e);
    q.index?.add(e);
    const s = this.sessions.get(clientId);
    // A session's entries without a record (key null) are exactly those counted unwritten: the
    // newcomer too, before the overflow policy may drop it (forget() uncounts it then).
    if (s !== undefined) s.unwritten++;
    // Over a bound: the policy may drop the newcomer itself (a copy already, or the lowest rank).
    if (q.entries.length > this.minLimit) {
      this.trim(clientId, q);
      if (e.gone) return;
    }
    if (s === undefined || (this.opts.writeAfterMs > 0 && this.online(clientId))) return;
    // Written in queue order: normally only the newcomer (older unwritten entries go at disconnect).
    if (s.unwritten === 1) {
      s.unwritten = 0;
      this.write(s, e);
    } else this.writeUnwritten(s, Number.POSITIVE_INFINITY);
  }

  /**
   * Whether `packet` repeats the session's last queued message on its topic, restored at the start:
   * the same bytes, or a state of the same alert and rev (`id` + `rev` name one state; the start's
   * republication of an open alert is its state again). A repeat is marked skipped (no live
   * delivery either); anything else on the topic ends the comparison there. O(1) but for a
   * repeat's payload compared and, when the bytes differ, both classified once (cached).
   */
  private repeatsRestored(clientId: string, q: Queue, restored: Map<string, Entry>, packet: Packet): boolean {
    const prev = restored.get(packet.topic);
    if (prev === undefined) return false;
    let same = samePayload(prev.packet.payload, packet.payload);
    if (!same && prev.packet.payload.length > 0 && packet.payload.length > 0) {
      const a = this.classifier.info(prev.packet);
      const b = this.classifier.info(packet);
      same = a.stateOf !== null && a.stateOf === b.stateOf && a.rev === b.rev;
    }
    if (!same) {
      restored.delete(packet.topic);
      return false;
    }
    // Connected (or connecting): its deliver function gets the packet next, and must leave it out.
    if (this.online(clientId)) {
      const skipped = (q.skipped ??= []);
      if (skipped.length >= SKIPPED_MAX) skipped.shift();
      skipped.push(packet);
    }
    return true;
  }

  private write(s: Session, e: Entry): void {
    const size = recordSize(e);
    if (this.storedBytes + size > (this.opts.storeBudgetBytes ?? Number.POSITIVE_INFINITY)) {
      e.key = "";
      this.overBudget++;
      this.opts.onOverBudget?.(s.id, e.packet.topic);
      return;
    }
    e.key = `${s.prefix}${s.nextSeq++}`;
    this.storedBytes += size;
    this.put(e.key, { t: e.packet.topic, p: e.packet.payload, q: e.packet.qos });
  }

  /** Deletes an entry's record, if it has one. */
  private unstore(e: Entry): void {
    if (e.key === null || e.key === "") return;
    this.storedBytes -= recordSize(e);
    this.del(e.key);
  }

  /** Writes, oldest first, a session's unwritten entries queued at or before `before`. */
  private writeUnwritten(s: Session, maxAt: number): void {
    if (s.unwritten === 0) return;
    const q = this.queues.get(s.id);
    if (q === undefined) {
      s.unwritten = 0;
      return;
    }
    for (const e of q.entries) {
      if (e.at > maxAt) break;
      if (e.key !== null) continue;
      this.write(s, e);
      if (--s.unwritten === 0) break;
    }
  }

  private sweep(): void {
    const maxAt = this.monotonic() - this.opts.writeAfterMs;
    for (const s of this.sessions.values()) this.writeUnwritten(s, maxAt);
  }

  /** An entry left the queue: its record goes, or it no longer counts as unwritten. */
  private forget(clientId: string, e: Entry): void {
    e.gone = true;
    if (e.key !== null) this.unstore(e);
    else {
      const s = this.sessions.get(clientId);
      if (s !== undefined && s.unwritten > 0) s.unwritten--;
    }
  }

  /**
   * Overflow policy of a queue past queueLimit (docs/topics.md "Persistent sessions"; the ranks:
   * session-overflow.ts). P1 alert messages that are the last of their alert count against
   * urgentQueueLimit, everything else against queueLimit. Past queueLimit the oldest unsent
   * message of the lowest rank goes: copies made redundant by a newer message first, then
   * telemetry, other messages, events, states and escalations of P2-P4 alerts. Past
   * urgentQueueLimit the oldest unsent P1 message goes. Messages in flight (their PUBACK due) go
   * only when nothing else of the rank to drop is left (a console that never acknowledges).
   */
  private trim(clientId: string, q: Queue): void {
    const limit = this.opts.queueLimit;
    // Rebuilt once it has seen twice the queue's bound since its build: what left meanwhile is shed.
    if (q.index === null || q.index.added > 2 * (limit + this.urgentQueueLimit))
      q.index = new OverflowIndex(this.classifier, q.entries);
    const index = q.index;
    const P1 = DROP_RANKS.length - 1;
    for (;;) {
      const p1 = index.p1;
      let v: { e: Entry; kind: DropKind } | null;
      if (q.entries.length - p1 > limit) {
        v = index.victim();
        if (v === null || v.kind === "p1") {
          const e = q.entries.find((x) => index.rankOf(x) < P1) as Entry;
          v = { e, kind: DROP_RANKS[index.rankOf(e)] as DropKind };
        }
      } else if (p1 > this.urgentQueueLimit)
        v = index.victim(P1) ?? { e: q.entries.find((x) => index.rankOf(x) === P1) as Entry, kind: "p1" };
      else return;
      const { e, kind } = v;
      const i = q.entries.indexOf(e);
      // Never expected (every removal marks the entry gone); a wrong index would splice the newest.
      if (i < 0) return;
      index.removed(e);
      q.entries.splice(i, 1);
      this.forget(clientId, e);
      // Dropped unsent: a repeat of it is no repeat for this session.
      if (q.restored?.get(e.packet.topic) === e) q.restored.delete(e.packet.topic);
      if (kind === "copy") this.superseded++;
      else {
        this.dropped++;
        if (kind === "event" || kind === "state" || kind === "escalation" || kind === "p1")
          this.droppedAlerts++;
        if (kind === "p1") this.droppedP1++;
      }
      this.opts.onDrop(clientId, "queue-full", e.packet.topic, kind);
    }
  }

  /**
   * The store failing (closed, or throwing) must not stop a delivery: aedes
   * would fail the publish and not emit it. Counted and reported; the session
   * goes on in memory.
   */
  private put(key: string, value: unknown): void {
    try {
      this.opts.store.put(key, value);
    } catch (err) {
      this.storeErrors++;
      this.opts.onStoreError(err as Error);
    }
  }

  private del(key: string): void {
    try {
      this.opts.store.delete(key);
    } catch (err) {
      this.storeErrors++;
      this.opts.onStoreError(err as Error);
    }
  }

  private online(clientId: string): boolean {
    const clients = (this.broker as unknown as { clients: Record<string, Client> } | null)?.clients;
    return clients !== undefined && clients[clientId] !== undefined;
  }

  private newSession(id: string, owner: string, away: number, cred: string | null): Session {
    const enc = encodeURIComponent(id);
    const s: Session = {
      id,
      owner,
      prefix: `${QUEUE_PREFIX}${enc}/`,
      subs: new Map(),
      nextSeq: 0,
      unwritten: 0,
      away,
      cred,
    };
    this.sessions.set(id, s);
    return s;
  }

  private saveSession(s: Session): void {
    const subs = [...s.subs].map(([topic, qos]) => ({ topic, qos }));
    this.put(`${SESSION_PREFIX}${encodeURIComponent(s.id)}`, {
      owner: s.owner,
      subs,
      away: s.away,
      ...(s.cred === null ? {} : { cred: s.cred }),
    });
  }

  /**
   * The fingerprint of the operator's credentials as configured now (credentials.ts), computed once
   * per operator and secret; undefined: the configuration does not name it; null: not checked.
   */
  private credentialOf(owner: string): Promise<string | null | undefined> {
    if (this.opts.ownerSecret === undefined) return Promise.resolve(null);
    const secret = this.opts.ownerSecret(owner);
    if (secret === undefined) return Promise.resolve(undefined);
    let c = this.creds.get(owner);
    if (c === undefined || c.secret !== secret) {
      // A cache, bounded by the operators that hold sessions: rebuilt past twice maxSessions.
      if (this.creds.size >= 2 * this.opts.maxSessions + 16) this.creds.clear();
      c = { secret, fp: credentialFingerprint(owner, secret).catch(() => null) };
      this.creds.set(owner, c);
    }
    return c.fp;
  }

  /** Drops a client's queue and, if it has one, its durable session. */
  private discard(clientId: string): void {
    const q = this.queues.get(clientId);
    const s = this.sessions.get(clientId);
    if (q !== undefined) {
      for (const e of q.entries) this.unstore(e);
      this.queues.delete(clientId);
    }
    if (s !== undefined) {
      this.sessions.delete(clientId);
      this.del(`${SESSION_PREFIX}${encodeURIComponent(clientId)}`);
    }
  }

  private async restore(broker: Aedes): Promise<void> {
    const store = this.opts.store;
    const bad: string[] = [];
    const gone: string[] = [];
    const goneIds = new Set<string>();
    const records: { key: string; id: string; rec: NonNullable<ReturnType<typeof asSessionRecord>> }[] = [];
    for (const [key, value] of store.entries(SESSION_PREFIX)) {
      const id = decodeKey(key.slice(SESSION_PREFIX.length));
      const rec = id === null ? null : asSessionRecord(value);
      if (id === null || rec === null) bad.push(key);
      else records.push({ key, id, rec });
    }
    // Each operator's fingerprint once, all at once (a plain password's is a scrypt on the pool).
    await Promise.all([...new Set(records.map((r) => r.rec.owner))].map((o) => this.credentialOf(o)));
    for (const { key, id, rec } of records) {
      // Its operator left the configuration while the gateway was stopped (or by a reload just
      // before a power cut), or was added again or given a new password: not handed over, as a
      // reload would not hand it over.
      const cred = await this.credentialOf(rec.owner);
      const why =
        cred === undefined
          ? "removed"
          : cred !== null && rec.cred !== undefined && rec.cred !== cred
            ? "credentials-changed"
            : null;
      if (why !== null) {
        gone.push(key);
        goneIds.add(id);
        if (why === "removed") this.ownerRemoved++;
        else this.ownerChanged++;
        this.opts.onOwnerGone?.(id, rec.owner, why, "start");
        continue;
      }
      const s = this.newSession(id, rec.owner, rec.away, cred ?? null);
      if (rec.away >= this.nextAway) this.nextAway = rec.away + 1;
      for (const sub of rec.subs) s.subs.set(sub.topic, sub.qos);
      if (rec.subs.length > 0) await this.inner.addSubscriptions({ id }, rec.subs);
      // A record from before fingerprints: bound to the credentials configured now.
      if (rec.cred === undefined && s.cred !== null) this.saveSession(s);
    }
    const found = new Map<string, { seq: number; key: string; t: string; p: Buffer; q: number }[]>();
    for (const [key, value] of store.entries(QUEUE_PREFIX)) {
      const slash = key.lastIndexOf("/");
      const id = decodeKey(key.slice(QUEUE_PREFIX.length, slash));
      const seq = Number(key.slice(slash + 1));
      const msg = asQueued(value);
      if (id !== null && !this.sessions.has(id) && goneIds.has(id)) {
        gone.push(key);
        continue;
      }
      if (id === null || !this.sessions.has(id) || !Number.isSafeInteger(seq) || seq < 0 || msg === null) {
        bad.push(key);
        continue;
      }
      let list = found.get(id);
      if (list === undefined) found.set(id, (list = []));
      list.push({ seq, key, ...msg });
    }
    for (const key of bad) store.delete(key);
    for (const key of gone) store.delete(key);
    this.restoreRefused += bad.length;
    // The restarted broker has a new id and counter: the queued packets are stamped as its own.
    const internals = broker as unknown as { id: string; counter: number };
    for (const [id, list] of found) {
      list.sort((a, b) => a.seq - b.seq);
      const s = this.sessions.get(id) as Session;
      s.nextSeq = (list[list.length - 1]?.seq ?? -1) + 1;
      const entries: Entry[] = list.map((m) => ({
        packet: {
          cmd: "publish",
          topic: m.t,
          payload: m.p,
          qos: m.q as 1,
          retain: false,
          dup: false,
          brokerId: internals.id,
          brokerCounter: ++internals.counter,
        },
        messageId: undefined,
        key: m.key,
        at: 0,
        copy: false,
        gone: false,
      }));
      const last = new Map<string, Entry>();
      for (const e of entries) last.set(e.packet.topic, e);
      for (const e of entries) this.storedBytes += recordSize(e);
      const q: Queue = { entries, index: null, restored: last, skipped: null };
      this.queues.set(id, q);
      this.restored += entries.length;
      for (const [topic, e] of last) if (e.packet.payload.length > 0) this.restoredStates.add(topic);
      // Bounds lowered since they were written, or P1 messages held beyond them: the overflow policy.
      if (entries.length > this.minLimit) this.trim(id, q);
    }
    this.applyStoreBudget();
  }

  /**
   * At restore: records past the store budget (lowered since they were written) are deleted, their
   * messages kept in memory only, as a message queued past the budget is; by the overflow policy's
   * ranks (session-overflow.ts), the lowest first, each queue's oldest first. Counted as usual.
   */
  private applyStoreBudget(): void {
    const budget = this.opts.storeBudgetBytes ?? Number.POSITIVE_INFINITY;
    if (this.storedBytes <= budget) return;
    const byRank: { id: string; e: Entry }[][] = DROP_RANKS.map(() => []);
    for (const [id, q] of this.queues) {
      const index = q.index ?? new OverflowIndex(this.classifier, q.entries);
      for (const e of q.entries) if (e.key !== null && e.key !== "") byRank[index.rankOf(e)]?.push({ id, e });
    }
    for (const rank of byRank)
      for (const { id, e } of rank) {
        if (this.storedBytes <= budget) return;
        this.unstore(e);
        e.key = "";
        this.overBudget++;
        this.opts.onOverBudget?.(id, e.packet.topic);
      }
  }
}

function samePayload(a: Buffer | string, b: Buffer | string): boolean {
  if (typeof a === "string" || typeof b === "string") return a.toString() === b.toString();
  return a.length === b.length && a.equals(b);
}

/** About what an entry's record takes in the store: its topic, payload and framing. */
function recordSize(e: Entry): number {
  return e.packet.topic.length + e.packet.payload.length + 32;
}

function toWire(e: Entry): Packet {
  const p = e.packet;
  return {
    cmd: "publish",
    topic: p.topic,
    payload: p.payload,
    qos: p.qos,
    // Sent because of an established subscription, not a new one [MQTT-3.3.1-9].
    retain: false,
    dup: e.messageId !== undefined,
    brokerId: p.brokerId,
    brokerCounter: p.brokerCounter,
    messageId: e.messageId,
  } as Packet;
}

function decodeKey(s: string): string | null {
  try {
    const id = decodeURIComponent(s);
    return id.length > 0 ? id : null;
  } catch {
    return null;
  }
}

function asSessionRecord(
  v: unknown,
): { owner: string; subs: { topic: string; qos: number }[]; away: number; cred?: string } | null {
  if (typeof v !== "object" || v === null) return null;
  const { owner, subs, away, cred } = v as {
    owner?: unknown;
    subs?: unknown;
    away?: unknown;
    cred?: unknown;
  };
  // Absent in records written before credentials were fingerprinted.
  if (cred !== undefined && typeof cred !== "string") return null;
  // A counter (or, written before it was one, wall-clock ms): a whole number, not negative.
  if (typeof owner !== "string" || !Array.isArray(subs) || typeof away !== "number") return null;
  if (!Number.isSafeInteger(away) || away < 0) return null;
  const out: { topic: string; qos: number }[] = [];
  for (const sub of subs) {
    const { topic, qos } = (sub ?? {}) as { topic?: unknown; qos?: unknown };
    if (typeof topic !== "string" || topic.length === 0 || (qos !== 0 && qos !== 1 && qos !== 2)) return null;
    out.push({ topic, qos });
  }
  return { owner, subs: out, away, ...(cred === undefined ? {} : { cred }) };
}

function asQueued(v: unknown): { t: string; p: Buffer; q: number } | null {
  if (typeof v !== "object" || v === null) return null;
  const { t, p, q } = v as { t?: unknown; p?: unknown; q?: unknown };
  if (typeof t !== "string" || t.length === 0 || (q !== 1 && q !== 2) || !(p instanceof Uint8Array))
    return null;
  // cbor-x may hand back a plain Uint8Array; mqtt-packet writes Buffers.
  const payload = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  return { t, p: payload, q };
}
