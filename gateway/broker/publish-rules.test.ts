/**
 * Retained flags and wills on the embedded broker (docs/security.md "Access matrix"), over TCP
 * with mqtt.js. Checks what aedes does with a will: when a connection drops
 * without DISCONNECT it passes the client's will through authorizePublish with
 * that client, so the same rules as a publish apply.
 */
import mqtt, { type IClientOptions } from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../config/load.js";
import { createLogger, RateLimitedLog } from "../log.js";
import { Registry } from "../registry.js";
import { Counters } from "../stats.js";
import { AccessPolicy } from "./access.js";
import { EmbeddedBroker } from "./embedded.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [{ name: "ops", password: "secret" }],
  devices: [
    { id: "p1", model: "ec200", password: "pw1" },
    { id: "d1", model: "ds10", password: "pw2" },
  ],
});

let broker: EmbeddedBroker | null = null;
const clients: mqtt.MqttClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  await broker?.close();
  broker = null;
});

interface Seen {
  uplinks: Array<{ device: string; payload: string }>;
  operator: Array<{ action: string; target: string }>;
  counters: Counters;
}

async function start(): Promise<Seen> {
  const log = createLogger({ level: "silent" });
  const seen: Seen = { uplinks: [], operator: [], counters: new Counters() };
  broker = await EmbeddedBroker.start({
    listeners: [{ host: "127.0.0.1", port: 0 }],
    maxConnections: 10,
    policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
    handlers: {
      uplink: (d, payload, _c, done) => {
        seen.uplinks.push({ device: d.id, payload: payload.toString() });
        done(null);
      },
      operator: (_o, action, target) => seen.operator.push({ action, target }),
    },
    counters: seen.counters,
    log,
    rateLog: new RateLimitedLog(log),
  });
  return seen;
}

async function connect(username: string, password: string, extra: IClientOptions = {}) {
  const port = broker?.addresses()[0]?.port;
  // Client ids belong to their owner (client-ids.ts): a device's is <model>-<id>, an operator's <name>-...
  const device = config.devices.find((d) => d.id === username);
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    username,
    password,
    clientId: device
      ? `${device.model}-${device.id}`
      : `${username}-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...extra,
  });
  clients.push(c);
  return c;
}

/** Drops the TCP connection without a DISCONNECT packet: the broker must publish the will. */
function dropConnection(c: mqtt.MqttClient): void {
  c.stream.destroy();
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function retainedTopics(): Promise<string[]> {
  const aedes = (broker as EmbeddedBroker).aedes as unknown as {
    persistence: { createRetainedStream(pattern: string): AsyncIterable<{ topic: string }> };
  };
  const persistence = aedes.persistence;
  const out: string[] = [];
  for await (const p of persistence.createRetainedStream("#")) out.push(p.topic);
  return out;
}

describe("retained flag on operator requests", () => {
  it("a retained ack is refused: counted, not processed, not stored, the operator disconnected", async () => {
    const seen = await start();
    const ops = await connect("ops", "secret");
    const closed = new Promise<void>((r) => ops.once("close", () => r()));
    ops.publish("linli/s1/ack/abc", '{"code":"FIRE_ALARM"}', { qos: 1, retain: true });
    await closed;
    expect(seen.counters.rejected("operator", "retain-not-allowed")).toBe(1);
    expect(seen.operator).toEqual([]);
    expect(await retainedTopics()).toEqual([]);
  });

  it.each([
    "linli/s1/shelve/abc",
    "linli/s1/unshelve/abc",
    "linli/s1/service/p1",
    "linli/s1/away/hh-1",
    "linli/s1/cmd/p1/locate",
  ])("the same for %s", async (topic) => {
    const seen = await start();
    const ops = await connect("ops", "secret");
    const closed = new Promise<void>((r) => ops.once("close", () => r()));
    ops.publish(topic, "{}", { qos: 0, retain: true });
    await closed;
    expect(seen.counters.rejected("operator", "retain-not-allowed")).toBe(1);
    expect(seen.operator).toEqual([]);
    expect(await retainedTopics()).toEqual([]);
  });

  it("the same request without the retain flag is processed", async () => {
    const seen = await start();
    const ops = await connect("ops", "secret");
    await ops.publishAsync("linli/s1/ack/abc", "{}", { qos: 1 });
    expect(seen.operator).toEqual([{ action: "ack", target: "abc" }]);
    expect(ops.connected).toBe(true);
  });

  it("a device's retained uplink is taken in as its message and never stored", async () => {
    const seen = await start();
    const p1 = await connect("p1", "pw1");
    await p1.publishAsync("devices/ec200/p1/up", "hello", { qos: 1, retain: true });
    expect(seen.uplinks).toEqual([{ device: "p1", payload: "hello" }]);
    expect(await retainedTopics()).toEqual([]);
  });
});

describe("wills follow the publish rules", () => {
  it("aedes passes a will through authorizePublish: a device's will on its uplink is its message", async () => {
    const seen = await start();
    const p1 = await connect("p1", "pw1", {
      will: { topic: "devices/ec200/p1/up", payload: Buffer.from("last words"), qos: 1, retain: false },
    });
    dropConnection(p1);
    await until(() => seen.uplinks.length === 1, "the will");
    expect(seen.uplinks).toEqual([{ device: "p1", payload: "last words" }]);
  });

  it("a clean DISCONNECT discards the will (MQTT 3.1.1 §3.1.2.5)", async () => {
    const seen = await start();
    const p1 = await connect("p1", "pw1", {
      will: { topic: "devices/ec200/p1/up", payload: Buffer.from("x"), qos: 1, retain: false },
    });
    await p1.endAsync();
    // A second client's message arriving after the first closed shows the broker is past that close.
    const d1 = await connect("d1", "pw2");
    await d1.publishAsync("devices/ds10/d1/up", "after", { qos: 1 });
    expect(seen.uplinks).toEqual([{ device: "d1", payload: "after" }]);
  });

  it("a device's will on another device's topic is refused and counted", async () => {
    const seen = await start();
    const p1 = await connect("p1", "pw1", {
      will: { topic: "devices/ds10/d1/up", payload: Buffer.from("forged"), qos: 1, retain: false },
    });
    dropConnection(p1);
    await until(() => seen.counters.rejected("ec200", "topic-not-allowed") === 1, "the refusal");
    expect(seen.uplinks).toEqual([]);
  });

  it("an operator's will on a request topic is refused and counted, not processed", async () => {
    const seen = await start();
    const ops = await connect("ops", "secret", {
      will: { topic: "linli/s1/ack/abc", payload: Buffer.from("{}"), qos: 1, retain: false },
    });
    dropConnection(ops);
    await until(() => seen.counters.rejected("operator", "will-not-allowed") === 1, "the refusal");
    expect(seen.operator).toEqual([]);
  });

  it("an operator's retained will on an alert topic is refused and never stored", async () => {
    const seen = await start();
    const ops = await connect("ops", "secret", {
      will: { topic: "linli/s1/alerts/p1/FIRE_ALARM/x", payload: Buffer.from("{}"), qos: 1, retain: true },
    });
    dropConnection(ops);
    await until(() => seen.counters.rejected("operator", "topic-not-allowed") === 1, "the refusal");
    expect(await retainedTopics()).toEqual([]);
  });
});
