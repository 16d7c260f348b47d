/**
 * `linli sim` against a real gateway whose per-address login limit is smaller than the fleet
 * (docs/security.md: beyond the burst a connection is closed at accept). The devices the report
 * counts as failed must not keep reconnecting behind it: once attached, the gateway sees no more
 * login attempts. Needs `npm run build`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./support/free-port.js";
import { groupAlive, killGroup, spawnGroup } from "./support/process-group.js";
import { suiteTempDir } from "./support/temp-dir.js";

const CLI = (JSON.parse(readFileSync("package.json", "utf8")) as { bin: { linli: string } }).bin.linli;

/** The gateway's count of connections refused at accept for the per-address login rate. */
async function addressRateLimited(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const m = /^linli_rejections_total\{[^}]*reason="address-rate-limited"[^}]*\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

describe("linli sim: a gateway that refuses part of the fleet's logins", () => {
  const dir = suiteTempDir("linli-sim-login-");
  const config = join(dir, "site.yaml");
  let port = 0;
  let metricsPort = 0;
  let gateway: ChildProcess | undefined;

  beforeAll(async () => {
    port = await freePort();
    metricsPort = await freePort();
    const write = spawn(process.execPath, [
      CLI,
      "sim",
      "--scale",
      "25",
      "--write-config",
      config,
      "--gateway",
      `mqtt://127.0.0.1:${port}`,
    ]);
    expect(await new Promise((r) => write.once("exit", r))).toBe(0);
    // A tiny login limit in place of the one the simulator writes: 10 at once, then 1 a second.
    const yaml = readFileSync(config, "utf8");
    writeFileSync(
      config,
      `${yaml.slice(0, yaml.indexOf("limits:"))}limits:\n  login:\n    attemptsPerSecond: 1\n    attemptBurst: 10\n`,
    );
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
        String(metricsPort),
      ],
      { stdio: "ignore" },
    );
    const end = Date.now() + 15_000;
    for (;;) {
      const ok = await addressRateLimited(metricsPort).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (Date.now() > end) throw new Error("gateway did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 30_000);

  afterAll(async () => {
    if (gateway) {
      await killGroup(gateway);
      expect(groupAlive(gateway)).toBe(false);
    }
  });

  it("reports how many connected, and the failed ones stop trying", async () => {
    const sim = spawnGroup(
      process.execPath,
      [CLI, "sim", "--config", config, "--gateway", `mqtt://127.0.0.1:${port}`, "--duration", "5"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    sim.stderr?.setEncoding("utf8");
    const attached = new Promise<string>((resolve) =>
      sim.stderr?.on("data", (t: string) => {
        stderr += t;
        const m = /attached to \S+: (\d+)\/50 MQTT devices/.exec(stderr);
        if (m) resolve(m[1] as string);
      }),
    );
    const exited = new Promise<number | null>((r) => sim.once("exit", r));
    try {
      const connected = Number(await attached);
      expect(connected).toBeLessThan(50);
      const before = await addressRateLimited(metricsPort);
      expect(before).toBeGreaterThan(0);
      // mqtt.js would retry every second: over 2.5 s, some 100 more refusals.
      await new Promise((r) => setTimeout(r, 2_500));
      expect(await addressRateLimited(metricsPort)).toBe(before);
      // Attaching was the whole run, and part of the fleet could not connect: it failed (exit 1),
      // saying how many and why in a few lines.
      expect(await exited).toBe(1);
      expect(stderr).toMatch(new RegExp(`failed: ${50 - connected} of 50 MQTT devices could not connect`));
      expect(stderr).toMatch(/^ {2}\d+ devices?: .+ \(\S+/m);
      expect(stderr.split("\n").length).toBeLessThan(20);
    } finally {
      await killGroup(sim, 1_000);
    }
  }, 30_000);
});
