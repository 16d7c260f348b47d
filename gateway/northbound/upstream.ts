/**
 * Upstream bridge: mirrors everything the gateway publishes northbound to an
 * upstream broker (mosquitto, EMQX) and takes operators' actions from it.
 *
 *   - The connection carries the gateway's will: `linli/<site>/gateway/status`
 *     = `offline`, retained, so a crash or a cut uplink shows upstream.
 *   - Retained state (open alerts, device and gateway status, flood, household
 *     monitoring) is mirrored in a map, one entry per topic, and republished on
 *     every (re)connect: upstream converges to the gateway's current state.
 *   - Other QoS 1 messages (events, escalations, results) published while the
 *     uplink is down wait in a bounded backlog (overflow: the oldest is dropped,
 *     counted). Telemetry (QoS 0) is not kept while down (counted).
 *   - mqtt.js reconnects at a fixed period and queues without bound while
 *     offline (DESIGN, library notes): we never publish through it while
 *     disconnected, and we grow its reconnect period ourselves (backoff).
 */
import net from "node:net";
import { type IClientOptions, MqttClient } from "mqtt";
import type { OperatorAction } from "../broker/access.js";
import type { Logger } from "../log.js";
import type { NorthboundSink } from "./sink.js";

export interface UpstreamOptions {
  url: string;
  site: string;
  username?: string;
  password?: string;
  clientId: string;
  /** QoS 1 messages kept while the uplink is down. */
  backlog: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  keepaliveS: number;
}

export interface UpstreamStats {
  connected: boolean;
  connects: number;
  published: number;
  retainedMirrored: number;
  backlog: number;
  /** Backlog overflow: oldest QoS 1 messages dropped. */
  backlogDropped: number;
  /** Telemetry not sent because the uplink was down. */
  telemetryDropped: number;
  /** Operator actions received from upstream. */
  actionsReceived: number;
}

type ActionHandler = (
  action: OperatorAction,
  target: string,
  command: string | null,
  payload: Buffer,
) => void;

const ACTIONS: readonly OperatorAction[] = ["ack", "shelve", "unshelve", "service", "away"];

interface Held {
  topic: string;
  payload: string;
}

export class UpstreamBridge implements NorthboundSink {
  private readonly client: MqttClient;
  private readonly retained = new Map<string, string>();
  private readonly backlog: Held[] = [];
  private backlogHead = 0;
  private readonly prefix: string;
  private stopping = false;
  readonly counters = {
    connects: 0,
    published: 0,
    backlogDropped: 0,
    telemetryDropped: 0,
    actionsReceived: 0,
  };

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly log: Logger,
    private readonly onAction: ActionHandler,
  ) {
    this.prefix = `linli/${opts.site}/`;
    const url = new URL(opts.url);
    if (url.protocol !== "mqtt:" && url.protocol !== "tcp:") {
      throw new RangeError(`northbound.upstream.url ${opts.url}: only mqtt:// is supported`);
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = url.port ? Number(url.port) : 1883;
    const options: IClientOptions = {
      clientId: opts.clientId,
      username: opts.username,
      password: opts.password,
      clean: true,
      keepalive: opts.keepaliveS,
      reconnectPeriod: opts.reconnectInitialMs,
      connectTimeout: 10_000,
      queueQoSZero: false,
      resubscribe: true,
      will: { topic: `${this.prefix}gateway/status`, payload: Buffer.from("offline"), qos: 1, retain: true },
      // Connect when the gateway is ready (connect()), not on construction.
      manualConnect: true,
    };
    // TCP_NODELAY on the uplink too: delayed ACKs add tens of ms per hop otherwise.
    this.client = new MqttClient(
      () => {
        const socket = net.createConnection({ host, port });
        socket.setNoDelay(true);
        return socket;
      },
      { ...options, host, port },
    );
    this.client.on("connect", this.onConnect);
    this.client.on("close", this.onClose);
    this.client.on("error", (err) =>
      this.log.warn({ err: err.message, url: opts.url }, "upstream broker error"),
    );
    this.client.on("message", this.onMessage);
  }

  /** Starts connecting (and reconnecting with backoff) in the background. */
  connect(): void {
    this.client.connect();
  }

  get connected(): boolean {
    return this.client.connected;
  }

  stats(): UpstreamStats {
    return {
      connected: this.client.connected,
      connects: this.counters.connects,
      published: this.counters.published,
      retainedMirrored: this.retained.size,
      backlog: this.backlog.length - this.backlogHead,
      backlogDropped: this.counters.backlogDropped,
      telemetryDropped: this.counters.telemetryDropped,
      actionsReceived: this.counters.actionsReceived,
    };
  }

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    if (retain) {
      // Current state: remember the newest per topic (an empty payload deletes it, MQTT 3.1.1 §3.3.1.3).
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, payload);
    }
    if (this.client.connected) {
      this.send(topic, payload, qos, retain);
      return;
    }
    if (retain) return; // republished from the mirror on reconnect
    if (qos === 0) {
      this.counters.telemetryDropped++;
      return;
    }
    if (this.backlog.length - this.backlogHead >= this.opts.backlog) {
      this.backlogHead++;
      this.counters.backlogDropped++;
    }
    this.backlog.push({ topic, payload });
    if (this.backlogHead > 1024 && this.backlogHead * 2 > this.backlog.length) {
      this.backlog.splice(0, this.backlogHead);
      this.backlogHead = 0;
    }
  }

  /** Publishes `offline` (the clean-shutdown counterpart of the will) and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.client.connected) {
      await this.client
        .publishAsync(`${this.prefix}gateway/status`, "offline", { qos: 1, retain: true })
        .catch(() => {});
    }
    await this.client.endAsync(!this.client.connected).catch(() => {});
  }

  private send(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    this.counters.published++;
    this.client.publish(topic, payload, { qos, retain }, (err) => {
      if (err && !this.stopping) this.log.debug({ err: err.message, topic }, "upstream publish failed");
    });
  }

  private readonly onConnect = (): void => {
    this.counters.connects++;
    this.client.options.reconnectPeriod = this.opts.reconnectInitialMs;
    this.log.info({ url: this.opts.url, connects: this.counters.connects }, "upstream broker connected");
    const filters = [...ACTIONS.map((a) => `${this.prefix}${a}/+`), `${this.prefix}cmd/+/+`];
    this.client.subscribe(filters, { qos: 1 }, (err) => {
      if (err) this.log.warn({ err: err.message }, "upstream subscription failed");
    });
    // Current state first, then what happened while the uplink was down, in order.
    for (const [topic, payload] of this.retained) this.send(topic, payload, 1, true);
    for (let i = this.backlogHead; i < this.backlog.length; i++) {
      const m = this.backlog[i] as Held;
      this.send(m.topic, m.payload, 1, false);
    }
    this.backlog.length = 0;
    this.backlogHead = 0;
  };

  /** Exponential backoff on top of mqtt.js's fixed reconnect period. */
  private readonly onClose = (): void => {
    if (this.stopping) return;
    const next = Math.min(
      this.opts.reconnectMaxMs,
      Math.max(this.opts.reconnectInitialMs, (this.client.options.reconnectPeriod ?? 0) * 2),
    );
    this.client.options.reconnectPeriod = next;
  };

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (!topic.startsWith(this.prefix)) return;
    const parts = topic.slice(this.prefix.length).split("/");
    const action = parts[0] as OperatorAction;
    if (parts.length === 2 && ACTIONS.includes(action) && parts[1]) {
      this.counters.actionsReceived++;
      this.onAction(action, parts[1], null, payload);
    } else if (parts.length === 3 && action === "cmd" && parts[1] && parts[2]) {
      this.counters.actionsReceived++;
      this.onAction("cmd", parts[1], parts[2], payload);
    }
  };
}
