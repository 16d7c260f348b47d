/**
 * Incident matching: the simulator subscribes to the gateway's alert states
 * (`linli/<site>/alerts/+/+/+`, docs/topics.md) with an operator login and
 * pairs every injected incident with the alert it must cause.
 *
 * An alert *occurrence* is a state whose `transition` says the condition
 * happened (`raised`, `reactivated`, `repeated`, `changed` (an open
 * condition's causes changed, topics 0.12.0), `chattering`,
 * `flood-released`) and whose `updatedAt` (gateway time) is not before the
 * run began: retained copies of alerts from before the run are not
 * occurrences, and a restarted gateway republishing an alert with the same
 * `id` and `rev` is recognised as the copy it is. An incident is matched by
 * the first occurrence of its code on its device after it was injected; a
 * second alert *id* raised for the same device and code after the match is a
 * duplicate (a double press must be one call); a new alert on one of the
 * simulator's devices that no incident explains is unexpected.
 */
import { build } from "hdr-histogram-js";
import type { MqttClient } from "mqtt";
import { createDeviceClient, type DeviceTlsOptions, endClient } from "../mqtt/link.js";

export interface Expectation {
  /** Incident label for the report, e.g. `press#3`. */
  incident: string;
  code: string;
  /** Alert topic's last segment: the device id (household id for WELFARE_CHECK). */
  key: string;
  /** When it was injected (epoch ms, this machine). */
  at: number;
  /** When the alert may come at the earliest (hold-open times); latency counts from here. */
  dueAt: number;
  /** Max latency for this incident, ms. */
  latencyMaxMs: number;
  /** The device was disconnected when the incident happened (latency counts from its reconnection). */
  awayAtIncident?: boolean;
  matched?: { alertId: string; at: number; latencyMs: number; late: boolean };
}

/**
 * A reading the gateway must publish on `linli/<site>/telemetry/<model>/<key>`: proof that it
 * accepted a message no alert would show (a GD-2 back from a power cut with `ts` 0).
 */
export interface ReadingExpectation {
  incident: string;
  model: string;
  key: string;
  /** What it proves, for the report. */
  what: string;
  /** Readings from this time on count (epoch ms, this machine). */
  after: number;
  /** It must have come by then. */
  dueBy: number;
  test: (reading: Record<string, unknown>) => boolean;
  seenAt?: number;
}

export interface AlertSeen {
  id: string;
  code: string;
  key: string;
  transition: string;
  priority: number;
  receivedAt: number;
}

export interface CodeRow {
  code: string;
  expected: number;
  received: number;
  missing: number;
  duplicated: number;
  unexpected: number;
  late: number;
  /** Latency of this code's matched alerts, ms (nearest rank). */
  p50Ms: number | null;
  maxMs: number | null;
}

export interface LatencySummary {
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

const OCCURRENCE = new Set(["raised", "reactivated", "repeated", "changed", "chattering", "flood-released"]);
const NEW_OCCURRENCE = new Set(["raised", "reactivated"]);

export interface MatcherOptions {
  brokerUrl: string;
  tls?: DeviceTlsOptions;
  site: string;
  operator: { name: string; password: string };
  /** Device and household ids that belong to the simulator: only their alerts can be unexpected. */
  ownKeys: ReadonlySet<string>;
  allowUnexpected: readonly string[];
  clientId?: string;
}

export class AlertMatcher {
  private client: MqttClient | undefined;
  private readonly expectations: Expectation[] = [];
  private readonly readings: ReadingExpectation[] = [];
  /** Telemetry topics subscribed for `readings` (subscribed again on every reconnection). */
  private readonly readingTopics = new Set<string>();
  private readonly seenRevs = new Set<string>();
  /** Alert ids an expectation matched, by code/key, for duplicate detection. */
  private readonly matchedIds = new Map<string, Set<string>>();
  private readonly duplicates: AlertSeen[] = [];
  private readonly unexpected: AlertSeen[] = [];
  private readonly histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000,
    numberOfSignificantValueDigits: 3,
  });
  private startedAt = Number.POSITIVE_INFINITY;
  /**
   * The gateway's alert flood (`alerts/flood`, retained) as seen during the run: while it lasts the
   * gateway holds new P3 and P4 alerts until it ends, so a missing one is explained. Null: no flood seen.
   */
  private flood: { newAlerts10m: number; ongoing: boolean } | null = null;
  private ackIds = new Set<string>();
  received = 0;
  /** Reconnections of the operator's connection (a gateway restart: one). */
  reconnects = 0;
  /** Set when the operator login is refused or the subscription fails. */
  error: string | undefined;

  constructor(private readonly opts: MatcherOptions) {}

  /** Connects and subscribes; resolves once the SUBACK is in. */
  async connect(): Promise<void> {
    const client = createDeviceClient(this.opts.brokerUrl, {
      ...this.opts.tls,
      // Client ids belong to their owner (docs/security.md "Client ids"): an operator's is `<name>-...`.
      clientId: this.opts.clientId ?? `${this.opts.operator.name}-linli-sim-${process.pid}`,
      username: this.opts.operator.name,
      password: this.opts.operator.password,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      // Subscribed again by us on every connection (below), not left to mqtt.js's bookkeeping:
      // after a gateway restart the subscription must exist before anything else counts.
      resubscribe: false,
    });
    this.client = client;
    const topic = `linli/${this.opts.site}/alerts/+/+/+`;
    const floodTopic = `linli/${this.opts.site}/alerts/flood`;
    let first = true;
    client.on("connect", () => {
      if (first) return;
      this.reconnects++;
      client.subscribeAsync([topic, floodTopic], { qos: 1 }).catch((err: unknown) => {
        this.error = `resubscribing after a reconnection: ${err instanceof Error ? err.message : String(err)}`;
      });
      for (const t of this.readingTopics)
        client.subscribeAsync(t, { qos: 0 }).catch((err: unknown) => {
          this.error = `resubscribing to ${t}: ${err instanceof Error ? err.message : String(err)}`;
        });
    });
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
    // Errors after the first connection (a gateway restarting) are retried by mqtt.js: keep the last one.
    client.on("error", (err) => {
      this.error = err.message;
    });
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", (err) => reject(new Error(`operator ${this.opts.operator.name}: ${err.message}`)));
    });
    first = false;
    const granted = await client.subscribeAsync([topic, floodTopic], { qos: 1 });
    // The flood state only explains a missing alert: a broker that refuses it costs nothing else.
    if (granted.some((g) => g.topic === topic && g.qos === 128))
      throw new Error(`operator ${this.opts.operator.name}: subscription to ${topic} refused`);
  }

  /** The run begins: occurrences from now on count. */
  begin(at = Date.now()): void {
    this.startedAt = at;
  }

  expect(e: Expectation): void {
    this.expectations.push(e);
  }

  /** Watches the device's telemetry for a reading that passes `e.test` (subscribing to it now). */
  expectReading(e: ReadingExpectation): void {
    this.readings.push(e);
    const topic = `linli/${this.opts.site}/telemetry/${e.model}/${e.key}`;
    if (this.readingTopics.has(topic)) return;
    this.readingTopics.add(topic);
    this.client?.subscribeAsync(topic, { qos: 0 }).catch((err: unknown) => {
      this.error = `subscribing to ${topic}: ${err instanceof Error ? err.message : String(err)}`;
    });
  }

  /** Feeds one telemetry reading (from the subscription, or a test). */
  onReading(model: string, key: string, reading: Record<string, unknown>, now = Date.now()): void {
    for (const e of this.readings)
      if (e.seenAt === undefined && e.model === model && e.key === key && now >= e.after && e.test(reading))
        e.seenAt = now;
  }

  /** Feeds the gateway's flood state (`alerts/flood`, from the subscription, or a test). */
  onFlood(state: unknown): void {
    const s = state as { state?: unknown; newAlerts10m?: unknown } | null;
    if (s?.state !== "flood") {
      // Any other state after a flood: it ended (the report says whether it was still on).
      if (this.flood && typeof s?.state === "string") this.flood.ongoing = false;
      return;
    }
    const n = typeof s.newAlerts10m === "number" ? s.newAlerts10m : 0;
    this.flood = { newAlerts10m: Math.max(n, this.flood?.newAlerts10m ?? 0), ongoing: true };
  }

  /** Whether the gateway was in an alert flood at some time during the run (retained state included). */
  floodSeen(): { newAlerts10m: number; ongoing: boolean } | null {
    return this.flood;
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (payload.length === 0) return;
    const parts = topic.split("/");
    if (parts.length === 4 && parts[2] === "alerts" && parts[3] === "flood") {
      try {
        this.onFlood(JSON.parse(payload.toString("utf8")));
      } catch {
        // Not JSON: not the gateway's flood state.
      }
      return;
    }
    if (parts.length === 5 && parts[2] === "telemetry") {
      try {
        this.onReading(parts[3] as string, parts[4] as string, JSON.parse(payload.toString("utf8")));
      } catch {
        // Not JSON: not a reading of ours.
      }
      return;
    }
    if (parts.length !== 6) return;
    let a: Record<string, unknown>;
    try {
      a = JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
    } catch {
      return;
    }
    const now = Date.now();
    const id = String(a.id ?? "");
    const code = String(a.code ?? parts[4]);
    const key = parts[5] as string;
    const transition = String(a.transition ?? "");
    const updatedAt = Number(a.updatedAt ?? 0);
    const rev = `${id}:${a.rev ?? a.updatedAt}:${transition}`;
    if (this.seenRevs.has(rev)) return;
    this.seenRevs.add(rev);
    // The gateway's clock and ours are the same machine's (or NTP-synchronised): 1 s of slack.
    if (!OCCURRENCE.has(transition) || updatedAt < this.startedAt - 1_000) return;
    this.received++;
    const seen: AlertSeen = { id, code, key, transition, priority: Number(a.priority ?? 0), receivedAt: now };
    const slot = `${code}/${key}`;
    const open = this.expectations.find((e) => !e.matched && e.code === code && e.key === key && e.at <= now);
    if (open) {
      const latencyMs = Math.max(0, now - open.dueAt);
      open.matched = { alertId: id, at: now, latencyMs, late: latencyMs > open.latencyMaxMs };
      this.histogram.recordValue(Math.max(1, Math.round(latencyMs)));
      const ids = this.matchedIds.get(slot) ?? new Set<string>();
      ids.add(id);
      this.matchedIds.set(slot, ids);
      this.ackIds.add(id);
      return;
    }
    if (!NEW_OCCURRENCE.has(transition)) return;
    const ids = this.matchedIds.get(slot);
    if (ids && !ids.has(id)) {
      this.duplicates.push(seen);
      this.ackIds.add(id);
    } else if (!ids && (this.opts.ownKeys.has(key) || key === "gateway")) {
      if (!this.opts.allowUnexpected.includes(code)) this.unexpected.push(seen);
      this.ackIds.add(id);
    }
  }

  /** Expectations not matched yet whose deadline is still ahead. */
  pending(now = Date.now()): number {
    return (
      this.expectations.filter((e) => !e.matched && now <= e.dueAt + e.latencyMaxMs).length +
      this.readings.filter((r) => r.seenAt === undefined && now <= r.dueBy).length
    );
  }

  /** The latest deadline of an unmatched expectation or an unseen reading (epoch ms), or 0 when none is open. */
  lastDeadline(): number {
    let last = 0;
    for (const e of this.expectations) if (!e.matched) last = Math.max(last, e.dueAt + e.latencyMaxMs);
    for (const r of this.readings) if (r.seenAt === undefined) last = Math.max(last, r.dueBy);
    return last;
  }

  /** Resolves when every expectation is matched or past its deadline, or after `maxWaitMs`. */
  async settle(maxWaitMs: number, tick?: () => void): Promise<void> {
    const end = Date.now() + maxWaitMs;
    while (Date.now() < end) {
      if (this.pending() === 0) break;
      tick?.();
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  counts(): { expected: number; matched: number; missing: number; duplicated: number; unexpected: number } {
    const matched = this.expectations.filter((e) => e.matched).length;
    return {
      expected: this.expectations.length,
      matched,
      missing: this.expectations.length - matched,
      duplicated: this.duplicates.length,
      unexpected: this.unexpected.length,
    };
  }

  rows(): CodeRow[] {
    const rows = new Map<string, CodeRow>();
    const row = (code: string) => {
      let r = rows.get(code);
      if (!r) {
        r = {
          code,
          expected: 0,
          received: 0,
          missing: 0,
          duplicated: 0,
          unexpected: 0,
          late: 0,
          p50Ms: null,
          maxMs: null,
        };
        rows.set(code, r);
      }
      return r;
    };
    for (const e of this.expectations) {
      const r = row(e.code);
      r.expected++;
      if (e.matched) {
        r.received++;
        if (e.matched.late) r.late++;
      } else r.missing++;
    }
    for (const r of rows.values()) {
      const l = this.expectations
        .filter((e) => e.code === r.code && e.matched)
        .map((e) => Math.round(e.matched?.latencyMs ?? 0))
        .sort((a, b) => a - b);
      if (l.length > 0) {
        r.p50Ms = l[Math.ceil(l.length / 2) - 1] ?? null;
        r.maxMs = l[l.length - 1] ?? null;
      }
    }
    for (const d of this.duplicates) row(d.code).duplicated++;
    for (const u of this.unexpected) row(u.code).unexpected++;
    return [...rows.values()].sort((a, b) => a.code.localeCompare(b.code));
  }

  latency(): LatencySummary {
    const n = this.histogram.totalCount;
    if (n === 0) return { count: 0, p50Ms: null, p99Ms: null, maxMs: null };
    return {
      count: n,
      p50Ms: Math.min(this.histogram.getValueAtPercentile(50), this.histogram.maxValue),
      // Percentiles are bucket upper bounds: never above the exact maximum.
      p99Ms: Math.min(this.histogram.getValueAtPercentile(99), this.histogram.maxValue),
      maxMs: this.histogram.maxValue,
    };
  }

  /** The readings watched for, each with when it was seen (undefined: never, within the run). */
  readingList(): ReadingExpectation[] {
    return [...this.readings];
  }

  missingList(): Expectation[] {
    return this.expectations.filter((e) => !e.matched);
  }
  lateList(): Expectation[] {
    return this.expectations.filter((e) => e.matched?.late);
  }
  duplicateList(): AlertSeen[] {
    return [...this.duplicates];
  }
  unexpectedList(): AlertSeen[] {
    return [...this.unexpected];
  }

  /** Acknowledges every alert the run caused, so the site is left as it was found. */
  async acknowledgeAll(note: string): Promise<number> {
    const client = this.client;
    if (!client?.connected) return 0;
    const ids = [...this.ackIds];
    await Promise.all(
      ids.map((id) =>
        client.publishAsync(
          `linli/${this.opts.site}/ack/${id}`,
          JSON.stringify({ by: this.opts.operator.name, note }),
          {
            qos: 1,
          },
        ),
      ),
    );
    return ids.length;
  }

  async close(): Promise<void> {
    this.histogram.destroy();
    if (this.client) await endClient(this.client);
  }
}
