/**
 * The gateway's Prometheus metrics (docs/metrics.md). Everything is read at
 * scrape time in `collect()` callbacks from state the gateway keeps anyway
 * (lane counters, Counters, open alerts, bus stats): no per-message work here.
 * The one exception is the latency histogram, which the consumer feeds
 * through `recordLatency` (see latency.ts for its measured cost).
 *
 * Own registry (never prom-client's global one), so two gateways in one
 * process (tests) do not collide. Process metrics (CPU, RSS, heap, event loop
 * lag, GC) are per process: they live in one lazily created registry shared
 * by every instance, because prom-client's collectors install observers
 * that are never removed.
 */
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from "prom-client";
import type { BusStats, LinkPhase } from "../../protocols/index.js";
import type { LaneStats, PipelineStats } from "../pipeline/lanes.js";
import { linliVersion } from "../version.js";
import { LATENCY_BUCKETS_SECONDS, LatencyHistogram } from "./latency.js";

/** Lane ids as the pipeline numbers them (devices/profile.ts: 0 P1, 1 alert, 2 telemetry). */
export const LANE_NAMES = ["p1", "alert", "telemetry"] as const;

/** What the metrics read from the gateway; `Gateway` satisfies it. */
export interface MetricsSource {
  readonly pipeline: { stats(): PipelineStats };
  readonly counters: {
    snapshot(): { messages: Record<string, number>; rejections: Record<string, Record<string, number>> };
  };
  readonly engine: { openAlerts(): Iterable<{ readonly state: string; readonly priority: number }> };
  stats(): {
    parked: number;
    devices: { total: number; online: number; lost: number };
    /** The upstream bridge (northbound.upstream), or null when none is configured. */
    upstream?: {
      /** host:port of the upstream broker. */
      broker: string;
      connected: boolean;
      backlog: number;
      backlogDropped: number;
      telemetryDropped: number;
      ghostsDeleted?: number;
      /** Set aside after upstream closed the connection on them (MAX_REFUSALS times). */
      refused?: number;
    } | null;
    /** The device listener (mqtt.deviceListener), or null when none is configured. */
    deviceListener?: { connections: number; telemetryConflated: number; restarts?: number } | null;
    /** Operators' connections too far behind (broker/operator-delivery.ts). */
    slowSubscribers?: { dropped: number; disconnected: number };
  };
  /** The journal (docs/durability.md); null stats when there is none. */
  readonly storageHealthy?: boolean;
  /** Starts on the last good configuration, the site file refused (config-refusal.ts). */
  readonly configRefusedStarts?: number;
  journalStats?(): {
    bytesOnDisk: number;
    segments: number;
    liveKeys: number;
    records: number;
    syncs: number;
    lastSyncMs: number;
    compactions: number;
    writeErrors: number;
    urgentWrites: number;
    urgentWritesSlow: number;
  } | null;
  /**
   * What the journal found at open (docs/durability.md "Damage"): every damage counted by kind
   * (its list names only the first ones); null when there is none.
   */
  journalRecovery?(): { damageByKind: Readonly<Record<string, { count: number }>> } | null;
}

/** RecoveryReport damage kinds (gateway/journal/recovery.ts), each exported even at 0. */
export const JOURNAL_DAMAGE_KINDS = ["torn-tail", "corrupt-record", "missing-segments", "snapshot"] as const;

/** What a bus reports (protocols/modbus/bus.ts `Bus.stats()`). */
export type BusStatsView = Pick<
  BusStats,
  | "name"
  | "linkState"
  | "requests"
  | "replies"
  | "exceptions"
  | "timeouts"
  | "retries"
  | "crcErrors"
  | "framingErrors"
  | "discarded"
  | "transportErrors"
  | "reconnects"
  | "overflows"
  | "duplicates"
  | "queueDepth"
  | "commandQueueDepth"
  | "utilisation"
>;

/** Called at scrape time; returns the current stats of every bus it knows. */
export type BusStatsProvider = () => Iterable<BusStatsView>;

let processRegistry: Registry | null = null;

/** CPU, RSS, heap, event loop lag, GC: prom-client's default collectors, once per process. */
function defaultProcessRegistry(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * `linli_bus_link_state` values: the state is the sample's value, not a
 * label, so a bus is one series whatever happens to its link.
 */
export const LINK_STATE_VALUES: Readonly<Record<LinkPhase, number>> = {
  closed: 0,
  down: 1,
  backoff: 2,
  connecting: 3,
  up: 4,
};

/** Bus counters exported as `linli_bus_<name>_total{bus}`. */
const BUS_COUNTERS = [
  ["requests", "Requests accepted into a bus queue"],
  ["replies", "Matching replies, exceptions included"],
  ["exceptions", "Modbus exception replies"],
  ["timeouts", "Attempts that timed out (a retried request can count twice)"],
  ["retries", "Retried attempts"],
  ["crcErrors", "Frames with a bad CRC"],
  ["framingErrors", "Framing errors (the line was flushed)"],
  ["discarded", "Frames or stale byte runs that matched no outstanding request"],
  ["transportErrors", "Transport errors (the link was reopened)"],
  ["reconnects", "Successful reopenings of the link after a loss"],
  ["overflows", "Requests refused because a bus queue was full"],
  ["duplicates", "Requests not queued because the same poll was still pending"],
] as const satisfies ReadonlyArray<readonly [keyof BusStatsView, string]>;

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export class GatewayMetrics {
  readonly registry = new Registry();
  /** Per-lane end-to-end latency; fed by the pipeline consumer. */
  readonly latency = new LatencyHistogram(LANE_NAMES.length);
  private readonly busProviders: BusStatsProvider[] = [];
  /** Every bus's stats, read once per scrape in `render()` and shared by the bus metrics. */
  private busSnapshot: BusStatsView[] = [];
  /** Live reconfigurations (gateway/reload.ts), by outcome; incremented by `Gateway.reload`. */
  readonly configReloads: Counter<"result">;
  /** Steps of the wall clock seen while running (gateway/clock-step.ts); incremented by the gateway. */
  readonly clockSteps: Counter;
  /** Alert label sets seen so far: reported as 0 once empty instead of vanishing. */
  private readonly alertSeries = new Map<string, { state: string; priority: string }>();
  /** Alerts raised since start, by code and priority; incremented by the gateway when one is raised. */
  private readonly alertsRaised: Counter<"code" | "priority">;
  /** Entries whose rules were skipped as superseded (consume.ts), by lane id: a plain add on that path. */
  private readonly supersededByLane = LANE_NAMES.map(() => 0);

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    const laneGauge = (name: string, help: string, pick: (l: LaneStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["lane"],
        registers,
        collect() {
          const s = source.pipeline.stats();
          this.set({ lane: "p1" }, pick(s.p1));
          this.set({ lane: "alert" }, pick(s.alert));
          this.set({ lane: "telemetry" }, pick(s.telemetry));
        },
      });
    const laneCounter = (name: string, help: string, pick: (l: LaneStats) => number) =>
      new Counter({
        name,
        help,
        labelNames: ["lane"],
        registers,
        collect() {
          const s = source.pipeline.stats();
          this.reset();
          this.inc({ lane: "p1" }, pick(s.p1));
          this.inc({ lane: "alert" }, pick(s.alert));
          this.inc({ lane: "telemetry" }, pick(s.telemetry));
        },
      });

    new Counter({
      name: "linli_config_refused_starts_total",
      help: "Starts whose site file was refused and that run on the last good configuration (CONFIG_REFUSED)",
      registers,
      collect() {
        this.reset();
        this.inc(source.configRefusedStarts ?? 0);
      },
    });
    new Gauge({
      name: "linli_storage_healthy",
      help: "1 while the journal keeps its promise (alerts survive a restart); 0 when degraded (/readyz says why)",
      registers,
      collect() {
        this.set(source.storageHealthy === false ? 0 : 1);
      },
    });
    const journalGauge = (
      name: string,
      help: string,
      pick: (j: NonNullable<ReturnType<NonNullable<MetricsSource["journalStats"]>>>) => number,
    ) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const j = source.journalStats?.() ?? null;
          if (j !== null) this.set(pick(j));
        },
      });
    const journalCounter = (
      name: string,
      help: string,
      pick: (j: NonNullable<ReturnType<NonNullable<MetricsSource["journalStats"]>>>) => number,
    ) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const j = source.journalStats?.() ?? null;
          this.reset();
          if (j !== null) this.inc(pick(j));
        },
      });
    journalGauge(
      "linli_journal_bytes",
      "Bytes the journal's directory holds (segments and snapshots)",
      (j) => j.bytesOnDisk,
    );
    journalGauge("linli_journal_segments", "Journal segment files", (j) => j.segments);
    journalGauge(
      "linli_journal_live_keys",
      "Live records (alerts, devices, backlog ...) in the journal",
      (j) => j.liveKeys,
    );
    journalGauge(
      "linli_journal_last_sync_seconds",
      "Duration of the last fdatasync",
      (j) => j.lastSyncMs / 1000,
    );
    journalCounter("linli_journal_records_total", "Records written since start", (j) => j.records);
    journalCounter(
      "linli_journal_syncs_total",
      "fdatasync calls since start (one per group commit)",
      (j) => j.syncs,
    );
    journalCounter("linli_journal_compactions_total", "Snapshots taken since start", (j) => j.compactions);
    journalCounter(
      "linli_journal_write_errors_total",
      "Failed writes or syncs since start",
      (j) => j.writeErrors,
    );
    journalCounter(
      "linli_journal_urgent_writes_total",
      "Writes made at once for a P1 alert instead of waiting for the write pool",
      (j) => j.urgentWrites,
    );
    journalCounter(
      "linli_journal_urgent_writes_slow_total",
      "Of those, writes that took 1 ms or more: the disk held a P1 alert up",
      (j) => j.urgentWritesSlow,
    );

    new Counter({
      name: "linli_journal_recovery_damaged_total",
      help: "Damage the journal found when it was opened (at start, or its delayed full open), by kind (docs/durability.md, Damage)",
      labelNames: ["kind"],
      registers,
      collect() {
        const r = source.journalRecovery?.() ?? null;
        this.reset();
        if (r === null) return;
        for (const kind of JOURNAL_DAMAGE_KINDS) {
          this.inc({ kind }, r.damageByKind[kind]?.count ?? 0);
        }
      },
    });

    laneGauge("linli_lane_capacity", "Ring slots per lane", (l) => l.capacity);
    laneGauge("linli_lane_occupancy", "Entries waiting in the lane's ring now", (l) => l.occupancy);
    laneGauge("linli_lane_high_water", "Highest ring occupancy since start", (l) => l.highWater);
    laneCounter("linli_lane_processed_total", "Entries handled by the consumer", (l) => l.processed);
    laneCounter(
      "linli_lane_refused_total",
      "Offers refused because the lane was full (the producer kept the event: withheld PUBACK)",
      (l) => l.refused,
    );
    laneCounter(
      "linli_lane_conflated_total",
      "Telemetry replaced in its ring slot by a newer reading of the same device",
      (l) => l.conflated,
    );
    const superseded = this.supersededByLane;
    new Counter({
      name: "linli_pipeline_superseded_total",
      help: "Entries whose rules did not run: older than one of the same device whose rules already ran (the lanes reorder)",
      labelNames: ["lane"],
      registers,
      collect() {
        this.reset();
        for (const [i, lane] of LANE_NAMES.entries()) this.inc({ lane }, superseded[i] ?? 0);
      },
    });
    new Counter({
      name: "linli_pipeline_consumer_errors_total",
      help: "Entries whose processing threw (logged; the lane went on)",
      registers,
      collect() {
        this.reset();
        this.inc(source.pipeline.stats().consumerErrors);
      },
    });

    const alertSeries = this.alertSeries;
    new Gauge({
      name: "linli_alerts_open",
      help: "Open alerts (not closed) by lifecycle state and priority",
      labelNames: ["state", "priority"],
      registers,
      collect() {
        const counts = new Map<string, number>();
        for (const a of source.engine.openAlerts()) {
          const k = `${a.state}\u0000${a.priority}`;
          if (!alertSeries.has(k)) alertSeries.set(k, { state: a.state, priority: String(a.priority) });
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        for (const [k, labels] of alertSeries) this.set(labels, counts.get(k) ?? 0);
      },
    });

    new Counter({
      name: "linli_messages_total",
      help: "Uplink messages received, per device model",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const [model, n] of Object.entries(source.counters.snapshot().messages)) this.inc({ model }, n);
      },
    });
    new Counter({
      name: "linli_rejections_total",
      help: 'Refused messages, connections and commands, per device model (or "operator", "automatic", "auth", "unknown") and reason',
      labelNames: ["model", "reason"],
      registers,
      collect() {
        this.reset();
        for (const [model, reasons] of Object.entries(source.counters.snapshot().rejections))
          for (const [reason, n] of Object.entries(reasons)) this.inc({ model, reason }, n);
      },
    });

    new Gauge({
      name: "linli_devices",
      help: "Registered devices by link state (online, lost, unknown = not yet heard from)",
      labelNames: ["link"],
      registers,
      collect() {
        const d = source.stats().devices;
        this.set({ link: "online" }, d.online);
        this.set({ link: "lost" }, d.lost);
        this.set({ link: "unknown" }, d.total - d.online - d.lost);
      },
    });
    new Gauge({
      name: "linli_ingest_parked",
      help: "Alert messages parked because their lane was full (their PUBACK is withheld)",
      registers,
      collect() {
        this.set(source.stats().parked);
      },
    });

    this.configReloads = new Counter({
      name: "linli_config_reloads_total",
      help: 'Configuration reloads (SIGHUP, linli reload) by result: "applied" or "refused" (invalid file, running configuration kept)',
      labelNames: ["result"],
      registers,
    });
    // Both series exist from the start, so an alert rule on "refused" sees 0, not nothing.
    this.configReloads.inc({ result: "applied" }, 0);
    this.configReloads.inc({ result: "refused" }, 0);
    this.clockSteps = new Counter({
      name: "linli_clock_steps_total",
      help: "Steps of the wall clock (1 s or more against the monotonic clock: NTP, set by hand) seen while running; timers kept their elapsed time, journaled times moved with the step",
      registers,
    });

    this.alertsRaised = new Counter({
      name: "linli_alerts_raised_total",
      help: "Alerts raised since start, by code and priority (repeats of an open alert are not counted)",
      labelNames: ["code", "priority"],
      registers,
    });
    new Gauge({
      name: "linli_build_info",
      help: "Always 1; the gateway's version and the Node.js version as labels",
      labelNames: ["version", "node"],
      registers,
    }).set({ version: linliVersion(), node: process.versions.node }, 1);

    // Labelled by the broker, so a gateway without an upstream has no series (not a misleading 0).
    new Gauge({
      name: "linli_device_listener_connections",
      help: "Devices logged in on the device listener (mqtt.deviceListener); absent without one",
      registers,
      collect() {
        const d = source.stats().deviceListener ?? null;
        this.reset();
        if (d !== null) this.set(d.connections);
      },
    });
    new Counter({
      name: "linli_device_listener_telemetry_conflated_total",
      help: "Readings the device listener's worker replaced by a newer one of the same connection while its telemetry ring was full (or dropped at the connection's close); absent without a device listener",
      registers,
      collect() {
        const d = source.stats().deviceListener ?? null;
        this.reset();
        if (d !== null) this.inc(d.telemetryConflated);
      },
    });
    new Counter({
      name: "linli_device_listener_restarts_total",
      help: "Times the device listener's worker died and was restarted (its devices disconnected and reconnected); absent without a device listener",
      registers,
      collect() {
        const d = source.stats().deviceListener ?? null;
        this.reset();
        if (d !== null) this.inc(d.restarts ?? 0);
      },
    });
    new Counter({
      name: "linli_broker_slow_subscriber_dropped_total",
      help: "QoS 0 messages (telemetry) not delivered to an operator's connection that had over 4 MiB unsent (docs/topics.md)",
      registers,
      collect() {
        this.reset();
        this.inc(source.stats().slowSubscribers?.dropped ?? 0);
      },
    });
    new Counter({
      name: "linli_broker_slow_subscriber_disconnects_total",
      help: "Operators' connections closed because they had over 32 MiB unsent (docs/topics.md)",
      registers,
      collect() {
        this.reset();
        this.inc(source.stats().slowSubscribers?.disconnected ?? 0);
      },
    });
    const upstream = () => source.stats().upstream ?? null;
    new Gauge({
      name: "linli_upstream_connected",
      help: "1 while the upstream broker (northbound.upstream) is connected, else 0",
      labelNames: ["broker"],
      registers,
      collect() {
        const u = upstream();
        this.reset();
        if (u !== null) this.set({ broker: u.broker }, u.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: "linli_upstream_backlog",
      help: "QoS 1 messages waiting for the upstream broker (bounded by northbound.upstream.backlog)",
      labelNames: ["broker"],
      registers,
      collect() {
        const u = upstream();
        this.reset();
        if (u !== null) this.set({ broker: u.broker }, u.backlog);
      },
    });
    new Counter({
      name: "linli_upstream_dropped_total",
      help: 'Messages not delivered upstream: kind "backlog" (oldest dropped, the backlog was full), "telemetry" (not kept while the uplink was down), "refused" (set aside: upstream closed the connection on it every time)',
      labelNames: ["broker", "kind"],
      registers,
      collect() {
        const u = upstream();
        this.reset();
        if (u === null) return;
        this.inc({ broker: u.broker, kind: "backlog" }, u.backlogDropped);
        this.inc({ broker: u.broker, kind: "telemetry" }, u.telemetryDropped);
        this.inc({ broker: u.broker, kind: "refused" }, u.refused ?? 0);
      },
    });
    new Counter({
      name: "linli_upstream_ghosts_deleted_total",
      help: "Retained alert states on the upstream broker that the gateway does not know as open, deleted at a connect (e.g. after a restore from backup)",
      labelNames: ["broker"],
      registers,
      collect() {
        const u = upstream();
        this.reset();
        if (u !== null) this.inc({ broker: u.broker }, u.ghostsDeleted ?? 0);
      },
    });

    this.registry.registerMetric(histogramMetric(this.latency) as unknown as Metric<string>);
    this.registerBusMetrics();
  }

  /**
   * Hook for Modbus: the bus manager registers a callback returning every
   * bus's stats; they are read at scrape time. May be called more than once
   * (each provider's buses are reported).
   */
  registerBusStats(provider: BusStatsProvider): void {
    this.busProviders.push(provider);
  }

  /** An alert was raised (not a repeat of an open one). */
  alertRaised(code: string, priority: number): void {
    this.alertsRaised.inc({ code, priority: String(priority) });
  }

  /** An entry of `lane` whose rules were skipped, superseded by a newer one of its device. Hot path. */
  recordSuperseded(lane: number): void {
    this.supersededByLane[lane] = (this.supersededByLane[lane] ?? 0) + 1;
  }

  /** Records one processed entry's end-to-end latency (ms) for its lane. Hot path: no allocation. */
  recordLatency(lane: number, ms: number): void {
    this.latency.record(lane, ms);
  }

  /** The exposition: this gateway's metrics, then the process metrics. */
  async render(): Promise<string> {
    const buses: BusStatsView[] = [];
    for (const p of this.busProviders) for (const b of p()) buses.push(b);
    this.busSnapshot = buses;
    const [own, proc] = await Promise.all([this.registry.metrics(), defaultProcessRegistry().metrics()]);
    return `${own}\n${proc}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private registerBusMetrics(): void {
    const registers = [this.registry];
    const buses = () => this.busSnapshot;
    new Gauge({
      name: "linli_bus_link_up",
      help: "1 when the bus's link is up, 0 otherwise (down, connecting, backoff, closed)",
      labelNames: ["bus"],
      registers,
      collect() {
        this.reset();
        for (const b of buses()) this.set({ bus: b.name }, b.linkState === "up" ? 1 : 0);
      },
    });
    new Gauge({
      name: "linli_bus_link_state",
      help: "The bus's link state as a number: 0 closed, 1 down, 2 backoff, 3 connecting, 4 up",
      labelNames: ["bus"],
      registers,
      collect() {
        this.reset();
        for (const b of buses()) this.set({ bus: b.name }, LINK_STATE_VALUES[b.linkState]);
      },
    });
    for (const [field, help] of BUS_COUNTERS) {
      new Counter({
        name: `linli_bus_${snake(field)}_total`,
        help,
        labelNames: ["bus"],
        registers,
        collect() {
          this.reset();
          for (const b of buses()) this.inc({ bus: b.name }, b[field]);
        },
      });
    }
    new Gauge({
      name: "linli_bus_queue_depth",
      help: "Requests waiting per bus queue (poll, command)",
      labelNames: ["bus", "queue"],
      registers,
      collect() {
        this.reset();
        for (const b of buses()) {
          this.set({ bus: b.name, queue: "poll" }, b.queueDepth);
          this.set({ bus: b.name, queue: "command" }, b.commandQueueDepth);
        }
      },
    });
    new Gauge({
      name: "linli_bus_utilisation_ratio",
      help: "Share of wall time the bus's line was busy since start (0..1)",
      labelNames: ["bus"],
      registers,
      collect() {
        this.reset();
        for (const b of buses()) this.set({ bus: b.name }, b.utilisation);
      },
    });
  }
}

/**
 * The latency histogram as a prom-client metric object: the registry calls
 * `get()` at scrape time; the counts come from the preallocated arrays.
 */
function histogramMetric(h: LatencyHistogram) {
  const name = "linli_processing_latency_seconds";
  const help = "End-to-end processing latency per lane: gateway receive to handled by the alert engine";
  const les = [...LATENCY_BUCKETS_SECONDS.map(String), "+Inf"];
  return {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    reset(): void {},
    async get() {
      const values: Array<{ metricName: string; labels: Record<string, string>; value: number }> = [];
      LANE_NAMES.forEach((lane, i) => {
        const l = h.lane(i);
        les.forEach((le, j) => {
          values.push({
            metricName: `${name}_bucket`,
            labels: { lane, le },
            value: l.cumulative[j] as number,
          });
        });
        values.push({ metricName: `${name}_sum`, labels: { lane }, value: l.sumSeconds });
        values.push({ metricName: `${name}_count`, labels: { lane }, value: l.count });
      });
      return { name, help, type: "histogram", aggregator: "sum", values };
    },
  };
}
