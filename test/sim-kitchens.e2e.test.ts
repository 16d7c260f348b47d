/**
 * The kitchens-and-tanks scenario as an integrator runs it, against a real
 * gateway: `linli sim --scale 10 --scenario kitchens-and-tanks --gateway-cmd
 * "linli start ..."` writes the site (10 households, the GD-2s and LV-4s the
 * scenario asks for), opens a socat bus for the tanks, starts the gateway and
 * judges its alerts. Gas leaks, a jammed valve, a valve fault, tanks drawn
 * down and a failing sensor each give the datasheets' alerts; cooking,
 * single bad polls and a cold night whose heater holds the water give none. A
 * kitchen's power cut (a minute of silence, back on battery with `ts` 0 and
 * `mains` false, mains back before POWER_FAIL's 10 minutes) gives no
 * DEVICE_LOST, and its `ts` 0 readings are accepted (seen on telemetry).
 * Needs `npm run build` and socat (skipped with the reason without it).
 *
 * The simulator stops the gateway it started (its own process group); the
 * test checks the port is closed afterwards and removes its temp dir.
 */
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { socatMissingReason } from "../sim/modbus/pty.js";
import { freePort } from "./support/free-port.js";
import { CLI, listens, runSim } from "./support/sim-run.js";
import { suiteTempDir } from "./support/temp-dir.js";

const noSocat = socatMissingReason();
if (noSocat) console.warn(`sim-kitchens e2e skipped: ${noSocat}`);

describe.skipIf(noSocat !== undefined)("linli sim kitchens-and-tanks against a real gateway", () => {
  const dir = suiteTempDir("linli-sim-kitchens-");

  it("every leak, jammed valve, fault and low tank gives its alerts once; cooking and glitches nothing; exit 0", async () => {
    expect(existsSync(CLI)).toBe(true);
    const port = await freePort();
    const r = await runSim(
      dir,
      port,
      ["--scale", "10", "--scenario", "kitchens-and-tanks", "--seed", "3"],
      200_000,
    );
    const gatewayLog = r.gatewayLog;
    expect(r.code, r.explain()).toBe(0);
    expect(r.stdout).toMatch(/^PASS$/m);
    const report = r.report();
    expect(report.passed).toBe(true);
    // 10 households (pendant + door) and the scenario's 10 kitchens; its 4 tanks on the bus.
    expect(report.devices).toMatchObject({ mqtt: 30, connected: 30, failed: 0, rtuSlaves: 4 });
    const byCode = Object.fromEntries(report.codes.map((c) => [c.code, c]));
    const once = (n: number) => ({ expected: n, received: n, missing: 0, duplicated: 0, unexpected: 0 });
    // 3 leaks + the jammed valve's leak; the valve fault and the tank's sensor fault.
    expect(byCode.GAS_LEAK).toMatchObject(once(4));
    expect(byCode.GAS_VALVE_NOT_CLOSED).toMatchObject(once(1));
    expect(byCode.FAULT).toMatchObject(once(2));
    expect(byCode.WATER_LEVEL_LOW).toMatchObject(once(2));
    expect(byCode.WATER_LEVEL_CRITICAL).toMatchObject(once(1));
    // Cooking, the glitching cell, the cold night and the power cut (no DEVICE_LOST, no
    // POWER_FAIL yet): nothing, nor anything else on the simulator's devices.
    expect(report.unexpected).toEqual([]);
    expect(report.codes.map((c) => c.code).sort()).toEqual([
      "FAULT",
      "GAS_LEAK",
      "GAS_VALVE_NOT_CLOSED",
      "WATER_LEVEL_CRITICAL",
      "WATER_LEVEL_LOW",
    ]);
    // The power cut: the detector came back with ts 0 and mains false and the gateway accepted it.
    expect(report.readings).toEqual([
      expect.objectContaining({ what: "hb with ts 0 and mains false accepted", seen: true }),
    ]);
    expect(report.readings[0]?.afterMs).toBeLessThan(15_000);
    expect(r.stdout).toMatch(/^readings: 1\/1 published/m);
    expect(report.run.phases.map((p) => p.do)).toEqual(expect.arrayContaining(["power-cut", "tank-winter"]));
    // The site has automatic shut-off: the gateway sent valve_close to each leaking kitchen.
    const automatic = gatewayLog
      .split("\n")
      .filter((l) => l.includes('"automatic command"') && l.includes("valve_close"));
    expect(automatic.length).toBeGreaterThanOrEqual(4);
    // The simulator stopped the gateway it started.
    expect(await listens(port)).toBe(false);
  }, 210_000);
});
