/**
 * `linli sim` as an integrator runs it, against a real gateway process:
 * `--scale 3 --write-config` makes the site, `linli start` serves it, and the
 * smoke-test scenario passes (exit 0, every alert received, nothing else); a
 * scenario that expects an alert the gateway never raises fails (exit 1) and
 * says which. Needs `npm run build` (npm test builds first).
 *
 * The gateway runs in a process group of its own (killed at the end) with a
 * data directory in a temp dir that is removed.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimReport } from "../sim/scenario/report.js";
import { freePort } from "./support/free-port.js";
import { groupAlive, killGroup, spawnGroup } from "./support/process-group.js";
import { CLI, simCli, untilListening } from "./support/sim-run.js";
import { suiteTempDir } from "./support/temp-dir.js";

describe("linli sim against a real gateway", () => {
  const dir = suiteTempDir("linli-sim-e2e-");
  const config = join(dir, "site.yaml");
  let port = 0;
  let gateway: ChildProcess | undefined;
  let gatewayLog = "";

  beforeAll(async () => {
    expect(existsSync(CLI)).toBe(true);
    port = await freePort();
    const written = await simCli([
      "--scale",
      "3",
      "--write-config",
      config,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
    ]);
    expect(written.code, written.stderr).toBe(0);
    gateway = spawnGroup(
      process.execPath,
      [
        CLI,
        "start",
        "--config",
        config,
        "--data-dir",
        join(dir, "data"),
        "--metrics-port",
        "0",
        "--log-format",
        "json",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    gateway.stdout?.on("data", (d) => (gatewayLog += d));
    gateway.stderr?.on("data", (d) => (gatewayLog += d));
    await untilListening(port, 15_000);
  }, 30_000);

  afterAll(async () => {
    if (gateway) {
      await killGroup(gateway);
      expect(groupAlive(gateway)).toBe(false);
    }
  });

  it("smoke-test passes: exit 0, every expected alert once, nothing else, a JSON report", async () => {
    const json = join(dir, "smoke.json");
    const r = await simCli([
      "--config",
      config,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
      "--scenario",
      "smoke-test",
      "--seed",
      "7",
      "--json",
      json,
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}\n${gatewayLog.slice(-2000)}`).toBe(0);
    expect(r.stdout).toMatch(/^PASS$/m);
    const report = JSON.parse(readFileSync(json, "utf8")) as SimReport;
    expect(report.passed).toBe(true);
    expect(report.devices).toMatchObject({ mqtt: 6, connected: 6, failed: 0 });
    const byCode = Object.fromEntries(report.codes.map((c) => [c.code, c]));
    for (const code of ["EMERGENCY_CALL", "FALL_DETECTED", "BATTERY_LOW"]) {
      expect(byCode[code]).toMatchObject({
        expected: 1,
        received: 1,
        missing: 0,
        duplicated: 0,
        unexpected: 0,
      });
    }
    expect(report.latency.count).toBe(3);
    expect(report.latency.maxMs).toBeLessThanOrEqual(5_000);
  }, 45_000);

  it("the same seed runs again on the same gateway and passes (the alerts it left were acknowledged, its seqs are new)", async () => {
    const r = await simCli([
      "--config",
      config,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
      "--scenario",
      "smoke-test",
      "--seed",
      "7",
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 45_000);

  it("a broken expectation fails the run: exit 1, the missing and the unexpected alert named", async () => {
    // A press announced as a TAMPER: the gateway raises EMERGENCY_CALL, so TAMPER is missing
    // and the EMERGENCY_CALL is unexpected.
    const scenario = join(dir, "broken.yaml");
    writeFileSync(
      scenario,
      [
        "name: broken-on-purpose",
        "description: a press that claims to be a tamper",
        "settle: 1s",
        "latency:",
        "  max: 2s",
        "phases:",
        "  - at: 200ms",
        "    do: press",
        "    expect: TAMPER",
        "",
      ].join("\n"),
    );
    const json = join(dir, "broken.json");
    const r = await simCli([
      "--config",
      config,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
      "--scenario",
      scenario,
      "--json",
      json,
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(1);
    expect(r.stdout).toMatch(/^FAIL 1 expected alert\(s\) missing: TAMPER pendant-\d+$/m);
    const report = JSON.parse(readFileSync(json, "utf8")) as SimReport;
    expect(report.passed).toBe(false);
    expect(report.missing).toEqual([expect.objectContaining({ code: "TAMPER" })]);
    expect(report.unexpected).toEqual([expect.objectContaining({ code: "EMERGENCY_CALL" })]);
  }, 45_000);

  it("a scenario error names the file, the line and the field (exit 2)", async () => {
    const scenario = join(dir, "invalid.yaml");
    writeFileSync(scenario, "name: bad\ndescription: x\nphases:\n  - at: soon\n    do: press\n");
    const r = await simCli([
      "--config",
      config,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
      "--scenario",
      scenario,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${scenario}:4: phases.0.at: not a duration`);
  });
});
