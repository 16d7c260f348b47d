/**
 * An on-delay under way survives a restart (docs/durability.md, `hold/<device>/<CODE>`): a GD-2 on
 * battery for 9 of its 10 minutes before a crash raises POWER_FAIL 10 minutes after mains was
 * lost, once the first heartbeat after the start still says `mains` false, not 10 minutes after
 * the restart; a heartbeat back on mains ends it. Before, every pending on-delay started again
 * from zero at a restart. The last test runs the built gateway as a process, SIGKILLed mid-hold
 * (a YAML model's 8 s on-delay) on a real journal.
 */
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import { KEY } from "../gateway/state/keys.js";
import { MemoryStore } from "../gateway/state/store.js";
import { mqttPortOf, startGatewayCli } from "./support/gateway-cli.js";
import { gatewaysInTurn, gd2Config, OPS, SITE, sleep, type TestClient } from "./support/harness.js";
import { suiteTempDir } from "./support/temp-dir.js";

const S = 1000;
const MIN = 60 * S;

const UP = "devices/gd2/k-1/up";
const POWER_FAIL = `linli/${SITE}/alerts/p3/POWER_FAIL/k-1`;

describe("restart: a GD-2's 10 minutes on battery run on", () => {
  const { start, client, stop } = gatewaysInTurn(gd2Config);
  let seq = 100;
  const hb = (clock: FakeClock, mains: boolean) =>
    JSON.stringify({ t: "hb", seq: ++seq, ts: clock.now(), lel: 0, valve: "open", mains, fault: 0 });
  /** Moves gateway time and lets what it caused arrive. */
  const advance = async (clock: FakeClock, ms: number) => {
    clock.advance(ms);
    await sleep(60);
  };
  const raised = (ops: TestClient) =>
    ops.messages.filter((m) => m.topic === POWER_FAIL && m.payload.length > 0);

  /**
   * Mains lost at t0, heartbeats (mains false) every minute for 9 minutes, then a crash (SIGKILL:
   * the store as it was, no clean stop's records); the restarted gateway 20 s later.
   */
  async function crashedMidHold(): Promise<{ store: MemoryStore; clock: FakeClock; t0: number }> {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const k1 = await client(a, "k-1", "pw-k1");
    const t0 = clock.now();
    await k1.publish(UP, hb(clock, false));
    await sleep(100);
    expect(store.map.get(KEY.hold("k-1", "POWER_FAIL"))).toEqual({ since: t0 });
    for (let i = 0; i < 9; i++) {
      await advance(clock, MIN);
      await k1.publish(UP, hb(clock, false));
    }
    await sleep(100);
    // One record when the hold started, none per heartbeat: still the start.
    expect(store.map.get(KEY.hold("k-1", "POWER_FAIL"))).toEqual({ since: t0 });
    const copy = new MemoryStore();
    for (const [k, v] of store.map) copy.map.set(k, structuredClone(v));
    await stop(a);
    clock.advance(20 * S);
    return { store: copy, clock, t0 };
  }

  it("after a crash 9 minutes in: POWER_FAIL 10 minutes after mains was lost, the first heartbeat confirming it", async () => {
    const { store, clock, t0 } = await crashedMidHold();
    const b = await start(store, clock);
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    const k1 = await client(b, "k-1", "pw-k1");
    // Nothing is raised before a reading confirms the hold.
    await k1.publish(UP, hb(clock, false)); // t0 + 9 min 20 s
    await sleep(100);
    await advance(clock, 30 * S); // t0 + 9 min 50 s
    expect(raised(ops)).toEqual([]);
    await advance(clock, 15 * S); // t0 + 10 min 5 s (the wheel's tick: within a second of the due time)
    const alert = await ops.waitFor((m) => m.topic === POWER_FAIL && m.payload.length > 0);
    expect(alert.json().raisedAt).toBeLessThanOrEqual(t0 + 10 * MIN + 2 * S);
    // The hold is over: its record goes with it.
    expect(store.map.has(KEY.hold("k-1", "POWER_FAIL"))).toBe(false);
  });

  it("a first heartbeat back on mains ends the restored hold: no POWER_FAIL, no record", async () => {
    const { store, clock } = await crashedMidHold();
    const b = await start(store, clock);
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    const k1 = await client(b, "k-1", "pw-k1");
    await k1.publish(UP, hb(clock, true));
    await sleep(100);
    expect(store.map.has(KEY.hold("k-1", "POWER_FAIL"))).toBe(false);
    for (let i = 0; i < 3; i++) {
      await advance(clock, MIN);
      await k1.publish(UP, hb(clock, true));
    }
    await sleep(100);
    expect(raised(ops)).toEqual([]);
  });

  it("a clock set back a day across the restart, then stepped while running: the hold's start moves with the clock", async () => {
    const { store, clock, t0 } = await crashedMidHold();
    // The `running` record as a checkpoint 2 minutes before the crash left it (the elapsed part
    // before the stop counts from it: 7 of the 10 minutes).
    store.map.set(KEY.running, { at: t0 + 7 * MIN });
    const DAY = 24 * 60 * MIN;
    clock.stepWall(-DAY);
    // Moved back as an escalation is: by what the clock reads earlier than the last run's record
    // (the 20 s down are not known then, and do not count).
    const back = t0 + 7 * MIN - clock.now();
    const b = await start(store, clock);
    expect(store.map.get(KEY.hold("k-1", "POWER_FAIL"))).toEqual({ since: t0 - back });
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    const k1 = await client(b, "k-1", "pw-k1");
    await k1.publish(UP, hb(clock, false));
    await sleep(100);
    // Set forward an hour while running (adopted at the wheel's next tick, within a minute): the
    // timer keeps its elapsed time, the record moves.
    clock.stepWall(60 * MIN);
    await advance(clock, MIN + 10 * S);
    expect(store.map.get(KEY.hold("k-1", "POWER_FAIL"))).toEqual({ since: t0 - back + 60 * MIN });
    expect(raised(ops)).toEqual([]);
    // Due 3 minutes after the start.
    await advance(clock, MIN);
    expect(raised(ops)).toEqual([]);
    await advance(clock, MIN);
    await ops.waitFor((m) => m.topic === POWER_FAIL && m.payload.length > 0);
  });

  // Not a restart: the rules' own start of the hold (the GD-2's mainsLostSince), passed to the
  // engine with every heartbeat, moves with a step of the clock as the engine's hold does.
  for (const step of [60 * MIN, -60 * MIN])
    it(`the clock ${step > 0 ? "set forward" : "set back"} an hour while running: POWER_FAIL still 10 minutes after mains was lost`, async () => {
      const store = new MemoryStore();
      const clock = new FakeClock();
      const a = await start(store, clock);
      const ops = await client(a, OPS.name, OPS.password);
      await ops.subscribe(`linli/${SITE}/#`);
      const k1 = await client(a, "k-1", "pw-k1");
      const m0 = clock.monotonic();
      await k1.publish(UP, hb(clock, false));
      for (let i = 0; i < 2; i++) {
        await advance(clock, MIN);
        await k1.publish(UP, hb(clock, false));
      }
      clock.stepWall(step);
      // Adopted at the wheel's next tick (within a minute), then heartbeats every minute.
      for (let i = 0; i < 6; i++) {
        await advance(clock, MIN);
        await k1.publish(UP, hb(clock, false));
      }
      await sleep(100);
      expect(raised(ops)).toEqual([]); // 8 minutes on battery
      for (let i = 0; i < 3; i++) {
        await advance(clock, MIN);
        await k1.publish(UP, hb(clock, false));
      }
      // Raised at the 10th minute on battery (before, at once after a step forward, an hour late after one back).
      await ops.waitFor((m) => m.topic === POWER_FAIL && m.payload.length > 0, 3000);
      expect(clock.monotonic() - m0).toBe(11 * MIN);
    });

  it("a restored hold raises nothing until a reading confirms it", async () => {
    const { store, clock } = await crashedMidHold();
    const b = await start(store, clock);
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    await advance(clock, 2 * MIN);
    expect(raised(ops)).toEqual([]);
    expect(store.map.get(KEY.hold("k-1", "POWER_FAIL"))).toBeDefined();
    // The first heartbeat, past the due time: raised at once.
    const k1 = await client(b, "k-1", "pw-k1");
    await k1.publish(UP, hb(clock, false));
    await ops.waitFor((m) => m.topic === POWER_FAIL && m.payload.length > 0);
  });

  // A restored hold waits for a reading; a device a reload removes (or replaces by another model)
  // sends none that counts: its hold must go then, from memory and from the journal.
  for (const how of ["removed", "replaced by another model"] as const)
    it(`a device ${how} by a reload takes its restored hold with it`, async () => {
      const { store, clock, t0 } = await crashedMidHold();
      const b = await start(store, clock);
      const ops = await client(b, OPS.name, OPS.password);
      await ops.subscribe(`linli/${SITE}/#`);
      const base = gd2Config();
      const others = (base.devices ?? []).filter((d) => d.id !== "k-1");
      const gone =
        how === "removed"
          ? others
          : [...others, { id: "k-1", model: "ec200" as const, password: "pw-k1", household: "hh-1" }];
      expect((await b.reload(validateConfig({ ...base, devices: gone }, "test"))).result).toBe("applied");
      await sleep(100);
      expect(store.map.has(KEY.hold("k-1", "POWER_FAIL"))).toBe(false);
      // Back as a GD-2: its first heartbeat on battery starts a new 10 minutes, not the old hold's.
      expect((await b.reload(validateConfig(base, "test"))).result).toBe("applied");
      const k1 = await client(b, "k-1", "pw-k1");
      const again = clock.now();
      await k1.publish(UP, hb(clock, false));
      await sleep(100);
      expect(store.map.get(KEY.hold("k-1", "POWER_FAIL"))).toEqual({ since: again });
      await advance(clock, 2 * MIN); // t0 + 12 min 20 s: the old hold would have raised
      await k1.publish(UP, hb(clock, false));
      await sleep(100);
      expect(raised(ops)).toEqual([]);
      expect(again).toBeGreaterThan(t0 + 9 * MIN);
    });
});

/** A YAML model (docs/devices.md) with a configured on-delay short enough for a real-time test. */
const site = `site:
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
deviceProfiles:
  - model: acme-tank
    description: test tank, a level sensor over MQTT
    transport: mqtt
    lostPriority: 3
    mqtt:
      uplink: acme/{id}/up
      seq: seq
      fields:
        - { name: level, path: level, type: number, unit: mm, min: 0, max: 10000 }
    alarms:
      - code: WATER_LEVEL_LOW
        priority: 2
        when: { point: level, below: 100, deadband: 50 }
        onDelay: 20s
devices:
  - id: t-1
    model: acme-tank
    password: pw-t1
    heartbeatInterval: 300s
`;

interface Started {
  proc: ChildProcess;
  port: Promise<number>;
}

function startProcess(file: string, dataDir: string): Started {
  const { proc, logged } = startGatewayCli(file, dataDir);
  return { proc, port: logged("gateway started").then(mqttPortOf) };
}

async function kill(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const exited = new Promise((r) => proc.once("exit", r));
  process.kill(proc.pid, signal);
  await exited;
}

describe("restart: a YAML model's on-delay and deadband, the gateway SIGKILLed (built CLI, real journal)", () => {
  const dir = suiteTempDir("linli-holds-");
  const children: ChildProcess[] = [];
  const clients: mqtt.MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    for (const c of children.splice(0)) await kill(c, "SIGKILL");
  });

  it("the 20 s on-delay completes 20 s after it started, not 20 s after the restart; inside the deadband the alert holds", async () => {
    const file = join(dir, "site.yaml");
    const dataDir = join(dir, "data");
    writeFileSync(file, site);
    const seen: { topic: string; body: Record<string, unknown>; at: number }[] = [];
    let seq = 0;
    const LOW = "linli/s1/alerts/p2/WATER_LEVEL_LOW/t-1";
    const run = async () => {
      const started = startProcess(file, dataDir);
      children.push(started.proc);
      const port = await started.port;
      const ops = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        username: "ops",
        password: "ops-pw",
        clientId: `ops-${Math.random().toString(16).slice(2, 8)}`,
        reconnectPeriod: 0,
      });
      clients.push(ops);
      ops.on("message", (topic, payload) => {
        if (payload.length > 0) seen.push({ topic, body: JSON.parse(payload.toString()), at: Date.now() });
      });
      await ops.subscribeAsync(["linli/s1/alerts/#", "linli/s1/telemetry/#"], { qos: 1 });
      const tank = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        username: "t-1",
        password: "pw-t1",
        clientId: "acme-tank-t-1",
        reconnectPeriod: 0,
      });
      clients.push(tank);
      // QoS 1: its PUBACK waits for what the reading changed to reach the journal.
      const level = (mm: number) =>
        tank.publishAsync("acme/t-1/up", JSON.stringify({ seq: ++seq, level: mm }), { qos: 1 });
      return { proc: started.proc, level };
    };
    const waitFor = async (pred: (m: (typeof seen)[number]) => boolean, ms: number) => {
      for (const deadline = Date.now() + ms; ; ) {
        const m = seen.find(pred);
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`not seen: ${JSON.stringify(seen.map((x) => x.topic))}`);
        await sleep(20);
      }
    };

    // Under the limit at t0; SIGKILLed 2 s into the 20 s hold.
    const a = await run();
    const t0 = Date.now();
    await a.level(50);
    await sleep(2000);
    await kill(a.proc, "SIGKILL");
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    // The restarted gateway; the tank's first reading after the start is still under the limit.
    const b = await run();
    await b.level(50);
    const confirmedAt = Date.now();
    expect(confirmedAt - t0).toBeLessThan(18_000);
    const raised = await waitFor((m) => m.topic === LOW, 25_000);
    // Due at t0 + 20 s (the wheel's tick: within a second); before, 20 s after the confirming
    // reading (t0 + 22 s at the earliest).
    expect(Number(raised.body.raisedAt)).toBeGreaterThanOrEqual(t0 + 19_500);
    expect(Number(raised.body.raisedAt)).toBeLessThan(t0 + 21_500);
    expect(raised.body).toMatchObject({ code: "WATER_LEVEL_LOW", state: "active-unacknowledged" });

    // Raised; SIGKILLed again. After the start, 120 mm is inside the deadband (under 100, back at
    // 150): the restored alert holds. Before, the alarm restarted inactive and 120 cleared it.
    await kill(b.proc, "SIGKILL");
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    seen.length = 0;
    const c = await run();
    await waitFor((m) => m.topic === LOW, 10_000);
    await c.level(120);
    await waitFor((m) => m.topic === "linli/s1/telemetry/acme-tank/t-1", 10_000);
    await sleep(300);
    expect(seen.filter((m) => m.topic === LOW).map((m) => m.body.state)).toEqual(["active-unacknowledged"]);
    await c.level(160);
    const cleared = await waitFor((m) => m.topic === LOW && m.body.state !== "active-unacknowledged", 10_000);
    expect(cleared.body.state).toBe("cleared-unacknowledged");
  }, 90_000);
});
