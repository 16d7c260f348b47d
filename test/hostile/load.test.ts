/**
 * Hostile load against a real gateway process (docs/security.md "Limits"):
 * 5,000 wrong-password logins, 20 sockets announcing a 10 MB CONNECT before
 * login and 3,000 idle sockets, from an attacker process of its own, while a
 * pendant presses its button and an operator's console times each press to
 * its alert. Shown:
 *   - press -> alert p99 under 50 ms during the attack; every press arrives;
 *   - the pendants stay connected, and a pendant can still log in from its own
 *     address afterwards (its username was banned by the guessing);
 *   - the guessing is banned (few passwords checked, the rest refused unread: at the
 *     CONNECT, the address being banned for device logins only, or at accept by its rate), the big
 *     CONNECTs are closed from their header, idle sockets within the 5 s timeout;
 *   - the gateway's RSS stays under 200 MB, and 30 s after the attack it is
 *     within 10 % of where it started.
 * Run by `npm run test:hostile` (vitest.hostile.config.ts, called from .ci/run):
 * about a minute, alone, so other tests' load does not blur the numbers.
 */
import { type ChildProcess, execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { STARTUP_NODE_FLAGS, startupEnv } from "../../gateway/heap.js";
import { freePort } from "../support/free-port.js";
import { killGroup, spawnGroup } from "../support/process-group.js";
import { suiteTempDir } from "../support/temp-dir.js";

const SITE = "h1";
const PENDANTS = ["p1", "p2", "p3", "p4", "p5"];
const ATTACK = { wrongPasswords: 5000, bigConnects: 20, idle: 3000 };
/** Descriptors this process needs: the idle sockets' and the pendants', with room to spare. */
const FDS_NEEDED = ATTACK.idle + 500;

function fdLimit(): number {
  const out = execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim();
  return out === "unlimited" ? Number.POSITIVE_INFINITY : Number(out);
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const limit = fdLimit();
const enoughFds = limit >= FDS_NEEDED;
if (!enoughFds)
  // Said out loud: a skipped hostile-load test is a hole in CI, not a pass.
  console.warn(
    `hostile-load test SKIPPED: ulimit -n is ${limit}, it needs ${FDS_NEEDED} (raise it: ulimit -n 8192)`,
  );

describe("hostile load against a real gateway", () => {
  const dir = suiteTempDir("linli-hostile-");
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterAll(async () => {
    // Each step bounded: a client library that never calls back must not hold the suite.
    for (const f of cleanup.splice(0).reverse()) await Promise.race([f(), sleep(5000)]);
  });

  it.skipIf(!enoughFds)(
    "keeps alerts fast and memory bounded under login floods, big CONNECTs and idle sockets",
    { timeout: 120_000 },
    async () => {
      expect(existsSync("dist/cli/linli.js"), "needs `npm run build`").toBe(true);
      const [mqttPort, metricsPort] = [await freePort(), await freePort()];
      const config = path.join(dir, "site.yaml");
      writeFileSync(
        config,
        [
          `site:\n  id: ${SITE}`,
          `mqtt:\n  listeners:\n    - host: 127.0.0.1\n      port: ${mqttPort}`,
          `metrics:\n  host: 127.0.0.1\n  port: ${metricsPort}`,
          "operators:\n  - name: ops\n    password: ops-pw",
          "devices:",
          ...PENDANTS.map((id) => `  - id: ${id}\n    model: ec200\n    password: pw-${id}`),
          "log:\n  level: warn\n  format: json",
        ].join("\n"),
      );

      // The gateway may raise its own descriptor limit up to the hard one (3,000 idle sockets).
      const gateway: ChildProcess = spawnGroup(
        "sh",
        [
          "-c",
          `ulimit -n $(ulimit -Hn) 2>/dev/null; exec "${process.execPath}" ${STARTUP_NODE_FLAGS.join(" ")} dist/cli/linli.js start --config "${config}" --data-dir "${path.join(dir, "data")}"`,
        ],
        { stdio: ["ignore", "pipe", "pipe"], env: startupEnv() },
      );
      cleanup.push(() => killGroup(gateway));
      let log = "";
      gateway.stdout?.on("data", (d) => (log += d));
      gateway.stderr?.on("data", (d) => (log += d));
      const pid = gateway.pid as number;

      const connect = async (username: string, password: string, clientId: string) => {
        const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
          username,
          password,
          clientId,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
        });
        cleanup.push(() => c.endAsync(true));
        return c;
      };
      // Started when it accepts an MQTT login.
      let ops: MqttClient | null = null;
      const deadline = Date.now() + 30_000;
      while (!ops) {
        if (gateway.exitCode !== null) throw new Error(`gateway exited: ${log}`);
        ops = await connect("ops", "ops-pw", "ops-console-1").catch(async (err) => {
          if (Date.now() > deadline) throw err;
          await sleep(200);
          return null;
        });
      }
      const alertAt = new Map<string, number>();
      ops.on("message", (topic) => alertAt.set(topic, performance.now()));
      await ops.subscribeAsync(`linli/${SITE}/alerts/p1/#`, { qos: 1 });

      const pendants = new Map<string, MqttClient>();
      const drops: string[] = [];
      for (const id of PENDANTS) {
        const c = await connect(id, `pw-${id}`, `ec200-${id}`);
        c.on("close", () => drops.push(id));
        pendants.set(id, c);
      }

      let seq = 1;
      const latencies: number[] = [];
      /** When each measured press was made (ms after the attack started), for the slowest ones. */
      const pressedAt: number[] = [];
      let attackStart = 0;
      let lost = 0;
      /** One press: published, then timed until the console has its alert update. */
      const press = async (id: string) => {
        const topic = `linli/${SITE}/alerts/p1/EMERGENCY_CALL/${id}`;
        const before = alertAt.get(topic);
        const t0 = performance.now();
        const msg = { t: "evt", seq: seq++, ts: Date.now(), evt: "press", bat: 90, rssi: -60 };
        await pendants.get(id)?.publishAsync(`devices/ec200/${id}/up`, JSON.stringify(msg), { qos: 1 });
        const until = performance.now() + 5000;
        while (alertAt.get(topic) === before && performance.now() < until) await sleep(1);
        const at = alertAt.get(topic);
        if (at === before || at === undefined) lost++;
        else if (t0 >= attackStart) {
          // (A press made before the attack started, while the baseline was being read, is not counted.)
          latencies.push(at - t0);
          pressedAt.push(t0 - attackStart);
        }
      };
      let pressing = true;
      const presser = (async () => {
        for (let i = 0; pressing; i++) {
          await press(PENDANTS[i % PENDANTS.length] as string);
          // Often, so the p99 rests on a few hundred presses, not on the one slowest of seventy.
          await sleep(20);
        }
      })();

      // Warm-up, then the level memory must come back to.
      await sleep(3000);
      const startRss = rssMb(pid);
      const heap = async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const mb = (name: string) =>
          (Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1]) / 2 ** 20).toFixed(0);
        return `heap used ${mb("nodejs_heap_size_used_bytes")} MB of ${mb("nodejs_heap_size_total_bytes")}, external ${mb("nodejs_external_memory_bytes")} MB`;
      };
      const startHeap = await heap();
      latencies.length = 0;
      pressedAt.length = 0;
      attackStart = performance.now();
      let peakRss = startRss;
      const sampler = setInterval(() => {
        peakRss = Math.max(peakRss, rssMb(pid));
      }, 100);
      cleanup.push(() => clearInterval(sampler));

      // The attacker runs niced: on a real network its CPU is not the gateway's; here both share two
      // cores, and an attacker process at equal priority measured the scheduler, not the gateway.
      const attacker = promisify(execFile)(
        "nice",
        [
          "-n",
          "19",
          process.execPath,
          path.join("test", "hostile", "attacker.mjs"),
          JSON.stringify({ port: mqttPort, username: "p1", ...ATTACK }),
        ],
        { timeout: 60_000, maxBuffer: 1 << 20 },
      );
      let takeover: string | null = null;
      // Client-id takeover: another valid login (another pendant's) using p1's client id `ec200-p1` must
      // be refused (client ids belong to their owner) and p1 stay connected.
      await sleep(1000);
      // A valid login (another pendant's) with p1's client id.
      takeover = await connect("p2", "pw-p2", "ec200-p1").then(
        (c) => `accepted (${c.connected})`,
        (err: Error) => `refused: ${err.message}`,
      );
      const report = JSON.parse((await attacker).stdout) as {
        wrongPasswords: { results: Record<string, number>; seconds: number };
        bigConnects: { count: number; maxClosedAfterMs: number; maxWritten: number };
        idle: { opened: number; closedAtOnce: number; maxLifetimeMs: number };
      };
      const slowest = latencies
        .map((ms, i) => `${ms.toFixed(0)} ms at +${((pressedAt[i] ?? 0) / 1000).toFixed(2)} s`)
        .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
        .slice(0, 3);
      pressing = false;
      await presser;
      const duringAttack = [...latencies].sort((a, b) => a - b);
      const pressesDuringAttack = duringAttack.length;

      // The attack is over and its sockets are gone: memory must come back.
      await sleep(30_000);
      clearInterval(sampler);
      // V8 gives back the heap the attack grew lazily (its memory reducer, on idle GCs): on a busy
      // machine that took longer than 30 s once (heap used back to 20 MB, committed 38 MB, RSS +13 %).
      // A leak never comes back: up to 30 s more are allowed for the way down, not a higher level.
      let endRss = rssMb(pid);
      for (let waited = 0; endRss >= startRss * 1.1 && waited < 30_000; waited += 1000) {
        await sleep(1000);
        endRss = rssMb(pid);
      }
      const endHeap = await heap();

      // A pendant logs in again from its own address although its username was banned.
      pendants.get("p1")?.removeAllListeners("close");
      await pendants.get("p1")?.endAsync();
      const again = await connect("p1", "pw-p1", "ec200-p1");

      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const counted = (reason: string) =>
        [
          ...metrics.matchAll(
            new RegExp(`linli_rejections_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`, "g"),
          ),
        ]
          .map((m) => Number(m[1]))
          .reduce((a, b) => a + b, 0);

      const p99 = quantile(duringAttack, 0.99);
      console.log(
        [
          `hostile: press->alert during the attack: ${pressesDuringAttack} presses, p50 ${quantile(duringAttack, 0.5).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, lost ${lost}; slowest ${slowest.join(", ")}`,
          `hostile: wrong passwords: ${JSON.stringify(report.wrongPasswords.results)} in ${report.wrongPasswords.seconds.toFixed(1)} s; bans started ${counted("ban-started")}, passwords checked ${counted("bad-password")}, refused unread: banned ${counted("address-banned")}, rate-limited ${counted("address-rate-limited")} (idle sockets' included)`,
          `hostile: 10 MB CONNECTs: ${report.bigConnects.count} closed within ${report.bigConnects.maxClosedAfterMs.toFixed(0)} ms (counted ${counted("connect-too-large")})`,
          `hostile: idle sockets: ${report.idle.opened} opened, ${report.idle.closedAtOnce} closed at once (rate), last closed after ${report.idle.maxLifetimeMs.toFixed(0)} ms`,
          `hostile: RSS start ${startRss.toFixed(0)} MB (${startHeap}), peak ${peakRss.toFixed(0)} MB, 30 s after ${endRss.toFixed(0)} MB (${endHeap})`,
          `hostile: client-id takeover: ${takeover}`,
        ].join("\n"),
      );

      expect(lost).toBe(0);
      expect(pressesDuringAttack).toBeGreaterThan(100);
      expect(p99).toBeLessThan(50);
      expect(drops).toEqual([]);
      expect(again.connected).toBe(true);
      // Guessing: at most a few windows' worth of passwords checked before the ban (the ones in
      // flight); after it, refused unread. The guessed account is a device's, so the address is
      // banned for device logins only (operators there may still log in: docs/security.md "Login
      // bans"): its connections are accepted within its rate and refused at their CONNECT.
      const answered = report.wrongPasswords.results["connack-4"] ?? 0;
      expect(answered).toBeGreaterThanOrEqual(10);
      expect(counted("bad-password")).toBeLessThan(200);
      expect(counted("ban-started")).toBeGreaterThanOrEqual(1);
      // (The idle sockets' rate-limited ones count here too; the password checks above are the bound.)
      expect(counted("address-banned") + counted("address-rate-limited")).toBeGreaterThan(4000);
      // 10 MB CONNECTs: closed from the header, long before 10 MB could have been read.
      expect(counted("connect-too-large")).toBe(ATTACK.bigConnects);
      expect(report.bigConnects.maxClosedAfterMs).toBeLessThan(5000);
      // Idle sockets: all closed by the gateway, none kept past the 5 s connect timeout (+ load margin).
      expect(report.idle.maxLifetimeMs).toBeLessThan(12_000);
      expect(peakRss).toBeLessThan(200);
      expect(endRss).toBeLessThan(startRss * 1.1);
      expect(takeover).toMatch(/^refused/);
    },
  );
});
