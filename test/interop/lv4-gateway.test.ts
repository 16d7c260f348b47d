/**
 * End to end, for the LV-4 code profile and for the same sensor written as
 * data: the gateway, configured from a site file (for the YAML profile one that
 * names examples/profiles/lv4.yaml by a path relative to the site file), polls
 * the simulated LV-4 over a real socat pty and publishes the datasheet's
 * alerts; an operator's set-point command reaches the sensor.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../gateway/config/load.js";
import { Gateway } from "../../gateway/gateway.js";
import { createLogger } from "../../gateway/log.js";
import { runSimCli } from "../../sim/modbus/cli.js";
import { connect, OPS, SITE, type TestClient } from "../support/harness.js";

const VARIANTS = [
  { name: "the YAML profile", model: "lv4-yaml", entry: "model: lv4-yaml, settings: { reserve: 3000 }" },
  { name: "the code profile", model: "lv4", entry: "model: lv4, reserve: 3000" },
];

describe.each(VARIANTS)("the gateway polls the simulated LV-4 over a socat pty with $name", (v) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("raises WATER_LEVEL_CRITICAL and FAULT from the sensor's registers; set_low writes the set-point", async () => {
    const sim = await runSimCli(["rtu", "--socat", "--units", "none", "--lv4-units", "9"]);
    cleanups.push(() => sim.stop());
    const tank = sim.tanks.get(9)!;
    // Under 30 % of the 4000 mm tank before the first poll (a first reading is believed at once).
    tank.setLevel(1000);

    const dir = mkdtempSync(path.join(tmpdir(), "linli-lv4-yaml-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(path.join(dir, "profiles"));
    copyFileSync("examples/profiles/lv4.yaml", path.join(dir, "profiles", "lv4.yaml"));
    const siteFile = path.join(dir, "site.yaml");
    writeFileSync(
      siteFile,
      [
        `site: { id: ${SITE} }`,
        "mqtt: { listeners: [{ host: 127.0.0.1, port: 0 }] }",
        `operators: [{ name: ${OPS.name}, password: ${OPS.password} }]`,
        "deviceProfiles: [profiles/lv4.yaml]",
        `buses: [{ id: rs485-1, type: rtu, path: "${sim.gatewayPath}", timeout: 1s }]`,
        "devices:",
        `  - { id: tank-1, ${v.entry}, bus: rs485-1, unit: 9, pollInterval: 200ms }`,
        "metrics: { enabled: false }",
        "log: { level: silent }",
        "storage: { enabled: false }",
        "",
      ].join("\n"),
    );
    const config = loadConfigFile(siteFile);
    const gw = await Gateway.start({ config, logger: createLogger({ level: "silent" }) });
    cleanups.push(() => gw.stop());
    const ops: TestClient = await connect(gw, OPS.name, OPS.password);
    cleanups.push(() => ops.end());
    await ops.subscribe(`linli/${SITE}/#`);

    // Telemetry carries the profile's model and the emulator's values.
    const t = await ops.waitFor((m) => m.topic === `linli/${SITE}/telemetry/${v.model}/tank-1`, 10_000);
    expect((t.json() as { metrics: Record<string, unknown> }).metrics.level).toEqual({
      value: 1000,
      unit: "mm",
    });
    expect((t.json() as { metrics: Record<string, unknown> }).metrics.tankHeight).toEqual({
      value: 4000,
      unit: "mm",
    });

    // Under 30 % of the tank height: WATER_LEVEL_CRITICAL at P2 at once (no hold time).
    const critical = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/alerts/p2/WATER_LEVEL_CRITICAL/tank-1` && m.payload.length > 0,
      10_000,
    );
    expect(critical.json()).toMatchObject({
      code: "WATER_LEVEL_CRITICAL",
      priority: 2,
      model: v.model,
      causes: ["level under 30 % of the tank height"],
    });

    tank.setFault(1);
    const fault = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/alerts/p3/FAULT/tank-1` && m.payload.length > 0,
      10_000,
    );
    expect(fault.json().causes).toEqual(["sensor fault: pressure cell open circuit"]);

    ops.publish(`linli/${SITE}/cmd/tank-1/set_low`, JSON.stringify({ id: "r1", value: 2000 }));
    const result = await ops.waitFor((m) => m.topic === `linli/${SITE}/cmd/tank-1/set_low/result`, 10_000);
    expect(result.json()).toMatchObject({ ok: true, id: "r1" });
    expect(tank.setPoints().low).toBe(2000);
    // A value outside the command's range is refused before anything goes on the bus.
    ops.publish(`linli/${SITE}/cmd/tank-1/set_low`, JSON.stringify({ id: "r2", value: 50 }));
    const refused = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/cmd/tank-1/set_low/result` && m.json().id === "r2",
      10_000,
    );
    expect(refused.json()).toMatchObject({ ok: false, error: "bad-value" });
    expect(tank.setPoints().low).toBe(2000);
  }, 90_000);
});
