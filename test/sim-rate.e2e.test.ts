/**
 * The report says what the gateway dropped over its devices' rates: a gateway whose per-device
 * limit is tighter than the site file the simulator was given (10 s between messages, burst 1)
 * drops most of a load the simulator judged within the documented 1 msg/s. The drops are
 * acknowledged like any message, so only the gateway's /metrics can tell; the report reads it
 * before and after the run (`--metrics`). Needs `npm run build` (npm test builds first).
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import type { SimReport } from "../sim/scenario/report.js";
import { freePort } from "./support/free-port.js";
import { groupAlive, killGroup, spawnGroup } from "./support/process-group.js";
import { CLI, simCli, untilListening } from "./support/sim-run.js";
import { suiteTempDir } from "./support/temp-dir.js";

describe("linli sim: what the gateway dropped over the per-device rate is in the report", () => {
  const dir = suiteTempDir("linli-sim-rate-");
  const site = join(dir, "site.yaml");
  let port = 0;
  let metricsPort = 0;
  let gateway: ChildProcess | undefined;
  let gatewayLog = "";

  beforeAll(async () => {
    expect(existsSync(CLI)).toBe(true);
    port = await freePort();
    metricsPort = await freePort();
    const written = await simCli([
      "--scale",
      "3",
      "--write-config",
      site,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
    ]);
    expect(written.code, written.stderr).toBe(0);
    // The gateway's own file: the same site with a tighter limit than the one the simulator reads.
    const config = parse(readFileSync(site, "utf8")) as { limits: Record<string, unknown> };
    const tight = { perSecond: 0.1, burst: 1 };
    config.limits.deviceRate = { models: { ec200: tight, ds10: tight } };
    const gatewayFile = join(dir, "gateway.yaml");
    writeFileSync(gatewayFile, stringify(config));
    gateway = spawnGroup(
      process.execPath,
      [
        CLI,
        "start",
        "--config",
        gatewayFile,
        "--data-dir",
        join(dir, "data"),
        "--metrics-port",
        String(metricsPort),
        "--log-format",
        "json",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    gateway.stdout?.on("data", (d) => (gatewayLog += d));
    gateway.stderr?.on("data", (d) => (gatewayLog += d));
    await untilListening(port, 15_000);
    await untilListening(metricsPort, 15_000);
  }, 30_000);

  afterAll(async () => {
    if (gateway) {
      await killGroup(gateway);
      expect(groupAlive(gateway)).toBe(false);
    }
  });

  it("a load of 1 msg/s per device: the gateway's drops counted from its /metrics, by model", async () => {
    const scenario = join(dir, "load.yaml");
    writeFileSync(
      scenario,
      "name: load\ndescription: every device 1 msg/s for 5 s\nsettle: 1s\nphases:\n  - { do: steady, rate: 6, duration: 5s }\n",
    );
    const json = join(dir, "load.json");
    const r = await simCli([
      "--config",
      site,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
      "--scenario",
      scenario,
      "--metrics",
      `http://127.0.0.1:${metricsPort}`,
      "--json",
      json,
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}\n${gatewayLog.slice(-2000)}`).toBe(0);
    const report = JSON.parse(readFileSync(json, "utf8")) as SimReport;
    expect(report.run.loadSent).toBe(30);
    const dropped = report.gatewayRefusals.byReason?.["rate-limited"] ?? {};
    // 5 messages a device, 1 in the bucket (and none refilled in 5 s at 0.1/s): about 4 dropped each.
    const total = Object.values(dropped).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(18);
    expect(total).toBeLessThanOrEqual(30);
    expect(Object.keys(dropped).sort()).toEqual(["ds10", "ec200"]);
    expect(r.stdout).toContain(`gateway refused: ${total} message(s) dropped over their device's rate (`);
    expect(r.stdout).toContain(`(http://127.0.0.1:${metricsPort}/metrics, whole gateway)`);
    expect(r.stdout).toMatch(/^alert flood: none seen$/m);
  }, 45_000);
});
