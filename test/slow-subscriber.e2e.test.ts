/**
 * A subscriber that stops reading must not hold up anybody else's alerts
 * (gateway/broker/operator-delivery.ts): a real gateway, a dashboard subscribed
 * to everything whose socket stops being read, a console subscribed to the P1
 * alert topics, and a pendant sending readings until the dashboard's buffers are
 * full, then pressing. Before the rule, aedes held a delivery slot for every
 * message to the frozen dashboard until its socket drained; once its buffers
 * were full, every slot was held and the P1 waited in the broker's queue until
 * aedes gave up on the dashboard (60 s).
 */
import { request } from "node:http";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import {
  connect,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  type TestClient,
  testConfig,
} from "./support/harness.js";

describe("a slow subscriber", () => {
  const clients: TestClient[] = [];
  let gw: Gateway | null = null;
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw?.stop();
    gw = null;
  });

  it("holds up no P1 to another console; QoS 0 to it is dropped and counted once it is 4 MiB behind", async () => {
    gw = await startGateway({
      config: testConfig({
        storage: { enabled: false },
        limits: { deviceRate: { models: { ec200: { perSecond: 100_000, burst: 100_000 } } } },
      }),
    });
    const g = gw;
    const dashboard = await connect(g, "ops2", "ops2-pw", { keepalive: 0 });
    clients.push(dashboard);
    await dashboard.subscribe(`linli/${SITE}/#`);
    const console_ = await connect(g, OPS.name, OPS.password);
    clients.push(console_);
    await console_.subscribe(`linli/${SITE}/alerts/p1/#`);
    const pendant = await connect(g, "p-1", "pw-p1");
    clients.push(pendant);

    // The dashboard stops reading: its socket's buffers, then the gateway's side of it, fill up.
    const dashboardSocket = (dashboard.client as unknown as { stream: Socket }).stream;
    dashboardSocket.pause();

    // Readings until the gateway drops for the dashboard (its kernel buffers, a few MB on
    // loopback, then 4 MiB on the gateway's side), at most 60,000 (~20 MB of telemetry).
    let seq = 1;
    const taken = () => {
      const t = g.stats().pipeline.telemetry;
      return t.processed + t.conflated + t.refused;
    };
    const until = Date.now() + 30_000;
    while (g.stats().slowSubscribers.dropped === 0 && seq < 60_000 && Date.now() < until) {
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < 500; i++)
        batch.push(pendant.publish("devices/ec200/p-1/up", pendantMsg(seq++, null), 0));
      await Promise.all(batch);
      // Keep pace with the gateway (bounded: a broker that stalls would stall this loop).
      for (let w = 0; w < 200 && taken() < seq - 1 - 1000; w++) await sleep(5);
    }
    expect(g.stats().slowSubscribers.dropped).toBeGreaterThan(0);

    // A press now reaches the console at once, though the dashboard is frozen.
    const pressedAt = Date.now();
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(seq++, "press"), 1);
    const alert = await console_.waitFor(
      (m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1` && m.payload.length > 0,
      20_000,
    );
    expect(alert.json()).toMatchObject({ code: "EMERGENCY_CALL", state: "active-unacknowledged" });
    // Seconds, not the minute aedes waits for a frozen reader: generous for a machine loaded
    // several times over (2 s was seen missed under such load; the stall this guards is 60 s).
    expect(Date.now() - pressedAt).toBeLessThan(10_000);

    // The metric says what was dropped.
    const metrics = await scrape(g);
    const dropped = Number(/^linli_broker_slow_subscriber_dropped_total (\d+)/m.exec(metrics)?.[1]);
    expect(dropped).toBeGreaterThan(0);
    expect(metrics).toMatch(/^linli_broker_slow_subscriber_disconnects_total 0$/m);

    // The dashboard reads again: it gets the alert (QoS 1 is never dropped), after the readings
    // that were already queued for it, in order, and the connection stays up.
    dashboardSocket.resume();
    const seen = await dashboard.waitFor(
      (m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1` && m.payload.length > 0,
      15_000,
    );
    expect(seen.json()).toMatchObject({ code: "EMERGENCY_CALL" });
    expect(dashboard.closedByServer).toBe(false);
    const readings = dashboard.messages.filter((m) => m.topic.startsWith(`linli/${SITE}/telemetry/`));
    expect(readings.length).toBeGreaterThan(1000);
    const times = readings.map((m) => m.json().deviceTime as number);
    expect(times.every((t, i) => i === 0 || t >= (times[i - 1] as number))).toBe(true);
  }, 90_000);
});

function scrape(gw: Gateway): Promise<string> {
  const addr = gw.metricsAddress;
  if (!addr) throw new Error("metrics server not running");
  return new Promise((resolve, reject) => {
    const req = request({ host: addr.host, port: addr.port, path: "/metrics", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}
