/**
 * The console's sync marker (docs/topics.md "Retained messages and wills", 0.13.17): the
 * retained messages of one SUBSCRIBE come filter by filter, in the order of its filters, so
 * `gateway/status` as the last filter arrives after every retained alert state, P1s (written
 * ahead on the urgent path) included, and after the other retained topics before it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { type FakeAlert, fakeAlert, publishAlerts } from "./support/console-browser.js";
import { connect, OPS, SITE, startGateway, type TestClient, testConfig } from "./support/harness.js";

describe("retained messages of one SUBSCRIBE, in the order of its filters", () => {
  let gw: Gateway;
  let client: TestClient | null = null;

  beforeAll(async () => {
    gw = await startGateway({ config: testConfig() });
  });
  afterAll(async () => {
    await client?.end();
    await gw.stop();
  });

  it("sends gateway/status, the last filter, after all 5,000 retained alert states and the device states", async () => {
    const alerts: FakeAlert[] = [];
    // fakeAlert names the console tests' site: the same alert under this gateway's site id.
    for (let i = 0; i < 5000; i++) {
      const a = fakeAlert(i, ((i % 4) + 1) as 1 | 2 | 3 | 4);
      alerts.push({ topic: a.topic.replace(/^linli\/[^/]+\//, `linli/${SITE}/`), body: a.body });
    }
    publishAlerts(gw, alerts);
    client = await connect(gw, OPS.name, OPS.password);
    const p1 = await connect(gw, "p-1", "pw-p1");
    await p1.publish("devices/ec200/p-1/up", JSON.stringify({ t: "hb", seq: 1, ts: Date.now(), bat: 90 }));
    await p1.end();
    // Retained "online" of p-1 and the alerts are in before the SUBSCRIBE.
    const watcher = await connect(gw, OPS.name, OPS.password);
    await watcher.subscribe(`linli/${SITE}/devices/p-1/status`);
    await watcher.waitFor((m) => m.topic.endsWith("/status") && m.payload.toString() === "online");
    await watcher.end();

    const base = `linli/${SITE}/`;
    await client.client.subscribeAsync(
      [`${base}alerts/+/+/+`, `${base}devices/+/status`, `${base}gateway/status`],
      {
        qos: 1,
      },
    );
    const marker = await client.waitFor((m) => m.topic === `${base}gateway/status` && m.retain, 30_000);
    const before = client.messages.slice(0, client.messages.indexOf(marker));
    expect(before.filter((m) => m.topic.startsWith(`${base}alerts/`) && m.retain).length).toBe(5000);
    expect(before.some((m) => m.topic === `${base}devices/p-1/status`)).toBe(true);
  }, 60_000);
});
