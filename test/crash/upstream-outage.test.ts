/**
 * Durability through an upstream outage against a real mosquitto.
 * Pendants press, an operator on the embedded broker acknowledges (so calls end,
 * alerts close and each pendant raises a sequence of alerts); the upstream
 * mosquitto is stopped for 30 s mid-stream and the gateway is SIGKILLed during
 * the outage and restarted on the same data dir. After both are back:
 *   - every alert the gateway raised (its log) reached upstream;
 *   - in order per device (on an alert topic, no message of an older alert after
 *     one of a newer alert; per alert, no older state after a newer one);
 *   - no duplicate that carries a new id: per device, upstream is left with at most
 *     one alert not closed, and it is the gateway's current one;
 *   - upstream's retained alert topics end equal to the embedded broker's.
 * Needs mosquitto (.ci/run installs it); without it, and outside CI, it reports itself skipped.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Operator } from "./support/operator.js";
import { PendantFleet, type PendantSpec } from "./support/pendants.js";
import {
  assertBuilt,
  freePort,
  type GatewayProcess,
  gatewaySite,
  killAllSpawned,
  type LogLine,
  LogTail,
  MosquittoProcess,
  mosquittoPath,
  sleep,
  waitUntil,
} from "./support/processes.js";
import { runSeed, seededRng, uniform } from "./support/rng.js";
import { TcpGate } from "./support/tcp-gate.js";
import type { AlertMsg } from "./support/verdict.js";

const SITE = "outage";
const OPS = { name: "ops", password: "ops-pw" };
const PENDANTS = 20;
const OUTAGE_MS = 30_000;

const available = mosquittoPath() !== null;
if (!available && !process.env.CI) console.warn("upstream-outage: mosquitto not installed; CI installs it");

interface UpMsg {
  topic: string;
  msg: AlertMsg | null;
  retain: boolean;
  receivedAt: number;
}

/** A subscriber on the upstream broker recording every alert-topic message in arrival order. */
class Recorder {
  readonly alerts: UpMsg[] = [];
  private client: MqttClient | null = null;
  constructor(private readonly port: number) {}

  async connect(tag: string): Promise<void> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.port}`, {
      clientId: `recorder-${tag}`,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    client.on("error", () => {});
    client.on("message", (topic, payload, packet) => {
      const parts = topic.split("/");
      if (parts[2] !== "alerts" || parts.length !== 6) return;
      let msg: AlertMsg | null = null;
      if (payload.length > 0) {
        try {
          msg = JSON.parse(payload.toString("utf8")) as AlertMsg;
        } catch {
          return;
        }
      }
      this.alerts.push({ topic, msg, retain: packet.retain, receivedAt: Date.now() });
    });
    await client.subscribeAsync(`linli/${SITE}/alerts/#`, { qos: 1 });
    this.client = client;
  }

  async disconnect(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.endAsync(true).catch(() => {});
  }
}

/** Retained alert topics of a broker right now: topic -> "id state". */
async function retainedAlerts(port: number, auth: { username?: string; password?: string }) {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    // On the gateway, client ids belong to their owner: an operator's start with its name.
    clientId: `${auth.username ?? "retained"}-retained-${Math.random().toString(16).slice(2, 8)}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...auth,
  });
  const out = new Map<string, string>();
  let last = Date.now();
  client.on("message", (topic, payload, packet) => {
    last = Date.now();
    if (!packet.retain || topic.split("/").length !== 6 || payload.length === 0) return;
    const m = JSON.parse(payload.toString("utf8")) as AlertMsg;
    out.set(topic, `${m.id} ${m.state}`);
  });
  await client.subscribeAsync(`linli/${SITE}/alerts/#`, { qos: 1 });
  const start = Date.now();
  while (Date.now() - start < 3000 && (Date.now() - start < 500 || Date.now() - last < 300)) await sleep(25);
  await client.endAsync(true);
  return out;
}

describe.skipIf(!available && !process.env.CI)("upstream outage (real mosquitto)", () => {
  // Made in beforeAll, not while collecting: a suite skipped (no mosquitto) leaves no directory behind.
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "linli-outage-"));
  });
  afterAll(async () => {
    await killAllSpawned();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("after a 30 s upstream outage and a gateway SIGKILL during it, every alert reaches upstream once, in order", async () => {
    assertBuilt();
    const seed = runSeed();
    const rng = seededRng(seed);
    const upPort = await freePort();
    let mosquitto = await MosquittoProcess.start(dir, upPort);
    const gate = new TcpGate(upPort);
    const gatePort = await gate.listen();
    const recorder = new Recorder(upPort);
    await recorder.connect("0");

    const specs: PendantSpec[] = [];
    for (let i = 0; i < PENDANTS; i++) specs.push({ id: `po-${i}`, password: `pw-${i}` });
    const tail = new LogTail("outage");
    /** Every alert the gateway raised, from its log: id -> device; and each id's last logged state. */
    const raised = new Map<string, string>();
    const lastState = new Map<string, string>();
    const onLine = (l: LogLine) => {
      tail.add(l);
      const j = l.json;
      if (typeof j?.alertId !== "string" || typeof j.state !== "string") return;
      if (j.transition === "raised") raised.set(j.alertId, String(j.deviceId));
      lastState.set(j.alertId, j.state);
    };
    const site = await gatewaySite({
      dir,
      site: SITE,
      operator: OPS,
      pendants: specs,
      config: {
        alerts: { emergencyCallWindow: "3s" },
        northbound: {
          upstream: {
            url: `mqtt://127.0.0.1:${gatePort}`,
            reconnectInitial: "250ms",
            reconnectMax: "2s",
            keepalive: "5s",
          },
        },
      },
      onLine,
    });
    const port = site.mqttPort;
    console.log(
      `outage: seed ${seed} (replay with LINLI_CRASH_SEED=${seed}); ${site.dataDir ? `--data-dir ${site.dataDir}` : "this build has no --data-dir"}`,
    );
    const start = site.start;

    const fleet = new PendantFleet(port, specs);
    const operator = new Operator({
      port,
      site: SITE,
      name: OPS.name,
      password: OPS.password,
      rng,
      // Most calls are answered (and close); the rest stay open, so retained state is compared too.
      ackShare: 0.85,
      ackDelayMs: [200, 800],
      ackRetained: true,
    });
    // Each pendant: a press, then a pause; a pause over the 3 s call window ends the call.
    const timers = new Set<NodeJS.Timeout>();
    let pressing = true;
    const schedule = (id: string) => {
      const t = setTimeout(
        () => {
          timers.delete(t);
          if (!pressing) return;
          fleet.press(id);
          schedule(id);
        },
        uniform(rng, 300, 7000),
      );
      timers.add(t);
    };

    let gw: GatewayProcess | null = null;
    try {
      gw = await start(0);
      await operator.connect(0);
      operator.startAcking();
      fleet.resume(0);
      for (const s of specs) schedule(s.id);
      await sleep(8000);

      // Upstream down for 30 s; the gateway is killed 10 s into it and restarted at once.
      gate.open = false;
      const outageAt = Date.now();
      await mosquitto.stop();
      await recorder.disconnect();
      await sleep(10_000);
      fleet.hold();
      operator.stopAcking();
      tail.note("SIGKILL to gateway #0 (upstream down)");
      await gw.stop("SIGKILL");
      await operator.disconnect();
      gw = await start(1);
      await operator.connect(1);
      operator.startAcking();
      fleet.resume(1);
      await sleep(Math.max(0, outageAt + OUTAGE_MS - Date.now()));

      // Upstream back: the recorder subscribes first, then the gateway may reconnect.
      mosquitto = await MosquittoProcess.start(dir, upPort);
      await recorder.connect("1");
      gate.open = true;
      await sleep(8000);

      pressing = false;
      for (const t of timers) clearTimeout(t);
      await waitUntil(() => fleet.pending === 0, 15_000);
      await sleep(5000); // last calls end (3 s window) and are acknowledged
      operator.stopAcking();
    } catch (err) {
      console.log(`outage: harness stopped: ${(err as Error).message}\n${tail.last(50).join("\n")}`);
      throw err;
    } finally {
      pressing = false;
      for (const t of timers) clearTimeout(t);
    }

    // Converged: upstream's retained alert topics equal the embedded broker's (wait up to 20 s).
    let local = new Map<string, string>();
    let upstream = new Map<string, string>();
    const deadline = Date.now() + 20_000;
    for (;;) {
      local = await retainedAlerts(port, { username: OPS.name, password: OPS.password });
      upstream = await retainedAlerts(upPort, {});
      if (sameMap(local, upstream) || Date.now() > deadline) break;
      await sleep(500);
    }
    await fleet.close();
    await operator.disconnect();
    await recorder.disconnect();
    await gw?.stop("SIGTERM");
    await gate.close();
    await mosquitto.stop();

    await tail.close();
    // Judge what upstream saw.
    const seenUp = new Set<string>();
    for (const m of recorder.alerts) if (m.msg) seenUp.add(m.msg.id);
    const missing = [...raised.keys()].filter((id) => !seenUp.has(id));

    let outOfOrder = 0;
    const orderExamples: string[] = [];
    const newest = new Map<string, { raisedAt: number; id: string }>();
    const lastUpdate = new Map<string, number>();
    for (const m of recorder.alerts) {
      if (!m.msg) continue;
      const n = newest.get(m.topic);
      const staleAlert = n !== undefined && m.msg.raisedAt < n.raisedAt;
      // `rev` (topic API 0.4.0) orders one alert's states; before it, `updatedAt` does.
      const order = m.msg.rev ?? m.msg.updatedAt;
      const staleState = (lastUpdate.get(m.msg.id) ?? Number.NEGATIVE_INFINITY) > order;
      if (staleAlert || staleState) {
        outOfOrder++;
        if (orderExamples.length < 5) {
          orderExamples.push(
            staleAlert
              ? `${m.topic}: ${m.msg.id} (${m.msg.state}) after newer ${n?.id}`
              : `${m.msg.id}: ${m.msg.state} (rev ${m.msg.rev}, updatedAt ${m.msg.updatedAt}) after a later state`,
          );
        }
      }
      if (!n || m.msg.raisedAt > n.raisedAt) newest.set(m.topic, { raisedAt: m.msg.raisedAt, id: m.msg.id });
      lastUpdate.set(m.msg.id, Math.max(lastUpdate.get(m.msg.id) ?? Number.NEGATIVE_INFINITY, order));
    }

    // Per device: ids upstream never saw closed. At most one, and it is the alert open at the end.
    const lastUp = new Map<string, AlertMsg>();
    for (const m of recorder.alerts) if (m.msg) lastUp.set(m.msg.id, m.msg);
    const openLocal = new Set([...local.values()].map((v) => v.split(" ")[0]));
    const leftOpen = [...lastUp.values()].filter((m) => m.state !== "closed" && !openLocal.has(m.id));
    const leftOpenLines = leftOpen.map(
      (m) => `${m.deviceId}: ${m.id} left ${m.state} upstream (gateway's last log: ${lastState.get(m.id)})`,
    );
    const unknownUp = [...seenUp].filter((id) => !raised.has(id));

    console.log(
      [
        `outage: alerts raised (gateway log): ${raised.size}; reached upstream: ${raised.size - missing.length}/${raised.size}`,
        `outage: out of order per device upstream: ${outOfOrder} of ${recorder.alerts.length} alert messages`,
        `outage: alerts left open upstream that the gateway has closed or forgotten (a later alert of the device carries a new id): ${leftOpen.length}`,
        `outage: upstream alert ids the gateway never logged as raised: ${unknownUp.length}`,
        `outage: retained alert topics at the end: upstream ${upstream.size}, embedded ${local.size}, ${sameMap(local, upstream) ? "equal" : "DIFFERENT"}`,
        `outage: gate refused ${gate.refused} gateway connection attempts while upstream was down or not yet watched`,
      ].join("\n"),
    );
    const failed =
      missing.length > 0 ||
      outOfOrder > 0 ||
      leftOpen.length > 0 ||
      !sameMap(local, upstream) ||
      raised.size === 0;
    if (failed) {
      console.log(
        [
          `outage: missing upstream (first 5): ${missing.slice(0, 5).join(", ")}`,
          ...orderExamples.map((e) => `outage: out of order: ${e}`),
          ...leftOpenLines.slice(0, 5).map((e) => `outage: left open: ${e}`),
          `outage: retained differences: ${diffMap(local, upstream).slice(0, 5).join("; ")}`,
          "outage: last gateway log lines:",
          ...tail.last(50),
        ].join("\n"),
      );
    }
    expect.soft(raised.size, "alerts raised").toBeGreaterThan(0);
    expect.soft(missing, "alerts that never reached upstream").toEqual([]);
    expect.soft(outOfOrder, "alert messages out of order per device upstream").toBe(0);
    expect.soft(leftOpenLines, "alerts left open upstream (duplicates with a new id)").toEqual([]);
    expect.soft(diffMap(local, upstream), "retained alert topics, embedded vs upstream").toEqual([]);
  }, 180_000);
});

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  return diffMap(a, b).length === 0;
}

function diffMap(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: embedded ${v}, upstream ${b.get(k) ?? "none"}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: embedded none, upstream ${v}`);
  return out;
}
