import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it, vi } from "vitest";
import { validateConfig } from "../config/load.js";
import { Journal } from "../journal/journal.js";
import { createLogger, RateLimitedLog } from "../log.js";
import { Registry } from "../registry.js";
import { Counters } from "../stats.js";
import { AccessPolicy } from "./access.js";
import { EmbeddedBroker } from "./embedded.js";
import type { DurableMap } from "./sessions.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [
    { name: "ops", password: "secret" },
    { name: "ops2", password: "secret2" },
  ],
  devices: [{ id: "p1", model: "ec200", password: "pw1" }],
});

/**
 * The journal's interface in memory. Values go through structuredClone, as
 * they go through cbor-x in the journal: a Buffer comes back a Uint8Array.
 */
class MemoryMap implements DurableMap {
  readonly map = new Map<string, unknown>();
  /** Queue records written. */
  queuePuts = 0;
  *entries(prefix = ""): IterableIterator<[string, unknown]> {
    for (const [k, v] of this.map) if (k.startsWith(prefix)) yield [k, structuredClone(v)];
  }
  put(key: string, value: unknown): void {
    if (key.startsWith("mqtt/q/")) this.queuePuts++;
    this.map.set(key, structuredClone(value));
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  keys(prefix: string): string[] {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix));
  }
}

const brokers = new Set<EmbeddedBroker>();
const clients = new Set<mqtt.MqttClient>();
const journals = new Set<Journal>();
const dirs: string[] = [];

afterEach(async () => {
  for (const c of clients) await c.endAsync(true);
  for (const b of brokers) await b.close();
  for (const j of journals) j.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  clients.clear();
  brokers.clear();
  journals.clear();
});

function openJournal(dir: string): Journal {
  const j = Journal.open({ dir });
  journals.add(j);
  return j;
}

async function startBroker(
  store: DurableMap | undefined,
  limits: {
    queueLimit?: number;
    urgentQueueLimit?: number;
    storeBudgetBytes?: number;
    maxSessions?: number;
    writeAfterMs?: number;
    operatorSecret?: (name: string) => string | null | undefined;
  } = {},
  counters = new Counters(),
): Promise<EmbeddedBroker> {
  const log = createLogger({ level: "silent" });
  const b = await EmbeddedBroker.start({
    listeners: [{ host: "127.0.0.1", port: 0 }],
    maxConnections: 10,
    policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
    handlers: { uplink: (_d, _p, _c, done) => done(null), operator: () => {} },
    counters,
    log,
    rateLog: new RateLimitedLog(log),
    urgentTopicPrefixes: ["linli/s1/alerts/p1/"],
    sessions: { store, ...limits },
  });
  brokers.add(b);
  return b;
}

async function stopBroker(b: EmbeddedBroker): Promise<void> {
  await b.close();
  brokers.delete(b);
}

interface Console {
  client: mqtt.MqttClient;
  received: { topic: string; payload: string; retain: boolean }[];
  sessionPresent: boolean;
}

/** Listeners attached before CONNECT: queued messages follow the CONNACK at once. */
async function connect(
  b: EmbeddedBroker,
  opts: { clientId: string; clean: boolean; username?: string; password?: string; noAcks?: boolean },
): Promise<Console> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${b.addresses()[0]?.port}`, {
    username: opts.username ?? "ops",
    password: opts.password ?? "secret",
    clientId: opts.clientId,
    clean: opts.clean,
    reconnectPeriod: 0,
  });
  clients.add(client);
  const c: Console = { client, received: [], sessionPresent: false };
  if (opts.noAcks) {
    // A console that receives but never acknowledges (a hung application, a dead link): mqtt.js's PUBACKs are dropped.
    type Send = (packet: { cmd: string }, cb?: () => void, ...rest: unknown[]) => void;
    const internals = client as unknown as { _sendPacket: Send };
    const send = internals._sendPacket.bind(client);
    internals._sendPacket = (packet, cb, ...rest) =>
      packet.cmd === "puback" ? cb?.() : send(packet, cb, ...rest);
  }

  client.on("message", (topic, payload, packet) =>
    c.received.push({ topic, payload: payload.toString(), retain: packet.retain }),
  );
  await new Promise<void>((resolve, reject) => {
    client.once("connect", (connack) => {
      c.sessionPresent = connack.sessionPresent;
      resolve();
    });
    client.once("error", reject);
  });
  return c;
}

async function disconnect(c: Console): Promise<void> {
  await c.client.endAsync();
  clients.delete(c.client);
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until the broker has noticed the client went away (its session is then offline). */
async function untilGone(b: EmbeddedBroker, clientId: string): Promise<void> {
  const aedes = b.aedes as unknown as { clients: Record<string, unknown> };
  await until(() => aedes.clients[clientId] === undefined, `${clientId} to go`);
}

const alert = (i: number) => `linli/s1/alerts/p${(i % 2) + 1}/EMERGENCY_CALL/dev-${i}`;

describe("operators' persistent sessions", () => {
  it("deliver the alerts raised while the console was away, across a broker restart, in order, once each", async () => {
    const store = new MemoryMap();
    let b = await startBroker(store);
    let c = await connect(b, { clientId: "ops-console-1", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    // Live deliveries to a persistent session are kept only until their PUBACK.
    b.publish(alert(100), "live", 1, true);
    await until(() => c.received.length === 1, "the live alert");
    await until(() => store.keys("mqtt/q/").length === 0, "the live alert's PUBACK");
    await disconnect(c);
    await untilGone(b, "ops-console-1");

    for (let i = 0; i < 10; i++) b.publish(alert(i), `{"n":${i}}`, 1, true);
    await until(() => store.keys("mqtt/q/").length === 10, "10 queued messages in the store");
    await stopBroker(b);

    b = await startBroker(store);
    expect(b.sessionStats()).toMatchObject({ sessions: 1, restored: 10, restoreRefused: 0 });
    c = await connect(b, { clientId: "ops-console-1", clean: false });
    expect(c.sessionPresent).toBe(true);
    await until(() => c.received.length === 10, "the 10 missed alerts");
    expect(c.received.map((m) => m.payload)).toEqual(Array.from({ length: 10 }, (_, i) => `{"n":${i}}`));
    expect(c.received.map((m) => m.topic)).toEqual(Array.from({ length: 10 }, (_, i) => alert(i)));
    // Sent because of the subscription, not a new one: RETAIN 0 (MQTT-3.3.1-9).
    expect(c.received.every((m) => !m.retain)).toBe(true);
    await until(() => store.keys("mqtt/q/").length === 0, "the PUBACKs to clear the store");

    // The subscription was restored too: a new alert arrives without subscribing again, and only it.
    b.publish(alert(11), "after", 1, true);
    await until(() => c.received.length === 11, "the alert raised after the reconnect");
    expect(c.received[10]?.payload).toBe("after");
  });

  it("survive a restart on the gateway's journal (closed and reopened in between)", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "linli-sessions-"));
    dirs.push(dir);
    let journal = openJournal(dir);
    let b = await startBroker(journal);
    let c = await connect(b, { clientId: "ops-console-j", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(c);
    await untilGone(b, "ops-console-j");
    for (let i = 0; i < 50; i++) b.publish(alert(i), `{"n":${i}}`, 1, true);
    await until(() => [...journal.keys("mqtt/q/")].length === 50, "50 queued messages in the journal");
    await stopBroker(b);
    journal.close();
    journals.delete(journal);

    journal = openJournal(dir);
    b = await startBroker(journal);
    c = await connect(b, { clientId: "ops-console-j", clean: false });
    await until(() => c.received.length === 50, "the 50 missed alerts");
    expect(c.received.map((m) => m.payload)).toEqual(Array.from({ length: 50 }, (_, i) => `{"n":${i}}`));
    await until(() => [...journal.keys("mqtt/q/")].length === 0, "the PUBACKs to clear the journal");
    expect([...journal.keys("mqtt/")]).toEqual(["mqtt/s/ops-console-j"]);
  });

  it("write nothing for deliveries a connected console acknowledges at once", async () => {
    const store = new MemoryMap();
    const b = await startBroker(store, { writeAfterMs: 60_000 });
    const c = await connect(b, { clientId: "ops-console-7", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    for (let i = 0; i < 100; i++) b.publish(alert(i), "live", 1, false);
    await until(
      () => c.received.length === 100 && b.sessionStats()?.queued === 0,
      "100 deliveries acknowledged",
    );
    expect(store.queuePuts).toBe(0);
  });

  it("write the deliveries a connected console leaves unacknowledged, after writeAfterMs or when it goes", async () => {
    const store = new MemoryMap();
    let b = await startBroker(store, { writeAfterMs: 50 });
    const hung = await connect(b, { clientId: "ops-console-8", clean: false, noAcks: true });
    await hung.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    for (let i = 0; i < 3; i++) b.publish(alert(i), `{"n":${i}}`, 1, false);
    await until(() => hung.received.length === 3, "3 deliveries");
    // Still connected: the sweep writes them once they are older than writeAfterMs.
    await until(() => store.keys("mqtt/q/").length === 3, "3 records written by the sweep");
    await stopBroker(b);
    clients.delete(hung.client);
    await hung.client.endAsync(true);

    b = await startBroker(store, { writeAfterMs: 60_000 });
    const slow = await connect(b, { clientId: "ops-console-8", clean: false, noAcks: true });
    await until(() => slow.received.length === 3, "the 3 unacknowledged messages again");
    expect(slow.received.map((m) => m.payload)).toEqual(['{"n":0}', '{"n":1}', '{"n":2}']);
    b.publish(alert(3), '{"n":3}', 1, false);
    await until(() => slow.received.length === 4, "a fourth delivery");
    // Not written while connected (writeAfterMs is a minute) ...
    expect(store.keys("mqtt/q/")).toHaveLength(3);
    await disconnect(slow);
    await untilGone(b, "ops-console-8");
    // ... but as soon as the console is away.
    expect(store.keys("mqtt/q/")).toHaveLength(4);
  });

  it("write a connected console's unacknowledged deliveries after writeAfterMs of elapsed time, the wall clock set back meanwhile", async () => {
    const wall = Date.now;
    let step = 0;
    vi.spyOn(Date, "now").mockImplementation(() => wall() + step);
    try {
      const store = new MemoryMap();
      const b = await startBroker(store, { writeAfterMs: 50 });
      const hung = await connect(b, { clientId: "ops-console-9", clean: false, noAcks: true });
      await hung.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
      for (let i = 0; i < 2; i++) b.publish(alert(i), `{"n":${i}}`, 1, false);
      await until(() => hung.received.length === 2, "2 deliveries");
      // Queued, then the wall clock is stepped a day back (NTP): written all the same.
      step = -86_400_000;
      await until(() => store.keys("mqtt/q/").length === 2, "2 records written by the sweep");
      await stopBroker(b);
      clients.delete(hung.client);
      await hung.client.endAsync(true);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("work without a store too, in memory (aedes' own persistence disconnected such a console at every QoS 1 message)", async () => {
    const b = await startBroker(undefined);
    let c = await connect(b, { clientId: "ops-console-m", clean: false });
    let closed = 0;
    c.client.on("close", () => closed++);
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    for (let i = 0; i < 5; i++) b.publish(alert(i), "live", 1, true);
    await until(
      () => c.received.length === 5 && b.sessionStats().queued === 0,
      "5 live deliveries acknowledged",
    );
    expect(closed).toBe(0);
    await disconnect(c);
    await untilGone(b, "ops-console-m");
    for (let i = 0; i < 3; i++) b.publish(alert(i), `{"n":${i}}`, 1, true);
    c = await connect(b, { clientId: "ops-console-m", clean: false });
    await until(() => c.received.length === 3, "the 3 missed alerts");
    expect(c.received.map((m) => m.payload)).toEqual(['{"n":0}', '{"n":1}', '{"n":2}']);
  });

  it("keep delivering when the store throws (closed, failing disk): counted, the session goes on in memory", async () => {
    const failing: DurableMap = {
      *entries() {},
      put() {
        throw new Error("journal is closed");
      },
      delete() {
        throw new Error("journal is closed");
      },
    };
    const counters = new Counters();
    const b = await startBroker(failing, { writeAfterMs: 0 }, counters);
    let c = await connect(b, { clientId: "ops-console-f", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    b.publish(alert(1), "live", 1, false);
    await until(() => c.received.length === 1, "the live alert");
    await disconnect(c);
    await untilGone(b, "ops-console-f");
    b.publish(alert(2), "missed", 1, false);
    c = await connect(b, { clientId: "ops-console-f", clean: false });
    await until(() => c.received.length === 1, "the missed alert");
    expect(c.received[0]?.payload).toBe("missed");
    expect(b.sessionStats().storeErrors).toBeGreaterThan(0);
    expect(counters.rejected("operator", "session-store-error")).toBe(b.sessionStats().storeErrors);
  });

  it("queue a message once for a console whose filters overlap, online and away", async () => {
    const store = new MemoryMap();
    const b = await startBroker(store);
    let c = await connect(b, { clientId: "ops-console-6", clean: false });
    await c.client.subscribeAsync(["linli/s1/#", "linli/s1/alerts/#"], { qos: 1 });
    b.publish(alert(1), "live", 1, false);
    await until(() => c.received.length === 1, "the live alert");
    await until(() => store.keys("mqtt/q/").length === 0, "its PUBACK");
    await disconnect(c);
    await untilGone(b, "ops-console-6");
    b.publish(alert(2), "away", 1, false);
    await until(() => store.keys("mqtt/q/").length === 1, "one queued message");
    c = await connect(b, { clientId: "ops-console-6", clean: false });
    await until(() => c.received.length === 1, "the missed alert");
    b.publish("linli/s1/marker", "m", 1, false);
    await until(() => c.received.length >= 2, "the marker");
    expect(c.received.map((m) => m.payload)).toEqual(["away", "m"]);
  });

  it("are discarded by a clean-session connect with the same client id, in memory and in the store", async () => {
    const store = new MemoryMap();
    let b = await startBroker(store);
    const first = await connect(b, { clientId: "ops-console-2", clean: false });
    await first.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(first);
    await untilGone(b, "ops-console-2");
    for (let i = 0; i < 3; i++) b.publish(alert(i), "missed", 1, false);
    await until(() => store.keys("mqtt/q/").length === 3, "3 queued messages");

    const clean = await connect(b, { clientId: "ops-console-2", clean: true });
    expect(clean.sessionPresent).toBe(false);
    expect(store.keys("mqtt/")).toEqual([]);
    // A marker on a fresh subscription: anything queued would have arrived before it.
    await clean.client.subscribeAsync("linli/s1/marker", { qos: 1 });
    b.publish("linli/s1/marker", "m", 1, false);
    await until(() => clean.received.length > 0, "the marker");
    expect(clean.received.map((m) => m.topic)).toEqual(["linli/s1/marker"]);
    await disconnect(clean);
    await stopBroker(b);

    b = await startBroker(store);
    expect(b.sessionStats()?.sessions).toBe(0);
    const again = await connect(b, { clientId: "ops-console-2", clean: false });
    expect(again.sessionPresent).toBe(false);
  });

  it("keep at most queueLimit messages besides P1 alert messages, dropping the oldest unsent non-P1 message first", async () => {
    const store = new MemoryMap();
    const counters = new Counters();
    let b = await startBroker(store, { queueLimit: 3 }, counters);
    const c = await connect(b, { clientId: "ops-console-3", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(c);
    await untilGone(b, "ops-console-3");
    const sent = [
      "linli/s1/alerts/p1/FALL/a",
      "linli/s1/alerts/p2/DOOR/a",
      "linli/s1/alerts/p2/DOOR/b",
      "linli/s1/alerts/p1/FALL/b",
      "linli/s1/alerts/p2/DOOR/c",
      "linli/s1/alerts/p2/DOOR/d",
    ];
    for (const t of sent) b.publish(t, "x", 1, true);
    await until(() => b.sessionStats()?.dropped === 1, "1 drop");
    expect(store.keys("mqtt/q/")).toHaveLength(5);
    expect(counters.rejected("operator", "session-queue-full")).toBe(1);
    await stopBroker(b);

    b = await startBroker(store, { queueLimit: 3 });
    const back = await connect(b, { clientId: "ops-console-3", clean: false });
    await until(() => back.received.length === 5, "the 5 kept messages");
    expect(back.received.map((m) => m.topic)).toEqual([
      "linli/s1/alerts/p1/FALL/a",
      "linli/s1/alerts/p2/DOOR/b",
      "linli/s1/alerts/p1/FALL/b",
      "linli/s1/alerts/p2/DOOR/c",
      "linli/s1/alerts/p2/DOOR/d",
    ]);
  });

  it("when full, drop copies a newer message of the same alert makes redundant before any alert message", async () => {
    const store = new MemoryMap();
    const counters = new Counters();
    let b = await startBroker(store, { queueLimit: 4 }, counters);
    const c = await connect(b, { clientId: "ops-console-9", clean: false });
    await c.client.subscribeAsync(
      ["linli/s1/alerts/#", "linli/s1/escalations/#", "linli/s1/devices/+/status"],
      { qos: 1 },
    );
    await disconnect(c);
    await untilGone(b, "ops-console-9");
    // A restart's republication, then escalations as they fall due (each: escalation, state, event).
    const state = (p: number, dev: string, id: string, rev: number) =>
      [`linli/s1/alerts/p${p}/CODE/${dev}`, JSON.stringify({ id, rev, priority: p })] as const;
    const esc = (p: number, dev: string, id: string, rev: number) =>
      [
        `linli/s1/escalations/p${p}/CODE/${dev}`,
        JSON.stringify({ id, rev, priority: p, escalation: {} }),
      ] as const;
    const event = (p: number, id: string, rev: number) =>
      [
        "linli/s1/alerts/events",
        JSON.stringify({ eventId: `${id}:${rev}`, alertId: id, priority: p }),
      ] as const;
    const sent = [
      state(1, "a", "A", 1),
      state(1, "b", "B", 1),
      state(2, "c", "C", 1),
      state(2, "d", "D", 1),
      ["linli/s1/devices/x/status", "online"] as const,
      esc(1, "a", "A", 2),
      state(1, "a", "A", 2),
      event(1, "A", 2),
      esc(2, "c", "C", 2),
      state(2, "c", "C", 2),
      event(2, "C", 2),
      event(2, "D", 5), // its alert's state of rev 5 is not queued: not a copy
    ];
    // Not retained: aedes queues a retained publish after it is stored, behind later plain ones.
    for (const [t, p] of sent) b.publish(t, p, 1, false);
    // P1 messages (B, the escalation and the newer state of A) count apart from the bound of 4.
    await until(() => b.sessionStats()?.superseded === 4, "4 copies dropped");
    // Then the status (not an alert): no alert message lost.
    expect(b.sessionStats()).toMatchObject({ dropped: 1, droppedAlerts: 0 });
    expect(counters.rejected("operator", "session-queue-superseded")).toBe(4);
    expect(counters.rejected("operator", "session-queue-full")).toBe(1);
    await stopBroker(b);

    b = await startBroker(store, { queueLimit: 4 });
    const back = await connect(b, { clientId: "ops-console-9", clean: false });
    await until(() => back.received.length === 7, "the 7 kept messages");
    const got = back.received.map((m) => `${m.topic} ${m.payload}`);
    const kept = [sent[1], sent[3], sent[5], sent[6], sent[8], sent[9], sent[11]];
    expect(got).toEqual(kept.map((m) => `${m?.[0]} ${m?.[1]}`));
  });

  it("when full, drop other messages, then P2-P4 events, states, escalations; P1 ones only past their own bound", async () => {
    const store = new MemoryMap();
    const counters = new Counters();
    let b = await startBroker(store, { queueLimit: 2, urgentQueueLimit: 3 }, counters);
    const c = await connect(b, { clientId: "ops-console-10", clean: false });
    await c.client.subscribeAsync(
      ["linli/s1/alerts/#", "linli/s1/escalations/#", "linli/s1/ops/result/ops"],
      {
        qos: 1,
      },
    );
    await disconnect(c);
    await untilGone(b, "ops-console-10");
    const p1 = (i: number) =>
      [`linli/s1/alerts/p1/CODE/d${i}`, JSON.stringify({ id: `P${i}`, rev: 1 })] as const;
    const escalation = ["linli/s1/escalations/p2/CODE/g", JSON.stringify({ id: "G", rev: 2 })] as const;
    const later = ["linli/s1/alerts/p2/CODE/h", JSON.stringify({ id: "H", rev: 1 })] as const;
    const sent = [
      escalation,
      ["linli/s1/alerts/p2/CODE/e", JSON.stringify({ id: "E", rev: 1 })] as const,
      ["linli/s1/alerts/events", JSON.stringify({ eventId: "F:3", alertId: "F", priority: 2 })] as const,
      ["linli/s1/ops/result/ops", JSON.stringify({ ok: true })] as const,
      p1(1),
      p1(2),
      p1(3),
      later,
    ];
    for (const [t, p] of sent) b.publish(t, p, 1, false);
    // The result, the event, then the older state; the escalation and every P1 message kept.
    await until(() => b.sessionStats()?.dropped === 3, "3 dropped");
    expect(b.sessionStats()).toMatchObject({ queued: 5, droppedAlerts: 2, droppedP1: 0, superseded: 0 });
    expect(counters.rejected("operator", "session-queue-full")).toBe(3);
    await stopBroker(b);

    // A restart keeps them (the restore applies the same policy); past its own bound the oldest P1 goes.
    b = await startBroker(store, { queueLimit: 2, urgentQueueLimit: 3 }, counters);
    expect(b.sessionStats()?.queued).toBe(5);
    b.publish(...p1(4), 1, false);
    await until(() => b.sessionStats()?.droppedP1 === 1, "the oldest P1 past its bound");
    expect(counters.rejected("operator", "session-queue-full-p1")).toBe(1);
    const back = await connect(b, { clientId: "ops-console-10", clean: false });
    await until(() => back.received.length === 5, "5 messages");
    expect(back.received.map((m) => m.topic)).toEqual([
      escalation[0],
      p1(2)[0],
      p1(3)[0],
      later[0],
      p1(4)[0],
    ]);
  });

  it("when a connected console's full queue drops the newcomer, still write every message it keeps when the console goes", async () => {
    const store = new MemoryMap();
    let b = await startBroker(store, { queueLimit: 3, writeAfterMs: 60_000 });
    // Receives and never acknowledges: the three in flight stay queued, unwritten (writeAfterMs).
    const c = await connect(b, { clientId: "ops-console-11", clean: false, noAcks: true });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    for (let i = 0; i < 3; i++)
      b.publish(`linli/s1/alerts/p2/CODE/d${i}`, JSON.stringify({ id: `A${i}` }), 1, false);
    await until(() => c.received.length === 3, "3 delivered");
    // The queue is full of messages in flight: the newcomer is the one dropped (still delivered live).
    b.publish("linli/s1/alerts/p2/CODE/d3", JSON.stringify({ id: "A3" }), 1, false);
    await until(() => b.sessionStats()?.dropped === 1, "the newcomer dropped");
    await disconnect(c);
    await untilGone(b, "ops-console-11");
    expect(store.keys("mqtt/q/")).toHaveLength(3);
    await stopBroker(b);

    b = await startBroker(store, { queueLimit: 3 });
    const back = await connect(b, { clientId: "ops-console-11", clean: false });
    await until(() => back.received.length === 3, "the 3 kept messages, after the restart");
    expect(back.received.map((m) => m.topic)).toEqual([0, 1, 2].map((i) => `linli/s1/alerts/p2/CODE/d${i}`));
  });

  it("keep their queued records within the store budget: beyond it in memory only, counted", async () => {
    const store = new MemoryMap();
    const counters = new Counters();
    // About 160 bytes a record (topic, 100-byte payload, framing): two fit.
    const b = await startBroker(store, { storeBudgetBytes: 400 }, counters);
    const c = await connect(b, { clientId: "ops-console-12", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(c);
    await untilGone(b, "ops-console-12");
    const payload = "x".repeat(100);
    for (let i = 0; i < 3; i++) b.publish(`linli/s1/alerts/p2/CODE/d${i}`, payload, 1, false);
    await until(() => b.sessionStats()?.queued === 3, "3 queued");
    expect(store.keys("mqtt/q/")).toHaveLength(2);
    expect(b.sessionStats()?.overBudget).toBe(1);
    expect(counters.rejected("operator", "session-store-budget")).toBe(1);
    // Delivered all the same; once acknowledged, the budget is free again.
    const back = await connect(b, { clientId: "ops-console-12", clean: false });
    await until(() => back.received.length === 3, "3 delivered");
    await until(() => b.sessionStats()?.queued === 0, "all acknowledged");
    expect(b.sessionStats()?.storedBytes).toBe(0);
    await disconnect(back);
    await untilGone(b, "ops-console-12");
    b.publish("linli/s1/alerts/p2/CODE/d9", payload, 1, false);
    await until(() => store.keys("mqtt/q/").length === 1, "written again");
  });

  it("belong to their operator: another account cannot take the client id over", async () => {
    const store = new MemoryMap();
    const b = await startBroker(store);
    const c = await connect(b, { clientId: "ops-console-4", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(c);
    await untilGone(b, "ops-console-4");
    b.publish(alert(1), "private", 1, false);
    for (const who of [
      { username: "ops2", password: "secret2" },
      { username: "p1", password: "pw1" },
    ]) {
      await expect(connect(b, { clientId: "ops-console-4", clean: true, ...who })).rejects.toThrow(
        /Identifier rejected/i,
      );
    }
    expect(store.keys("mqtt/q/")).toHaveLength(1);
  });

  it("are bounded in number: the session away longest makes room, a new one is refused while all are connected", async () => {
    const store = new MemoryMap();
    const counters = new Counters();
    const b = await startBroker(store, { maxSessions: 1 }, counters);
    const a = await connect(b, { clientId: "ops-console-a", clean: false });
    await a.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await expect(connect(b, { clientId: "ops-console-b", clean: false })).rejects.toThrow(
      /Server unavailable/i,
    );
    await disconnect(a);
    await untilGone(b, "ops-console-a");
    const bee = await connect(b, { clientId: "ops-console-b", clean: false });
    await bee.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    expect(b.sessionStats()).toMatchObject({ sessions: 1, evicted: 1 });
    expect(counters.rejected("operator", "sessions-full")).toBe(1);
    expect(counters.rejected("operator", "session-evicted")).toBe(1);
    expect(store.keys("mqtt/s/")).toEqual(["mqtt/s/ops-console-b"]);
  });

  it("discard the session away longest at maxSessions, the wall clock set back and the gateway restarted in between", async () => {
    const wall = Date.now;
    let step = 0;
    vi.spyOn(Date, "now").mockImplementation(() => wall() + step);
    try {
      const store = new MemoryMap();
      let b = await startBroker(store, { maxSessions: 2 });
      const a = await connect(b, { clientId: "ops-console-a", clean: false });
      await a.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
      await disconnect(a);
      await untilGone(b, "ops-console-a");
      await stopBroker(b);
      b = await startBroker(store, { maxSessions: 2 });
      // NTP sets the clock a day back; then the second console leaves, with an alert queued for it.
      step = -86_400_000;
      const bee = await connect(b, { clientId: "ops-console-b", clean: false });
      await bee.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
      await disconnect(bee);
      await untilGone(b, "ops-console-b");
      b.publish(alert(1), '{"n":1}', 1, false);
      await until(() => store.keys("mqtt/q/ops-console-b/").length === 1, "the alert queued for b");
      // A third console takes the place of a, gone longest; b's session and queued alert are kept.
      const c = await connect(b, { clientId: "ops-console-c", clean: false });
      await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
      expect(store.keys("mqtt/s/").sort()).toEqual(["mqtt/s/ops-console-b", "mqtt/s/ops-console-c"]);
      expect(store.keys("mqtt/q/ops-console-b/")).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("refuse damaged or orphaned records at restore, count them, and start", async () => {
    const store = new MemoryMap();
    store.put("mqtt/s/ops-ok", { owner: "ops", subs: [{ topic: "linli/s1/alerts/#", qos: 1 }], away: 0 });
    store.put("mqtt/q/ops-ok/0", { t: "linli/s1/alerts/p1/FALL/x", p: Buffer.from("kept"), q: 1 });
    store.put("mqtt/s/bad", { owner: "ops", subs: "nope", away: 0 });
    store.put("mqtt/q/ops-ok/x", { t: "linli/s1/alerts/p1/FALL/y", p: Buffer.from("bad seq"), q: 1 });
    store.put("mqtt/q/ops-ok/1", { t: "linli/s1/alerts/p1/FALL/y", p: "not bytes", q: 1 });
    store.put("mqtt/q/nobody/0", { t: "linli/s1/alerts/p1/FALL/z", p: Buffer.from("orphan"), q: 1 });
    const b = await startBroker(store);
    expect(b.sessionStats()).toMatchObject({ sessions: 1, restored: 1, restoreRefused: 4 });
    expect(store.keys("mqtt/").sort()).toEqual(["mqtt/q/ops-ok/0", "mqtt/s/ops-ok"]);
    const c = await connect(b, { clientId: "ops-ok", clean: false });
    await until(() => c.received.length === 1, "the kept message");
    expect(c.received[0]?.payload).toBe("kept");
  });

  it("deliver what is published while the session is being restored once, after the CONNACK", async () => {
    const b = await startBroker(new MemoryMap());
    const away = await connect(b, { clientId: "ops-console-6", clean: false });
    await away.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(away);
    await untilGone(b, "ops-console-6");
    b.publish(alert(0), "away", 1, false);
    // A P1 (written at once) and a P2 published at two steps of the CONNECT: as aedes reads the
    // session's subscriptions (live once read), and as it replaces the will (the CONNACK after it).
    const steps = (b.aedes as unknown as { persistence: Record<string, (...a: unknown[]) => unknown> })
      .persistence;
    for (const step of ["subscriptionsByClient", "delWill"]) {
      const original = steps[step] as (...a: unknown[]) => unknown;
      steps[step] = function (this: unknown, ...args: unknown[]) {
        steps[step] = original;
        b.publish(alert(0), `${step} p1`, 1, false);
        b.publish(alert(1), `${step} p2`, 1, false);
        return original.apply(this, args);
      };
    }
    const client = mqtt.connect(`mqtt://127.0.0.1:${b.addresses()[0]?.port}`, {
      username: "ops",
      password: "secret",
      clientId: "ops-console-6",
      clean: false,
      reconnectPeriod: 0,
    });
    clients.add(client);
    const packets: string[] = [];
    const received: string[] = [];
    client.on("packetreceive", (p) => packets.push(p.cmd));
    client.on("message", (_topic, payload) => received.push(payload.toString()));
    // Before, the P1s went out before the CONNACK, and mqtt.js, waiting on them, never read it.
    await until(() => client.connected, "the CONNACK");
    expect(packets[0]).toBe("connack");
    await until(() => received.length >= 5, "the 5 messages");
    await new Promise((r) => setTimeout(r, 100)); // a second copy, if any
    // Each once (before, those published after the subscriptions were read came twice).
    expect(received.sort()).toEqual(
      ["away", "delWill p1", "delWill p2", "subscriptionsByClient p1", "subscriptionsByClient p2"].sort(),
    );
  });

  it("at a restart, deliver each restored state once: the start's republication of the same state (id, rev) is not queued again", async () => {
    const store = new MemoryMap();
    let b = await startBroker(store);
    const c = await connect(b, { clientId: "ops-console-13", clean: false });
    await c.client.subscribeAsync(["linli/s1/alerts/#", "linli/s1/devices/+/status"], { qos: 1 });
    await disconnect(c);
    await untilGone(b, "ops-console-13");
    const state = (dev: string, id: string, rev: number, extra = "") =>
      [`linli/s1/alerts/p1/CODE/${dev}`, JSON.stringify({ id, rev, priority: 1, extra })] as const;
    const before = [
      state("a", "A", 1),
      ["linli/s1/alerts/events", JSON.stringify({ eventId: "A:1", alertId: "A", priority: 1 })] as const,
      state("b", "B", 2),
      ["linli/s1/devices/x/status", "online"] as const,
    ];
    for (const [t, p] of before) b.publish(t, p, 1, false);
    await until(() => store.keys("mqtt/q/").length === 4, "4 queued");
    await stopBroker(b);

    b = await startBroker(store);
    // The start's republication: A's state byte for byte, B's same rev (its escalation info says
    // more now), the device's status; then what is new: A's next rev, C.
    const after = [
      state("a", "A", 1),
      state("b", "B", 2, "escalated"),
      ["linli/s1/devices/x/status", "online"] as const,
      state("c", "C", 1),
      state("a", "A", 2),
    ];
    for (const [t, p] of after) b.publish(t, p, 1, false);
    await until(() => b.sessionStats()?.queued === 6, "6 queued");
    expect(b.sessionStats()?.restoredDuplicates).toBe(3);
    const back = await connect(b, { clientId: "ops-console-13", clean: false });
    await until(() => back.received.length >= 6, "6 messages");
    await new Promise((r) => setTimeout(r, 100)); // a second copy, if any
    expect(back.received.map((m) => `${m.topic} ${m.payload}`)).toEqual(
      [...before, after[3], after[4]].map((m) => `${m?.[0]} ${m?.[1]}`),
    );

    // Connected while the republication goes on: nothing it restored comes twice, live either.
    b.publish(...state("b", "B", 2), 1, false);
    b.publish(...state("d", "D", 1), 1, false);
    await until(() => back.received.length === 7, "D");
    await new Promise((r) => setTimeout(r, 100));
    expect(back.received.at(-1)?.topic).toBe("linli/s1/alerts/p1/CODE/d");
    expect(back.received).toHaveLength(7);
    // Once the start's republication is through, a message is a message.
    b.endSessionRestore();
    b.publish(...state("b", "B", 2), 1, false);
    await until(() => back.received.length === 8, "B again, after the start");
  });

  it("at a restart, apply a store budget lowered since to the restored records: the lowest ranks kept in memory only, counted", async () => {
    const store = new MemoryMap();
    let b = await startBroker(store);
    const c = await connect(b, { clientId: "ops-console-14", clean: false });
    await c.client.subscribeAsync(["linli/s1/alerts/#", "linli/s1/ops/result/ops"], { qos: 1 });
    await disconnect(c);
    await untilGone(b, "ops-console-14");
    const pad = "x".repeat(100);
    const sent = [
      ["linli/s1/alerts/p1/CODE/a", JSON.stringify({ id: "A", rev: 1, pad })] as const,
      ["linli/s1/ops/result/ops", JSON.stringify({ ok: true, pad })] as const,
      ["linli/s1/alerts/p2/CODE/b", JSON.stringify({ id: "B", rev: 1, pad })] as const,
      ["linli/s1/alerts/events", JSON.stringify({ eventId: "C:1", alertId: "C", priority: 2, pad })] as const,
    ];
    for (const [t, p] of sent) b.publish(t, p, 1, false);
    await until(() => store.keys("mqtt/q/").length === 4, "4 written");
    await stopBroker(b);

    // About 190 bytes a record: two fit the budget the site file gives now.
    const counters = new Counters();
    b = await startBroker(store, { storeBudgetBytes: 400 }, counters);
    expect(b.sessionStats()).toMatchObject({ queued: 4, overBudget: 2 });
    expect(b.sessionStats()?.storedBytes).toBeLessThanOrEqual(400);
    expect(counters.rejected("operator", "session-store-budget")).toBe(2);
    // The result (other), then the P2 event went out of the store; the states stay in it.
    expect(store.keys("mqtt/q/").sort()).toEqual(["mqtt/q/ops-console-14/0", "mqtt/q/ops-console-14/2"]);
    // Still delivered, in order.
    const back = await connect(b, { clientId: "ops-console-14", clean: false });
    await until(() => back.received.length === 4, "4 delivered");
    expect(back.received.map((m) => m.topic)).toEqual(sent.map(([t]) => t));
    await until(() => b.sessionStats()?.storedBytes === 0, "acknowledged");
  });

  it("at a restart, apply a P1 bound lowered below queueLimit to the restored queue", async () => {
    const store = new MemoryMap();
    let b = await startBroker(store);
    const c = await connect(b, { clientId: "ops-console-15", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(c);
    await untilGone(b, "ops-console-15");
    for (let i = 0; i < 3; i++)
      b.publish(`linli/s1/alerts/p1/CODE/d${i}`, JSON.stringify({ id: `P${i}`, rev: 1 }), 1, false);
    await until(() => store.keys("mqtt/q/").length === 3, "3 written");
    await stopBroker(b);

    const counters = new Counters();
    b = await startBroker(store, { queueLimit: 10, urgentQueueLimit: 2 }, counters);
    expect(b.sessionStats()).toMatchObject({ queued: 2, droppedP1: 1 });
    expect(counters.rejected("operator", "session-queue-full-p1")).toBe(1);
    expect(store.keys("mqtt/q/")).toHaveLength(2);
  });

  it("at a restart, delete the saved sessions of an operator whose credentials changed while stopped (removed and added again), counted", async () => {
    const store = new MemoryMap();
    const secret = { ops: "secret" as string | null | undefined };
    const operatorSecret = (name: string) => (name === "ops" ? secret.ops : "secret2");
    let b = await startBroker(store, { operatorSecret });
    const c = await connect(b, { clientId: "ops-console-16", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    const other = await connect(b, {
      clientId: "ops2-console",
      clean: false,
      username: "ops2",
      password: "secret2",
    });
    await other.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(c);
    await disconnect(other);
    await untilGone(b, "ops-console-16");
    await untilGone(b, "ops2-console");
    b.publish(alert(1), '{"n":1}', 1, false);
    await until(() => store.keys("mqtt/q/").length === 2, "queued for both");
    await stopBroker(b);

    // The same credentials: kept.
    b = await startBroker(store, { operatorSecret });
    expect(b.sessionStats()).toMatchObject({ sessions: 2, restored: 2, ownerChanged: 0 });
    await stopBroker(b);

    // Removed and added again with another password while stopped: the old sessions are not handed over.
    secret.ops = "someone-else";
    const counters = new Counters();
    b = await startBroker(store, { operatorSecret }, counters);
    expect(b.sessionStats()).toMatchObject({ sessions: 1, restored: 1, ownerChanged: 1, ownerRemoved: 0 });
    expect(counters.rejected("operator", "session-owner-changed")).toBe(1);
    expect(store.keys("mqtt/").sort()).toEqual(["mqtt/q/ops2-console/0", "mqtt/s/ops2-console"]);
    const back = await connect(b, { clientId: "ops-console-16", clean: false });
    expect(back.sessionPresent).toBe(false);
    await stopBroker(b);

    // Removed while stopped: deleted too, counted apart.
    const c2 = new Counters();
    b = await startBroker(store, { operatorSecret: (name) => (name === "ops2" ? undefined : "x") }, c2);
    expect(b.sessionStats()).toMatchObject({ sessions: 0, ownerRemoved: 1 });
    expect(c2.rejected("operator", "session-owner-removed")).toBe(1);
    expect(store.keys("mqtt/")).toEqual([]);
  });

  it("a reload's deletions (an operator removed, credentials changed) are counted as a start's are", async () => {
    const store = new MemoryMap();
    const counters = new Counters();
    const b = await startBroker(
      store,
      { operatorSecret: (name) => (name === "ops" ? "secret" : "secret2") },
      counters,
    );
    const c = await connect(b, { clientId: "ops-console-17", clean: false });
    await c.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    const other = await connect(b, {
      clientId: "ops2-console-17",
      clean: false,
      username: "ops2",
      password: "secret2",
    });
    await other.client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    await disconnect(c);
    await disconnect(other);
    await untilGone(b, "ops-console-17");
    await untilGone(b, "ops2-console-17");
    // What gateway/reload.ts does for an operator removed, then one given a new password.
    expect(b.forgetOperatorSessions(new Set(["ops"]))).toBe(1);
    expect(b.forgetOperatorSessions(new Set(["ops2"]), "credentials-changed")).toBe(1);
    expect(b.sessionStats()).toMatchObject({ sessions: 0, ownerRemoved: 1, ownerChanged: 1 });
    expect(counters.rejected("operator", "session-owner-removed")).toBe(1);
    expect(counters.rejected("operator", "session-owner-changed")).toBe(1);
  });

  it("at a restart, bind a session saved before credentials were fingerprinted to those configured now", async () => {
    const store = new MemoryMap();
    store.put("mqtt/s/ops-old", { owner: "ops", subs: [{ topic: "linli/s1/alerts/#", qos: 1 }], away: 0 });
    let b = await startBroker(store, { operatorSecret: () => "secret" });
    expect(b.sessionStats()).toMatchObject({ sessions: 1, ownerChanged: 0 });
    expect(typeof (store.map.get("mqtt/s/ops-old") as { cred?: unknown }).cred).toBe("string");
    await stopBroker(b);
    b = await startBroker(store, { operatorSecret: () => "changed" });
    expect(b.sessionStats()).toMatchObject({ sessions: 0, ownerChanged: 1 });
  });

  it("leave the P1 fast path alone: a P1 overtakes telemetry for a console on a persistent session", async () => {
    const b = await startBroker(new MemoryMap());
    const c = await connect(b, { clientId: "ops-console-5", clean: false });
    await c.client.subscribeAsync("linli/s1/#", { qos: 1 });
    for (let i = 0; i < 200; i++) b.publish(`linli/s1/telemetry/ec200/dev-${i}`, "{}", 0, false);
    b.publish("linli/s1/alerts/p1/EMERGENCY_CALL/p1", "{}", 1, true);
    await until(() => c.received.length === 201, "201 messages");
    expect(c.received.findIndex((m) => m.topic === "linli/s1/alerts/p1/EMERGENCY_CALL/p1")).toBe(0);
  });
});
