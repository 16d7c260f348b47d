import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../gateway/state/store.js";
import { freePort } from "./support/free-port.js";
import {
  connect,
  connectListening,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  TestClient,
  testConfig,
} from "./support/harness.js";

describe("an operator's request is acknowledged once kept", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  it("while the gateway stops, it is left unacknowledged, and the client's re-send is taken by the restarted gateway", async () => {
    const port = await freePort();
    const store = new MemoryStore();
    const config = testConfig({ mqtt: { listeners: [{ host: "127.0.0.1", port }] } });
    const gw1 = await startGateway({ config, store });
    let gw1Stopped: Promise<void> | null = null;
    cleanups.push(() => gw1Stopped ?? gw1.stop());
    const url = `mqtt://127.0.0.1:${port}`;
    const pendant = new TestClient(
      await mqtt.connectAsync(url, {
        username: "p-1",
        password: "pw-p1",
        clientId: "ec200-p-1",
        reconnectPeriod: 0,
      }),
    );
    cleanups.push(() => pendant.end());
    // The desk reconnects by itself, as a console does, keeps what has no PUBACK (mqtt.js) and has a
    // persistent session (its subscriptions are there before its re-sent request is answered).
    const desk = await connectListening(url, {
      username: OPS.name,
      password: OPS.password,
      clientId: `${OPS.name}-desk1`,
      clean: false,
      reconnectPeriod: 100,
    });
    cleanups.push(() => desk.end());
    await desk.subscribe(`linli/${SITE}/#`);
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const raised = await desk.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
    const id = raised.json().id as string;
    await pendant.end();

    // The stop begins (SIGTERM); the operator's ack arrives while it runs.
    gw1Stopped = gw1.stop();
    let pubacked = false;
    desk.client.publish(
      `linli/${SITE}/ack/${id}`,
      JSON.stringify({ by: "Zhou", ref: "r-1" }),
      { qos: 1 },
      (err) => {
        if (!err) pubacked = true;
      },
    );
    await gw1Stopped;
    expect(pubacked).toBe(false);

    const gw2 = await startGateway({ config, store });
    cleanups.push(() => gw2.stop());
    const result = await desk.waitFor(
      (m) => m.topic === `linli/${SITE}/ops/result/${OPS.name}` && m.json().ref === "r-1",
      10_000,
    );
    expect(result.json()).toMatchObject({ action: "ack", target: id, ok: true, result: "acknowledged" });
    expect(gw2.engine.byAlertId(id)?.state).toBe("active-acknowledged");
    for (let i = 0; i < 50 && !pubacked; i++) await sleep(20);
    expect(pubacked).toBe(true);
  }, 30_000);

  it("its PUBACK waits for the commit of the action's records", async () => {
    /** A store whose commits are held while `holding`, as a journal's are until its write and sync. */
    class HeldCommits extends MemoryStore {
      holding = false;
      readonly held: Array<() => void> = [];
      override commit(done: () => void): void {
        if (this.holding) this.held.push(done);
        else super.commit(done);
      }
    }
    const store = new HeldCommits();
    const gw = await startGateway({ store });
    cleanups.push(() => gw.stop());
    const pendant = await connect(gw, "p-1", "pw-p1");
    cleanups.push(() => pendant.end());
    const desk = await connect(gw, OPS.name, OPS.password);
    cleanups.push(() => desk.end());
    await desk.subscribe(`linli/${SITE}/ops/result/#`);
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    for (let i = 0; i < 100 && gw.engine.openAlerts().length === 0; i++) await sleep(20);
    const id = gw.engine.openAlerts()[0]?.id as string;

    store.holding = true;
    let pubacked = false;
    desk.client.publish(
      `linli/${SITE}/ack/${id}`,
      JSON.stringify({ by: "Zhou", ref: "r-2" }),
      { qos: 1 },
      (err) => {
        if (!err) pubacked = true;
      },
    );
    for (let i = 0; i < 100 && gw.engine.byAlertId(id)?.state !== "active-acknowledged"; i++) await sleep(10);
    expect(gw.engine.byAlertId(id)?.state).toBe("active-acknowledged");
    await sleep(200);
    // Taken, not yet kept: a crash now would lose it, so the client still holds it.
    expect(pubacked).toBe(false);

    store.holding = false;
    for (const done of store.held.splice(0)) done();
    for (let i = 0; i < 100 && !pubacked; i++) await sleep(10);
    expect(pubacked).toBe(true);
    const result = await desk.waitFor(
      (m) => m.topic.endsWith(`/ops/result/${OPS.name}`) && m.json().ref === "r-2",
    );
    expect(result.json()).toMatchObject({ ok: true, result: "acknowledged" });
  }, 30_000);
});
