/**
 * Downlinks waiting for a device survive a restart (docs/durability.md, `down/<device>`): the
 * GD-2's automatic valve_close queued for a detector that is away reaches it at its first login
 * after a crash, while the leak is open; an operator's command waiting across a stop keeps what
 * is left of its 10 minutes, and one whose life ran out while the gateway was down is reported
 * expired and never sent; a downlink written before the crash and never acknowledged is sent
 * again. The last test SIGKILLs the built gateway on a real journal. Before, the queue lived in memory only and a restart forgot it without a word. Real
 * gateways in turn on one store, real mqtt.js clients on 127.0.0.1.
 */
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import type { Gateway } from "../gateway/gateway.js";
import { DOWNLINK_TTL_MS } from "../gateway/southbound/pending-downlinks.js";
import { KEY } from "../gateway/state/keys.js";
import { MemoryStore } from "../gateway/state/store.js";
import { mqttPortOf, startGatewayCli } from "./support/gateway-cli.js";
import { connect, gatewaysInTurn, gd2Config, OPS, SITE, sleep, type TestClient } from "./support/harness.js";
import { suiteTempDir } from "./support/temp-dir.js";

const MIN = 60_000;
const UP = "devices/gd2/k-1/up";
const DOWN = "devices/gd2/k-1/down";

/** gd2Config with the detector's automatic shut-off on. */
function site() {
  const c = gd2Config();
  return {
    ...c,
    devices: (c.devices ?? []).map((d) => (d.id === "k-1" ? { ...d, autoShutOff: true } : d)),
  };
}

const gd2Msg = (seq: number, fields: Record<string, unknown>) =>
  JSON.stringify({ t: "alarm", seq, ts: Date.now(), lel: 0, level: "none", valve: "open", ...fields });

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A copy of the store as a crash leaves it (everything put so far, no clean stop's records). */
function crashCopy(store: MemoryStore): MemoryStore {
  const copy = new MemoryStore();
  for (const [k, v] of store.map) copy.map.set(k, structuredClone(v));
  return copy;
}

describe("restart: downlinks waiting for a device are kept", () => {
  const { start, client, stop } = gatewaysInTurn(site);
  /** Operators' persistent sessions (the results published at a start reach them). */
  const sessions: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((c) => c.end()));
  });

  async function watch(g: Gateway): Promise<TestClient> {
    const ops = await connect(g, OPS.name, OPS.password, { clientId: "ops-restart-downlinks", clean: false });
    sessions.push(ops);
    expect(await ops.subscribe(`linli/${SITE}/cmd/#`)).toBe(1);
    return ops;
  }

  async function endSessions(): Promise<void> {
    await Promise.all(sessions.splice(0).map((c) => c.end()));
  }

  it("after a crash: the automatic valve_close queued for an away detector is sent at its first login, the leak still open", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock(Date.now());
    const a = await start(store, clock);
    const ops = await watch(a);
    const k = await client(a, "k-1", "pw-k1");
    // The alarm goes out, the detector is not (yet) subscribed to its downlink.
    await k.publish(UP, gd2Msg(1, { lel: 30, level: "high" }));
    const first = await ops.waitFor((m) => m.topic.endsWith("/cmd/k-1/valve_close/result"));
    expect(first.json()).toMatchObject({ by: "gateway", sent: false, queued: true });
    const id = first.json().id as string;
    expect(store.map.get(KEY.downlinks("k-1"))).toMatchObject({
      topic: DOWN,
      entries: [
        [JSON.stringify({ cmd: "valve_close", id }), expect.any(Number), null, expect.anything(), false],
      ],
    });
    const copy = crashCopy(store);
    await endSessions();
    await stop(a);
    clock.advance(MIN);

    const b = await start(copy, clock);
    expect(b.pendingDownlinks?.stats()).toMatchObject({ pending: 1 });
    const ops2 = await watch(b);
    const back = await client(b, "k-1", "pw-k1");
    expect(await back.subscribe(DOWN)).toBe(1);
    const down = await back.waitFor((m) => m.topic === DOWN);
    expect(down.json()).toEqual({ cmd: "valve_close", id });
    const sent = await ops2.waitFor((m) => m.topic.endsWith("/valve_close/result") && m.json().sent === true);
    expect(sent.json()).toMatchObject({ id, by: "gateway", ok: true, waitedMs: expect.any(Number) });
    expect(sent.json().waitedMs).toBeGreaterThanOrEqual(MIN);
    // Acknowledged: its record goes.
    await until("the PUBACK", () => b.pendingDownlinks?.stats().pending === 0);
    expect(copy.map.has(KEY.downlinks("k-1"))).toBe(false);
  });

  it("across a stop: an operator's command keeps the rest of its 10 minutes; one that ran out meanwhile is reported expired and never sent", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock(Date.now());
    const a = await start(store, clock);
    const ops = await watch(a);
    await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-1", by: "Wang Li" }));
    await ops.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().id === "s-1");
    clock.advance(4 * MIN);
    await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-2", by: "Wang Li" }));
    await ops.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().id === "s-2");
    await endSessions();
    await stop(a);
    // s-1 is 11 minutes old at the start, s-2 7 minutes.
    clock.advance(7 * MIN);

    const b = await start(store, clock);
    const ops2 = await watch(b);
    const expired = await ops2.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().ok === false);
    expect(expired.json()).toMatchObject({
      id: "s-1",
      by: "Wang Li",
      account: OPS.name,
      sent: false,
      error: "downlink-expired",
    });
    expect(b.counters.rejected("operator", "cmd-downlink-expired")).toBe(1);
    const k = await client(b, "k-1", "pw-k1");
    expect(await k.subscribe(DOWN)).toBe(1);
    const down = await k.waitFor((m) => m.topic === DOWN);
    expect(down.json()).toEqual({ cmd: "self_test", id: "s-2" });
    await sleep(100);
    expect(k.on("/down")).toHaveLength(1);
    await until("the PUBACK", () => b.pendingDownlinks?.stats().pending === 0);
    expect(store.map.has(KEY.downlinks("k-1"))).toBe(false);
  });

  it("across a stop: a command still waiting expires on its first life, not 10 minutes after the start", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock(Date.now());
    const a = await start(store, clock);
    const ops = await watch(a);
    await ops.publish(`linli/${SITE}/cmd/k-1/self_test`, JSON.stringify({ id: "s-1", by: "Wang Li" }));
    await ops.waitFor((m) => m.topic.endsWith("/self_test/result"));
    await endSessions();
    await stop(a);
    clock.advance(6 * MIN);
    const b = await start(store, clock);
    const ops2 = await watch(b);
    clock.advance(DOWNLINK_TTL_MS - 6 * MIN);
    // Its 10 minutes are over: the login finds it expired.
    const k = await client(b, "k-1", "pw-k1");
    expect(await k.subscribe(DOWN)).toBe(1);
    const expired = await ops2.waitFor((m) => m.topic.endsWith("/self_test/result") && m.json().ok === false);
    expect(expired.json()).toMatchObject({ id: "s-1", error: "downlink-expired" });
    await sleep(100);
    expect(k.on("/down")).toEqual([]);
  });

  it("after a crash: a command written to the detector that it never acknowledged is sent again at its next login", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock(Date.now());
    const a = await start(store, clock);
    const ops = await watch(a);
    const k = await client(a, "k-1", "pw-k1");
    expect(await k.subscribe(DOWN)).toBe(1);
    // Read, never acknowledged (mqtt.js sends the PUBACK once handleMessage calls back).
    k.client.handleMessage = () => {};
    await ops.publish(`linli/${SITE}/cmd/k-1/valve_close`, JSON.stringify({ id: "v-1", by: "Wang Li" }));
    expect((await ops.waitFor((m) => m.topic.endsWith("/valve_close/result"))).json()).toMatchObject({
      sent: true,
    });
    await k.waitFor((m) => m.topic === DOWN);
    expect(store.map.get(KEY.downlinks("k-1"))).toMatchObject({ entries: [expect.arrayContaining([true])] });
    const copy = crashCopy(store);
    await endSessions();
    await stop(a);

    const b = await start(copy, clock);
    const ops2 = await watch(b);
    const back = await client(b, "k-1", "pw-k1");
    expect(await back.subscribe(DOWN)).toBe(1);
    expect((await back.waitFor((m) => m.topic === DOWN)).json()).toEqual({ cmd: "valve_close", id: "v-1" });
    const again = await ops2.waitFor(
      (m) => m.topic.endsWith("/valve_close/result") && m.json().resent === true,
    );
    expect(again.json()).toMatchObject({ id: "v-1", by: "Wang Li", ok: true, sent: true });
  });
});

const cliSite = `site:
  id: s1
mqtt:
  listeners:
    - host: 127.0.0.1
      port: 0
metrics:
  enabled: false
console:
  enabled: false
operators:
  - name: ops
    password: ops-pw
households:
  - id: hh-1
devices:
  - id: k-1
    model: gd2
    password: pw-k1
    household: hh-1
    autoShutOff: true
`;

describe("restart: the automatic valve_close, the gateway SIGKILLed (built CLI, real journal)", () => {
  const dir = suiteTempDir("linli-downlinks-");
  const children: ChildProcess[] = [];
  const clients: mqtt.MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    for (const c of children.splice(0)) await kill(c);
  });

  async function kill(proc: ChildProcess): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
    const exited = new Promise((r) => proc.once("exit", r));
    process.kill(proc.pid, "SIGKILL");
    await exited;
  }

  async function run(file: string, dataDir: string) {
    const { proc, logged } = startGatewayCli(file, dataDir);
    children.push(proc);
    const port = mqttPortOf(await logged("gateway started"));
    const login = async (username: string, password: string, clientId: string) => {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        username,
        password,
        clientId,
        reconnectPeriod: 0,
      });
      clients.push(c);
      return c;
    };
    const ops = await login("ops", "ops-pw", `ops-${Math.random().toString(16).slice(2, 8)}`);
    const results: Record<string, unknown>[] = [];
    ops.on("message", (_t, payload) => results.push(JSON.parse(payload.toString())));
    await ops.subscribeAsync("linli/s1/cmd/k-1/valve_close/result", { qos: 1 });
    return { proc, login, results };
  }

  async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  it("queued for an away detector, then SIGKILL: the restarted gateway sends it at the detector's first login", async () => {
    const file = join(dir, "site.yaml");
    const dataDir = join(dir, "data");
    writeFileSync(file, cliSite);
    const a = await run(file, dataDir);
    const k = await a.login("k-1", "pw-k1", "gd2-k-1");
    // QoS 1: its PUBACK waits for the records it caused (the alert, the queued downlink).
    await k.publishAsync(UP, gd2Msg(1, { lel: 30, level: "high" }), { qos: 1 });
    await until("the queued result", () => a.results.some((r) => r.queued === true));
    const id = a.results[0]?.id as string;
    await kill(a.proc);
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));

    const b = await run(file, dataDir);
    const back = await b.login("k-1", "pw-k1", "gd2-k-1");
    const downs: string[] = [];
    back.on("message", (_t, payload) => downs.push(payload.toString()));
    await back.subscribeAsync(DOWN, { qos: 1 });
    await until("the downlink", () => downs.length > 0);
    expect(JSON.parse(downs[0] as string)).toEqual({ cmd: "valve_close", id });
    await until("the second result", () => b.results.some((r) => r.sent === true));
    expect(b.results.find((r) => r.sent === true)).toMatchObject({ id, by: "gateway", ok: true });
  }, 60_000);
});
