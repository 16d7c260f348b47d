/**
 * A site file broken while the gateway was stopped (a restart after a refused reload, a power cut):
 * the real `linli start` runs on the last good configuration of its data directory instead of
 * exiting, raises CONFIG_REFUSED and names the field; a valid file reloaded closes it. A first
 * start with a broken file (no copy) still refuses. Built CLI, 127.0.0.1, stopped by its PID.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "./support/free-port.js";
import { type GatewayCli, mqttPortOf, startGatewayCli } from "./support/gateway-cli.js";
import { connectListening } from "./support/harness.js";
import { suiteTempDir } from "./support/temp-dir.js";

const run = promisify(execFile);
const CLI = "dist/cli/linli.js";

const site = (metricsPort: number) => `site:
  id: s1
mqtt:
  listeners:
    - host: 127.0.0.1
      port: 0
metrics:
  host: 127.0.0.1
  port: ${metricsPort}
console:
  enabled: false
operators:
  - name: ops
    password: ops-pw
devices:
  - id: p-1
    model: ec200
    password: pw-1
`;
const broken = (metricsPort: number) =>
  site(metricsPort).replace("password: pw-1", "password: pw-1\n    heartbeatInterval: soon");

type Started = GatewayCli;

function start(file: string, dataDir: string): Started {
  return startGatewayCli(file, dataDir);
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.pid === undefined) return;
  const exited = new Promise((r) => proc.once("exit", r));
  process.kill(proc.pid, "SIGTERM");
  await exited;
}

describe("a site file refused at start", () => {
  const dir = suiteTempDir("linli-last-good-");
  const children: ChildProcess[] = [];

  afterEach(async () => {
    for (const c of children.splice(0)) {
      // Ended by a signal, a child has signalCode set and exitCode null: its "exit" has been emitted.
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGKILL");
        await exited;
      }
    }
  });

  it("runs on the last good configuration, alerts CONFIG_REFUSED, closes it once a valid file is reloaded", async () => {
    const file = join(dir, "site.yaml");
    const dataDir = join(dir, "data");
    const metricsPort = await freePort();
    const SITE = site(metricsPort);
    writeFileSync(file, SITE);
    const first = start(file, dataDir);
    children.push(first.proc);
    await first.logged("gateway started");
    for (const deadline = Date.now() + 30_000; !existsSync(join(dataDir, "linli.pid")); ) {
      if (Date.now() > deadline) throw new Error("no pid file");
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(statSync(join(dataDir, "config.last-good.json")).mode & 0o777).toBe(0o600);
    await stop(first.proc);
    expect(first.proc.exitCode).toBe(0);

    writeFileSync(file, broken(metricsPort));
    const second = start(file, dataDir);
    children.push(second.proc);
    const refused = await second.logged("site file refused at start");
    expect(refused).toMatchObject({ level: 50, config: file });
    expect(String(refused.msg)).toMatch(/devices\[0\]\.heartbeatInterval: expected a duration/);
    const port = mqttPortOf(await second.logged("gateway started"));

    const ops = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: "ops",
      password: "ops-pw",
      clientId: "ops-console",
      reconnectPeriod: 0,
    });
    const pendant = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: "p-1",
      password: "pw-1",
      clientId: "ec200-p-1",
      reconnectPeriod: 0,
    });
    try {
      const seen: { topic: string; body: Record<string, unknown> }[] = [];
      ops.on("message", (topic, payload) => {
        if (payload.length > 0) seen.push({ topic, body: JSON.parse(payload.toString()) });
      });
      const waitFor = async (pred: (m: { topic: string; body: Record<string, unknown> }) => boolean) => {
        for (const deadline = Date.now() + 20_000; ; ) {
          const m = seen.find(pred);
          if (m) return m.body;
          if (Date.now() > deadline) throw new Error(`not seen: ${JSON.stringify(seen.map((x) => x.topic))}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      // Serving, and saying on what: /readyz 200 with its note, the start counted.
      const readyz = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      expect(readyz.status).toBe(200);
      expect(await readyz.text()).toBe(
        `ready: on the last good configuration (${file} refused; CONFIG_REFUSED open)\n`,
      );
      expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toMatch(
        /^linli_config_refused_starts_total 1$/m,
      );
      await ops.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
      const alert = await waitFor((m) => m.topic === "linli/s1/alerts/p2/CONFIG_REFUSED/gateway");
      expect(alert).toMatchObject({ code: "CONFIG_REFUSED", priority: 2, deviceId: "gateway" });
      expect(JSON.stringify(alert)).toMatch(/devices\[0\]\.heartbeatInterval/);

      await pendant.publishAsync(
        "devices/ec200/p-1/up",
        JSON.stringify({ t: "evt", seq: 1, ts: Date.now(), evt: "press", bat: 90, rssi: -60 }),
        { qos: 1 },
      );
      expect(await waitFor((m) => m.topic === "linli/s1/alerts/p1/EMERGENCY_CALL/p-1")).toMatchObject({
        code: "EMERGENCY_CALL",
        state: "active-unacknowledged",
      });

      // The file corrected and reloaded: CONFIG_REFUSED closed, with a reason.
      writeFileSync(file, SITE);
      const reloaded = await run(process.execPath, [resolve(CLI), "reload", "--data-dir", dataDir], {
        timeout: 20_000,
      });
      expect(reloaded.stdout).toContain("applied by the gateway");
      const closed = await waitFor(
        (m) => m.topic === "linli/s1/alerts/p2/CONFIG_REFUSED/gateway" && m.body.state === "closed",
      );
      expect(closed).toMatchObject({ code: "CONFIG_REFUSED", state: "closed" });
      // Why it closed, as other closes by the gateway say (not 已结束 alone).
      expect(closed.message).toMatch(/；已结束：配置已修正并重新加载$/);
      const event = await waitFor(
        (m) =>
          m.topic === "linli/s1/alerts/events" && m.body.code === "CONFIG_REFUSED" && m.body.to === "closed",
      );
      expect(event).toMatchObject({ by: "gateway", reason: `valid site file applied: ${file}` });
      expect(await (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).text()).toBe("ready\n");
    } finally {
      await pendant.endAsync(true);
      await ops.endAsync(true);
      await stop(second.proc);
    }
    expect(second.proc.exitCode).toBe(0);
  }, 120_000);

  it("a CONFIG_REFUSED closed by a start with the corrected file says the gateway restarted, not reloaded", async () => {
    const file = join(dir, "restart.yaml");
    const dataDir = join(dir, "restart-data");
    const metricsPort = await freePort();
    writeFileSync(file, site(metricsPort));
    const first = start(file, dataDir);
    children.push(first.proc);
    await first.logged("gateway started");
    await stop(first.proc);

    writeFileSync(file, broken(metricsPort));
    const second = start(file, dataDir);
    children.push(second.proc);
    const port = mqttPortOf(await second.logged("gateway started"));
    // A persistent session: the close at the next start is queued for it, as for a console.
    const session = {
      username: "ops",
      password: "ops-pw",
      clientId: "ops-restart",
      clean: false,
      reconnectPeriod: 0,
    };
    const ops = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, session);
    const seen: Record<string, unknown>[] = [];
    const collect = (topic: string, payload: Buffer) => {
      if (topic === "linli/s1/alerts/p2/CONFIG_REFUSED/gateway" && payload.length > 0)
        seen.push(JSON.parse(payload.toString()));
    };
    ops.on("message", collect);
    await ops.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
    for (const deadline = Date.now() + 20_000; seen.length === 0; ) {
      if (Date.now() > deadline) throw new Error("no CONFIG_REFUSED");
      await new Promise((r) => setTimeout(r, 20));
    }
    await ops.endAsync();
    await stop(second.proc);

    writeFileSync(file, site(metricsPort));
    const third = start(file, dataDir);
    children.push(third.proc);
    const port3 = mqttPortOf(await third.logged("gateway started"));
    // Listening before the CONNACK: the close was queued for this session and follows it at once
    // (what came with the CONNACK is taken from the listener, what comes later from `collect`).
    const listening = await connectListening(`mqtt://127.0.0.1:${port3}`, session);
    for (const m of listening.messages) collect(m.topic, m.payload);
    const back = listening.client;
    back.on("message", collect);
    try {
      for (const deadline = Date.now() + 20_000; !seen.some((m) => m.state === "closed"); ) {
        if (Date.now() > deadline) throw new Error(`not closed: ${JSON.stringify(seen.map((m) => m.state))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const closed = seen.find((m) => m.state === "closed") as Record<string, unknown>;
      // No reload happened: the close says what did (before: 配置已修正并重新加载).
      expect(closed.message).toMatch(/；已结束：配置已修正，网关已重新启动$/);
    } finally {
      await back.endAsync(true);
      await stop(third.proc);
    }
    expect(third.proc.exitCode).toBe(0);
  }, 120_000);

  it("a first start with a broken file, one whose copy a newer version wrote, or of another file, still refuses", async () => {
    const file = join(dir, "first.yaml");
    writeFileSync(file, broken(0));
    const start = (dataDir: string) =>
      run(process.execPath, [resolve(CLI), "start", "--config", file, "--data-dir", dataDir], {
        timeout: 20_000,
      }).then(
        () => ({ code: 0, stderr: "" }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    const fresh = join(dir, "fresh");
    const r = await start(fresh);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`${file}:\\d+: devices\\[0\\]\\.heartbeatInterval: expected a duration`),
    );
    // A refused start leaves no copy behind: the next start refuses too.
    expect(existsSync(join(fresh, "config.last-good.json"))).toBe(false);

    const newer = join(dir, "newer");
    mkdirSync(newer);
    writeFileSync(
      join(newer, "config.last-good.json"),
      JSON.stringify({ format: 99, source: file, savedAt: 0, input: { site: { id: "s1" } } }),
    );
    const n = await start(newer);
    expect(n.code).toBe(2);
    expect(n.stderr).toContain("format 99 is newer than this gateway's (1): written by a newer version");
    expect(n.stderr).toMatch(/devices\[0\]\.heartbeatInterval: expected a duration/);

    // The copy of another site file (a directory it shares, the file renamed): not this file's.
    const other = join(dir, "other");
    mkdirSync(other);
    const otherSite = {
      site: { id: "elsewhere" },
      mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
      metrics: { enabled: false },
      console: { enabled: false },
    };
    writeFileSync(
      join(other, "config.last-good.json"),
      JSON.stringify({ format: 1, source: join(dir, "elsewhere.yaml"), savedAt: 0, input: otherSite }),
    );
    const o = await start(other);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain(
      `is of another site file (${join(dir, "elsewhere.yaml")}), not of ${file}: not used`,
    );
    expect(o.stderr).toMatch(/devices\[0\]\.heartbeatInterval: expected a duration/);
  }, 60_000);
});
