/**
 * Limits after login, through a real gateway and real MQTT clients
 * (docs/security.md "Limits"): a device's message rate (P1 never dropped,
 * DEVICE_MISBEHAVING raised and cleared), one device's share of the P1 lane,
 * a device's packet size, an operator's subscriptions, and the login timeout
 * of a silent socket.
 */
import net from "node:net";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import {
  clientIdFor,
  connect,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  TestClient,
  testConfig,
} from "./support/harness.js";
import {
  firstFlood,
  floodUntil,
  handledInOrder,
  handledPresses,
  KEPT_QOS1,
  keptMessage,
  keptThenRefused,
  keptThenRefusedQos0,
  pressOnAnotherTopic,
  removeAfterTakenIn,
  sendUntilAcknowledged,
  untilHandled,
} from "./support/p1-flood.js";

describe("limits after login", () => {
  const clients: TestClient[] = [];
  let gw: Gateway | null = null;
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw?.stop();
    gw = null;
  });

  async function start(
    limits: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ): Promise<Gateway> {
    gw = await startGateway({ config: testConfig({ storage: { enabled: false }, limits, ...extra }) });
    return gw;
  }
  async function client(user: string, pw: string): Promise<TestClient> {
    const c = await connect(gw as Gateway, user, pw);
    clients.push(c);
    return c;
  }

  it("drops a device's messages beyond its rate but never a press; DEVICE_MISBEHAVING raised, then cleared", async () => {
    const g = await start({
      deviceRate: { models: { ec200: { perSecond: 2, burst: 5 } }, misbehavingAfter: "1s", clearAfter: "2s" },
    });
    const ops = await client(OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/alerts/#`);
    const pendant = await client("p-1", "pw-p1");
    let seq = 1;
    // 1.5 s of heartbeats at 100/s with a press every 10th message.
    let presses = 0;
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      for (let i = 0; i < 10; i++) {
        const press = i === 9;
        if (press) presses++;
        await pendant.publish("devices/ec200/p-1/up", pendantMsg(seq++, press ? "press" : null), 0);
      }
      await sleep(100);
    }
    const raised = await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p3/DEVICE_MISBEHAVING/p-1`);
    expect(raised.json()).toMatchObject({
      code: "DEVICE_MISBEHAVING",
      priority: 3,
      state: "active-unacknowledged",
    });
    // Every press counted in the one call: none was dropped.
    const call = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1` && m.json().count === presses,
    );
    expect(call.json().count).toBe(presses);
    expect(g.counters.rejected("ec200", "rate-limited")).toBeGreaterThan(50);
    // Quiet for clearAfter, then one message in its rate: the alert clears.
    await sleep(2200);
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(seq++, null));
    const cleared = await ops.waitFor(
      (m) =>
        m.topic === `linli/${SITE}/alerts/p3/DEVICE_MISBEHAVING/p-1` &&
        m.json().state !== "active-unacknowledged",
    );
    expect(cleared.json().state).toBe("cleared-unacknowledged");
  });

  it("one pendant flooding presses holds its P1 share only: another pendant's press goes through, the rest is acknowledged only once handled, in order", async () => {
    const g = await start({});
    const ops = await client(OPS.name, OPS.password);
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
    const other = await client("p-2", "pw-p2");
    let otherAcked: Promise<unknown> = Promise.resolve();
    const n = 1100;
    const acked = await firstFlood(g.mqttPort, "ec200-p-1", n, () => {
      otherAcked = other.publish("devices/ec200/p-2/up", pendantMsg(1, "press"));
    });
    await otherAcked;
    await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-2`);
    await untilHandled(ops, acked);
    const first = handledPresses(ops);
    expect(first.length).toBeLessThan(n);
    // What was handled is what was acknowledged, and nothing after the first press left with it.
    expect(first).toEqual(Array.from({ length: acked }, (_, i) => i + 1));
    expect(g.counters.rejected("ec200", "p1-device-limit")).toBeGreaterThan(0);
    await sendUntilAcknowledged(g.mqttPort, "ec200-p-1", n, acked);
    await untilHandled(ops, n);
    expect(handledPresses(ops)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(g.counters.rejected("ec200", "duplicate-seq")).toBe(0);
  });

  // Both ways devices come in: the embedded broker, and the device listener's worker thread.
  it.each([
    ["the embedded broker", false],
    ["the device listener", true],
  ])(
    "a pendant kept over its P1 share raises DEVICE_MISBEHAVING (%s); it clears once it stops",
    async (_, worker) => {
      // One refusal per round of the flood (its connection then takes nothing more in), and a pause
      // longer than misbehavingAfter starts the watch again: 3 s leaves a round on a loaded machine
      // (a full suite in parallel: over 1 s) time enough. Rounds 100 ms apart, as a device
      // reconnects: at loopback speed (5 ms) 200 rounds spent the address's login burst.
      const g = await start(
        { deviceRate: { misbehavingAfter: "3s", clearAfter: "2s" } },
        worker
          ? {
              mqtt: {
                listeners: [{ host: "127.0.0.1", port: 0 }],
                deviceListener: { host: "127.0.0.1", port: 0 },
              },
            }
          : {},
      );
      const port = worker ? (g.broker.deviceListenerPort as number) : g.mqttPort;
      const ops = await client(OPS.name, OPS.password);
      expect(await ops.subscribe(`linli/${SITE}/alerts/#`)).toBe(1);
      const topic = `linli/${SITE}/alerts/p3/DEVICE_MISBEHAVING/p-1`;
      const raised = () => ops.on(topic).some((m) => m.json().state === "active-unacknowledged");
      const started = Date.now();
      const acked = await floodUntil(
        port,
        "ec200-p-1",
        200,
        () => raised() || Date.now() - started > 30_000,
        100,
      );
      expect(raised()).toBe(true);
      // Not before misbehavingAfter (3 s) of refusals.
      expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
      expect(acked).toBeGreaterThan(0);
      const alert = ops.on(topic)[0]?.json() as Record<string, unknown>;
      expect(alert).toMatchObject({
        code: "DEVICE_MISBEHAVING",
        priority: 3,
        causes: ["over its share of the P1 lane"],
        detail: { dropped: 0, deferred: expect.any(Number) },
      });
      expect((alert.detail as { deferred: number }).deferred).toBeGreaterThan(0);
      // None of its presses was dropped by the rate limit: over its share they were left with it.
      expect(g.counters.rejected("ec200", "rate-limited")).toBe(0);
      expect(g.counters.rejected("ec200", "p1-device-limit")).toBeGreaterThan(0);
      // It stops; clearAfter later, one heartbeat (or the sweep) finds it quiet: the alert clears.
      await sleep(2200);
      const pendant = new TestClient(
        await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
          username: "p-1",
          password: "pw-p1",
          clientId: clientIdFor(g, "p-1"),
          reconnectPeriod: 0,
        }),
      );
      clients.push(pendant);
      await pendant.publish("devices/ec200/p-1/up", pendantMsg(acked + 1, null));
      const cleared = await ops.waitFor(
        (m) => m.topic === topic && m.json().state !== "active-unacknowledged",
      );
      expect(cleared.json().state).toBe("cleared-unacknowledged");
    },
    60_000,
  );

  it("a QoS 0 press left with a pendant holding its P1 share closes its connection only once the QoS 1 messages before it are acknowledged: none sent again, none handled twice", async () => {
    const g = await start({});
    const ops = await client(OPS.name, OPS.password);
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
    const acked = await keptThenRefusedQos0(g.mqttPort, "ec200-p-1", () => {});
    expect(g.counters.rejected("ec200", "p1-device-limit")).toBe(1);
    expect(acked).toBe(KEPT_QOS1);
    await sendUntilAcknowledged(g.mqttPort, "ec200-p-1", KEPT_QOS1, acked, keptMessage);
    const until = Date.now() + 3000;
    while (handledPresses(ops).length < KEPT_QOS1 && Date.now() < until) await sleep(10);
    await sleep(200);
    expect(handledPresses(ops)).toEqual(Array.from({ length: KEPT_QOS1 }, (_, i) => i + 1));
    expect(g.counters.rejected("ec200", "duplicate-seq")).toBe(0);
  });

  it.each([
    ["on another device's topic", () => pressOnAnotherTopic(KEPT_QOS1 + 1), false],
    ["of a device a reload removed meanwhile", () => keptMessage(KEPT_QOS1 + 1), true],
  ])(
    "a publish refused by the publish rule (%s) closes the connection only once the QoS 1 messages before it are acknowledged",
    async (_what, last, removeAfterKept) => {
      const g = await start({});
      const ops = await client(OPS.name, OPS.password);
      expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
      // A reload removes the device right after its kept messages were taken in.
      if (removeAfterKept) removeAfterTakenIn(g, KEPT_QOS1);
      const acked = await keptThenRefused(g.mqttPort, "ec200-p-1", last(), () => {});
      expect(g.counters.rejected("ec200", "topic-not-allowed")).toBe(1);
      // Every message kept was acknowledged before the close: none is sent again (handled twice).
      expect(acked).toBe(KEPT_QOS1);
      if (removeAfterKept) return; // a removed device's messages are no longer published
      expect(await handledInOrder(ops, KEPT_QOS1)).toEqual(
        Array.from({ length: KEPT_QOS1 }, (_, i) => i + 1),
      );
    },
  );

  it("closes a device's connection on a packet over its model's limit, from the header, counted", async () => {
    const g = await start({});
    const pendant = await client("p-1", "pw-p1");
    // 600 bytes: over the 512-byte payload but within the packet limit: refused by ingest, connection kept.
    await pendant.publish("devices/ec200/p-1/up", Buffer.alloc(600, 0x20));
    expect(g.counters.rejected("ec200", "oversized")).toBe(1);
    expect(pendant.closedByServer).toBe(false);
    pendant.publish("devices/ec200/p-1/up", Buffer.alloc(1024 * 1024, 0x20)).catch(() => {});
    const deadline = Date.now() + 5000;
    while (!pendant.closedByServer && Date.now() < deadline) await sleep(10);
    expect(pendant.closedByServer).toBe(true);
    expect(g.counters.rejected("ec200", "packet-too-large")).toBe(1);
  });

  it("refuses an operator's subscriptions beyond maxSubscriptions (0x80), keeping the connection", async () => {
    const g = await start({ maxSubscriptions: 2 });
    const ops = await client(OPS.name, OPS.password);
    expect(await ops.subscribe(`linli/${SITE}/alerts/p1/#`)).toBe(1);
    expect(await ops.subscribe(`linli/${SITE}/alerts/p2/#`)).toBe(1);
    // The same filter again is not a new subscription.
    expect(await ops.subscribe(`linli/${SITE}/alerts/p1/#`)).toBe(1);
    expect(await ops.subscribe(`linli/${SITE}/alerts/p3/#`)).toBe(128);
    expect(g.counters.rejected("operator", "subscriptions-limit")).toBe(1);
    await ops.client.unsubscribeAsync(`linli/${SITE}/alerts/p2/#`);
    expect(await ops.subscribe(`linli/${SITE}/alerts/p3/#`)).toBe(1);
    expect(ops.closedByServer).toBe(false);
  });

  it("closes a socket that has not logged in within connectTimeout, and one announcing a big CONNECT at once", async () => {
    const g = await start({ connectTimeout: "1s" });
    const lifetime = (write?: Buffer) =>
      new Promise<number>((resolve) => {
        const t0 = Date.now();
        const s = net.connect(g.mqttPort, "127.0.0.1", () => {
          if (write) s.write(write);
        });
        s.on("error", () => {});
        s.on("close", () => resolve(Date.now() - t0));
      });
    const [idle, partial, big] = await Promise.all([
      lifetime(),
      // Half a CONNECT, then nothing (a slow-loris login).
      lifetime(Buffer.from([0x10, 0x20, 0x00, 0x04])),
      lifetime(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x05])),
    ]);
    expect(idle).toBeGreaterThanOrEqual(900);
    expect(idle).toBeLessThan(5000);
    expect(partial).toBeGreaterThanOrEqual(900);
    expect(partial).toBeLessThan(5000);
    expect(big).toBeLessThan(900);
    expect(g.counters.rejected("connection", "login-timeout")).toBe(2);
    expect(g.counters.rejected("connection", "connect-too-large")).toBe(1);
  });
});
