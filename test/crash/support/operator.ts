/**
 * An operations console on the gateway's embedded broker: subscribes to
 * `linli/<site>/alerts/#`, `escalations/#` and its own `ops/result/<name>`,
 * keeps the view a console shows (the last retained state per alert topic),
 * and acknowledges some alerts (seeded choice, after a short delay) with a `ref`
 * so the gateway's answer on `ops/result` can be matched to the request.
 *
 * Everything seen is kept with the gateway process (gen) it came from, so a
 * restart can be judged afterwards. Bounded by the run: a few thousand records.
 */
import mqtt, { type MqttClient } from "mqtt";
import type { Rng } from "./rng.js";
import type { AlertMsg } from "./verdict.js";

export interface SeenAlert {
  topic: string;
  msg: AlertMsg | null;
  retain: boolean;
  receivedAt: number;
  gen: number;
}

export interface AckRecord {
  ref: string;
  alertId: string;
  topic: string;
  sentAt: number;
  sentGen: number;
  answeredAt: number | null;
  answeredGen: number | null;
  ok: boolean | null;
  result: string | null;
  reason: string | null;
}

export interface EscalationSeen {
  id: string;
  level: number;
  nextAt: number | null;
  receivedAt: number;
  gen: number;
}

export interface OperatorOptions {
  port: number;
  site: string;
  name: string;
  password: string;
  rng: Rng;
  /** Share of newly unacknowledged alerts the operator acknowledges. */
  ackShare: number;
  ackDelayMs: [number, number];
  /** Also acknowledge unacknowledged alerts found retained on (re)connect, as a console user would. */
  ackRetained?: boolean;
}

export class Operator {
  private client: MqttClient | null = null;
  private gen = 0;
  private acking = false;
  private readonly ackTimers = new Set<NodeJS.Timeout>();
  private nextRef = 0;
  /** Open alerts by topic, as this session's console shows them. */
  readonly view = new Map<string, AlertMsg>();
  readonly seen: SeenAlert[] = [];
  readonly escalations: EscalationSeen[] = [];
  readonly acks: AckRecord[] = [];
  private readonly acksByRef = new Map<string, AckRecord>();
  /** Latest escalation state per alert id (alert topic or escalations topic, by arrival). */
  readonly escState = new Map<string, { level: number; nextAt: number | null }>();
  /** Local time of the last alert-topic message per alert id. */
  readonly lastReceipt = new Map<string, number>();
  /** Alert ids seen closed, and when first. */
  readonly closedIds = new Map<string, number>();
  /** Alert ids and their device: an id that turns up for a second device is a finding. */
  readonly idDevice = new Map<string, string>();
  idConflicts: string[] = [];
  /** Time the current session's SUBACK came, and of its last message. */
  subscribedAt = 0;
  lastMessageAt = 0;
  unparsable = 0;

  constructor(private readonly opts: OperatorOptions) {}

  private get prefix(): string {
    return `linli/${this.opts.site}/`;
  }

  /** A fresh session (clean): the view is rebuilt from the retained alert topics. */
  async connect(gen: number): Promise<void> {
    this.gen = gen;
    this.view.clear();
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.opts.port}`, {
      clientId: `${this.opts.name}-console-${gen}`,
      username: this.opts.name,
      password: this.opts.password,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    client.on("error", () => {});
    client.on("message", (topic, payload, packet) => this.onMessage(topic, payload, packet.retain));
    this.client = client;
    await client.subscribeAsync(
      [`${this.prefix}alerts/#`, `${this.prefix}escalations/#`, `${this.prefix}ops/result/${this.opts.name}`],
      { qos: 1 },
    );
    this.subscribedAt = Date.now();
  }

  /**
   * Waits for the retained state of a fresh session: returns as soon as every
   * topic in `expected` is back; topics for which `mayBeGone` holds (the alert
   * may have closed meanwhile) are waited for only until nothing arrived for
   * `quietMs` after at least `minMs`; the others up to `maxMs`.
   * Returns the topics still missing (for the report).
   */
  async settle(
    expected: Iterable<string>,
    mayBeGone: (topic: string) => boolean,
    maxMs: number,
    minMs = 1000,
    quietMs = 500,
  ): Promise<string[]> {
    const want = [...expected];
    const start = Date.now();
    for (;;) {
      const now = Date.now();
      const missing = want.filter((t) => !this.sessionTopics.has(t));
      if (missing.length === 0) return missing;
      const quiet = now - Math.max(this.lastMessageAt, this.subscribedAt) >= quietMs;
      if (now - start >= minMs && quiet && missing.every(mayBeGone)) return missing;
      if (now - start >= maxMs) return missing;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private readonly sessionTopics = new Set<string>();
  /** The session's connection is closed (by us or because the gateway went away). */
  get disconnected(): boolean {
    return this.client === null || !this.client.connected;
  }

  startAcking(): void {
    this.acking = true;
  }

  /** No more acknowledgements: pending ones are dropped (those alerts stay unacknowledged). */
  stopAcking(): void {
    this.acking = false;
    for (const t of this.ackTimers) clearTimeout(t);
    this.ackTimers.clear();
  }

  async disconnect(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.sessionTopics.clear();
    if (c) await c.endAsync(true).catch(() => {});
  }

  private onMessage(topic: string, payload: Buffer, retain: boolean): void {
    const now = Date.now();
    this.lastMessageAt = now;
    if (!topic.startsWith(this.prefix)) return;
    const parts = topic.slice(this.prefix.length).split("/");
    if (parts[0] === "alerts" && parts.length === 4) this.onAlert(topic, payload, retain, now);
    else if (parts[0] === "escalations" && parts.length === 4) this.onEscalation(payload, now);
    else if (parts[0] === "ops" && parts[1] === "result") this.onResult(payload, now);
  }

  private parse(payload: Buffer): Record<string, unknown> | null {
    try {
      return JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
    } catch {
      this.unparsable++;
      return null;
    }
  }

  private onAlert(topic: string, payload: Buffer, retain: boolean, now: number): void {
    this.sessionTopics.add(topic);
    if (payload.length === 0) {
      this.view.delete(topic);
      this.seen.push({ topic, msg: null, retain, receivedAt: now, gen: this.gen });
      return;
    }
    const msg = this.parse(payload) as AlertMsg | null;
    if (!msg || typeof msg.id !== "string") return;
    this.seen.push({ topic, msg, retain, receivedAt: now, gen: this.gen });
    this.lastReceipt.set(msg.id, now);
    const dev = this.idDevice.get(msg.id);
    if (dev === undefined) this.idDevice.set(msg.id, msg.deviceId);
    else if (dev !== msg.deviceId) this.idConflicts.push(`${msg.id}: ${dev} and ${msg.deviceId}`);
    if (msg.escalationNextAt !== undefined) {
      this.escState.set(msg.id, { level: msg.escalationLevel ?? 0, nextAt: msg.escalationNextAt });
    }
    const prev = this.view.get(topic);
    if (msg.state === "closed") {
      if (!this.closedIds.has(msg.id)) this.closedIds.set(msg.id, now);
      if (prev?.id === msg.id) this.view.delete(topic);
      return;
    }
    this.view.set(topic, msg);
    // A console acknowledges what newly needs someone (raised, or back to unacknowledged); what it
    // finds retained on connecting only if asked (the crash test leaves those to escalate).
    const newlyUnacked = retain
      ? this.opts.ackRetained === true && msg.state !== "active-acknowledged"
      : msg.state === "active-unacknowledged" && !(prev?.id === msg.id && prev.state === msg.state);
    if (this.acking && newlyUnacked && this.opts.rng() < this.opts.ackShare) {
      const [lo, hi] = this.opts.ackDelayMs;
      const delay = lo + this.opts.rng() * (hi - lo);
      const t = setTimeout(() => {
        this.ackTimers.delete(t);
        this.ack(topic, msg.id);
      }, delay);
      this.ackTimers.add(t);
    }
  }

  private ack(topic: string, alertId: string): void {
    const c = this.client;
    const cur = this.view.get(topic);
    if (!c || !this.acking || cur?.id !== alertId || cur.state === "active-acknowledged") return;
    const ref = `a${++this.nextRef}`;
    const rec: AckRecord = {
      ref,
      alertId,
      topic,
      sentAt: Date.now(),
      sentGen: this.gen,
      answeredAt: null,
      answeredGen: null,
      ok: null,
      result: null,
      reason: null,
    };
    this.acks.push(rec);
    this.acksByRef.set(ref, rec);
    c.publish(
      `${this.prefix}ack/${alertId}`,
      JSON.stringify({ by: this.opts.name, note: "crash test", ref }),
      { qos: 1 },
      () => {},
    );
  }

  private onEscalation(payload: Buffer, now: number): void {
    const m = this.parse(payload);
    if (!m || typeof m.id !== "string") return;
    const esc = m.escalation as { level?: number } | undefined;
    const level = typeof esc?.level === "number" ? esc.level : -1;
    const nextAt = typeof m.escalationNextAt === "number" ? m.escalationNextAt : null;
    this.escalations.push({ id: m.id, level, nextAt, receivedAt: now, gen: this.gen });
    this.escState.set(m.id, { level, nextAt });
  }

  private onResult(payload: Buffer, now: number): void {
    const m = this.parse(payload);
    if (m?.action !== "ack" || typeof m.ref !== "string") return;
    const rec = this.acksByRef.get(m.ref);
    if (!rec || rec.answeredAt !== null) return;
    rec.answeredAt = now;
    rec.answeredGen = this.gen;
    rec.ok = m.ok === true;
    rec.result = typeof m.result === "string" ? m.result : null;
    rec.reason = typeof m.reason === "string" ? m.reason : null;
  }
}
