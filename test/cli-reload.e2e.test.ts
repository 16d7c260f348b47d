/**
 * `linli reload` against a real `linli start` process (built CLI, 127.0.0.1):
 * the site file is edited, `linli reload --data-dir` checks it and sends
 * SIGHUP, the gateway applies it and reports; an invalid file is refused
 * before anything is sent. The spawned gateway is stopped by its PID.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { mqttPortOf, startGatewayCli } from "./support/gateway-cli.js";
import { suiteTempDir } from "./support/temp-dir.js";

const run = promisify(execFile);
const CLI = "dist/cli/linli.js";

async function linli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return linliIn(process.cwd(), ...args);
}

async function linliIn(
  cwd: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [resolve(CLI), ...args], { timeout: 20_000, cwd });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const siteFile = (devices: string, listenerPort = 0) => `site:
  id: s1
mqtt:
  listeners:
    - host: 127.0.0.1
      port: ${listenerPort}
metrics:
  enabled: false
operators:
  - name: ops
    password: ops-pw
devices:
  - id: p-1
    model: ec200
    password: pw-1
${devices}`;

const NEW_DEVICE = `  - id: p-new
    model: ec200
    password: pw-new
`;

describe("linli reload", () => {
  const dir = suiteTempDir("linli-cli-reload-");
  const dataDir = join(dir, "data");
  const file = join(dir, "site.yaml");
  let child: ChildProcess | null = null;

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill("SIGKILL");
      await new Promise((r) => child?.once("exit", r));
    }
  });

  it("applies an edited file to the running gateway via SIGHUP and refuses an invalid one", async () => {
    writeFileSync(file, siteFile(""));
    const cli = startGatewayCli(file, dataDir);
    child = cli.proc;
    const { proc, logged } = cli;
    const port = mqttPortOf(await logged("gateway started"));

    // The CLI writes its pid file just after the gateway logs that it started.
    const pidFile = join(dataDir, "linli.pid");
    for (const deadline = Date.now() + 30_000; !existsSync(pidFile); ) {
      if (Date.now() > deadline) throw new Error(`no ${pidFile}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const pidInfo = JSON.parse(readFileSync(pidFile, "utf8"));
    expect(pidInfo).toMatchObject({ pid: proc.pid, config: file });

    // The file edited: a device added, a listener changed (that one needs a restart).
    writeFileSync(file, siteFile(NEW_DEVICE, 1));
    const applied = await linli("reload", "--data-dir", dataDir);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain(`${file}: applied by the gateway (pid ${proc.pid})`);
    expect(applied.stdout).toContain("devices: added p-new");
    expect(applied.stdout).toContain("needs a restart (running values kept): mqtt.listeners");
    expect(await logged("mqtt.listeners changed: needs a restart")).toMatchObject({
      setting: "mqtt.listeners",
    });

    // The change is live: the new device connects to the running broker and raises an alert.
    const ops = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: "ops",
      password: "ops-pw",
      clientId: "ops-console",
      reconnectPeriod: 0,
    });
    const fresh = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      username: "p-new",
      password: "pw-new",
      clientId: "ec200-p-new",
      reconnectPeriod: 0,
    });
    try {
      const alert = new Promise<Record<string, unknown>>((resolve) =>
        ops.on("message", (topic, payload) => {
          if (topic === "linli/s1/alerts/p1/EMERGENCY_CALL/p-new") resolve(JSON.parse(payload.toString()));
        }),
      );
      await ops.subscribeAsync("linli/s1/alerts/p1/#", { qos: 1 });
      await fresh.publishAsync(
        "devices/ec200/p-new/up",
        JSON.stringify({ t: "evt", seq: 1, ts: Date.now(), evt: "press", bat: 90, rssi: -60 }),
        { qos: 1 },
      );
      expect(await alert).toMatchObject({
        code: "EMERGENCY_CALL",
        deviceId: "p-new",
        state: "active-unacknowledged",
      });
    } finally {
      await fresh.endAsync(true);
      await ops.endAsync(true);
    }

    // p-new, its call open, becomes a door contact: its call is closed as replaced, not removed.
    writeFileSync(file, siteFile(NEW_DEVICE.replace("model: ec200", "model: ds10"), 1));
    const replaced = await linli("reload", "--data-dir", dataDir);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toContain("devices: replaced p-new");
    expect(replaced.stdout).toContain("alerts closed (device replaced by another model): 1");
    expect(replaced.stdout).not.toContain("device or household removed");

    // An invalid file: exit 2 with config check's message; the gateway is not signalled.
    writeFileSync(file, `${siteFile(NEW_DEVICE, 1)}    heartbeatInterval: soon\n`);
    const reportBefore = readFileSync(join(dataDir, "linli.reload.json"), "utf8");
    const refused = await linli("reload", "--data-dir", dataDir);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      new RegExp(`${file}:\\d+: devices\\[1\\]\\.heartbeatInterval: expected a duration`),
    );
    const check = await linli("config", "check", file);
    expect(refused.stderr).toBe(check.stderr);
    expect(readFileSync(join(dataDir, "linli.reload.json"), "utf8")).toBe(reportBefore);
    expect(proc.exitCode).toBeNull();

    // Stopped by its PID: a clean stop removes the pid file; reload then finds no gateway.
    process.kill(proc.pid as number, "SIGTERM");
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r)));
    expect(proc.exitCode).toBe(0);
    expect(existsSync(join(dataDir, "linli.pid"))).toBe(false);
    const none = await linli("reload", "--data-dir", dataDir);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no running gateway found");
  }, 120_000);

  it("finds the gateway started without --data-dir where start put it: storage.dir of the file", async () => {
    // Relative paths as a user types them, from the site's directory: storage.dir is read from the
    // working directory, by start and by reload alike.
    const site = "site-storage.yaml";
    writeFileSync(join(dir, site), `${siteFile("")}storage:\n  dir: state\n`);
    const proc = spawn(process.execPath, [resolve(CLI), "start", "--config", site, "--log-format", "json"], {
      cwd: dir,
      stdio: ["ignore", "ignore", "ignore"],
    });
    try {
      const pidFile = join(dir, "state", "linli.pid");
      for (const deadline = Date.now() + 30_000; !existsSync(pidFile); ) {
        if (proc.exitCode !== null) throw new Error(`gateway exited (${proc.exitCode})`);
        if (Date.now() > deadline) throw new Error(`no ${pidFile}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      writeFileSync(join(dir, site), `${siteFile(NEW_DEVICE)}storage:\n  dir: state\n`);
      const applied = await linliIn(dir, "reload", "--config", site);
      expect(applied.stderr).toBe("");
      expect(applied.code).toBe(0);
      expect(applied.stdout).toContain(`${join(dir, site)}: applied by the gateway (pid ${proc.pid})`);
      expect(applied.stdout).toContain("devices: added p-new");
      // Another file is not the running gateway's: nothing is sent.
      writeFileSync(join(dir, "other.yaml"), `${siteFile("")}storage:\n  dir: state\n`);
      const other = await linliIn(dir, "reload", "--config", "other.yaml");
      expect(other.code).toBe(1);
      expect(other.stderr).toContain(`runs ${join(dir, site)}, not ${join(dir, "other.yaml")}`);
      // Without --config nor --data-dir, the default directory is looked in, and the message says how to point elsewhere.
      const none = await linliIn(dir, "reload");
      expect(none.code).toBe(1);
      expect(none.stderr).toContain(`${join(dir, ".linli-data")}/linli.pid is missing`);
      expect(none.stderr).toContain("--config FILE");
    } finally {
      if (proc.exitCode === null) {
        proc.kill("SIGTERM");
        await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r)));
      }
    }
    expect(proc.exitCode).toBe(0);
  }, 120_000);
});
