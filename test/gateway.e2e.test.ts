import net from "node:net";
import { Encoder } from "cbor-x";
import { describe, expect, it } from "vitest";
import {
  connect,
  doorMsg,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  testConfig,
  watchedSitePerTest,
} from "./support/harness.js";

describe("gateway end to end over real MQTT", () => {
  const site = watchedSitePerTest();

  it("a pendant press produces exactly one P1 EMERGENCY_CALL on the right topic", async () => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const m = await site.ops.waitFor((x) => x.topic.includes("/alerts/p"));
    expect(m.topic).toBe(`linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
    const a = m.json();
    expect(a).toMatchObject({
      code: "EMERGENCY_CALL",
      priority: 1,
      state: "active-unacknowledged",
      site: SITE,
      deviceId: "p-1",
      model: "ec200",
      household: "hh-1",
      count: 1,
      causes: ["press"],
      cancelledByResident: false,
      ackedBy: null,
    });
    expect(typeof a.id).toBe("string");
    expect(m.retain).toBe(false); // live delivery; retained flag is set on the stored copy only
    await sleep(100);
    expect(site.ops.on("/alerts/p")).toHaveLength(1);
    // The telemetry reading of the same message is published too.
    const t = await site.ops.waitFor((x) => x.topic === `linli/${SITE}/telemetry/ec200/p-1`);
    expect(t.json()).toMatchObject({
      deviceId: "p-1",
      model: "ec200",
      metrics: { event: { value: "press" } },
    });
  });

  it("a double press is one call with count 2; an operator ack changes state and reaches the pendant", async () => {
    const p = await site.client("p-1", "pw-p1");
    expect(await p.subscribe("devices/ec200/p-1/down")).toBe(1);
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    await p.publish("devices/ec200/p-1/up", pendantMsg(2, "press"));
    const second = await site.ops.waitFor((x) => x.topic.includes("/alerts/p") && x.json().count === 2);
    const alert = second.json();
    expect(site.ops.on("/alerts/p").map((x) => x.json().id)).toEqual([alert.id, alert.id]);

    await site.ops.publish(
      `linli/${SITE}/ack/${alert.id}`,
      JSON.stringify({ by: "Wang Li", note: "calling her now" }),
    );
    const acked = await site.ops.waitFor(
      (x) => x.topic.includes("/alerts/p") && x.json().state === "active-acknowledged",
    );
    expect(acked.json()).toMatchObject({ id: alert.id, ackedBy: "Wang Li", ackNote: "calling her now" });
    const down = await p.waitFor((x) => x.topic === "devices/ec200/p-1/down");
    expect(down.json()).toEqual({ cmd: "ack_call", alertId: alert.id });
  });

  it("a resident's cancel marks the call but leaves it for an operator", async () => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "fall"));
    await p.publish("devices/ec200/p-1/up", pendantMsg(2, "cancel"));
    const m = await site.ops.waitFor(
      (x) => x.topic.includes("/alerts/p") && x.json().cancelledByResident === true,
    );
    expect(m.topic).toBe(`linli/${SITE}/alerts/p1/FALL_DETECTED/p-1`);
    expect(m.json().state).toBe("active-unacknowledged");
  });

  it("a duplicate seq is suppressed and counted", async () => {
    const p = await site.client("p-1", "pw-p1");
    const msg = pendantMsg(7, "press");
    await p.publish("devices/ec200/p-1/up", msg);
    await p.publish("devices/ec200/p-1/up", msg);
    await site.ops.waitFor((x) => x.topic.includes("/alerts/p"));
    await sleep(100);
    expect(site.ops.on("/alerts/p")).toHaveLength(1);
    expect(site.ops.on("/alerts/p")[0]?.json().count).toBe(1);
    expect(site.gw.counters.rejected("ec200", "duplicate-seq")).toBe(1);
  });

  it("CBOR and JSON payloads decode to the same alert", async () => {
    const p = await site.client("p-1", "pw-p1");
    // Firmware 2.x sends definite-length maps: 6 pairs start with 0xA6 (datasheet).
    const cbor = new Encoder({ useRecords: false, variableMapSize: true }).encode({
      t: "evt",
      seq: 1042,
      ts: 1763798400123,
      evt: "press",
      bat: 87,
      rssi: -71,
    });
    expect(cbor[0]).toBe(0xa6);
    await p.publish("devices/ec200/p-1/up", cbor);
    const m = await site.ops.waitFor((x) => x.topic.includes("/alerts/p"));
    expect(m.json()).toMatchObject({ code: "EMERGENCY_CALL", deviceId: "p-1" });
    const t = await site.ops.waitFor((x) => x.topic.includes("/telemetry/"));
    // ts from a year ago: the gateway stamps its own time and flags the device clock.
    expect(t.json()).toMatchObject({ deviceTime: 1763798400123, quality: "device-clock-invalid" });
  });

  it("malformed and oversized payloads are refused, counted, and the gateway keeps running", async () => {
    const p = await site.client("p-1", "pw-p1");
    await p.publish("devices/ec200/p-1/up", "{not json");
    await p.publish("devices/ec200/p-1/up", Buffer.from([0x01, 0x02]));
    await p.publish(
      "devices/ec200/p-1/up",
      JSON.stringify({ t: "evt", seq: 1, ts: 0, evt: "explode", bat: 5, rssi: -1 }),
    );
    await p.publish("devices/ec200/p-1/up", `{"t":"hb","pad":"${"x".repeat(600)}"}`);
    expect(site.gw.counters.rejected("ec200", "malformed")).toBe(1);
    expect(site.gw.counters.rejected("ec200", "unknown-encoding")).toBe(1);
    expect(site.gw.counters.rejected("ec200", "bad-field")).toBe(1);
    expect(site.gw.counters.rejected("ec200", "oversized")).toBe(1);
    // Still connected and still served.
    await p.publish("devices/ec200/p-1/up", pendantMsg(2, "press"));
    await site.ops.waitFor((x) => x.topic.includes("/alerts/p1/EMERGENCY_CALL/p-1"));
    expect(site.ops.on("/alerts/p")).toHaveLength(1);
  });

  it("refuses an unknown device, a wrong password and an anonymous client", async () => {
    await expect(connect(site.gw, "ghost", "x")).rejects.toThrow(/Bad username or password|Not authorized/i);
    await expect(connect(site.gw, "p-1", "wrong")).rejects.toThrow(/Bad username or password/i);
    await expect(connect(site.gw, "", "")).rejects.toThrow(/Not authorized|Bad username/i);
    expect(site.gw.counters.rejected("unknown", "unknown-device")).toBe(1);
    expect(site.gw.counters.rejected("auth", "bad-password")).toBe(1);
  });

  it("a device publishing on another device's topic is refused: disconnected, no alert", async () => {
    const p = await site.client("p-1", "pw-p1");
    p.client.publish("devices/ec200/p-2/up", pendantMsg(1, "press"), { qos: 1 });
    await new Promise<void>((r) => p.client.once("close", () => r()));
    await sleep(100);
    expect(site.ops.on("/alerts/p")).toHaveLength(0);
    expect(site.gw.counters.rejected("ec200", "topic-not-allowed")).toBe(1);
  });

  it("an operator cannot publish alerts: refused and nobody receives it", async () => {
    const rogue = await site.client("ops2", "ops2-pw");
    rogue.client.publish(`linli/${SITE}/alerts/p1/FIRE_ALARM/x`, '{"fake":true}', { qos: 1 });
    await new Promise<void>((r) => rogue.client.once("close", () => r()));
    await sleep(100);
    expect(site.ops.on("/alerts/p")).toHaveLength(0);
  });

  it("devices cannot subscribe to operations topics or other devices' downlinks", async () => {
    const p = await site.client("p-1", "pw-p1");
    expect(await p.subscribe(`linli/${SITE}/#`)).toBe(128);
    expect(await p.subscribe("devices/ec200/p-2/down")).toBe(128);
    expect(await site.ops.subscribe("$SYS/#")).toBe(128);
  });

  it("a door held open past its hold time raises DOOR_HELD_OPEN; closing clears it", async () => {
    const d = await site.client("d-1", "pw-d1");
    await d.publish("devices/ds10/d-1/up", doorMsg(1, "open"));
    await site.ops.waitFor((x) => x.topic === `linli/${SITE}/telemetry/ds10/d-1`);
    expect(site.ops.on("/alerts/p")).toHaveLength(0);
    expect(site.gw.engine.pendingCount).toBe(1);
  });
});

describe("connection bound", () => {
  it("closes connections beyond mqtt.maxConnections at once and keeps serving the others", async () => {
    const gw = await startGateway({
      config: testConfig({ mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }], maxConnections: 2 } }),
    });
    const ops = await connect(gw, OPS.name, OPS.password);
    const idle = net.connect(gw.mqttPort, "127.0.0.1");
    await new Promise((r) => idle.once("connect", r));
    const third = net.connect(gw.mqttPort, "127.0.0.1");
    await new Promise<void>((r) => third.once("close", () => r()));
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
    idle.destroy();
    await ops.end();
    await gw.stop();
  });
});
