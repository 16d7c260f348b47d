/**
 * The upstream bridge against a real mosquitto on 127.0.0.1: everything the
 * gateway publishes reaches the upstream broker, operators act from there, the
 * gateway's will marks it offline when the process dies, and retained state is
 * republished after the upstream broker restarts. Needs mosquitto (.ci/run
 * installs it); without it, and outside CI, the file reports itself skipped.
 */
import type { ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import mqtt from "mqtt";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { Journal } from "../gateway/journal/journal.js";
import { MAX_REFUSALS, UpstreamBridge } from "../gateway/northbound/upstream.js";
import { MemoryStore } from "../gateway/state/store.js";
import { freePort } from "./support/free-port.js";
import {
  connect,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  TestClient,
  testConfig,
} from "./support/harness.js";
import { haveMosquitto, startMosquitto as startMosquittoIn } from "./support/mosquitto.js";
import { killGroup, spawnGroup } from "./support/process-group.js";

const available = haveMosquitto();
if (!available && !process.env.CI) console.warn("upstream.e2e: mosquitto not installed; CI installs it");

/** Config files of this file's brokers and gateway; made and removed by the describe block. */
let dir = "";

/** A real mosquitto, loopback only, no persistence (a restart forgets retained messages). */
const startMosquitto = (port: number): Promise<ChildProcess> => startMosquittoIn(dir, port);

async function upstreamClient(port: number): Promise<TestClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    clientId: `ops-${Math.random()}`,
  });
  const c = new TestClient(client);
  await c.subscribe(`linli/${SITE}/#`);
  return c;
}

/**
 * A TCP proxy on 127.0.0.1 in front of `port` that delays every chunk `delayMs` each way (a
 * round trip of twice that) and can cut every connection at once: what is still on its way
 * through it when cut is lost, as on a real cut uplink.
 */
async function delayProxy(
  port: number,
  delayMs: number,
): Promise<{ port: number; cut: () => void; close: () => Promise<void> }> {
  const pairs = new Set<net.Socket>();
  const relay = (from: net.Socket, to: net.Socket) =>
    from.on("data", (chunk) => {
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, delayMs);
    });
  const server = net.createServer((down) => {
    const up = net.connect(port, "127.0.0.1");
    down.setNoDelay(true);
    up.setNoDelay(true);
    pairs.add(down).add(up);
    relay(down, up);
    relay(up, down);
    const end = () => {
      down.destroy();
      up.destroy();
      pairs.delete(down);
      pairs.delete(up);
    };
    down.on("close", end).on("error", end);
    up.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const cut = () => {
    for (const s of pairs) s.destroy();
    pairs.clear();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut,
    close: () =>
      new Promise((resolve) => {
        cut();
        server.close(() => resolve());
      }),
  };
}

/** Polls until `ok`, or throws `what` after `ms`. */
async function until(ok: () => boolean, ms: number, what: string): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await sleep(5)) {
    if (Date.now() > end) throw new Error(what);
  }
}

/** Kills a child and waits for it; a child already gone (exit code or signal) resolves at once. */
/** Killed at once (a crash, not a shutdown), with anything it started. */
function stopKill(c: ChildProcess): Promise<void> {
  return killGroup(c, 0, "SIGKILL");
}

describe.skipIf(!available && !process.env.CI)("upstream broker bridge (real mosquitto)", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "linli-upstream-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("mirrors alerts upstream, takes the operator's ack from upstream, and tells the pendant", async () => {
    const port = await freePort();
    const broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const gw: Gateway = await startGateway({
      config: testConfig({
        northbound: { upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "100ms" } },
      }),
    });
    cleanups.push(() => gw.stop());
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/gateway/status` && m.payload.toString() === "online",
      5000,
    );

    const pendant = await connect(gw, "p-1", "pw-p1");
    cleanups.push(() => pendant.end());
    await pendant.subscribe("devices/ec200/p-1/down");
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const alert = await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
    const id = alert.json().id as string;
    await ops.waitFor((m) => m.topic === `linli/${SITE}/telemetry/ec200/p-1`);

    await ops.publish(`linli/${SITE}/ack/${id}`, JSON.stringify({ by: "Zhou", note: "from the centre" }));
    const acked = await ops.waitFor(
      (m) => m.topic.endsWith("/EMERGENCY_CALL/p-1") && m.json().state === "active-acknowledged",
    );
    expect(acked.json()).toMatchObject({ id, ackedBy: "Zhou" });
    const down = await pendant.waitFor((m) => m.topic === "devices/ec200/p-1/down");
    expect(down.json()).toEqual({ cmd: "ack_call", alertId: id });
    expect(gw.stats().upstream).toMatchObject({ connected: true, actionsReceived: 1 });
  });

  it("requests from upstream have northbound.upstream.role: a responder upstream acks, its device command and service are refused forbidden on their result topics", async () => {
    const port = await freePort();
    const broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const gw: Gateway = await startGateway({
      config: testConfig({
        northbound: {
          upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "100ms", role: "responder" },
        },
      }),
    });
    cleanups.push(() => gw.stop());
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/gateway/status` && m.payload.toString() === "online",
      5000,
    );
    const pendant = await connect(gw, "p-1", "pw-p1");
    cleanups.push(() => pendant.end());
    await pendant.subscribe("devices/ec200/p-1/down");
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const alert = await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
    const id = alert.json().id as string;

    // A device command from upstream: refused on its own result topic, never sent to the pendant.
    const cmdResult = `linli/${SITE}/cmd/p-1/locate/result`;
    await ops.publish(`linli/${SITE}/cmd/p-1/locate`, JSON.stringify({ id: "up-c1", by: "Zhou" }));
    expect(
      (await ops.waitFor((m) => m.topic === cmdResult && m.json().id === "up-c1", 5000)).json(),
    ).toMatchObject({
      deviceId: "p-1",
      command: "locate",
      ok: false,
      error: "forbidden",
      message: "无权限：值班员不能向设备发送命令（需要主管）",
      by: "Zhou",
      account: "upstream",
    });
    expect(gw.counters.rejected("operator", "cmd-forbidden")).toBe(1);
    // Out of service from upstream: refused on ops/result/upstream, the device stays in service.
    await ops.publish(
      `linli/${SITE}/service/p-1`,
      JSON.stringify({ outOfService: true, by: "Zhou", ref: "up-s1" }),
    );
    const service = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/ops/result/upstream` && m.json().ref === "up-s1",
      5000,
    );
    expect(service.json()).toMatchObject({
      action: "service",
      target: "p-1",
      ok: false,
      reason: "forbidden",
    });
    expect(gw.counters.rejected("operator", "forbidden")).toBe(1);

    // The acknowledgement, which the role allows, is taken and reaches the pendant; it is the
    // pendant's only downlink: the locate before it never went out.
    await ops.publish(`linli/${SITE}/ack/${id}`, JSON.stringify({ by: "Zhou" }));
    const acked = await ops.waitFor(
      (m) => m.topic.endsWith("/EMERGENCY_CALL/p-1") && m.json().state === "active-acknowledged",
    );
    expect(acked.json()).toMatchObject({ id, ackedBy: "Zhou" });
    const down = await pendant.waitFor((m) => m.topic === "devices/ec200/p-1/down");
    expect(down.json()).toEqual({ cmd: "ack_call", alertId: id });
    await sleep(200);
    expect(pendant.messages.filter((m) => m.topic === "devices/ec200/p-1/down").map((m) => m.json())).toEqual(
      [{ cmd: "ack_call", alertId: id }],
    );
    expect(gw.stats().upstream).toMatchObject({ connected: true, actionsReceived: 3 });
  });

  it("republishes retained state after the upstream broker restarts", async () => {
    const port = await freePort();
    let broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const gw = await startGateway({
      config: testConfig({
        northbound: {
          upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "100ms", reconnectMax: "200ms" },
        },
      }),
    });
    cleanups.push(() => gw.stop());
    const local = await connect(gw, OPS.name, OPS.password);
    cleanups.push(() => local.end());
    await local.subscribe(`linli/${SITE}/#`);
    const pendant = await connect(gw, "p-1", "pw-p1");
    cleanups.push(() => pendant.end());
    await sleep(300);

    await stopKill(broker); // upstream gone: the fall happens while the uplink is down
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "fall"));
    await local.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/FALL_DETECTED/p-1`);
    expect(gw.stats().upstream?.connected).toBe(false);

    broker = await startMosquitto(port);
    const late = await upstreamClient(port);
    cleanups.push(() => late.end());
    const fall = await late.waitFor((m) => m.topic === `linli/${SITE}/alerts/p1/FALL_DETECTED/p-1`, 8000);
    expect(fall.json()).toMatchObject({ code: "FALL_DETECTED", state: "active-unacknowledged" });
    await late.waitFor(
      (m) => m.topic === `linli/${SITE}/gateway/status` && m.payload.toString() === "online",
    );
  });

  it("a stalled uplink while connected: buffered bytes and in-flight QoS 1 stay bounded, telemetry is dropped (counted), every alert arrives in order once it resumes, P1 ahead of what waited", async () => {
    const port = await freePort();
    const broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    const maxBufferedBytes = 64 * 1024;
    const maxInflight = 20;
    const bridge = new UpstreamBridge(
      {
        url: `mqtt://127.0.0.1:${port}`,
        site: SITE,
        clientId: `gw-stall-${Math.random()}`,
        backlog: 10_000,
        reconnectInitialMs: 100,
        reconnectMaxMs: 200,
        keepaliveS: 600,
        maxBufferedBytes,
        maxInflight,
      },
      pino({ level: "silent" }),
      () => {},
    );
    bridge.connect();
    cleanups.push(() => bridge.stop());
    for (const end = Date.now() + 5000; !bridge.connected; await sleep(10)) {
      if (Date.now() > end) throw new Error("bridge did not connect");
    }
    await sleep(50); // its subscriptions acknowledged

    const pid = broker.pid as number;
    process.kill(pid, "SIGSTOP"); // the uplink stalls; the TCP connection stays up
    let stopped = true;
    const resume = () => {
      if (stopped) process.kill(pid, "SIGCONT");
      stopped = false;
    };
    cleanups.push(async () => resume()); // before bridge.stop(), which waits for a PUBACK

    const telemetry = "x".repeat(8 * 1024);
    let maxBuffered = 0;
    let maxInflightSeen = 0;
    const watch = () => {
      const s = bridge.stats();
      maxBuffered = Math.max(maxBuffered, s.bufferedBytes);
      maxInflightSeen = Math.max(maxInflightSeen, s.inflight);
    };
    // Telemetry until the kernel's buffers are full and the socket's own buffer reaches the limit.
    for (let i = 0; bridge.stats().telemetryDropped < 100; i++) {
      if (i > 20_000) throw new Error("telemetry never dropped: the stalled uplink took it all");
      bridge.publish(`linli/${SITE}/telemetry/ec200/p-1`, telemetry, 0, false);
      watch();
      if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    const droppedBefore = bridge.stats().telemetryDropped;
    // Alerts during the stall: events (QoS 1) and alert states (retained), five devices, and a
    // P1 escalation every 50 events (sent at once, congested or not).
    const alerts = 300;
    const escalations: number[] = [];
    for (let n = 0; n < alerts; n++) {
      const device = `d-${n % 5}`;
      bridge.publish(`linli/${SITE}/alerts/events`, JSON.stringify({ n, device }), 1, false);
      bridge.publish(`linli/${SITE}/alerts/p3/DOOR_OPEN/${device}`, JSON.stringify({ rev: n }), 1, true);
      bridge.publish(`linli/${SITE}/telemetry/ec200/${device}`, telemetry, 0, false);
      if (n % 50 === 49) {
        escalations.push(n);
        bridge.publish(
          `linli/${SITE}/escalations/p1/EMERGENCY_CALL/${device}`,
          JSON.stringify({ n }),
          1,
          false,
        );
      }
      watch();
      if (n % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    const stalled = bridge.stats();
    expect(stalled.connected).toBe(true);
    expect(stalled.backlog).toBeGreaterThan(0);
    expect(stalled.telemetryDropped).toBeGreaterThan(droppedBefore + alerts / 2);
    // One message may go out past the limit: the check is before each write.
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedBytes + telemetry.length + 100);
    // P1 escalations are not held back by the bound.
    expect(maxInflightSeen).toBeLessThanOrEqual(maxInflight + escalations.length);

    resume();
    await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/events` && m.json().n === alerts - 1, 20_000);
    const events = ops.on("/alerts/events").map((m) => m.json().n as number);
    expect(events).toEqual(Array.from({ length: alerts }, (_, n) => n));
    // Each escalation came before the event published just before it, which waited in the backlog.
    const arrival = (topicPart: string, n: number) =>
      ops.messages.findIndex((m) => m.topic.includes(topicPart) && m.json().n === n);
    for (const n of escalations) {
      expect(arrival("/escalations/p1/", n)).toBeGreaterThanOrEqual(0);
      expect(arrival("/escalations/p1/", n)).toBeLessThan(arrival("/alerts/events", n));
    }
    for (let d = 0; d < 5; d++) {
      const last = alerts - 5 + d;
      const topic = `linli/${SITE}/alerts/p3/DOOR_OPEN/d-${d}`;
      await ops.waitFor((m) => m.topic === topic && m.json().rev === last, 10_000);
      // Newest per topic: a state may be replaced by a newer one before it is sent, never reordered.
      const revs = ops.messages.filter((m) => m.topic === topic).map((m) => m.json().rev as number);
      expect(revs).toEqual([...revs].sort((a, b) => a - b));
      expect(revs.at(-1)).toBe(last);
    }
    // Events and states together, in publish order (event n before state n): nothing overtook.
    const published = ops.messages
      .filter((m) => m.topic.includes("/alerts/"))
      .map((m) =>
        m.topic.endsWith("/events") ? 2 * (m.json().n as number) : 2 * (m.json().rev as number) + 1,
      );
    expect(published).toEqual([...published].sort((a, b) => a - b));
    for (
      const end = Date.now() + 5000;
      bridge.stats().backlog > 0 || bridge.stats().inflight > 0;
      await sleep(20)
    ) {
      if (Date.now() > end) throw new Error(`not drained: ${JSON.stringify(bridge.stats())}`);
    }
  });

  it("after a cut with many messages in flight, a P1 raised at the reconnect goes before the backlog's resend, and the backlog follows in order", async () => {
    const port = await freePort();
    const broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const proxy = await delayProxy(port, 50); // a 100 ms round trip
    cleanups.push(() => proxy.close());
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    const store = new MemoryStore();
    const bridge = new UpstreamBridge(
      {
        url: `mqtt://127.0.0.1:${proxy.port}`,
        site: SITE,
        clientId: `gw-cut-${Math.random()}`,
        backlog: 10_000,
        reconnectInitialMs: 100,
        reconnectMaxMs: 200,
        keepaliveS: 600,
        store,
      },
      pino({ level: "silent" }),
      () => {},
    );
    bridge.connect();
    cleanups.push(() => bridge.stop());
    await until(() => bridge.connected, 5000, "bridge did not connect");
    await sleep(300); // its subscriptions acknowledged

    // 200 lines of five devices handed to mqtt.js, then the uplink is cut before any reaches
    // upstream: all 200 are in flight, unacknowledged. mqtt.js alone re-sent them one per round
    // trip (20 s here) before saying `connect`, and nothing else went out meanwhile.
    const lines = 200;
    for (let n = 0; n < lines; n++) {
      bridge.publish(`linli/${SITE}/alerts/events`, JSON.stringify({ n, device: `d-${n % 5}` }), 1, false);
    }
    expect(bridge.stats().inflight).toBe(lines);
    proxy.cut();
    await until(() => !bridge.connected, 2000, "the cut was not seen");
    // A P1 raised during the outage goes first at the reconnect, before any line in flight at the cut.
    const during = `linli/${SITE}/escalations/p1/EMERGENCY_CALL/p-1`;
    bridge.publish(during, JSON.stringify({ during: true }), 1, false);
    await until(() => bridge.connected, 5000, "bridge did not reconnect");
    // One raised right after the reconnect: its own round trip, not 200 of the backlog's.
    const raised = Date.now();
    const after = `linli/${SITE}/escalations/p1/EMERGENCY_CALL/p-2`;
    bridge.publish(after, JSON.stringify({ after: true }), 1, false);
    const p1 = await ops.waitFor((m) => m.topic === after, 5000);
    const delay = Date.now() - raised;
    console.info(`upstream.e2e: P1 raised at the reconnect arrived after ${delay} ms`);
    expect(delay).toBeLessThan(2000);
    expect(p1.json()).toEqual({ after: true });
    const firstLine = ops.messages.findIndex((m) => m.topic.endsWith("/alerts/events"));
    const duringAt = ops.messages.findIndex((m) => m.topic === during);
    expect(duringAt).toBeGreaterThanOrEqual(0);
    expect(firstLine === -1 || duringAt < firstLine).toBe(true);

    // The backlog follows: every line, same payload, in publish order (a duplicate may come; no
    // reordering, no new message), and the journal is empty once upstream acknowledged them.
    await ops.waitFor((m) => m.topic.endsWith("/alerts/events") && m.json().n === lines - 1, 15_000);
    const first = new Set<number>();
    const order: number[] = [];
    for (const m of ops.on("/alerts/events")) {
      const n = m.json().n as number;
      if (!first.has(n)) order.push(n);
      first.add(n);
    }
    expect(order).toEqual(Array.from({ length: lines }, (_, n) => n));
    await until(
      () => bridge.stats().inflight === 0 && [...store.entries("up/")].length === 0,
      5000,
      `not acknowledged: ${JSON.stringify(bridge.stats())}`,
    );
    expect(bridge.stats()).toMatchObject({ backlog: 0, backlogDropped: 0, refused: 0 });
  }, 30_000);

  it("a message upstream refuses by closing the connection is set aside after MAX_REFUSALS closes (counted), and does not block the uplink", async () => {
    const port = await freePort();
    // Packets over 4 KiB: mosquitto closes the connection (MQTT 3.1.1 has no reason code for it).
    // Listening when started: a fixed 300 ms was not enough to spawn it on a loaded machine.
    const broker = await startMosquittoIn(dir, port, "max_packet_size 4096\n");
    cleanups.push(() => stopKill(broker));
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    const store = new MemoryStore();
    const bridge = new UpstreamBridge(
      {
        url: `mqtt://127.0.0.1:${port}`,
        site: SITE,
        clientId: `gw-refused-${Math.random()}`,
        backlog: 10_000,
        reconnectInitialMs: 50,
        reconnectMaxMs: 100,
        keepaliveS: 600,
        store,
      },
      pino({ level: "silent" }),
      () => {},
    );
    bridge.connect();
    cleanups.push(() => bridge.stop());
    await until(() => bridge.connected, 5000, "bridge did not connect");
    await sleep(200);
    // Lines before and after it in the same burst are not blamed (mosquitto's close can lose the
    // PUBACKs it sent for the ones before it): all of them arrive.
    const big = "x".repeat(10_000);
    for (let n = 0; n < 20; n++) bridge.publish(`linli/${SITE}/events/d-${n}`, `${n}`, 1, false);
    bridge.publish(`linli/${SITE}/alerts/events`, JSON.stringify({ big }), 1, false);
    for (let n = 20; n < 40; n++) bridge.publish(`linli/${SITE}/events/d-${n}`, `${n}`, 1, false);
    await until(
      () => bridge.stats().refused === 1,
      10_000,
      `never set aside: ${JSON.stringify(bridge.stats())}`,
    );
    expect(bridge.stats().connects).toBeGreaterThanOrEqual(MAX_REFUSALS);
    // The uplink carries what comes next, P1 first; the refused line is gone from the journal.
    await until(() => bridge.connected, 5000, "bridge did not reconnect");
    bridge.publish(`linli/${SITE}/alerts/events`, JSON.stringify({ n: 1 }), 1, false);
    bridge.publish(`linli/${SITE}/escalations/p1/EMERGENCY_CALL/p-2`, JSON.stringify({ n: 2 }), 1, false);
    await ops.waitFor((m) => m.topic.endsWith("/alerts/events") && m.json().n === 1, 5000);
    await ops.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-2"), 5000);
    await until(() => [...store.entries("up/")].length === 0, 5000, "journal not emptied");
    expect(ops.messages.filter((m) => m.payload.length > 4096)).toEqual([]);
    for (let n = 0; n < 40; n++) expect(ops.on(`/events/d-${n}`).length).toBeGreaterThan(0);
    expect(bridge.stats().refused).toBe(1);
  }, 30_000);

  it("the gateway's will marks it offline upstream when the process dies", async () => {
    const port = await freePort();
    const broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const cfg = join(dir, "gateway.yaml");
    writeFileSync(
      cfg,
      [
        `site: { id: ${SITE} }`,
        "mqtt: { listeners: [{ host: 127.0.0.1, port: 0 }] }",
        "metrics: { enabled: false }",
        `northbound: { upstream: { url: "mqtt://127.0.0.1:${port}", keepalive: 2s } }`,
        "log: { level: warn }",
      ].join("\n"),
    );
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    const gw = spawnGroup(
      process.execPath,
      ["dist/cli/linli.js", "start", "--config", cfg, "--data-dir", join(dir, "data")],
      {
        stdio: "ignore",
      },
    );
    cleanups.push(() => stopKill(gw));
    await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/gateway/status` && m.payload.toString() === "online",
      10_000,
    );
    process.kill(gw.pid as number, "SIGKILL"); // the gateway crashes; the group is reaped by cleanup
    const off = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/gateway/status` && m.payload.toString() === "offline",
      10_000,
    );
    expect(off.payload.toString()).toBe("offline");
  });

  it("after a restore from backup, retained alerts upstream that the gateway does not know as open are deleted", async () => {
    const port = await freePort();
    const broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const dataDir = join(dir, "restore-data");
    const backup = join(dir, "restore-backup");
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    cleanups.push(async () => rmSync(backup, { recursive: true, force: true }));
    const config = validateConfig(
      testConfig({
        northbound: { upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "100ms" } },
      }),
      "test",
    );
    const silent = pino({ level: "silent" });
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());

    const serviceTopic = `linli/${SITE}/devices/d-1/service`;
    /**
     * A gateway on dataDir, one press of `device` mirrored upstream (and d-1 taken out of service,
     * when asked), stopped; the alert's id.
     */
    const pressed = async (device: string, pw: string, takeOut = false): Promise<string> => {
      const gw = await Gateway.start({ config, logger: silent, dataDir });
      const pendant = await connect(gw, device, pw);
      await pendant.publish(`devices/ec200/${device}/up`, pendantMsg(1, "press"));
      const topic = `linli/${SITE}/alerts/p1/EMERGENCY_CALL/${device}`;
      const alert = await ops.waitFor((m) => m.topic === topic && m.payload.length > 0, 5000);
      if (takeOut) {
        const desk = await connect(gw, OPS.name, OPS.password);
        await desk.publish(`linli/${SITE}/service/d-1`, JSON.stringify({ inService: false }));
        await ops.waitFor((m) => m.topic === serviceTopic && m.payload.length > 0, 5000);
        await desk.end();
      }
      await pendant.end();
      await gw.stop();
      return alert.json().id as string;
    };
    const kept = await pressed("p-1", "pw-p1");
    cpSync(dataDir, backup, { recursive: true }); // the backup: gateway stopped, directory copied
    const ghost = await pressed("p-2", "pw-p2", true); // raised (and d-1 taken out) after the backup
    rmSync(dataDir, { recursive: true });
    cpSync(backup, dataDir, { recursive: true }); // the restore

    const lines: Array<{ msg: string; ids?: string[]; deleted?: number }> = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk, _enc, cb) {
          for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
          cb();
        },
      }),
    );
    const gw = await Gateway.start({ config, logger, dataDir });
    cleanups.push(() => gw.stop());
    const deadline = Date.now() + 10_000;
    while ((gw.stats().upstream?.ghostsDeleted ?? 0) < 2) {
      if (Date.now() > deadline) throw new Error("no ghost deleted upstream");
      await sleep(20);
    }
    // What a console that connects to the upstream broker now is shown.
    let retained = new Map<string, string>();
    while (Date.now() < deadline + 5000) {
      const late = await upstreamClient(port);
      await sleep(300);
      await late.end();
      retained = new Map(
        late.messages
          .filter(
            (m) =>
              m.retain &&
              m.payload.length > 0 &&
              (m.topic.includes("/EMERGENCY_CALL/") || m.topic === serviceTopic),
          )
          .map((m) => [m.topic, (m.json().id as string) ?? "service"]),
      );
      if (!retained.has(`linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-2`) && !retained.has(serviceTopic)) break;
    }
    // The restored gateway has d-1 in service: its out-of-service mark upstream is a ghost too.
    expect(retained).toEqual(new Map([[`linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`, kept]]));
    expect(gw.stats().upstream?.ghostsDeleted).toBe(2);
    const addr = gw.metricsAddress;
    const metrics = await (await fetch(`http://${addr?.host}:${addr?.port}/metrics`)).text();
    expect(metrics).toContain(`linli_upstream_ghosts_deleted_total{broker="127.0.0.1:${port}"} 2\n`);
    // Logged when the read-back's time limit (RECONCILE_MS) ends it.
    const said = await (async () => {
      for (const end = Date.now() + 10_000; Date.now() < end; await sleep(50)) {
        const l = lines.find((x) => x.msg.startsWith("upstream: retained alerts the gateway does not know"));
        if (l) return l;
      }
      return null;
    })();
    expect(said).toMatchObject({ deleted: 2 });
    expect([...(said?.ids ?? [])].sort()).toEqual([ghost, serviceTopic].sort());
  }, 40_000);

  it("an alert closed just before a crash: its last active state in the upstream mirror is deleted at the restart, not republished for good", async () => {
    const port = await freePort();
    const broker = await startMosquitto(port);
    cleanups.push(() => stopKill(broker));
    const dataDir = join(dir, "stale-mirror-data");
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const config = validateConfig(
      testConfig({
        northbound: { upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "100ms" } },
      }),
      "test",
    );
    const silent = pino({ level: "silent" });
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    const topic = `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`;
    const serviceTopic = `linli/${SITE}/devices/d-1/service`;

    const statusTopic = `linli/${SITE}/devices/p-2/status`;
    const gw1 = await Gateway.start({ config, logger: silent, dataDir });
    const removed = await connect(gw1, "p-2", "pw-p2");
    await removed.publish("devices/ec200/p-2/up", pendantMsg(1, null));
    await ops.waitFor((m) => m.topic === statusTopic && m.payload.toString() === "online", 5000);
    await removed.end();
    const pendant = await connect(gw1, "p-1", "pw-p1");
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    await ops.waitFor((m) => m.topic === topic && m.payload.length > 0, 5000);
    const desk = await connect(gw1, OPS.name, OPS.password);
    await desk.publish(`linli/${SITE}/service/d-1`, JSON.stringify({ inService: false }));
    await ops.waitFor((m) => m.topic === serviceTopic && m.payload.length > 0, 5000);
    await desk.end();
    await pendant.end();
    await gw1.stop();

    // What a crash leaves between an alert's close (and d-1's return to service) and the mirror's
    // deletions: the alert's and the mark's records deleted, written; the mirror's not yet.
    const journal = Journal.open({ dir: dataDir });
    const gone = [...journal.entries("alert/"), ...journal.entries("service/")].map(([k]) => k);
    expect(gone).toHaveLength(2);
    for (const k of gone) journal.delete(k);
    expect([...journal.entries(`upr/${topic}`)]).toHaveLength(1);
    journal.close();

    // p-2 removed from the site file while the gateway was stopped: its status upstream goes too.
    const input = testConfig({
      northbound: { upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "100ms" } },
    });
    input.devices = (input.devices ?? []).filter((d) => d.id !== "p-2");
    const gw2 = await Gateway.start({ config: validateConfig(input, "test"), logger: silent, dataDir });
    cleanups.push(() => gw2.stop());
    expect(gw2.engine.openAlerts()).toHaveLength(0);
    // The restart's `online` follows every mirror state restored (they are sent in publish order).
    const before = ops.messages.length;
    await ops.waitFor(
      (m) =>
        ops.messages.indexOf(m) >= before &&
        m.topic === `linli/${SITE}/gateway/status` &&
        m.payload.toString() === "online",
      10_000,
    );
    // What a console that connects to the upstream broker now is shown.
    const late = await upstreamClient(port);
    await sleep(300);
    await late.end();
    const stale = late.messages.filter(
      (m) =>
        m.retain &&
        m.payload.length > 0 &&
        (m.topic === topic || m.topic === serviceTopic || m.topic === statusTopic),
    );
    expect(stale.map((m) => m.topic)).toEqual([]);
  }, 30_000);

  it("a retained alert state upstream refused is not sent again after a restart; its next rev is", async () => {
    const port = await freePort();
    // Packets over 1 KiB: mosquitto closes the connection. An alert state of hh-1 (its address and
    // resident shown in it) is over; the gateway's and devices' statuses are not.
    const broker = await startMosquittoIn(dir, port, "max_packet_size 1024\n");
    cleanups.push(() => stopKill(broker));
    const dataDir = join(dir, "aside-data");
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const input = testConfig({
      northbound: {
        upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "50ms", reconnectMax: "100ms" },
      },
    });
    input.households = [
      { id: "hh-1", address: "长".repeat(128), room: "室".repeat(32), residentName: "张".repeat(32) },
      { id: "hh-2" },
    ];
    const config = validateConfig(input, "test");
    const errors: string[] = [];
    const logger = pino(
      { level: "error" },
      new Writable({
        write(chunk, _enc, cb) {
          for (const l of String(chunk).split("\n")) if (l) errors.push(JSON.parse(l).msg as string);
          cb();
        },
      }),
    );
    const ops = await upstreamClient(port);
    cleanups.push(() => ops.end());
    const topic = `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`;
    const online = () =>
      ops.waitFor(
        (m) => m.topic === `linli/${SITE}/gateway/status` && m.payload.toString() === "online",
        10_000,
      );

    const gw1 = await Gateway.start({ config, logger, dataDir });
    await online();
    const pendant = await connect(gw1, "p-1", "pw-p1");
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    await until(() => gw1.stats().upstream?.refused === 1, 10_000, "the alert state never set aside");
    const id = gw1.engine.openAlerts()[0]?.id as string;
    await pendant.end();
    await gw1.stop();

    // An older, smaller state of the alert upstream (one that got through before the refused one).
    const older = JSON.stringify({ id, code: "EMERGENCY_CALL", state: "active-unacknowledged", rev: 1 });
    await ops.client.publishAsync(topic, older, { qos: 1, retain: true });
    // The restart republishes the open alert, the same state: not sent again, no close, no error.
    ops.messages.length = 0;
    const gw2 = await Gateway.start({ config, logger, dataDir });
    cleanups.push(() => gw2.stop());
    await online();
    await sleep(1500);
    expect(gw2.stats().upstream).toMatchObject({ refused: 0, connects: 1 });
    // The alert is still open: its older state upstream is not a ghost to delete (it was, and
    // upstream then showed nothing for an open emergency call until its next state got through).
    expect(gw2.stats().upstream?.ghostsDeleted).toBe(0);
    expect(ops.messages.filter((m) => m.topic === topic && m.payload.length === 0)).toEqual([]);
    expect(errors.filter((m) => m.startsWith("upstream broker closed the connection"))).toHaveLength(1);

    // Its next rev (acknowledged) is a new state: tried, and set aside in turn (still too big).
    const desk = await connect(gw2, OPS.name, OPS.password);
    cleanups.push(() => desk.end());
    await desk.publish(`linli/${SITE}/ack/${id}`, JSON.stringify({ by: "desk" }));
    await until(() => gw2.stats().upstream?.refused === 1, 10_000, "the next rev was not tried");
    // Nothing of the gateway's on the topic (the older state is the test's own, echoed back).
    expect(
      ops.messages.filter((m) => m.topic === topic && m.payload.length > 0 && m.payload.toString() !== older),
    ).toEqual([]);
  }, 40_000);
});
