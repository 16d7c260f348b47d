/**
 * Metrics and health over real sockets: a pendant press through real MQTT
 * shows up in /metrics (lane counters, open alert, latency sample), a
 * malformed payload as a rejection; /healthz, /readyz (and 503 while
 * stopping), 404 and 405.
 */
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { startTestBroker } from "../sim/mqtt/test-broker.js";
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

interface Reply {
  status: number;
  contentType: string | undefined;
  body: string;
}

function http(gw: Gateway, path: string, method = "GET"): Promise<Reply> {
  const addr = gw.metricsAddress;
  if (!addr) throw new Error("metrics server not running");
  return new Promise((resolve, reject) => {
    const req = request({ host: addr.host, port: addr.port, path, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("metrics and health endpoints", () => {
  let gw: Gateway | null = null;
  const clients: TestClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw?.stop();
    gw = null;
  });

  it("binds the configured address (port 0: ephemeral) and answers health, 404 and 405", async () => {
    gw = await startGateway();
    expect(gw.metricsAddress).toMatchObject({ host: "127.0.0.1" });
    expect(gw.metricsAddress?.port).toBeGreaterThan(0);

    const health = await http(gw, "/healthz");
    expect(health).toMatchObject({ status: 200, body: "ok\n" });
    const ready = await http(gw, "/readyz");
    expect(ready).toMatchObject({ status: 200, body: "ready\n" });
    expect((await http(gw, "/nope")).status).toBe(404);
    expect((await http(gw, "/")).status).toBe(404);
    expect((await http(gw, "/metrics", "POST")).status).toBe(405);
    expect((await http(gw, "/healthz", "DELETE")).status).toBe(405);
    // HEAD is GET without the body.
    expect(await http(gw, "/healthz", "HEAD")).toMatchObject({ status: 200, body: "" });
  });

  it("a pendant press and a malformed payload through real MQTT show up in /metrics", async () => {
    gw = await startGateway();
    const ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
    const p = await connect(gw, "p-1", "pw-p1");
    clients.push(p);

    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    await ops.waitFor((x) => x.topic === `linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`);
    await p.publish("devices/ec200/p-1/up", "{not json");

    const m = await http(gw, "/metrics");
    expect(m.status).toBe(200);
    expect(m.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    const t = m.body;

    // Lanes: the press went through the P1 lane.
    expect(sample(t, 'linli_lane_processed_total{lane="p1"}')).toBe(1);
    expect(sample(t, 'linli_lane_capacity{lane="p1"}')).toBe(256);
    expect(sample(t, 'linli_lane_occupancy{lane="p1"}')).toBe(0);
    expect(sample(t, 'linli_lane_high_water{lane="p1"}')).toBe(1);
    expect(sample(t, 'linli_lane_refused_total{lane="alert"}')).toBe(0);
    expect(sample(t, 'linli_lane_conflated_total{lane="telemetry"}')).toBe(0);
    expect(sample(t, 'linli_pipeline_superseded_total{lane="alert"}')).toBe(0);
    // The open alert, by state and priority.
    expect(sample(t, 'linli_alerts_open{state="active-unacknowledged",priority="1"}')).toBe(1);
    // Raised since start, by code and priority.
    expect(sample(t, 'linli_alerts_raised_total{code="EMERGENCY_CALL",priority="1"}')).toBe(1);
    // The build: this package's version and Node's, as labels of a constant 1.
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    expect(sample(t, `linli_build_info{version="${pkg.version}",node="${process.versions.node}"}`)).toBe(1);
    // No upstream configured: no upstream series.
    expect(t).not.toMatch(/^linli_upstream_\w+(\{[^}]*\})? /m);
    // Messages and rejections per model and reason.
    expect(sample(t, 'linli_messages_total{model="ec200"}')).toBe(2);
    expect(sample(t, 'linli_rejections_total{model="ec200",reason="malformed"}')).toBe(1);
    // One latency sample in the P1 lane: every bucket up to +Inf is cumulative.
    expect(t).toContain("# TYPE linli_processing_latency_seconds histogram");
    expect(sample(t, 'linli_processing_latency_seconds_count{lane="p1"}')).toBe(1);
    expect(sample(t, 'linli_processing_latency_seconds_bucket{lane="p1",le="+Inf"}')).toBe(1);
    expect(sample(t, 'linli_processing_latency_seconds_bucket{lane="p1",le="5"}')).toBe(1);
    expect(sample(t, 'linli_processing_latency_seconds_count{lane="alert"}')).toBe(0);
    expect(sample(t, 'linli_processing_latency_seconds_sum{lane="p1"}')).toBeGreaterThanOrEqual(0);
    // Devices and process metrics.
    expect(sample(t, 'linli_devices{link="online"}')).toBe(1);
    expect(sample(t, 'linli_devices{link="unknown"}')).toBe(2);
    expect(t).toMatch(/^process_cpu_seconds_total \d/m);
    expect(t).toMatch(/^process_resident_memory_bytes \d/m);
    expect(t).toMatch(/^nodejs_eventloop_lag_seconds \d/m);

    // Well-formed exposition: every line is a comment or `name{labels} value`, and names are unique per TYPE.
    const types = t.split("\n").filter((l) => l.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    for (const line of t.split("\n")) {
      if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?(\d|NaN|\+Inf)/i); // prom-client writes NaN as "Nan"
    }
  });

  it("the acknowledged alert moves to its new state in the gauge", async () => {
    gw = await startGateway();
    const ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    expect(await ops.subscribe(`linli/${SITE}/#`)).toBe(1);
    const p = await connect(gw, "p-1", "pw-p1");
    clients.push(p);
    await p.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const raised = await ops.waitFor((x) => x.topic.includes("/alerts/p1/"));
    let t = (await http(gw, "/metrics")).body;
    expect(sample(t, 'linli_alerts_open{state="active-unacknowledged",priority="1"}')).toBe(1);
    await ops.publish(`linli/${SITE}/ack/${raised.json().id}`, JSON.stringify({ by: "Wang Li" }));
    await ops.waitFor((x) => x.topic.includes("/alerts/p1/") && x.json().state === "active-acknowledged");

    t = (await http(gw, "/metrics")).body;
    expect(sample(t, 'linli_alerts_open{state="active-acknowledged",priority="1"}')).toBe(1);
    // A state once seen stays as a series at 0 instead of vanishing.
    expect(sample(t, 'linli_alerts_open{state="active-unacknowledged",priority="1"}')).toBe(0);
  });

  it("/readyz answers 503 with the reason while stopping; the server is closed once stopped", async () => {
    // The stopping window must not depend on speed: stop() closes the metrics server only after
    // the upstream broker has acknowledged the gateway's "offline" status, and this broker holds
    // that PUBACK until the probes below are answered. (Before, two HTTP round trips had to fit
    // in stop()'s 50 ms pause; on a loaded machine they did not, and the probe got ECONNRESET
    // from the listener closing under it.)
    const up = await startTestBroker();
    let release = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    up.broker.authorizePublish = (_client, packet, done) => {
      const offline = packet.topic === `linli/${SITE}/gateway/status` && String(packet.payload) === "offline";
      if (offline) void released.then(() => done(null));
      else done(null);
    };
    try {
      const g = await startGateway({
        config: testConfig({ northbound: { upstream: { url: up.url, reconnectInitial: "100ms" } } }),
      });
      gw = g;
      await up.waitFor(
        1,
        (r) => r.topic === `linli/${SITE}/gateway/status` && r.payload.toString() === "online",
        10_000,
      );
      expect((await http(g, "/readyz")).status).toBe(200);
      const stopping = g.stop();
      const during = await http(g, "/readyz");
      expect(during).toMatchObject({ status: 503, body: "not ready: shutting down\n" });
      // Liveness is separate from readiness.
      expect((await http(g, "/healthz")).status).toBe(200);
      release();
      await stopping;
      await expect(http(g, "/healthz")).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      release();
      await gw?.stop();
      await up.close();
    }
  });

  it("bus statistics registered through the Modbus hook are exported per bus", async () => {
    gw = await startGateway();
    let requests = 5;
    gw.metrics.registerBusStats(() => [
      {
        name: "rs485-1",
        linkState: "up",
        requests,
        replies: 4,
        exceptions: 1,
        timeouts: 1,
        retries: 1,
        crcErrors: 0,
        framingErrors: 0,
        discarded: 0,
        transportErrors: 0,
        reconnects: 0,
        overflows: 0,
        duplicates: 2,
        queueDepth: 3,
        commandQueueDepth: 0,
        utilisation: 0.25,
      },
    ]);
    let t = (await http(gw, "/metrics")).body;
    expect(sample(t, 'linli_bus_requests_total{bus="rs485-1"}')).toBe(5);
    expect(sample(t, 'linli_bus_timeouts_total{bus="rs485-1"}')).toBe(1);
    expect(sample(t, 'linli_bus_crc_errors_total{bus="rs485-1"}')).toBe(0);
    // The state is the value, not a label: one series per bus whatever its link does.
    expect(sample(t, 'linli_bus_link_up{bus="rs485-1"}')).toBe(1);
    expect(sample(t, 'linli_bus_link_state{bus="rs485-1"}')).toBe(4);
    expect(t).not.toContain("state=");
    expect(sample(t, 'linli_bus_queue_depth{bus="rs485-1",queue="poll"}')).toBe(3);
    expect(sample(t, 'linli_bus_utilisation_ratio{bus="rs485-1"}')).toBe(0.25);
    requests = 9; // read at scrape time
    t = (await http(gw, "/metrics")).body;
    expect(sample(t, 'linli_bus_requests_total{bus="rs485-1"}')).toBe(9);
  });

  it("upstream backlog and drops while the upstream broker is unreachable", async () => {
    // A port nobody listens on: bound, then closed.
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const port = (free.address() as { port: number }).port;
    await new Promise((r) => free.close(r));
    gw = await startGateway({
      config: testConfig({
        northbound: { upstream: { url: `mqtt://127.0.0.1:${port}`, backlog: 2, reconnectInitial: "10s" } },
      }),
    });
    const p = await connect(gw, "p-1", "pw-p1");
    clients.push(p);
    // A P4 alert raised (low_battery), cleared (a reading at 87 %), raised again…: each transition's
    // event is QoS 1 (held, the oldest dropped beyond 2), each reading's telemetry QoS 0 (dropped);
    // the alert's state is retained (mirrored, not in the backlog). Presses would not do: a P1
    // alert's events are never dropped.
    for (const seq of [1, 2, 3, 4, 5, 6])
      await p.publish("devices/ec200/p-1/up", pendantMsg(seq, seq % 2 === 1 ? "low_battery" : null));
    const g = gw;
    while ((g.stats().upstream?.telemetryDropped ?? 0) < 6) await sleep(10);
    const t = (await http(gw, "/metrics")).body;
    const up = gw.stats().upstream;
    expect(up?.backlogDropped).toBeGreaterThan(0);
    const broker = `broker="127.0.0.1:${port}"`;
    expect(sample(t, `linli_upstream_connected{${broker}}`)).toBe(0);
    expect(sample(t, `linli_upstream_backlog{${broker}}`)).toBe(2);
    expect(sample(t, `linli_upstream_dropped_total{${broker},kind="backlog"}`)).toBe(up?.backlogDropped);
    expect(sample(t, `linli_upstream_dropped_total{${broker},kind="telemetry"}`)).toBe(up?.telemetryDropped);
    expect(sample(t, `linli_upstream_ghosts_deleted_total{${broker}}`)).toBe(0);
  });

  it("metrics.enabled: false serves nothing", async () => {
    gw = await startGateway({ config: testConfig({ metrics: { enabled: false } }) });
    expect(gw.metricsAddress).toBeNull();
  });

  it("a port already taken fails the start with the address, and leaves nothing running", async () => {
    const first = await startGateway();
    gw = first;
    const port = first.metricsAddress?.port as number;
    await expect(startGateway({ config: testConfig({ metrics: { port } }) })).rejects.toThrow(/EADDRINUSE/);
  });
});
