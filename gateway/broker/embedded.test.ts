import net from "node:net";
import mqtt from "mqtt";
import mqttPacket from "mqtt-packet";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { validateConfig } from "../config/load.js";
import { createLogger, RateLimitedLog } from "../log.js";
import { Registry } from "../registry.js";
import { Counters } from "../stats.js";
import { AccessPolicy } from "./access.js";
import { EmbeddedBroker } from "./embedded.js";
import { type RetainedStore, SLAB_BYTES } from "./retained-store.js";

const config = validateConfig({
  site: { id: "s1" },
  operators: [{ name: "ops", password: "secret" }],
  devices: [{ id: "p1", model: "ec200", password: "pw1" }],
});

let broker: EmbeddedBroker | null = null;
let client: mqtt.MqttClient | null = null;

afterEach(async () => {
  await client?.endAsync(true);
  await broker?.close();
  client = null;
  broker = null;
});

async function start(
  urgentTopicPrefixes: string[],
  transport: "mqtt" | "websocket" = "mqtt",
): Promise<{ received: string[] }> {
  const log = createLogger({ level: "silent" });
  broker = await EmbeddedBroker.start({
    listeners: [{ host: "127.0.0.1", port: 0, transport }],
    maxConnections: 10,
    policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
    handlers: { uplink: (_d, _p, _c, done) => done(null), operator: () => {} },
    counters: new Counters(),
    log,
    rateLog: new RateLimitedLog(log),
    urgentTopicPrefixes,
  });
  const port = broker.addresses()[0]?.port;
  const url = transport === "mqtt" ? `mqtt://127.0.0.1:${port}` : `ws://127.0.0.1:${port}/mqtt`;
  client = await mqtt.connectAsync(url, {
    username: "ops",
    password: "secret",
    clientId: "ops-console",
    reconnectPeriod: 0,
  });
  await client.subscribeAsync("linli/s1/#", { qos: 1 });
  const received: string[] = [];
  client.on("message", (topic) => received.push(topic));
  return { received };
}

/** 200 telemetry publishes, then one P1 alert and one P2 alert, all in the same turn of the loop. */
function publishBurst(b: EmbeddedBroker): void {
  for (let i = 0; i < 200; i++) b.publish(`linli/s1/telemetry/ec200/dev-${i}`, "{}", 0, false);
  b.publish("linli/s1/alerts/p1/EMERGENCY_CALL/p1", "{}", 1, true);
  b.publish("linli/s1/alerts/p2/DOOR_HELD_OPEN/d1", "{}", 1, true);
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("EmbeddedBroker urgent deliveries", () => {
  it("writes a P1 alert to subscribers ahead of telemetry published before it", async () => {
    const { received } = await start(["linli/s1/alerts/p1/"]);
    publishBurst(broker as EmbeddedBroker);
    await until(() => received.length === 202);
    // aedes delivers the 200 readings from setImmediate callbacks; the P1 goes out at once.
    expect(received.indexOf("linli/s1/alerts/p1/EMERGENCY_CALL/p1")).toBe(0);
    // Other topics keep aedes' order: the P2 after every reading published before it.
    expect(received.indexOf("linli/s1/alerts/p2/DOOR_HELD_OPEN/d1")).toBe(201);
  });

  it("without urgent prefixes, the P1 waits behind the telemetry (what the bypass fixes)", async () => {
    const { received } = await start([]);
    publishBurst(broker as EmbeddedBroker);
    await until(() => received.length === 202);
    expect(received.indexOf("linli/s1/alerts/p1/EMERGENCY_CALL/p1")).toBe(200);
  });

  it("writes a P1 alert to the socket when it is delivered, not at the end of the turn", async () => {
    await start(["linli/s1/alerts/p1/"]);
    const clients = (broker as EmbeddedBroker).aedes as unknown as {
      clients: Record<
        string,
        { conn: { bytesWritten: number; writableLength: number; writableCorked: number } }
      >;
    };
    const conn = clients.clients["ops-console"]?.conn;
    if (conn === undefined) throw new Error("no server-side connection");
    const seen: Array<{ topic: string; written: number; corked: number; buffered: number }> = [];
    for (const topic of ["linli/s1/alerts/p1/EMERGENCY_CALL/p1", "linli/s1/alerts/p2/DOOR_HELD_OPEN/d1"]) {
      const before = conn.bytesWritten;
      broker?.publish(topic, "{}", 1, true);
      // The ticks of this turn, where the corked writes used to be flushed, have not run yet.
      await new Promise<void>((resolve) =>
        process.nextTick(() => {
          seen.push({
            topic,
            written: conn.bytesWritten - before,
            corked: conn.writableCorked,
            buffered: conn.writableLength,
          });
          resolve();
        }),
      );
    }
    expect(seen[0]).toMatchObject({ corked: 0, buffered: 0 });
    expect(seen[0]?.written).toBeGreaterThan(0);
    // Other topics are still delivered from aedes' setImmediate callbacks.
    expect(seen[1]?.written).toBe(0);
  });

  it("does the same on a WebSocket connection (a browser console)", async () => {
    await start(["linli/s1/alerts/p1/"], "websocket");
    const clients = (broker as EmbeddedBroker).aedes as unknown as {
      clients: Record<string, { conn: { writableCorked: number } }>;
    };
    const conn = clients.clients["ops-console"]?.conn;
    if (conn === undefined) throw new Error("no server-side connection");
    broker?.publish("linli/s1/alerts/p1/EMERGENCY_CALL/p1", "{}", 1, true);
    // Uncorked: the frame went to ws, which counts it as buffered until its socket write calls back.
    const corked = await new Promise<number>((resolve) =>
      process.nextTick(() => resolve(conn.writableCorked)),
    );
    expect(corked).toBe(0);
  });

  it("puts setImmediate back after every urgent delivery", async () => {
    const original = globalThis.setImmediate;
    const { received } = await start(["linli/s1/alerts/p1/"]);
    for (let i = 0; i < 20; i++) broker?.publish(`linli/s1/alerts/p1/FALL/dev-${i}`, "{}", 1, true);
    await until(() => received.length === 20);
    expect(globalThis.setImmediate).toBe(original);
  });
});

describe("EmbeddedBroker retained payloads", () => {
  it("shares one Buffer between short retained payloads, packs a long one with retained payloads only, and subscribers still get each topic's own", async () => {
    const { received } = await start([]);
    const payloads = new Map<string, string>();
    client?.on("message", (topic, payload) => payloads.set(topic, payload.toString()));
    broker?.publish("linli/s1/devices/a/status", "online", 1, true);
    broker?.publish("linli/s1/devices/b/status", "online", 1, true);
    broker?.publish("linli/s1/devices/c/status", "lost", 1, true);
    broker?.publish("linli/s1/devices/c/status", "online", 1, true);
    const long = JSON.stringify({ state: "open", note: "longer than the shared payloads" });
    broker?.publish("linli/s1/alerts/p2/DOOR_HELD_OPEN/d1", long, 1, true);
    await until(() => received.length === 5);
    if (broker === null) throw new Error("no broker");
    const persistence = (
      broker.aedes as unknown as {
        persistence: {
          createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer }>;
          retained: RetainedStore;
        };
      }
    ).persistence;
    const retained = new Map<string, { payload: Buffer }>();
    for await (const p of persistence.createRetainedStream("linli/s1/#")) retained.set(p.topic, p);
    const a = retained.get("linli/s1/devices/a/status")?.payload;
    expect(a?.toString()).toBe("online");
    expect(retained.get("linli/s1/devices/b/status")?.payload).toBe(a);
    expect(retained.get("linli/s1/devices/c/status")?.payload).toBe(a);
    const kept = retained.get("linli/s1/alerts/p2/DOOR_HELD_OPEN/d1")?.payload;
    expect(kept?.toString()).toBe(long);
    // Not a slice of a pool slab that short-lived Buffers share (it would keep it alive), nor
    // memory of its own between them: a slab of the retained store's (retained-store.ts).
    expect(kept?.buffer.byteLength).toBe(SLAB_BYTES);
    expect(persistence.retained.stats()).toMatchObject({ slabs: 1, liveBytes: Buffer.byteLength(long) });
    expect(payloads.get("linli/s1/devices/c/status")).toBe("online");
    // A new subscriber gets the retained messages with their own payloads.
    const port = broker?.addresses()[0]?.port;
    const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: "ops",
      password: "secret",
      clientId: "ops-late",
      reconnectPeriod: 0,
    });
    const got = new Map<string, string>();
    late.on("message", (topic, payload) => got.set(topic, payload.toString()));
    await late.subscribeAsync("linli/s1/#", { qos: 1 });
    await until(() => got.size === 4);
    await late.endAsync(true);
    expect(Object.fromEntries(got)).toEqual({
      "linli/s1/devices/a/status": "online",
      "linli/s1/devices/b/status": "online",
      "linli/s1/devices/c/status": "online",
      "linli/s1/alerts/p2/DOOR_HELD_OPEN/d1": long,
    });
  });
});

describe("EmbeddedBroker malformed packets and protocol violations", () => {
  let counters: Counters;
  let lines: { msg: string; reason?: string }[];

  async function startCounting(transport: "mqtt" | "websocket" = "mqtt"): Promise<number> {
    counters = new Counters();
    lines = [];
    const log = createLogger({ level: "silent" });
    const rateLog = new RateLimitedLog(log);
    const warn = rateLog.warn.bind(rateLog);
    rateLog.warn = (key, reason, obj, msg) => {
      lines.push({ msg, reason });
      return warn(key, reason, obj, msg);
    };
    broker = await EmbeddedBroker.start({
      listeners: [{ host: "127.0.0.1", port: 0, transport }],
      maxConnections: 10,
      policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
      handlers: { uplink: (_d, _p, _c, done) => done(null), operator: () => {} },
      counters,
      log,
      rateLog,
    });
    return broker.addresses()[0]?.port as number;
  }

  const connectPacket = (o: { protocolVersion?: number; password?: string } = {}) =>
    mqttPacket.generate(
      {
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: (o.protocolVersion ?? 4) as 4,
        clean: true,
        clientId: "ec200-p1",
        keepalive: 60,
        username: "p1",
        password: Buffer.from(o.password ?? "pw1"),
      },
      { protocolVersion: o.protocolVersion ?? 4 },
    );

  /** Sends `bytes` on a fresh socket (after p1's login when `login`), and waits for the broker to close or refuse it. */
  async function closedAfter(port: number, bytes: Buffer, login: boolean): Promise<void> {
    const s = net.connect(port, "127.0.0.1");
    await new Promise((r) => s.once("connect", r));
    s.on("error", () => {});
    if (login) {
      const connack = new Promise<Buffer>((r) => s.once("data", r));
      s.write(connectPacket());
      expect([...(await connack)]).toEqual([0x20, 0x02, 0x00, 0x00]);
    }
    const closed = new Promise((r) => s.once("close", r));
    // Closed, or refused with a CONNACK (aedes then leaves the closing to the client).
    const refused = new Promise((r) => s.on("data", (b: Buffer) => b[0] === 0x20 && b[3] !== 0 && r(b)));
    s.write(bytes);
    await Promise.race([closed, refused]);
    s.destroy();
  }

  /** Logs in on a fresh socket, sends `bytes`, and says whether the broker answered or closed first. */
  async function answerTo(port: number, bytes: Buffer, login: Buffer): Promise<"closed" | "answered"> {
    const s = net.connect(port, "127.0.0.1");
    await new Promise((r) => s.once("connect", r));
    s.on("error", () => {});
    const connack = new Promise<Buffer>((r) => s.once("data", r));
    s.write(login);
    expect([...(await connack)]).toEqual([0x20, 0x02, 0x00, 0x00]);
    const outcome = await new Promise<"closed" | "answered">((r) => {
      s.once("close", () => r("closed"));
      s.once("data", () => r("answered"));
      s.write(bytes);
    });
    s.destroy();
    return outcome;
  }

  it("a SUBSCRIBE or UNSUBSCRIBE with packet identifier 0 or without a topic filter is closed unanswered, counted as malformed", async () => {
    const port = await startCounting();
    const filter = Buffer.from([0x00, 0x03, 0x61, 0x2f, 0x62]); // "a/b"
    const packets = [
      Buffer.concat([Buffer.from([0x82, 8, 0x00, 0x00]), filter, Buffer.from([0x00])]), // §2.3.1-1
      Buffer.concat([Buffer.from([0xa2, 7, 0x00, 0x00]), filter]), // §2.3.1-1
      Buffer.from([0xa2, 0x02, 0x00, 0x01]), // no filter, §3.10.3-2
      Buffer.from([0x82, 0x02, 0x00, 0x01]), // no filter, §3.8.3-3
    ];
    const operatorLogin = mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: true,
      clientId: "ops-console",
      keepalive: 60,
      username: "ops",
      password: Buffer.from("secret"),
    });
    for (const login of [connectPacket(), operatorLogin])
      for (const p of packets) expect(await answerTo(port, p, login)).toBe("closed");
    const r = counters.snapshot().rejections;
    expect(r.ec200).toEqual({ "malformed-packet": 4 });
    expect(r.operator).toEqual({ "malformed-packet": 4 });
    expect(lines.filter((l) => l.reason === "malformed-packet").length).toBeGreaterThan(0);
    // A well-formed one is still answered.
    const subscribe = Buffer.concat([Buffer.from([0x82, 8, 0x00, 0x07]), filter, Buffer.from([0x00])]);
    expect(await answerTo(port, subscribe, operatorLogin)).toBe("answered");
  });

  /** As answerTo, over MQTT over WebSocket (each packet a binary message); `login` null: none. */
  async function wsAnswerTo(
    port: number,
    bytes: Buffer,
    login: Buffer | null,
  ): Promise<"closed" | "answered"> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, "mqtt");
    ws.on("error", () => {});
    await new Promise((r) => ws.once("open", r));
    if (login !== null) {
      // aedes may write a packet in more than one piece, each its own WebSocket message.
      const connack = new Promise<Buffer>((r) => {
        let got = Buffer.alloc(0);
        const onMessage = (m: Buffer) => {
          got = Buffer.concat([got, m]);
          if (got.length < 4) return;
          ws.off("message", onMessage);
          r(got);
        };
        ws.on("message", onMessage);
      });
      ws.send(login);
      expect([...(await connack)]).toEqual([0x20, 0x02, 0x00, 0x00]);
    }
    const outcome = await new Promise<"closed" | "answered">((r) => {
      ws.once("close", () => r("closed"));
      ws.once("message", () => r("answered"));
      ws.send(bytes);
    });
    ws.terminate();
    return outcome;
  }

  it("on a WebSocket listener too: malformed SUBSCRIBE/UNSUBSCRIBE closed unanswered, packets bounded before and after login", async () => {
    const port = await startCounting("websocket");
    const filter = Buffer.from([0x00, 0x03, 0x61, 0x2f, 0x62]); // "a/b"
    const malformed = [
      Buffer.concat([Buffer.from([0x82, 8, 0x00, 0x00]), filter, Buffer.from([0x00])]), // §2.3.1-1
      Buffer.concat([Buffer.from([0xa2, 7, 0x00, 0x00]), filter]), // §2.3.1-1
      Buffer.from([0xa2, 0x02, 0x00, 0x01]), // no filter, §3.10.3-2
      Buffer.from([0x82, 0x02, 0x00, 0x01]), // no filter, §3.8.3-3
    ];
    const operatorLogin = mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: true,
      clientId: "ops-console",
      keepalive: 60,
      username: "ops",
      password: Buffer.from("secret"),
    });
    for (const p of malformed) expect(await wsAnswerTo(port, p, operatorLogin)).toBe("closed");
    // A CONNECT announcing more than maxConnectSize (1 KiB by default), within one WebSocket message.
    const bigConnect = Buffer.concat([Buffer.from([0x10, 0x80, 0x40]), Buffer.alloc(100)]);
    expect(await wsAnswerTo(port, bigConnect, null)).toBe("closed");
    // A device's PUBLISH over its model's packet limit (the whole packet need not arrive).
    const bigPublish = Buffer.concat([Buffer.from([0x30, 0x80, 0x80, 0x04]), Buffer.alloc(100)]);
    expect(await wsAnswerTo(port, bigPublish, connectPacket())).toBe("closed");
    const r = counters.snapshot().rejections;
    expect(r.operator).toEqual({ "malformed-packet": 4 });
    expect(r.connection).toEqual({ "connect-too-large": 1 });
    expect(r.ec200).toEqual({ "packet-too-large": 1 });
    // A well-formed one is still answered.
    const subscribe = Buffer.concat([Buffer.from([0x82, 8, 0x00, 0x07]), filter, Buffer.from([0x00])]);
    expect(await wsAnswerTo(port, subscribe, operatorLogin)).toBe("answered");
  });

  it("counts and logs them: `connection` before login, the device's model after; a refused login is not one", async () => {
    const port = await startCounting();
    const v4 = connectPacket();
    const protocolName = Buffer.from(v4);
    protocolName.write("MQTX", 4, "latin1");
    const level9 = Buffer.from(v4);
    level9[8] = 9;
    const reservedFlag = Buffer.from(v4);
    reservedFlag[9] = (reservedFlag[9] as number) | 0x01;
    // (An MQTT 5 CONNECT is no longer one of these: devices may use MQTT 5 here, mqtt5.ts.)
    const before = [protocolName, level9, reservedFlag];
    for (const b of before) await closedAfter(port, b, false);
    const qos3 = Buffer.from([0x36, 0x07, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, 0x01]);
    const emptySubscribe = Buffer.from([0x82, 0x02, 0x00, 0x01]);
    const typeF = Buffer.from([0xf0, 0x00]);
    const after = [v4, qos3, emptySubscribe, typeF];
    for (const b of after) await closedAfter(port, b, true);
    await closedAfter(port, connectPacket({ password: "wrong" }), false);
    const r = counters.snapshot().rejections;
    expect(r.connection).toEqual({ "malformed-packet": 3 });
    // A second CONNECT (§3.1.0-2) is a violation; QoS 3, no topic filter, type 15 are malformed.
    expect(r.ec200).toEqual({ "protocol-violation": 1, "malformed-packet": 3 });
    // Counted where it is decided, once.
    expect(r.auth).toEqual({ "bad-password": 1 });
    // A topic that is not UTF-8 (§1.5.3) is read as U+FFFD and refused as a topic the device may not use.
    await closedAfter(port, Buffer.from([0x30, 0x05, 0x00, 0x02, 0xc3, 0x28, 0x78]), true);
    expect(counters.snapshot().rejections.ec200).toEqual({
      "protocol-violation": 1,
      "malformed-packet": 3,
      "topic-not-allowed": 1,
    });
    expect(
      lines.filter((l) => l.reason === "malformed-packet" || l.reason === "protocol-violation").length,
    ).toBeGreaterThan(0);
  });
});
