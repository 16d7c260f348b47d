/**
 * Downlinks to devices that are away when they are sent (gateway/southbound/pending-downlinks.ts):
 * an operator's ack reaches the EC-200 at its base station's next login, the GD-2's automatic
 * valve_close is sent again at the detector's next login while the leak is open, operators'
 * commands wait in order, bounded, and expire; a downlink written on a connection that closes
 * before the device's PUBACK is sent again at its next login; the GAS_LEAK alert says whether the
 * shut-off was sent or waits for the detector. On aedes' listener and on the device listener.
 * Real gateway, real mqtt.js clients on 127.0.0.1. The device listener needs the built worker.
 */
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import type { Gateway } from "../gateway/gateway.js";
import { DOWNLINK_TTL_MS, MAX_PENDING_PER_DEVICE } from "../gateway/southbound/pending-downlinks.js";
import { KEY } from "../gateway/state/keys.js";
import { MemoryStore } from "../gateway/state/store.js";
import {
  clientIdFor,
  connect,
  OPS,
  pendantMsg,
  type Received,
  SITE,
  sleep,
  startGateway,
  TestClient,
  testConfig,
} from "./support/harness.js";

let gw: Gateway | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end()));
  await gw?.stop();
  gw = null;
});

/** Polls until `cond` holds (the gateway's side of a PUBACK has no event a test can wait on). */
async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const gd2Msg = (seq: number, fields: Record<string, unknown>) =>
  JSON.stringify({ t: "alarm", seq, ts: Date.now(), lel: 0, level: "none", valve: "open", ...fields });

/**
 * Until the gateway has seen the device's connection close: a downlink sent before then is
 * written to the closing connection instead of waiting for the next login.
 */
async function gone(g: Gateway, c: TestClient): Promise<void> {
  const device = g.registry.devices.get(c.client.options.username ?? "");
  if (device === undefined) throw new Error("gone: not a device's client");
  const down = `devices/${device.model}/${device.id}/down`;
  await until(`${device.id} gone`, () => !g.broker.downlinkLive(down));
}

/** A gateway (journal off) with the GD-2 detector `k-1`, and `OPS` watching the whole site. */
async function gd2Site(opts: { clock?: FakeClock; store?: MemoryStore } = {}) {
  const base = testConfig();
  const config = {
    ...base,
    devices: [
      ...(base.devices ?? []),
      { id: "k-1", model: "gd2" as const, password: "pw-k1", household: "hh-1" },
    ],
    storage: { enabled: false },
  };
  const g = await startGateway({ ...opts, config });
  gw = g;
  const ops = await connect(g, OPS.name, OPS.password);
  clients.push(ops);
  expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
  return { g, ops, config };
}

describe.each(["aedes", "device listener"] as const)(
  "downlinks to a device that is away (%s)",
  (listener) => {
    async function site(autoShutOff = false, clock?: FakeClock): Promise<{ g: Gateway; ops: TestClient }> {
      const base = testConfig();
      const g = await startGateway({
        clock,
        config: {
          ...base,
          ...(listener === "device listener"
            ? {
                mqtt: {
                  listeners: [{ host: "127.0.0.1", port: 0 }],
                  deviceListener: { host: "127.0.0.1", port: 0 },
                },
              }
            : {}),
          devices: [
            ...(base.devices ?? []),
            { id: "k-1", model: "gd2", password: "pw-k1", household: "hh-1", autoShutOff },
          ],
          storage: { enabled: false },
        },
      });
      gw = g;
      const ops = await connect(g, OPS.name, OPS.password);
      clients.push(ops);
      expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
      return { g, ops };
    }

    /** A device's connection on the listener under test, not yet subscribed to its downlink. */
    async function device(g: Gateway, id: string, password: string): Promise<TestClient> {
      const port = listener === "aedes" ? g.mqttPort : g.broker.deviceListenerPort;
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        username: id,
        password,
        clientId: clientIdFor(g, id),
        reconnectPeriod: 0,
        connectTimeout: 2000,
      });
      const c = new TestClient(client);
      clients.push(c);
      return c;
    }

    async function away(g: Gateway, c: TestClient): Promise<void> {
      await c.end();
      clients.splice(clients.indexOf(c), 1);
      await gone(g, c);
    }

    const results = (ops: TestClient, command: string) =>
      ops.on(`/cmd/k-1/${command}/result`).map((m) => m.json());

    it("an operator's ack reaches the pendant when its base station comes back; the alert shows the resident was told", async () => {
      const { g, ops } = await site();
      const p = await device(g, "p-1", "pw-p1");
      await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
      const alert = (await ops.waitFor((m) => m.topic.includes("/alerts/p1/EMERGENCY_CALL/p-1"))).json();
      await away(g, p);

      await ops.publish(`linli/${SITE}/ack/${alert.id}`, JSON.stringify({ by: "Wang Li" }));
      await ops.waitFor((m) => m.topic.includes("/alerts/p1/") && m.json().state === "active-acknowledged");
      expect(g.pendingDownlinks?.stats()).toMatchObject({ pending: 1, queued: 1 });

      const back = await device(g, "p-1", "pw-p1");
      expect(await back.subscribe("devices/ec200/p-1/down")).toBe(1);
      const down = await back.waitFor((m) => m.topic === "devices/ec200/p-1/down");
      expect(down.json()).toEqual({ cmd: "ack_call", alertId: alert.id });
      // Kept until the base station's PUBACK.
      await until("the PUBACK", () => g.pendingDownlinks?.stats().pending === 0);
      expect(g.pendingDownlinks?.stats()).toMatchObject({ deliveredLate: 1, resent: 0 });

      // The pendant beeped and says so in its next uplink: the operators see it on the alert.
      await back.publish("devices/ec200/p-1/up", pendantMsg(2, null, { ackd: alert.id }));
      const told = await ops.waitFor(
        (m) => m.topic.includes("/alerts/p1/") && m.json().transition === "delivered",
      );
      expect(told.json().detail).toMatchObject({ residentNotified: true });
    });

    it("automatic shut-off: a detector away when GAS_LEAK is raised gets valve_close at its next login; the result says queued, then sent", async () => {
      const { g, ops } = await site(true);
      const k = await device(g, "k-1", "pw-k1");
      // The alarm goes out, then the detector's Wi-Fi drops before the downlink could reach it.
      await k.publish("devices/gd2/k-1/up", gd2Msg(1, { lel: 30, level: "high" }));
      const first = await ops.waitFor((m) => m.topic.endsWith("/cmd/k-1/valve_close/result"));
      expect(first.json()).toMatchObject({
        by: "gateway",
        ok: true,
        sent: false,
        queued: true,
        deviceConnected: false,
      });
      expect(first.json().expiresAt).toBeUndefined();
      const id = first.json().id as string;
      // The alert does not say the valve was ordered closed: the order waits for the detector.
      const leakTopic = `linli/${SITE}/alerts/p1/GAS_LEAK/k-1`;
      const raised = await ops.waitFor((m) => m.topic === leakTopic && m.payload.length > 0);
      expect(raised.json().message).toContain("关阀命令尚未送达：报警器未连接，将在其重新连接后发送");
      expect(raised.json().message).not.toContain("网关已发送关阀命令");
      expect(raised.json().detail).toMatchObject({ autoShutOff: true, autoShutOffQueued: true });
      expect(raised.json().causes).toContain(
        "valve_close queued by the gateway until the detector reconnects",
      );
      await away(g, k);

      const back = await device(g, "k-1", "pw-k1");
      expect(await back.subscribe("devices/gd2/k-1/down")).toBe(1);
      const down = await back.waitFor((m) => m.topic === "devices/gd2/k-1/down");
      expect(down.json()).toEqual({ cmd: "valve_close", id });
      await ops.waitFor((m) => m.topic.endsWith("/valve_close/result") && m.json().sent === true);
      expect(results(ops, "valve_close")).toEqual([
        expect.objectContaining({ id, queued: true }),
        expect.objectContaining({ id, by: "gateway", ok: true, sent: true, waitedMs: expect.any(Number) }),
      ]);
      // The detector acknowledged it, then reports its valve closing: the alert now says sent.
      await until("the PUBACK", () => g.pendingDownlinks?.stats().pending === 0);
      await back.publish("devices/gd2/k-1/up", gd2Msg(2, { lel: 30, level: "high", valve: "moving" }));
      const changed = await ops.waitFor(
        (m) =>
          m.topic === leakTopic &&
          m.payload.length > 0 &&
          (m.json().detail as { valve?: string }).valve === "moving",
      );
      expect(changed.json().message).toContain("网关已发送关阀命令");
      expect(changed.json().message).not.toContain("尚未送达");
      expect(changed.json().detail).toMatchObject({ autoShutOff: true, autoShutOffQueued: false });
    });

    it("a downlink written on a connection that closed before the device's PUBACK is sent again at its next login; the result says resent", async () => {
      const { g, ops } = await site();
      const k = await device(g, "k-1", "pw-k1");
      expect(await k.subscribe("devices/gd2/k-1/down")).toBe(1);
      // The detector reads the PUBLISH but its connection drops before it acknowledges it
      // (mqtt.js sends the PUBACK once handleMessage calls back: it never does here).
      k.client.handleMessage = () => {};
      await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-1", by: "Wang Li" }));
      const first = await ops.waitFor((m) => m.topic.endsWith("/self_test/result"));
      expect(first.json()).toMatchObject({ id: "s-1", ok: true, sent: true });
      await k.waitFor((m) => m.topic === "devices/gd2/k-1/down");
      expect(g.pendingDownlinks?.stats()).toMatchObject({ pending: 1 });
      k.client.end(true);
      clients.splice(clients.indexOf(k), 1);
      await gone(g, k);

      const back = await device(g, "k-1", "pw-k1");
      expect(await back.subscribe("devices/gd2/k-1/down")).toBe(1);
      const down = await back.waitFor((m) => m.topic === "devices/gd2/k-1/down");
      expect(down.json()).toEqual({ cmd: "self_test", id: "s-1" });
      const again = await ops.waitFor(
        (m) => m.topic.endsWith("/self_test/result") && m.json().resent === true,
      );
      expect(again.json()).toMatchObject({ id: "s-1", by: "Wang Li", ok: true, sent: true, resent: true });
      await until("the PUBACK", () => g.pendingDownlinks?.stats().pending === 0);
      expect(g.pendingDownlinks?.stats()).toMatchObject({ resent: 1 });

      // Acknowledged this time: the next login gets nothing again.
      await away(g, back);
      const third = await device(g, "k-1", "pw-k1");
      expect(await third.subscribe("devices/gd2/k-1/down")).toBe(1);
      await sleep(200);
      expect(third.on("/down")).toEqual([]);
    });

    it("automatic shut-off: a leak that ended before the detector came back is not shut off late; the result says withdrawn", async () => {
      const { g, ops } = await site(true);
      const k = await device(g, "k-1", "pw-k1");
      await k.publish("devices/gd2/k-1/up", gd2Msg(1, { lel: 30, level: "high" }));
      await ops.waitFor((m) => m.topic.endsWith("/cmd/k-1/valve_close/result"));
      // Still not subscribed to its downlink: the gas clears meanwhile.
      await k.publish("devices/gd2/k-1/up", gd2Msg(2, { lel: 0, level: "none" }));
      await ops.waitFor(
        (m: Received) =>
          m.topic === `linli/${SITE}/alerts/p1/GAS_LEAK/k-1` &&
          m.payload.length > 0 &&
          m.json().state === "cleared-unacknowledged",
      );
      expect(await k.subscribe("devices/gd2/k-1/down")).toBe(1);
      const lost = await ops.waitFor((m) => m.topic.endsWith("/valve_close/result") && m.json().ok === false);
      expect(lost.json()).toMatchObject({ ok: false, sent: false, error: "downlink-withdrawn" });
      await sleep(100);
      expect(k.on("/down")).toEqual([]);
      expect(g.counters.rejected("automatic", "cmd-downlink-withdrawn")).toBe(1);
    });

    it("operators' commands to an away detector wait in order, at most MAX_PENDING_PER_DEVICE (the oldest dropped), and expire", async () => {
      const clock = new FakeClock(Date.now());
      const { g, ops } = await site(false, clock);
      const t0 = clock.now();
      // Ten seconds apart: within the device's bound of operators' commands (command-rate.ts).
      for (let i = 1; i <= MAX_PENDING_PER_DEVICE + 1; i++) {
        await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: `s-${i}`, by: "Wang Li" }));
        await ops.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().id === `s-${i}`);
        clock.advance(10_000);
      }
      await ops.waitFor(
        (m) => m.topic.endsWith("/self_test/result") && m.json().error === "downlink-dropped",
      );
      const first = results(ops, "self_test").filter((r) => r.queued === true);
      expect(first.map((r) => r.id)).toEqual(
        Array.from({ length: MAX_PENDING_PER_DEVICE + 1 }, (_, i) => `s-${i + 1}`),
      );
      expect(first[0]).toMatchObject({ ok: true, sent: false, expiresAt: t0 + DOWNLINK_TTL_MS });
      expect(results(ops, "self_test").find((r) => r.error === "downlink-dropped")).toMatchObject({
        id: "s-1",
        ok: false,
        message: expect.stringContaining("k-1"),
      });

      const k = await device(g, "k-1", "pw-k1");
      expect(await k.subscribe("devices/gd2/k-1/down")).toBe(1);
      await k.waitFor(() => k.on("/down").length === MAX_PENDING_PER_DEVICE);
      expect(k.on("/down").map((m) => m.json().id)).toEqual(
        Array.from({ length: MAX_PENDING_PER_DEVICE }, (_, i) => `s-${i + 2}`),
      );
      await away(g, k);

      // One more while away, then the device stays away past the command's life.
      await ops.publish(`linli/${SITE}/cmd/k-1/valve_open`, JSON.stringify({ id: "o-1", by: "Wang Li" }));
      await ops.waitFor((m) => m.topic.endsWith("/valve_open/result"));
      clock.advance(DOWNLINK_TTL_MS);
      const again = await device(g, "k-1", "pw-k1");
      expect(await again.subscribe("devices/gd2/k-1/down")).toBe(1);
      const expired = await ops.waitFor(
        (m) => m.topic.endsWith("/valve_open/result") && m.json().ok === false,
      );
      expect(expired.json()).toMatchObject({ id: "o-1", sent: false, error: "downlink-expired" });
      await sleep(100);
      expect(again.on("/down")).toEqual([]);
      expect(g.counters.rejected("operator", "cmd-downlink-expired")).toBe(1);
      expect(g.counters.rejected("operator", "cmd-downlink-dropped")).toBe(1);
    });
  },
);

describe("downlinks to a device with a persistent session (aedes)", () => {
  it("a detector that logs in again with its session present (no SUBSCRIBE) gets what waited for it, once", async () => {
    const { g, ops } = await gd2Site();
    const k = await connect(g, "k-1", "pw-k1", { clean: false });
    expect(await k.subscribe("devices/gd2/k-1/down")).toBe(1);
    await k.end();
    await gone(g, k);

    await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-1", by: "Wang Li" }));
    await ops.waitFor((m) => m.topic.endsWith("/self_test/result"));
    const back = await connect(g, "k-1", "pw-k1", { clean: false });
    clients.push(back);
    const down = await back.waitFor((m) => m.topic === "devices/gd2/k-1/down");
    expect(down.json()).toEqual({ cmd: "self_test", id: "s-1" });
    await ops.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().sent === true);
    await sleep(200);
    expect(back.on("/down")).toHaveLength(1);
  });
});

describe("downlinks waiting for a device a reload removes", () => {
  it("end with a device-removed result and their journal record is deleted", async () => {
    const store = new MemoryStore();
    const { g, ops, config } = await gd2Site({ store });

    // The detector is away: the command waits for it, journaled.
    await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-1", by: "Wang Li" }));
    await ops.waitFor((m) => m.topic.endsWith("/cmd/k-1/self_test/result") && m.json().queued === true);
    expect(store.map.has(KEY.downlinks("k-1"))).toBe(true);

    const r = await g.reload(
      validateConfig(
        { ...config, devices: (config.devices ?? []).filter((d) => d.id !== "k-1") },
        "new.yaml",
      ),
    );
    expect(r.result).toBe("applied");
    const ended = await ops.waitFor(
      (m) => m.topic.endsWith("/cmd/k-1/self_test/result") && m.json().ok === false,
    );
    expect(ended.json()).toMatchObject({
      deviceId: "k-1",
      command: "self_test",
      id: "s-1",
      by: "Wang Li",
      sent: false,
      error: "device-removed",
    });
    expect(ended.json().message).toContain("设备已从配置中移除，命令未发送");
    expect(store.map.has(KEY.downlinks("k-1"))).toBe(false);
    expect(g.pendingDownlinks?.stats()).toMatchObject({ pending: 0, removed: 1 });
    expect(g.counters.rejected("operator", "cmd-device-removed")).toBe(1);
  });
});

describe("a step of the wall clock while a command waits for its device", () => {
  it.each([
    ["set forward an hour", 60 * 60_000],
    ["set back an hour", -60 * 60_000],
  ])("%s: it still expires after 10 minutes waited, its journaled times moved", async (_, step) => {
    const clock = new FakeClock(Date.now());
    const store = new MemoryStore();
    const { g, ops } = await gd2Site({ clock, store });
    await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-1", by: "Wang Li" }));
    const first = await ops.waitFor((m) => m.topic.endsWith("/cmd/k-1/self_test/result"));
    const expiresAt = first.json().expiresAt as number;
    const t0 = clock.monotonic();

    clock.advance(10_000);
    clock.stepWall(step);
    // The timer wheel adopts the step at its next tick (at most a minute).
    clock.advance(60_000);
    await sleep(50);
    const record = store.map.get(KEY.downlinks("k-1")) as { entries: Array<[string, number, number]> };
    expect(record.entries[0]?.[2]).toBe(expiresAt + step);

    clock.advance(t0 + DOWNLINK_TTL_MS - clock.monotonic() - 1000);
    g.pendingDownlinks?.sweep();
    expect(g.pendingDownlinks?.stats()).toMatchObject({ pending: 1, expired: 0 });
    clock.advance(2000);
    g.pendingDownlinks?.sweep();
    expect(g.pendingDownlinks?.stats()).toMatchObject({ pending: 0, expired: 1 });
    const ended = await ops.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().ok === false);
    expect(ended.json()).toMatchObject({ id: "s-1", error: "downlink-expired" });
  });
});
