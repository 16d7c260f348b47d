import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { Gateway } from "../gateway/gateway.js";
import {
  connect,
  doorMsg,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  type TestClient,
  testConfig,
} from "./support/harness.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

describe("supervision on gateway time (fake clock, real MQTT)", () => {
  let gw: Gateway;
  let clock: FakeClock;
  let ops: TestClient;
  const clients: TestClient[] = [];

  beforeEach(async () => {
    clock = new FakeClock();
    gw = await startGateway({
      clock,
      config: testConfig({
        households: [{ id: "hh-1" }, { id: "hh-2", welfare: { enabled: false } }],
        devices: [
          { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1" },
          { id: "d-1", model: "ds10", password: "pw-d1", household: "hh-1", holdOpenTime: "60s" },
          { id: "p-2", model: "ec200", password: "pw-p2", household: "hh-2" },
          { id: "p-3", model: "ec200", password: "pw-p3", household: "hh-1", heartbeatInterval: "1h" },
        ],
        alerts: { welfarePeriod: "24h" },
      }),
    });
    ops = await connect(gw, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    clients.push(ops);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw.stop();
  });

  async function device(id: string, pw: string) {
    const c = await connect(gw, id, pw);
    clients.push(c);
    return c;
  }

  /** Publishes and waits until the gateway has processed it (its telemetry is out). */
  async function send(c: TestClient, topic: string, payload: string, deviceId: string) {
    const before = ops.on(`/telemetry/`).filter((m) => m.topic.endsWith(`/${deviceId}`)).length;
    await c.publish(topic, payload);
    await ops.waitFor(
      () => ops.on(`/telemetry/`).filter((m) => m.topic.endsWith(`/${deviceId}`)).length > before,
    );
  }

  it("a pendant silent for 2 heartbeats + 60 s is DEVICE_LOST (P2) and lost; its next message brings it back", async () => {
    const p = await device("p-1", "pw-p1");
    await send(p, "devices/ec200/p-1/up", pendantMsg(1, null), "p-1");
    await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/devices/p-1/status` && m.payload.toString() === "online",
    );
    clock.advance(2 * 5 * MIN + 59_000);
    await sleep(50);
    expect(ops.on("/alerts/p2/DEVICE_LOST/p-1")).toHaveLength(0);
    clock.advance(2_000);
    const lost = await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/DEVICE_LOST/p-1`);
    expect(lost.json()).toMatchObject({ code: "DEVICE_LOST", priority: 2, state: "active-unacknowledged" });
    await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/devices/p-1/status` && m.payload.toString() === "lost",
    );

    await send(p, "devices/ec200/p-1/up", pendantMsg(2, null), "p-1");
    const back = await ops.waitFor(
      (m) => m.topic.endsWith("/DEVICE_LOST/p-1") && m.json().state === "cleared-unacknowledged",
    );
    expect(back.json().id).toBe(lost.json().id);
    expect(ops.on(`/devices/p-1/status`).map((m) => m.payload.toString())).toEqual([
      "online",
      "lost",
      "online",
    ]);
  });

  it("a door sensor is lost after 2 h + 60 s (DS-10 default heartbeat 3600 s), at P3", async () => {
    const d = await device("d-1", "pw-d1");
    await send(d, "devices/ds10/d-1/up", doorMsg(1, "closed"), "d-1");
    clock.advance(2 * HOUR + 61_000);
    const lost = await ops.waitFor((m) => m.topic.includes("/DEVICE_LOST/d-1"));
    expect(lost.topic).toBe(`linli/${SITE}/alerts/p3/DEVICE_LOST/d-1`);
  });

  it("the welfare check fires once after 24 h without activity, and clears on activity", async () => {
    const p = await device("p-3", "pw-p3");
    const d = await device("d-1", "pw-d1");
    // Hourly heartbeats keep the devices alive but are not activity.
    for (let h = 1; h <= 30; h++) {
      clock.advance(HOUR);
      await send(p, "devices/ec200/p-3/up", pendantMsg(100 + h, null), "p-3");
      await send(
        d,
        "devices/ds10/d-1/up",
        JSON.stringify({ t: "hb", seq: 100 + h, ts: 0, contact: "closed", tamper: false, bat: 60 }),
        "d-1",
      );
    }
    // Raised once; unacknowledged, it is escalated on the way (each escalation republishes it).
    const welfare = ops.on("/alerts/p2/WELFARE_CHECK/").filter((m) => m.json().transition !== "escalated");
    expect(welfare).toHaveLength(1);
    expect(welfare[0]?.json().transition).toBe("raised");
    expect(welfare[0]?.topic).toBe(`linli/${SITE}/alerts/p2/WELFARE_CHECK/hh-1`);
    expect(welfare[0]?.json()).toMatchObject({
      code: "WELFARE_CHECK",
      household: "hh-1",
      deviceId: "hh-1",
      model: "household",
    });
    // hh-2 has welfare checks disabled.
    expect(ops.on("WELFARE_CHECK/hh-2")).toHaveLength(0);
    expect(ops.on("/DEVICE_LOST/p-3")).toHaveLength(0);
    expect(ops.on("/DEVICE_LOST/d-1")).toHaveLength(0);

    await send(d, "devices/ds10/d-1/up", doorMsg(500, "open"), "d-1");
    const cleared = await ops.waitFor(
      (m) => m.topic.endsWith("WELFARE_CHECK/hh-1") && m.json().state === "cleared-unacknowledged",
    );
    expect(cleared.json().id).toBe(welfare[0]?.json().id);
  });

  it("DOOR_HELD_OPEN after the device's hold time; closing clears it", async () => {
    const d = await device("d-1", "pw-d1");
    await send(d, "devices/ds10/d-1/up", doorMsg(1, "open"), "d-1");
    clock.advance(59_000);
    await sleep(30);
    expect(ops.on("DOOR_HELD_OPEN")).toHaveLength(0);
    clock.advance(2_000);
    const held = await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p3/DOOR_HELD_OPEN/d-1`);
    expect(held.json().state).toBe("active-unacknowledged");
    await send(d, "devices/ds10/d-1/up", doorMsg(2, "closed"), "d-1");
    // Cleared once the door has stayed closed for alerts.contactDebounce (a bouncing close is one closing).
    clock.advance(1_000);
    await ops.waitFor(
      (m) => m.topic.endsWith("DOOR_HELD_OPEN/d-1") && m.json().state === "cleared-unacknowledged",
    );
  });

  it("a closed alert is published once and its retained copy removed", async () => {
    const d = await device("d-1", "pw-d1");
    await send(d, "devices/ds10/d-1/up", doorMsg(1, "closed", { tamper: true }), "d-1");
    const raised = await ops.waitFor((m) => m.topic.endsWith("/TAMPER/d-1"));
    await ops.publish(`linli/${SITE}/ack/${raised.json().id}`, '{"by":"ops"}');
    await send(d, "devices/ds10/d-1/up", doorMsg(2, "closed"), "d-1");
    await ops.waitFor(
      (m) => m.topic.endsWith("/TAMPER/d-1") && m.payload.length > 0 && m.json().state === "closed",
    );
    await ops.waitFor((m) => m.topic.endsWith("/TAMPER/d-1") && m.payload.length === 0);
    // A late subscriber sees no retained TAMPER alert.
    const late = await connect(gw, "ops2", "ops2-pw");
    clients.push(late);
    await late.subscribe(`linli/${SITE}/alerts/#`);
    await sleep(100);
    expect(late.on("/TAMPER/")).toHaveLength(0);
  });

  it("an open alert is retained for operators who subscribe later", async () => {
    const p = await device("p-1", "pw-p1");
    await send(p, "devices/ec200/p-1/up", pendantMsg(1, "fall"), "p-1");
    const late = await connect(gw, "ops2", "ops2-pw");
    clients.push(late);
    await late.subscribe(`linli/${SITE}/alerts/#`);
    const m = await late.waitFor((x) => x.topic.endsWith("/FALL_DETECTED/p-1"));
    expect(m.retain).toBe(true);
    expect(m.json().state).toBe("active-unacknowledged");
  });
});
