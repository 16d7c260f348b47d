/**
 * Test harness: a real gateway on 127.0.0.1 (ephemeral port) and real MQTT
 * clients. Gateway time can be a FakeClock while the sockets stay real.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterEach, beforeEach, expect } from "vitest";
import type { Clock, FakeClock } from "../../core/clock.js";
import { validateConfig } from "../../gateway/config/load.js";
import type { ConfigInput } from "../../gateway/config/schema.js";
import { Gateway, type GatewayOptions } from "../../gateway/gateway.js";
import { createLogger, type Logger } from "../../gateway/log.js";
import type { DurableStore, MemoryStore } from "../../gateway/state/store.js";
import type { Boottime } from "../../gateway/time/steady-clock.js";

export const SITE = "t1";
export const OPS = { name: "ops", password: "ops-pw" };

export function testConfig(extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    site: { id: SITE },
    mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
    operators: [OPS, { name: "ops2", password: "ops2-pw" }],
    households: [{ id: "hh-1" }, { id: "hh-2" }],
    devices: [
      { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1" },
      { id: "d-1", model: "ds10", password: "pw-d1", household: "hh-1", holdOpenTime: "60s" },
      { id: "p-2", model: "ec200", password: "pw-p2", household: "hh-2" },
    ],
    log: { level: "silent" },
    metrics: { host: "127.0.0.1", port: 0 },
    ...extra,
  };
}

/** testConfig with P1 escalating after 2 min and P2 after 5 (the restart tests' site). */
export function escalatingConfig(): ConfigInput {
  return testConfig({ alerts: { escalation: { p1: "2m", p2: "5m" } } });
}

/** escalatingConfig plus a GD-2 gas detector, k-1 (password pw-k1), in hh-1. */
export function gd2Config(): ConfigInput {
  const base = escalatingConfig();
  return {
    ...base,
    devices: [...(base.devices ?? []), { id: "k-1", model: "gd2", password: "pw-k1", household: "hh-1" }],
  };
}

/**
 * Gateways started in turn on one store and one fake clock (a restart), on `config` (default:
 * escalatingConfig), and their clients: every one stopped after each test of the describe block
 * this is called in.
 */
export function gatewaysInTurn(config: () => ConfigInput = escalatingConfig): {
  start(store: MemoryStore, clock: FakeClock): Promise<Gateway>;
  client(gw: Gateway, user: string, pw: string, extra?: IClientOptions): Promise<TestClient>;
  /** A gateway started otherwise, stopped after the test like the others. */
  adopt(gw: Gateway): Gateway;
  /** Stops one now, its clients (every client so far) first. */
  stop(gw: Gateway): Promise<void>;
} {
  const clients: TestClient[] = [];
  const gateways: Gateway[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
  });
  return {
    async start(store, clock) {
      const gw = await startGateway({
        clock,
        boottime: () => clock.boottime(),
        store,
        config: config(),
      });
      gateways.push(gw);
      return gw;
    },
    async client(gw, user, pw, extra) {
      const c = await connect(gw, user, pw, extra);
      clients.push(c);
      return c;
    },
    adopt(gw) {
      gateways.push(gw);
      return gw;
    },
    async stop(gw) {
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();
      gateways.splice(gateways.indexOf(gw), 1);
    },
  };
}

export async function startGateway(
  opts: {
    config?: ConfigInput;
    clock?: Clock;
    boottime?: Boottime | null;
    store?: DurableStore;
    logger?: Logger;
    /** The console's sockets in all and per address (GatewayOptions.consoleConnections). */
    consoleConnections?: GatewayOptions["consoleConnections"];
  } = {},
): Promise<Gateway> {
  const config = validateConfig(opts.config ?? testConfig(), "test");
  const logger = opts.logger ?? createLogger({ level: "silent" });
  if (opts.store !== undefined || !config.storage.enabled)
    return Gateway.start({
      config,
      clock: opts.clock,
      boottime: opts.boottime,
      logger,
      store: opts.store,
      consoleConnections: opts.consoleConnections,
    });
  // A journal of its own per gateway, removed when it stops: tests run in parallel.
  const dataDir = mkdtempSync(path.join(tmpdir(), "linli-test-"));
  const gw = await Gateway.start({
    config,
    clock: opts.clock,
    boottime: opts.boottime,
    logger,
    dataDir,
    consoleConnections: opts.consoleConnections,
  }).catch((err: unknown) => {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  const stop = gw.stop.bind(gw);
  gw.stop = () => stop().finally(() => rmSync(dataDir, { recursive: true, force: true }));
  return gw;
}

export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
  json(): Record<string, unknown>;
}

export class TestClient {
  readonly messages: Received[] = [];
  closedByServer = false;
  constructor(readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) => {
      this.messages.push({
        topic,
        payload,
        retain: packet.retain,
        json: () => JSON.parse(payload.toString("utf8")) as Record<string, unknown>,
      });
    });
    client.on("close", () => {
      this.closedByServer = true;
    });
  }

  /** Returns the granted QoS, or 128 when the broker refused the subscription. */
  async subscribe(filter: string): Promise<number> {
    try {
      const granted = await this.client.subscribeAsync(filter, { qos: 1 });
      return granted[0]?.qos ?? -1;
    } catch (err) {
      if (/Subscribe error/.test((err as Error).message)) return 128;
      throw err;
    }
  }

  publish(topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<unknown> {
    return this.client.publishAsync(topic, payload, { qos });
  }

  /** Waits until a message matching `match` has arrived; returns it. */
  async waitFor(match: (m: Received) => boolean, timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out; received: ${this.messages.map((m) => `${m.topic} ${m.payload}`).join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  on(topicPart: string): Received[] {
    return this.messages.filter((m) => m.topic.includes(topicPart));
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** A gateway per test, watched by an operator subscribed to the whole site; see `watchedSitePerTest`. */
export interface WatchedSite {
  readonly gw: Gateway;
  /** Operator `OPS`, subscribed to `linli/<site>/#` before the test starts. */
  readonly ops: TestClient;
  /** A client of the test's gateway, ended after the test. */
  client(username: string, password: string, extra?: IClientOptions): Promise<TestClient>;
}

/**
 * Registers, in the calling `describe`, a fresh gateway before each test with `OPS` watching the
 * whole site, and after each test ends every client and stops the gateway.
 */
export function watchedSitePerTest(): WatchedSite {
  const clients: TestClient[] = [];
  let gw: Gateway | undefined;
  let ops: TestClient | undefined;
  beforeEach(async () => {
    gw = await startGateway();
    ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw?.stop();
    gw = undefined;
    ops = undefined;
  });
  const started = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error("watchedSitePerTest: used outside a test");
    return x;
  };
  return {
    get gw() {
      return started(gw);
    },
    get ops() {
      return started(ops);
    },
    async client(username, password, extra = {}) {
      const c = await connect(started(gw), username, password, extra);
      clients.push(c);
      return c;
    },
  };
}

/** Client ids belong to their owner (docs/security.md): a device's is `<model>-<id>`, an operator's `<name>-...`. */
export function clientIdFor(gw: Gateway, username: string): string {
  const device = gw.registry.devices.get(username);
  return device ? `${device.model}-${device.id}` : `${username}-${Math.random().toString(16).slice(2, 8)}`;
}

/**
 * Connects with the message listener attached before the CONNACK: a persistent session's queued
 * messages follow its CONNACK at once, often in the same read, and a listener attached after
 * `connectAsync` resolves misses them (a reconnecting console's test failed so under a CPU hog).
 */
export function connectListening(url: string, opts: IClientOptions): Promise<TestClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, ...opts });
  const listening = new TestClient(client);
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => {
      settle();
      client.end(true);
      reject(err);
    };
    const closed = () => failed(new Error(`${url}: closed before the CONNACK`));
    const connected = () => {
      settle();
      resolve(listening);
    };
    // Only until the CONNACK, as connectAsync: a later close is the test's (a client that
    // reconnects by itself must not be ended by it).
    const settle = () => {
      client.off("connect", connected);
      client.off("error", failed);
      client.off("close", closed);
    };
    client.on("connect", connected);
    client.on("error", failed);
    client.on("close", closed);
  });
}

/** A client of `gw`, listening before its CONNACK (`connectListening`): any session may be persistent. */
export function connect(
  gw: Gateway,
  username: string,
  password: string,
  extra: IClientOptions = {},
): Promise<TestClient> {
  return connectListening(`mqtt://127.0.0.1:${gw.mqttPort}`, {
    username,
    password,
    clientId: clientIdFor(gw, username),
    reconnectPeriod: 0,
    connectTimeout: 2000,
    ...extra,
  });
}

export function pendantMsg(seq: number, evt: string | null, extra: Record<string, unknown> = {}): string {
  return JSON.stringify(
    evt === null
      ? { t: "hb", seq, ts: Date.now(), bat: 87, rssi: -71, ...extra }
      : { t: "evt", seq, ts: Date.now(), evt, bat: 87, rssi: -71, ...extra },
  );
}

export function doorMsg(
  seq: number,
  contact: "open" | "closed",
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({ t: "state", seq, ts: Date.now(), contact, tamper: false, bat: 64, ...extra });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET on the gateway's metrics/health server (a fresh connection each: no keep-alive between tests). */
export function metricsGet(gw: Gateway, p: string): Promise<{ status: number; body: string }> {
  const addr = gw.metricsAddress;
  if (!addr) throw new Error("no metrics server");
  return new Promise((resolve, reject) => {
    const req = request({ host: addr.host, port: addr.port, path: p, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}
