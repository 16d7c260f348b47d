/**
 * aedes' retained messages, with their payloads packed into slabs that hold retained payloads only.
 *
 * Why: a retained alert payload (~1.3 KB) given memory of its own (one malloc each) was placed by
 * malloc between the short-lived Buffers of the same moment (QoS 1 copies of the republish,
 * escalations, DEVICE_LOST at an aged start); once those were freed, every page still held a
 * retained payload, so malloc_trim could not give the pages back: after an aged start malloc held
 * 35-68 MB for ~25 MB in use (docs/durability.md, "Start-up memory, fourth look"). Packed, the
 * retained payloads fill whole slabs and the transient Buffers' pages come free together.
 *
 * What is kept per topic is what aedes reads to deliver a retained message (its subscribe handler
 * copies cmd, qos, topic and payload into a new packet), not the publish's whole packet.
 *
 * Bounds: a slab is never written twice at the same place (a payload handed out is never
 * overwritten, so a delivery in flight or a session queue holding one stays byte-exact). A sealed
 * slab under three quarters live is compacted at once: its live payloads are copied into the
 * current slab and the slab is dropped (its memory goes with the last delivery still holding a
 * slice). So the slabs' used bytes are at most 4/3 of the live payloads, plus the current slab; a
 * compaction copies at most three bytes per byte released since the slab was filled. Payloads over
 * OWN_ABOVE bytes get memory of their own; payloads of at most SHARED_MAX bytes (a device's
 * status: "online", "lost") share one Buffer per value, at most SHARED_VALUES values.
 */
import { Readable } from "node:stream";
import { topicMatches } from "./direct-fanout.js";

export const SLAB_BYTES = 64 * 1024;
/** Larger payloads: memory of their own (a slab holds at least four payloads). */
export const OWN_ABOVE = SLAB_BYTES / 4;
const SHARED_MAX = 16;
/**
 * Payloads a slab holds at most: bounds its list of topics (1-byte payloads would be 65,536). Only
 * payloads of SHARED_MAX bytes or fewer (once SHARED_VALUES are shared) can reach it first.
 */
const SLAB_PAYLOADS_MAX = Math.floor(SLAB_BYTES / (SHARED_MAX + 1));
const SHARED_VALUES = 64;

/** What aedes reads of a retained message. */
export interface RetainedPacket {
  cmd: "publish";
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: true;
}

interface Slab {
  buf: Buffer;
  used: number;
  /** Bytes of it that are some topic's retained payload now. */
  live: number;
  /** Topics whose payload was placed here (some since replaced): where to look when compacting. */
  topics: string[];
}

export interface RetainedStats {
  messages: number;
  slabs: number;
  /** Bytes of the slabs held (current one included). */
  slabBytes: number;
  /** Bytes of payloads in slabs that are retained now. */
  liveBytes: number;
  compactions: number;
  /** Slabs other than the current one with less than 3/4 of their used bytes live: always 0. */
  sparse: number;
}

const isSparse = (s: Slab): boolean => s.live * 4 < s.used * 3;

export class RetainedStore {
  private readonly messages = new Map<string, RetainedPacket>();
  /** Slabs by their memory: a payload's `buffer` finds its slab. */
  private readonly slabs = new Map<ArrayBufferLike, Slab>();
  private current: Slab | null = null;
  private readonly shared = new Map<string, Buffer>();
  private compactions = 0;

  /** aedes' storeRetained: an empty payload deletes the topic's retained message. */
  store(packet: { topic: string; payload: Buffer | string; qos: 0 | 1 | 2 }): void {
    const { topic } = packet;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    const old = this.messages.get(topic);
    if (payload.length === 0) this.messages.delete(topic);
    else
      this.messages.set(topic, {
        cmd: "publish",
        topic,
        payload: this.keep(topic, payload),
        qos: packet.qos,
        retain: true,
      });
    if (old !== undefined) this.release(old.payload);
  }

  /**
   * Each retained message matching each filter, once per filter that matches (as aedes' own store),
   * filter by filter in the order given: a contract (docs/topics.md "Retained messages and wills"),
   * the console's sync marker is the retained `gateway/status` of its SUBSCRIBE's last filter.
   */
  stream(filters: readonly string[]): Readable {
    const messages = this.messages;
    function* matching(): Generator<RetainedPacket> {
      for (const filter of filters)
        for (const [topic, packet] of messages) if (topicMatches(filter, topic)) yield packet;
    }
    return Readable.from(matching());
  }

  get(topic: string): RetainedPacket | undefined {
    return this.messages.get(topic);
  }

  stats(): RetainedStats {
    let slabBytes = 0;
    let liveBytes = 0;
    let sparse = 0;
    for (const s of this.slabs.values()) {
      slabBytes += s.buf.length;
      liveBytes += s.live;
      if (s !== this.current && isSparse(s)) sparse++;
    }
    return {
      messages: this.messages.size,
      slabs: this.slabs.size,
      slabBytes,
      liveBytes,
      compactions: this.compactions,
      sparse,
    };
  }

  private keep(topic: string, payload: Buffer): Buffer {
    if (payload.length <= SHARED_MAX) {
      // latin1: one character per byte, so the key is the bytes themselves.
      const key = payload.toString("latin1");
      let b = this.shared.get(key);
      if (b === undefined && this.shared.size < SHARED_VALUES) {
        b = Buffer.allocUnsafeSlow(payload.length);
        payload.copy(b);
        this.shared.set(key, b);
      }
      if (b !== undefined) return b;
    }
    if (payload.length > OWN_ABOVE) {
      const b = Buffer.allocUnsafeSlow(payload.length);
      payload.copy(b);
      return b;
    }
    return this.place(topic, payload);
  }

  /** Copies the payload into the current slab (a new one when it is full). */
  private place(topic: string, payload: Buffer): Buffer {
    let slab = this.current;
    if (
      slab === null ||
      slab.used + payload.length > slab.buf.length ||
      slab.topics.length >= SLAB_PAYLOADS_MAX
    ) {
      if (slab !== null) {
        this.current = null;
        this.compactIfSparse(slab);
      }
      slab = { buf: Buffer.allocUnsafeSlow(SLAB_BYTES), used: 0, live: 0, topics: [] };
      this.slabs.set(slab.buf.buffer, slab);
      this.current = slab;
    }
    const at = slab.used;
    payload.copy(slab.buf, at);
    slab.used += payload.length;
    slab.live += payload.length;
    slab.topics.push(topic);
    return slab.buf.subarray(at, at + payload.length);
  }

  private release(payload: Buffer): void {
    const slab = this.slabs.get(payload.buffer);
    if (slab === undefined) return; // shared, or memory of its own
    slab.live -= payload.length;
    if (slab !== this.current) this.compactIfSparse(slab);
  }

  /** A sealed slab under 3/4 live: its live payloads move to the current slab, and it is dropped. */
  private compactIfSparse(slab: Slab): void {
    if (!isSparse(slab)) return;
    this.slabs.delete(slab.buf.buffer);
    this.compactions++;
    for (const topic of slab.topics) {
      const m = this.messages.get(topic);
      // A topic placed here twice (replaced within the slab) moves once: then it is elsewhere.
      if (m === undefined || m.payload.buffer !== slab.buf.buffer) continue;
      m.payload = this.place(topic, m.payload);
    }
  }
}
