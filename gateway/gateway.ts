/**
 * The gateway, composed: the one place where the layers meet.
 *
 *   broker (aedes) ──uplink──► ingest ──► pipeline lanes ──► consume (consume.ts):
 *                                                             supervision, rules/alert engine,
 *                                                             telemetry ──► publisher ──► broker
 *   broker ──ack──► operator commands ──► alert engine ──► publisher (+ pendant downlink)
 *
 * Here: the wiring (constructor), the order of start and stop, and what the CLI reads. Start-up's
 * steps are startup.ts's, the journal's health storage-health.ts's, the rate limiter's alert
 * device-rate.ts's.
 */

import { type Clock, systemClock } from "../core/index.js";
import type { Alert, Transition } from "./alerts/alert.js";
import { AlertEngine, type AlertEvent } from "./alerts/engine.js";
import type { OperatorAction } from "./broker/access.js";
import type { EmbeddedBroker, SessionsConfig } from "./broker/embedded.js";
import type { DeviceRateLimiter } from "./broker/rate.js";
import { applyClockStep } from "./clock-step.js";
import type { Config } from "./config/schema.js";
import { plainTextPasswordWarning } from "./config/warnings.js";
import { ConfigRefusal } from "./config-refusal.js";
import type { ConsoleServer } from "./console/server.js";
import { SampleConsumer } from "./consume.js";
import { AlertContentBuilder, escalationInfo } from "./content/alert-content.js";
import {
  type CommandFailureText,
  commandFailureText,
  commandNotConnectedText,
} from "./content/command-text.js";
import { DeviceCommands } from "./device-commands.js";
import { deviceRateLimiter, gateIngest, sweepDeviceRate } from "./device-rate.js";
import { beginStartHeap, holdsStartHeap, START_HEAP_HOLD_MS } from "./heap.js";
import type { HttpRefusal } from "./http-guard.js";
import { MqttIngest } from "./ingest/mqtt-ingest.js";
import type { Journal, JournalFs } from "./journal/journal.js";
import { KeptDevices } from "./kept-devices.js";
import { KeptHouseholds } from "./kept-households.js";
import { createLogger, type Logger, RateLimitedLog } from "./log.js";
import { loadMallocTrim, type MallocTrim, MallocTrimmer, type MallocTrimStats } from "./malloc-trim.js";
import { GatewayMetrics } from "./metrics/metrics.js";
import type { MetricsAddress, MetricsServer } from "./metrics/server.js";
import { Publisher } from "./northbound/publisher.js";
import type { NorthboundSink, Route } from "./northbound/sink.js";
import { UntilListening } from "./northbound/until-listening.js";
import { UpstreamBridge, type UpstreamStats } from "./northbound/upstream.js";
import { WrittenFirstSink } from "./northbound/written-first.js";
import type { OperatorRole } from "./operator-roles.js";
import { OperatorCommands } from "./ops.js";
import { type Completion, type PipelineStats, PriorityPipeline } from "./pipeline/lanes.js";
import { type DeviceEntry, Registry } from "./registry.js";
import { type ReloadResult, reloadGateway } from "./reload.js";
import { DeviceRuleContext } from "./rule-context.js";
import { type BusReport, type LinkFactory, ModbusSouthbound, StartupError } from "./southbound/modbus.js";
import {
  type DownlinkDevice,
  type DownlinkHooks,
  type DownlinkOrigin,
  type PendingDownlinkStats,
  PendingDownlinks,
} from "./southbound/pending-downlinks.js";
import {
  downForMs,
  dropStaleCopies,
  northboundSettled,
  type OpenedJournal,
  openJournal,
  republishRecovered,
  SESSION_RESTORE_CHECK_MAX_MS,
  sessionRestoreEnd,
  startBroker,
  startConsoleServer,
  startMetricsServer,
  unsupervised,
} from "./startup.js";
import { StateRecorder } from "./state/recorder.js";
import { type Recovered, recoverState } from "./state/recovery.js";
import type { DurableStore } from "./state/store.js";
import { Counters } from "./stats.js";
import { copyDamage, StorageHealth } from "./storage-health.js";
import { Supervisor } from "./supervision.js";
import { type Boottime, SteadyClock, systemBoottime } from "./time/steady-clock.js";
import { TimerWheel, WheelTimer } from "./time/timer-wheel.js";

/** Longest time between two checks of the wall clock for a step (time/steady-clock.ts). */
const CLOCK_CHECK_MS = 60_000;
/** How often expired downlinks are dropped and their senders told: well under their 10 min life. */
const DOWNLINK_SWEEP_MS = 15_000;
/** The answer to a reload while the gateway stops (a stop or a restart under way). */
export const RELOAD_WHILE_STOPPING =
  "the gateway is stopping (a stop or restart is under way): nothing reloaded; the next start reads the file / " +
  "网关正在停止（停止或重启进行中）：未重新加载；下次启动时读取该文件";

export { unsupervised } from "./startup.js";

export interface GatewayOptions {
  config: Config;
  clock?: Clock;
  /**
   * The boot clock, which counts time suspended (time/steady-clock.ts): tells a suspend (time
   * passed) from a step of the wall clock. Default: /proc/uptime with the system's clock, none with
   * a clock given (FakeClock's `boottime` goes with it).
   */
  boottime?: Boottime | null;
  logger?: Logger;
  /** Overrides the port of the first listener (`--mqtt-port`). */
  mqttPort?: number;
  /** How Modbus links are made (tests and the demo use ptys and loopback; default: the configured ports). */
  modbusLinks?: LinkFactory;
  /** The durable store, opened by the caller (tests); default: the journal in `storage.dir`. */
  store?: DurableStore | null;
  /** The journal's directory (`linli start --data-dir`); overrides `storage.dir`. */
  dataDir?: string;
  /** Overrides `console.port` (`--console-port`). */
  consolePort?: number;
  /** Where the journal's write(2) runs (bench/journal.ts compares them); default "pool". */
  journalWrites?: "auto" | "pool" | "loop";
  /** The journal's file-system seam (tests inject EROFS); default node:fs. */
  journalFs?: JournalFs;
  /** Operators' persistent MQTT sessions: give the journal as `store` to keep them across restarts. */
  sessions?: SessionsConfig;
  /** Gives malloc's free memory back after full GCs (malloc-trim.ts); default glibc's, null: never. */
  mallocTrim?: MallocTrim | null;
  /** Internal, tests only: the bound of what waits for the broker (until-listening.ts); default 10,000. */
  untilListeningMax?: number;
  /** Internal, tests only: the console's sockets in all and per address (console/server.ts); default 512 and 64. */
  consoleConnections?: { max: number; perAddress: number };
}

/** Timers the gateway's wheel fires in one turn of the event loop (TimerWheel firePerTurn). */
export const WHEEL_FIRE_PER_TURN = 256;

/** Where the journal lives when neither `--data-dir` nor `storage.dir` says (docs/durability.md). */
export const DEFAULT_DATA_DIR = ".linli-data";

export interface GatewayStats {
  pipeline: PipelineStats;
  counters: ReturnType<Counters["snapshot"]>;
  openAlerts: number;
  parked: number;
  devices: { total: number; online: number; lost: number };
  buses: BusReport[];
  upstream: UpstreamStats | null;
  /** The device listener (mqtt.deviceListener): devices logged in, readings its worker conflated, its worker's restarts. */
  deviceListener: { connections: number; telemetryConflated: number; restarts: number } | null;
  /** Operators' connections too far behind (broker/operator-delivery.ts): QoS 0 messages dropped, connections closed. */
  slowSubscribers: { dropped: number; disconnected: number };
  /** Downlinks to devices that were away (southbound/pending-downlinks.ts). */
  downlinks: PendingDownlinkStats | null;
}

export class Gateway {
  readonly clock: Clock;
  readonly log: Logger;
  readonly counters = new Counters();
  readonly wheel: TimerWheel;
  private readonly clockCheck = new WheelTimer((t) => this.wheel.armIn(t, CLOCK_CHECK_MS));
  readonly registry: Registry;
  readonly engine: AlertEngine;
  readonly pipeline: PriorityPipeline;
  readonly supervisor: Supervisor;
  readonly ingest: MqttIngest;
  readonly ops: OperatorCommands;
  readonly modbus: ModbusSouthbound;
  private readonly rateLog: RateLimitedLog;
  /**
   * Message rate per device (limits.deviceRate): excess dropped, DEVICE_MISBEHAVING when it goes on
   * (or when a device keeps over its share of the P1 lane or of the alert lane).
   */
  readonly deviceRate: DeviceRateLimiter;
  private deviceRateSweep: NodeJS.Timeout | null = null;
  /** Records that the gateway is running (RunningRecord), so the next start knows how long it was down. */
  private runningCheckpoint: NodeJS.Timeout | null = null;
  /** Downlinks waiting for their devices (null until the broker starts). */
  pendingDownlinks: PendingDownlinks | null = null;
  private downlinkSweep: NodeJS.Timeout | null = null;
  readonly publisher: Publisher;
  /** The people and places alert messages and operator results name (the running configuration). */
  private readonly content: AlertContentBuilder;
  /** Names of households open alerts keep, once the file may no longer have them (reload.ts). */
  readonly keptHouseholds: KeptHouseholds;
  /** Name and location of moved devices as their open alerts show them (reload.ts). */
  readonly keptDevices: KeptDevices;
  private brokerRef: EmbeddedBroker | null = null;
  /** Where northbound messages wait for their journal records' write (none without storage). */
  private readonly writtenFirst: WrittenFirstSink | null;
  /** The upstream broker bridge, when `northbound.upstream` is configured. */
  readonly upstream: UpstreamBridge | null;
  private stopping: Promise<void> | null = null;
  /** Prometheus metrics (read at scrape time; `registerBusStats` for Modbus). */
  readonly metrics: GatewayMetrics = new GatewayMetrics(this);
  private metricsServer: MetricsServer | null = null;
  private consoleServer: ConsoleServer | null = null;
  /** The journal, or null when `storage.enabled` is false. */
  readonly store: DurableStore | null;
  private readonly recorder: StateRecorder | null;
  /** What start-up read back from the journal. */
  recovered: Recovered | null = null;
  /**
   * The embedded broker's sink: holds what is published before the broker exists (bounded, counted;
   * P1 kept first: until-listening.ts). Little is: the timer wheel is held until the broker listens,
   * so restored escalations and call windows due meanwhile fire after it (start()).
   */
  private readonly local: UntilListening;
  /** The journal when the gateway opened it itself (closed at stop). */
  private journal: Journal | null = null;
  /** Whether the journal keeps its promise now, and the alerts about it. */
  private readonly storageHealth: StorageHealth;
  /** A site file refused at start, the gateway on its last good copy (config-refusal.ts). */
  readonly configRefusal: ConfigRefusal;
  /** The running configuration; replaced by `reload`. */
  private runningConfig: Config;
  /** Reloads run one after another (a second SIGHUP waits for the first). */
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly deviceCommands: DeviceCommands;
  /** Returns the memory malloc holds free after a burst (the start's first): malloc-trim.ts. */
  private readonly trimmer: MallocTrimmer;
  /** Ends the start's heap growth (heap.ts beginStartHeap): START_HEAP_HOLD_MS after the start, or at stop. */
  private endStartHeap: () => void = () => {};
  private startHeapTimer: NodeJS.Timeout | null = null;

  private constructor(config: Config, opts: GatewayOptions) {
    this.runningConfig = config;
    // Steps of the system's wall clock reach the gateway only through the wheel (time/steady-clock.ts).
    const boottime = opts.boottime !== undefined ? opts.boottime : opts.clock ? null : systemBoottime();
    const clock = new SteadyClock(opts.clock ?? systemClock, boottime, (sleptMs) =>
      // Late-bound: the log exists by the time anything reads the clock.
      this.log.info(
        { sleptMs },
        "the system was suspended (or paused): the time passed counts as such; timers due meanwhile fire now",
      ),
    );
    this.clock = clock;
    this.log = opts.logger ?? createLogger({ level: config.log.level, format: config.log.format });
    this.rateLog = new RateLimitedLog(this.log, { clock: this.clock });
    this.wheel = new TimerWheel(this.clock, {
      onError: (err) => this.log.error({ err }, "timer callback failed"),
      // A tick with thousands due (devices lost together, call windows ending) goes out in slices,
      // each through the broker before the next (docs/performance.md, "Memory, eighth pass").
      firePerTurn: WHEEL_FIRE_PER_TURN,
      steps: clock,
      // Late-bound: reported from a tick, once every part below exists.
      onStep: (stepMs) =>
        applyClockStep(stepMs, {
          clock: this.clock,
          log: this.log,
          metrics: this.metrics,
          engine: this.engine,
          supervisor: this.supervisor,
          registry: this.registry,
          publisher: this.publisher,
          recorder: this.recorder,
          downlinks: this.pendingDownlinks,
        }),
    });
    this.store = opts.store ?? null;
    this.recorder = this.store ? new StateRecorder(this.store, config.storage.checkpointInterval) : null;
    // Late-bound: the registry's timers call the supervisor, which needs the publisher.
    this.registry = new Registry(config, {
      onLost: (t) => this.supervisor.onLost(t),
      onWelfareDue: (t) => this.supervisor.onWelfareDue(t),
    });
    const up = config.northbound.upstream;
    this.upstream = up
      ? new UpstreamBridge(
          {
            url: up.url,
            site: config.site.id,
            username: up.username,
            password: up.password,
            tls: up.tls,
            clientId: up.clientId ?? `linli-${config.site.id}`,
            backlog: up.backlog,
            reconnectInitialMs: up.reconnectInitial,
            reconnectMaxMs: up.reconnectMax,
            keepaliveS: Math.max(1, Math.round(up.keepalive / 1000)),
            store: opts.store ?? null,
          },
          this.log,
          // Operators on the upstream broker are authenticated there; actions arrive as "upstream",
          // with the role the site gives that broker (`northbound.upstream.role`).
          (action, target, command, payload) =>
            this.operatorAction("upstream", up.role, action, target, command, payload, "upstream"),
        )
      : null;
    this.local = new UntilListening(opts.untilListeningMax, [
      `linli/${config.site.id}/alerts/p1/`,
      `linli/${config.site.id}/escalations/p1/`,
    ]);
    // The broker starts later (async); until then there is nobody to publish to.
    // Everything goes to both, except what one side alone asked for (`only`: a list page).
    const sink: NorthboundSink = {
      publish: (topic, payload, qos, retain, urgent, only) => {
        if (only !== "upstream") this.local.publish(topic, payload, qos, retain, urgent);
        if (only !== "local") this.upstream?.publish(topic, payload, qos, retain, urgent);
      },
    };
    // What an operator sees must survive a SIGKILL: messages wait for the journal's pool write,
    // P1 alert states and escalations first.
    const p1 = [`linli/${config.site.id}/alerts/p1/`, `linli/${config.site.id}/escalations/p1/`];
    // The recorder is the barrier: it may hold a press's alert state until the press's rules are
    // done (one record with the seq), and what is published waits for that record too.
    this.writtenFirst = this.recorder
      ? new WrittenFirstSink(sink, this.recorder, (t) => p1.some((prefix) => t.startsWith(prefix)))
      : null;
    this.publisher = new Publisher(config.site.id, this.writtenFirst ?? sink, () => this.clock.now());
    this.keptHouseholds = new KeptHouseholds(this.store);
    const kept = this.keptHouseholds;
    this.keptDevices = new KeptDevices(this.store);
    const keptDevices = this.keptDevices;
    const content = new AlertContentBuilder(
      () => this.runningConfig,
      (id) => kept.get(id),
      (alertId) => keptDevices.get(alertId),
    );
    this.content = content;
    this.publisher.describeWith((alert, t, esc) => content.describe(alert, t, esc));
    const esc = config.alerts.escalation;
    this.engine = new AlertEngine(
      config.site.id,
      this.clock,
      this.wheel,
      {
        alertChanged: (alert: Alert, t: Transition, event: AlertEvent) => {
          // An escalation is not a state change, but the retained alert carries it too, so that a
          // console that connects later sees how far the call has been escalated.
          this.publisher.alert(alert, t, escalationInfo(alert, t, this.clock));
          if (t === "raised") this.metrics.alertRaised(alert.code, alert.priority);
          this.publisher.alertEvent(event);
          this.log.info(
            {
              alertId: alert.id,
              code: alert.code,
              priority: alert.priority,
              deviceId: alert.subject.id,
              state: alert.state,
              transition: t,
              escalationLevel: alert.escalationLevel,
            },
            `alert ${t}`,
          );
        },
        escalated: (alert, level, unackForMs) => this.publisher.escalation(alert, level, unackForMs),
        floodChanged: (flood) => {
          this.publisher.flood(flood);
          // A warning while the site is flooded; its end, and the start's announcement of a normal
          // state (consoles get it retained), are not (every start logged a warning before).
          if (flood.state === "normal") this.log.info(flood, "alert flood: normal");
          else this.log.warn(flood, `alert flood: ${flood.state}`);
        },
      },
      {
        escalationP1Ms: esc.p1,
        escalationP2Ms: esc.p2,
        escalationFactor: esc.factor,
        escalationMaxIntervalMs: esc.maxInterval,
        shelveMaxMs: config.alerts.shelveMax,
        recorder: this.recorder ?? undefined,
      },
    );
    this.storageHealth = new StorageHealth(this.engine, this.log);
    this.configRefusal = new ConfigRefusal(this.engine, this.log);
    this.supervisor = new Supervisor(
      this.clock,
      this.wheel,
      this.engine,
      this.publisher,
      config.alerts.lostGrace,
      {
        timeZone: config.site.timezone,
        quietHours: new Map(
          config.households.flatMap((h) => (h.welfare.quietHours ? [[h.id, h.welfare.quietHours]] : [])),
        ),
        awayExitGraceMs: config.alerts.awayExitGrace,
        recordAway: this.recorder?.away,
        recordHousehold: this.recorder?.welfareStarted,
      },
    );
    // Late-bound: rules' automatic commands go through deviceCommands, which needs modbus, which needs the pipeline.
    const consumer = new SampleConsumer({
      clock: this.clock,
      counters: this.counters,
      supervisor: this.supervisor,
      engine: this.engine,
      // An automatic command (the GD-2's shut-off) waiting for its device stays due while the
      // device's life-safety condition (an active P1 alert) lasts (southbound/pending-downlinks.ts).
      ruleContext: new DeviceRuleContext<DeviceEntry>(
        (d, name) => this.deviceCommands.automatic(d, name, () => this.engine.hasActive(d.id, 1)),
        (d, name) => this.pendingDownlinks?.waiting(d, name) ?? false,
      ),
      rateLog: this.rateLog,
      publisher: this.publisher,
      metrics: this.metrics,
      recorder: this.recorder,
      clockSkewToleranceMs: config.ingest.clockSkewTolerance,
      failureText: this.failureText,
    });
    const p = config.pipeline;
    this.pipeline = new PriorityPipeline(
      {
        p1LaneSize: p.p1LaneSize,
        alertLaneSize: p.alertLaneSize,
        telemetryLaneSize: PriorityPipeline.sizeFor(
          this.registry.devices.size,
          p.telemetrySpan,
          p.telemetryPeakRate,
          p.telemetryLaneSize,
        ),
        telemetryBatch: p.telemetryBatch,
        telemetryMaxLagMs: p.telemetryMaxLag,
        telemetryMayFlow: () => this.brokerRef?.congested !== true,
        monotonic: () => this.clock.monotonic(),
        ...(this.store ? { commitMark: () => (this.store as DurableStore).commitMark } : {}),
      },
      consumer.consume,
      this.store ? this.commitDurably : undefined,
    );
    this.modbus = new ModbusSouthbound(
      config,
      this.registry,
      this.pipeline,
      this.supervisor,
      this.counters,
      this.log,
      this.rateLog,
      this.clock,
      opts.modbusLinks,
    );
    if (this.store) {
      const store = this.store;
      this.publisher.answerAfter((publish) => store.commit(publish));
    }
    this.ingest = new MqttIngest(this.pipeline, this.counters, this.rateLog, this.clock);
    this.deviceRate = deviceRateLimiter(config.limits.deviceRate, {
      registry: this.registry,
      engine: this.engine,
      log: this.log,
    });
    gateIngest(this.ingest, this.deviceRate, this.clock);
    this.deviceCommands = new DeviceCommands(
      this.registry,
      this.modbus,
      this.publisher,
      this.counters,
      this.log,
      this.clock,
      () => this.locale(),
      this.failureText,
      (deviceId, command) =>
        commandNotConnectedText(
          this.locale(),
          this.content.nameDevice(deviceId),
          command,
          this.content.nameCommand(deviceId, command),
        ),
    );
    this.ops = new OperatorCommands(
      this.engine,
      this.registry,
      this.publisher,
      this.counters,
      this.rateLog,
      this.supervisor,
      this.clock,
      this.log,
      this.deviceCommands,
      () => this.locale(),
      this.content,
    );
    const native =
      opts.mallocTrim === undefined ? loadMallocTrim() : { trim: opts.mallocTrim, reason: "disabled" };
    if (native.trim === null)
      this.log.debug({ reason: native.reason }, "malloc's free memory is not trimmed");
    this.trimmer = new MallocTrimmer({
      trim: native.trim,
      onTrim: (ms, released) =>
        this.log.debug({ ms: Math.round(ms * 100) / 100, released }, "malloc trimmed"),
    });
  }

  /** How often malloc's free memory was given back, and the time it took. */
  mallocTrimStats(): MallocTrimStats {
    return this.trimmer.stats();
  }

  /**
   * Starts a gateway: the steps are startup.ts's; their order is here. The V8 heap grows by
   * START_HEAP_GROWING_PERCENT per full GC from here until START_HEAP_HOLD_MS after the start
   * (the start's peak: heap.ts), or until it resolves when it restored little (holdsStartHeap).
   */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const endStartHeap = beginStartHeap();
    let gw: Gateway;
    try {
      gw = await Gateway.startSteps(opts);
    } catch (err) {
      endStartHeap();
      throw err;
    }
    gw.endStartHeap = endStartHeap;
    if (!holdsStartHeap(gw.recovered?.report ?? null)) {
      endStartHeap();
      return gw;
    }
    gw.startHeapTimer = setTimeout(() => {
      gw.startHeapTimer = null;
      endStartHeap();
    }, START_HEAP_HOLD_MS);
    gw.startHeapTimer.unref();
    return gw;
  }

  private static async startSteps(opts: GatewayOptions): Promise<Gateway> {
    const config = opts.config;
    const log = opts.logger ?? createLogger({ level: config.log.level, format: config.log.format });
    let gwRef: Gateway | null = null;
    const opened: OpenedJournal =
      opts.store === undefined && config.storage.enabled
        ? openJournal(config.storage, opts.dataDir ?? config.storage.dir ?? DEFAULT_DATA_DIR, {
            writes: opts.journalWrites ?? "auto",
            fs: opts.journalFs,
            log,
            events: {
              healthChanged: (problem) => gwRef?.storageHealth.changed(problem),
              damageFound: (damage) => gwRef?.storageHealth.reportLateDamage(damage),
            },
          })
        : { journal: null, problem: null };
    const journal = opened.journal;
    // What open() found; damage found later by a delayed full open is reported by onDamageFound.
    const damageAtOpen = journal === null ? null : copyDamage(journal.recovery);
    const gw = new Gateway(config, {
      ...opts,
      logger: log,
      store: opts.store === undefined ? journal : opts.store,
    });
    gwRef = gw;
    gw.journal = journal;
    // Held until the restored state is out through the broker (released below): a restored
    // escalation, call window or shelving that fell due while the gateway was down would otherwise
    // fire during the awaits below, into what waits for the broker (thousands on an aged site).
    gw.wheel.hold();
    if (gw.store) {
      gw.recovered = recoverState(
        gw.store,
        config.site.id,
        gw.registry,
        gw.engine,
        gw.supervisor,
        gw.log,
        gw.clock.now(),
        (damageAtOpen?.damaged ?? 0) > 0,
      );
      gw.log.info(gw.recovered.report, "state recovered from the journal");
      // Before the restored alerts are republished: they name a removed household as last read.
      gw.keptHouseholds.restore();
      gw.keptHouseholds.refresh(gw.engine.openAlerts(), (id) => gw.registry.devices.get(id)?.household, [
        config.households,
      ]);
      gw.keptDevices.restore();
      gw.keptDevices.refresh(gw.engine.openAlerts(), config.devices, [config.devices]);
      // The clean-stop marker cleared, and skipped revs, durable before anything is published.
      await journal?.sync();
    }
    const broker = await startBroker({
      config,
      mqttPort: opts.mqttPort,
      sessions: opts.sessions,
      store: gw.store,
      registry: gw.registry,
      handlers: {
        uplink: (device, payload, contentType, done) => gw.ingest.uplink(device, payload, contentType, done),
        readingRoom: (max) => gw.pipeline.telemetryIntakeRoom(max, gw.clock.monotonic()),
        takingActions: () => gw.stopping === null,
        afterOperatorAction: (done) => (gw.store ? gw.store.commit(done) : done()),
        operator: (operator, action, target, command, payload) =>
          gw.operatorAction(operator, gw.registry.roleOf(operator), action, target, command, payload),
        forbidden: (operator, action, target, command, payload) =>
          gw.ops.refuseForRole(operator, gw.registry.roleOf(operator), action, target, command, payload),
      },
      counters: gw.counters,
      log: gw.log,
      rateLog: gw.rateLog,
    }).catch((err: unknown) => {
      // Not started (a port in use ...): the journal's lock and files go with this attempt.
      gw.wheel.stop();
      journal?.close();
      throw err;
    });
    gw.brokerRef = broker;
    // Downlinks to a device that is away wait for its next login (southbound/pending-downlinks.ts).
    // Kept until the device's PUBACK, and journaled (`down/<device>`): a restart loses none.
    const pending = new PendingDownlinks(
      {
        publish: (topic, payload) => gw.publisher.rawDownlink(topic, payload),
        live: (topic) => broker.downlinkLive(topic),
        acks: (topic) => broker.downlinkAcks(topic),
        connection: (topic) => broker.downlinkConnection(topic),
      },
      () => gw.clock.now(),
      gw.store,
    );
    pending.restore(
      (id) => gw.registry.devices.get(id),
      (device, origin) => gw.downlinkHooks(device, origin),
      (deviceId, entries) =>
        gw.log.warn(
          { deviceId, entries, why: "device-removed" },
          "downlinks kept for a device the site no longer has: not sent, their senders told",
        ),
      (deviceId, entries) =>
        gw.log.warn(
          { deviceId, entries, why: "device-changed" },
          "downlinks kept for a device whose downlink changed (topic, model or command encoding): not sent, their senders told",
        ),
    );
    // What expired while the gateway was down is told now, as any expiry.
    pending.sweep();
    gw.pendingDownlinks = pending;
    gw.publisher.queueDownlinksWith(pending);
    broker.downlinkReady = (topic) => pending.ready(topic);
    broker.downlinkAcked = (topic, conn) => pending.acked(topic, conn);
    broker.downlinkClosed = (topic, conn) => {
      pending.closed(topic, conn);
      // Still live on the other listener (a device moving across): it gets them there.
      if (broker.downlinkLive(topic)) pending.ready(topic);
    };
    gw.downlinkSweep = setInterval(() => pending.sweep(), DOWNLINK_SWEEP_MS);
    gw.downlinkSweep.unref();
    // In the same turn: a message published while the servers below start must not overtake the held ones.
    gw.local.attach(broker);
    if (gw.local.dropped > 0)
      gw.log.warn(
        { dropped: gw.local.dropped },
        "messages published before the broker started dropped (the oldest)",
      );
    gw.deviceRateSweep = sweepDeviceRate(gw.deviceRate, gw.clock);
    const stopOnError = async (err: unknown): Promise<never> => {
      await gw.stop();
      throw err;
    };
    if (config.metrics.enabled)
      gw.metricsServer = await startMetricsServer(
        config.metrics,
        gw.metrics,
        () => gw.notReadyReason(),
        gw.log,
        () => gw.readyNote(),
        (address) => {
          gw.counters.reject("connection", "metrics-unauthorized");
          gw.rateLog.warn(
            address,
            "metrics-unauthorized",
            { address },
            "/metrics request refused: no valid metrics.auth credentials",
          );
        },
        gw.httpConnectionRefused("metrics"),
        broker.admitHttpTcp,
      ).catch(stopOnError);
    if (config.console.enabled)
      gw.consoleServer = await startConsoleServer(
        config.console,
        opts.consolePort ?? config.console.port,
        broker,
        () => gw.config,
        gw.log,
        gw.httpConnectionRefused("console"),
        gw.consoleWebSocketRefused(),
        opts.consoleConnections,
      ).catch(stopOnError);
    await republishRecovered(gw.recovered, {
      publisher: gw.publisher,
      registry: gw.registry,
      engine: gw.engine,
      supervisor: gw.supervisor,
      recorder: gw.recorder,
      clock: gw.clock,
      // Materialised: what republishing adds or deletes must not change the iteration.
      upstreamRetained: gw.upstream ? [...gw.upstream.retainedTopics()] : [],
      settled: northboundSettled(gw.writtenFirst, broker),
    });
    dropStaleCopies({
      site: config.site.id,
      engine: gw.engine,
      registry: gw.registry,
      upstream: gw.upstream,
      broker,
      local: gw.local,
      log: gw.log,
    });
    // Once the republication is through aedes, restored sessions stop leaving out repeats of what
    // they restored (a state the start republished was queued once, not twice): when it is
    // through, however slow the disk, not on the pacing's 2 s timer (bounded all the same).
    sessionRestoreEnd(gw.writtenFirst, broker, (timedOut) => {
      broker.endSessionRestore();
      if (timedOut)
        gw.log.warn(
          { waitedMs: SESSION_RESTORE_CHECK_MAX_MS },
          "operators' sessions: the start's republication not through in time; restored sessions may get a state twice",
        );
    });
    // republishRecovered fired what fell due while down (P1 first); the rest runs on from here.
    gw.wheel.release();
    gw.supervisor.start(gw.registry, downForMs(gw.recovered, gw.clock.now(), gw.log));
    // The wheel adopts a step of the wall clock at its ticks: this keeps one coming at least every
    // minute even on a site where nothing else is armed (only polled devices, no welfare checks).
    gw.wheel.armIn(gw.clockCheck, CLOCK_CHECK_MS);
    if (gw.recorder) {
      const recorder = gw.recorder;
      recorder.running(gw.clock.now());
      gw.runningCheckpoint = setInterval(
        () => recorder.running(gw.clock.now()),
        Math.max(1000, config.storage.checkpointInterval),
      );
      gw.runningCheckpoint.unref();
    }
    // Also clears a STORAGE_DEGRADED left open by the previous run once the disk is fine again.
    gw.storageHealth.apply(
      opened.problem ?? (journal && !journal.health.ok ? (journal.health.reason ?? "unknown") : null),
    );
    if (damageAtOpen !== null) gw.storageHealth.reportDamage(damageAtOpen);
    if (!config.storage.enabled)
      log.warn("storage.enabled is false: alerts and acknowledgements are NOT kept across a restart");
    // Once, at start, naming the accounts (never a password or a hash).
    const plain = plainTextPasswordWarning(config);
    if (plain !== null) log.warn(plain);
    gw.metrics.registerBusStats(() => gw.modbus.metricsStats());
    try {
      await gw.modbus.start();
      // Every device is watched, by heartbeat or by missed polls: one that is neither would fail silently.
      const unwatched = unsupervised(gw.registry, gw.modbus);
      if (unwatched.length > 0)
        throw new StartupError(`devices neither supervised by heartbeat nor polled: ${unwatched.join(", ")}`);
    } catch (err) {
      await gw.stop();
      throw err;
    }
    // The upstream bridge connects in the background: an unreachable uplink must not stop the site.
    gw.upstream?.connect();
    // The open alerts are republished: the summary of them goes now, not a second later.
    gw.publisher.summary.flush();
    gw.publisher.gatewayStatus("online");
    gw.log.info(
      {
        site: config.site.id,
        listeners: gw.broker.addresses().map((a) => `${a.address}:${a.port}`),
        deviceListener:
          gw.broker.deviceListenerPort === null
            ? undefined
            : `${config.mqtt.deviceListener?.host}:${gw.broker.deviceListenerPort}`,
        devices: gw.registry.devices.size,
        households: gw.registry.households.size,
      },
      "gateway started",
    );
    // From here on: the start's burst (republish, escalations, DEVICE_LOST) is freed at the next full GCs.
    gw.trimmer.start();
    return gw;
  }

  /**
   * Pipeline committer with a journal: the PUBACK of an uplink that put a record waits for the
   * group commit; one that put only checkpoints (a door event that changed no alert: its seq and
   * on-delay) is answered at once, as docs/durability.md says. Before, every uplink of the batch
   * waited for the commit of all records put so far, so a door event drained beside a press, or
   * while the press's sync ran, waited for that sync: at 10,000 msg/s most of them, each PUBACK
   * then written in a burst after the sync instead of with its connection's other PUBACKs.
   * The order of PUBACKs on a connection is kept by its queue (broker/puback-queue.ts).
   */
  private readonly commitDurably = (completions: Completion[], count: number, waits: Uint8Array): void => {
    let held: Completion[] | null = null;
    for (let i = 0; i < count; i++) {
      const done = completions[i] as Completion;
      if (waits[i] === 0) done(null);
      else (held ??= []).push(done);
    }
    if (held === null) return;
    const batch = held;
    (this.store as DurableStore).commit(() => {
      for (const done of batch) done(null);
    });
  };

  get config(): Config {
    return this.runningConfig;
  }

  /**
   * Applies a changed configuration without a restart (gateway/reload.ts,
   * docs/reload.md). `next` may be a loader (e.g. of the site file): a
   * ConfigError from it, like any other refusal, keeps the running
   * configuration; every outcome is logged and counted.
   */
  reload(next: Config | (() => Config)): Promise<ReloadResult> {
    const run = this.reloading.then(async () => {
      // Refused, not thrown: thrown, `linli reload` got no report and waited out its timeout
      // ("no report") instead of learning that a stop or restart was under way.
      let r: ReloadResult;
      if (this.stopping !== null) {
        this.log.warn(RELOAD_WHILE_STOPPING);
        r = { result: "refused", at: this.clock.now(), message: RELOAD_WHILE_STOPPING };
      } else r = await reloadGateway(this, next, this.clock.now());
      if (r.result === "applied") this.runningConfig = r.effective;
      this.metrics.configReloads.inc({ result: r.result });
      return r;
    });
    this.reloading = run.catch(() => undefined);
    return run;
  }

  get broker(): EmbeddedBroker {
    if (!this.brokerRef) throw new Error("gateway not started");
    return this.brokerRef;
  }

  /** The port of the first listener. */
  get mqttPort(): number {
    return (this.broker.addresses()[0] as { port: number }).port;
  }

  /** Where /metrics, /healthz and /readyz are served; null when `metrics.enabled` is false. */
  get metricsAddress(): MetricsAddress | null {
    return this.metricsServer?.address ?? null;
  }

  /** The console's certificate and key, re-read at a reload (reload.ts); false without console TLS. */
  reloadConsoleCertificates(): boolean {
    return this.consoleServer?.reloadCertificates() ?? false;
  }

  /**
   * Counts and logs (once a minute per address and reason) a socket the console or metrics server
   * closed at accept or evicted to make room (http-guard.ts).
   */
  /**
   * A downlink the journal kept across a restart: told to its sender as before it. The automatic
   * one (the GD-2's shut-off) stays due while the device's P1 alert is active, as when it was sent.
   * `device`: what the record kept of it when the site no longer has it (its sender told so).
   */
  private downlinkHooks(device: DownlinkDevice, origin: DownlinkOrigin): DownlinkHooks {
    if (origin?.kind === "ack") return this.ops.ackDownlinkHooks(device, origin.alertId);
    if (origin?.kind === "operator" || origin?.kind === "automatic")
      return this.deviceCommands.revive(device, origin, () => this.engine.hasActive(device.id, 1));
    // A record of another shape (a later version's): sent, nobody to tell.
    return {};
  }

  private httpConnectionRefused(server: "console" | "metrics") {
    return (address: string, why: HttpRefusal) => {
      this.counters.reject("connection", "http-connection-limit");
      this.rateLog.warn(
        address,
        `${server}-connection-${why}`,
        { address, server, limit: why },
        why === "total"
          ? `${server} server: connection refused, the server is full and no socket may be evicted (logged-in operators')`
          : why === "per-address"
            ? `${server} server: connection refused, this address holds its most sockets`
            : `${server} server: socket not logged in closed to make room for a new one (its address holds the most)`,
      );
    };
  }

  /** Counts and logs (once a minute per address and reason) a console WebSocket refused or evicted (console/ws-slots.ts). */
  private consoleWebSocketRefused() {
    return (address: string, why: "per-address" | "total" | "evicted") => {
      this.counters.reject("connection", "console-websocket-limit");
      this.rateLog.warn(
        address,
        `console-websocket-${why}`,
        { address, limit: why },
        why === "per-address"
          ? "console: WebSocket refused, this address holds its most sockets not logged in"
          : why === "total"
            ? "console: WebSocket refused, every slot is held by a logged-in operator"
            : "console: WebSocket not logged in closed to make room for a newer one (its address holds the most)",
      );
    };
  }

  /** The metrics server's certificate and key, re-read at a reload; false without metrics.tls. */
  reloadMetricsCertificates(): boolean {
    return this.metricsServer?.reloadCertificates() ?? false;
  }

  /** `metrics.auth`'s secret file, re-read at a reload; false without metrics.auth. */
  reloadMetricsCredentials(): boolean {
    return this.metricsServer?.reloadCredentials() ?? false;
  }

  /** The console's URL; null when `console.enabled` is false. */
  get consoleUrl(): string | null {
    return this.consoleServer?.url ?? null;
  }

  get ready(): boolean {
    return this.notReadyReason() === null;
  }

  /** Why /readyz answers 503, or null when ready. */
  notReadyReason(): string | null {
    if (this.stopping !== null) return "shutting down";
    if (this.brokerRef?.listening !== true) return "broker not listening";
    const storageProblem = this.storageHealth.problem;
    if (storageProblem !== null) return `degraded: journal ${storageProblem}`;
    return null;
  }

  /** Said after "ready" by /readyz: the gateway serves, but not on its site file. */
  readyNote(): string | null {
    const r = this.configRefusal.refused;
    return r === null ? null : `on the last good configuration (${r.file} refused; CONFIG_REFUSED open)`;
  }

  /** Starts on the last good configuration, for metrics. */
  get configRefusedStarts(): number {
    return this.configRefusal.refusedStarts;
  }

  /** The journal's state, for metrics (null when there is none). */
  journalStats(): ReturnType<Journal["stats"]> | null {
    return this.journal?.stats() ?? null;
  }

  /** What the journal read at open (replay time, records, bytes); null when there is none. */
  journalRecovery(): Journal["recovery"] | null {
    return this.journal?.recovery ?? null;
  }

  get storageHealthy(): boolean {
    return this.storageHealth.healthy;
  }

  stats(): GatewayStats {
    let online = 0;
    let lost = 0;
    for (const d of this.registry.devices.values()) {
      if (d.link === "online") online++;
      else if (d.link === "lost") lost++;
    }
    return {
      pipeline: this.pipeline.stats(),
      counters: this.counters.snapshot(),
      openAlerts: this.engine.openCount,
      parked: this.ingest.parkedCount,
      devices: { total: this.registry.devices.size, online, lost },
      buses: this.modbus.stats(),
      upstream: this.upstream?.stats() ?? null,
      deviceListener:
        this.brokerRef?.deviceListenerPort == null
          ? null
          : {
              connections: this.brokerRef.deviceListenerConnections,
              telemetryConflated: this.brokerRef.deviceListenerConflated,
              restarts: this.brokerRef.deviceListenerRestarts,
            },
      slowSubscribers: {
        dropped: this.brokerRef?.slowSubscribers.dropped ?? 0,
        disconnected: this.brokerRef?.slowSubscribers.disconnected ?? 0,
      },
      downlinks: this.pendingDownlinks?.stats() ?? null,
    };
  }

  /**
   * Clean shutdown: drain the ring (queued alerts are processed and their
   * PUBACKs sent), publish the gateway's offline status, close the broker.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info("gateway stopping");
      this.trimmer.stop();
      if (this.startHeapTimer) clearTimeout(this.startHeapTimer);
      this.startHeapTimer = null;
      this.endStartHeap();
      // The journal is being closed: damage its delayed full open finds now is logged, not alerted.
      this.storageHealth.stop();
      // A reload under way finishes first (it may be opening a bus that stop() must then close).
      await this.reloading;
      // Stop polling first: nothing new enters the pipeline while it drains.
      await this.modbus.stop();
      this.pipeline.drainAll();
      this.pipeline.close();
      this.recorder?.flushLiveness(this.registry);
      if (this.runningCheckpoint) clearInterval(this.runningCheckpoint);
      if (this.downlinkSweep) clearInterval(this.downlinkSweep);
      this.recorder?.running(this.clock.now());
      // Everything drained is on disk before the devices' PUBACKs and the sockets go.
      await this.journal?.sync();
      this.engine.stop();
      this.wheel.stop();
      if (this.deviceRateSweep) clearInterval(this.deviceRateSweep);
      // The retained alert states stay (upstream): their summary too, with the last changes in it.
      this.publisher.summary.stop();
      this.publisher.gatewayStatus("offline");
      // Let the offline status reach subscribers' sockets before they are closed.
      await new Promise((resolve) => setTimeout(resolve, 50));
      await this.upstream?.stop();
      // /readyz has answered 503 since the start of stop(); close it before the broker goes.
      await this.metricsServer?.close();
      await this.consoleServer?.close();
      await this.brokerRef?.close();
      // The last record: the next start knows nothing published was lost (engine and timers stopped).
      this.recorder?.cleanStop(this.clock.now());
      this.journal?.close();
      this.log.info(this.stats(), "gateway stopped");
    })();
    return this.stopping;
  }

  /** Routes an operator's publish (already authorised by topic) through the action table (ops.ts). */
  private operatorAction(
    operator: string,
    role: OperatorRole,
    action: OperatorAction,
    target: string,
    command: string | null,
    payload: Buffer,
    from: Route = "local",
  ): void {
    // Stopping: the engine's timers and the journal are going; the request is not answered. The
    // embedded broker does not acknowledge it either (takingActions), so the operator's client
    // re-sends it to the restarted gateway; one from upstream was acknowledged by mqtt.js already.
    if (this.stopping !== null) return;
    this.ops.handle(operator, role, action, target, command, payload, from);
  }

  /** The site's language (`site.locale`) of the running configuration. */
  private locale(): "zh-CN" | "en" {
    return this.config.site.locale;
  }

  /** A device command's failure after sending, in the site's language, naming the device and the command as the console does. */
  private readonly failureText: CommandFailureText = (deviceId, command, f, model) =>
    commandFailureText(
      this.locale(),
      this.content.nameDevice(deviceId, model),
      command,
      f,
      this.content.nameCommand(deviceId, command, model),
    );
}
