import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  type IncidentPhase,
  incidentCount,
  listScenarios,
  loadScenario,
  loadScenarioFile,
  parseScenario,
  ScenarioError,
} from "./schema.js";

/** The message a scenario with these phases is refused with ("" if it is accepted). */
function errors(phases: unknown[]): string {
  try {
    parseScenario({ name: "bad", description: "d", phases }, "bad.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as Error).message;
  }
  return "";
}

describe("scenario files", () => {
  const dir = mkdtempSync(join(tmpdir(), "linli-scenario-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("ships the six scenarios of the issue, kitchens-and-tanks and welfare-check, all valid", () => {
    expect(listScenarios().map((s) => s.name)).toEqual([
      "evening-peak",
      "fire-during-flood",
      "kitchens-and-tanks",
      "malformed-storm",
      "restart-during-storm",
      "smoke-test",
      "welfare-check",
      "winter-night",
    ]);
    expect(loadScenario("restart-during-storm").scenario.needs).toContain("gateway-control");
  });

  it("reads durations and shares", () => {
    const s = parseScenario(
      {
        name: "x",
        description: "y",
        latency: { p99: "1.5s", max: 3 },
        phases: [{ at: "250ms", do: "steady", rate: 10, duration: "2m", malformed: "5%" }],
      },
      "x.yaml",
    );
    expect(s.latency).toEqual({ p99: 1500, max: 3000 });
    expect(s.phases[0]).toMatchObject({ at: 250, duration: 120_000, malformed: 0.05 });
  });

  it("names the file, the line and the field of every error", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      "name: bad\ndescription: d\nphases:\n  - do: press\n    count: 0\n  - do: explode\n  - do: steady\n    rate: 5\n",
    );
    let message = "";
    try {
      loadScenarioFile(file);
    } catch (err) {
      expect(err).toBeInstanceOf(ScenarioError);
      message = (err as Error).message;
    }
    expect(message).toContain(`${file}:5: phases.0.count:`);
    expect(message).toContain(`${file}:6: phases.1.do:`);
    expect(message).toContain(`${file}:7: phases.2: steady needs rate and duration`);
  });

  it("a count over the targets listed, or a target listed twice, is refused with the file, line and field", () => {
    const file = join(dir, "targets.yaml");
    writeFileSync(
      file,
      "name: t\ndescription: d\nphases:\n  - do: press\n    targets: [p-1, p-2, p-3]\n    count: 4\n  - do: fall\n    targets: [p-1, p-1]\n",
    );
    let message = "";
    try {
      loadScenarioFile(file);
    } catch (err) {
      expect(err).toBeInstanceOf(ScenarioError);
      message = (err as Error).message;
    }
    expect(message).toContain(
      `${file}:6: phases.0.count: count 4 is more than the 3 targets listed: list more targets, or leave count out to drive all of them`,
    );
    expect(message).toContain(`phases.1.targets.1: p-1 is listed twice`);
    // Within the targets, count picks fewer of them; left out, the phase drives them all.
    const s = parseScenario(
      {
        name: "t",
        description: "d",
        phases: [
          { do: "press", targets: ["p-1", "p-2", "p-3"] },
          { do: "press", targets: ["p-1", "p-2", "p-3"], count: 2 },
          { do: "press" },
          { do: "press", count: 5 },
        ],
      },
      "t.yaml",
    );
    expect(s.phases.map((p) => incidentCount(p as IncidentPhase))).toEqual([3, 2, 1, 5]);
  });

  it("a gateway restart must be declared as needing gateway control", () => {
    expect(() =>
      parseScenario({ name: "r", description: "d", phases: [{ do: "gateway-restart" }] }, "r.yaml"),
    ).toThrow(/r\.yaml: needs: a gateway-restart phase needs gateway-control/);
  });

  it("an unknown name lists the shipped ones", () => {
    expect(() => loadScenario("nope")).toThrow(/no scenario nope \(shipped: evening-peak, .*smoke-test/);
  });

  it("reads the GD-2 and LV-4 phases with their parameters", () => {
    const s = parseScenario(
      {
        name: "gas",
        description: "d",
        scale: { kitchens: 4, tanks: 2 },
        phases: [
          { at: "1s", do: "gas-leak", count: 3, within: "4s", rate: 3, peak: 50, ventilateAfter: "30s" },
          { do: "cooking", peak: 8, duration: "10s" },
          { do: "jammed-valve", expect: ["GAS_LEAK", "GAS_VALVE_NOT_CLOSED"] },
          { do: "valve-fault" },
          { do: "tank-drawdown", targets: ["tank-1"], to: "25%", rate: 60, refillAfter: "5s" },
          { do: "tank-drawdown", to: 1800 },
          { do: "tank-glitch", glitches: 5 },
          { do: "tank-fault", fault: 4, duration: "15s" },
        ],
      },
      "gas.yaml",
    );
    expect(s.scale).toEqual({ kitchens: 4, tanks: 2 });
    expect(s.phases[0]).toMatchObject({
      at: 1000,
      count: 3,
      within: 4000,
      rate: 3,
      peak: 50,
      ventilateAfter: 30_000,
    });
    expect(s.phases[1]).toMatchObject({ peak: 8, duration: 10_000 });
    expect(s.phases[2]).toMatchObject({ expect: ["GAS_LEAK", "GAS_VALVE_NOT_CLOSED"] });
    expect(s.phases[4]).toMatchObject({ to: "25%", rate: 60, refillAfter: 5000 });
    expect(s.phases[5]).toMatchObject({ to: 1800 });
    expect(s.phases[6]).toMatchObject({ glitches: 5 });
    expect(s.phases[7]).toMatchObject({ fault: 4, duration: 15_000 });
    // Without a scale section, --scale adds nothing.
    expect(parseScenario({ name: "n", description: "d", phases: [{ do: "press" }] }, "n.yaml").scale).toEqual(
      {
        kitchens: 0,
        tanks: 0,
      },
    );
  });

  it("refuses a GD-2 or LV-4 phase's bad parameters, naming the file and the field", () => {
    // Cooking at the detector's low set-point is a leak, and a leak under it is cooking.
    expect(errors([{ do: "cooking", peak: 10 }])).toContain("bad.yaml: phases.0.peak: cooking stays under");
    expect(errors([{ do: "gas-leak", peak: 6 }])).toContain("bad.yaml: phases.0.peak: a gas-leak reaches");
    expect(errors([{ do: "jammed-valve", peak: 9.9 }])).toContain("bad.yaml: phases.0.peak:");
    expect(errors([{ do: "gas-leak", peak: 120 }])).toContain("bad.yaml: phases.0.peak:");
    // A field of another kind is named, not ignored.
    expect(errors([{ do: "tank-drawdown", peak: 40 }])).toContain(
      "bad.yaml: phases.0.peak: not a field of tank-drawdown (it takes: rate, to, refillAfter)",
    );
    expect(errors([{ do: "valve-fault", duration: "5s" }])).toContain(
      "bad.yaml: phases.0.duration: not a field of valve-fault",
    );
    expect(errors([{ do: "press" }, { do: "cooking", refillAfter: "1s" }])).toContain(
      "bad.yaml: phases.1.refillAfter: not a field of cooking",
    );
    expect(errors([{ do: "tank-drawdown", to: "half" }])).toContain("bad.yaml: phases.0.to:");
    expect(errors([{ do: "tank-drawdown", to: -5 }])).toContain("bad.yaml: phases.0.to:");
    expect(errors([{ do: "tank-drawdown", rate: 0 }])).toContain("bad.yaml: phases.0.rate:");
    expect(errors([{ do: "tank-fault", fault: 5 }])).toContain("bad.yaml: phases.0.fault:");
    expect(errors([{ do: "tank-glitch", glitches: 0 }])).toContain("bad.yaml: phases.0.glitches:");
    expect(errors([{ do: "gas-leak", ventilateAfter: "soon" }])).toContain(
      "bad.yaml: phases.0.ventilateAfter: not a duration",
    );
    expect(errors([{ do: "jammed-valve", expect: [] }])).toContain("bad.yaml: phases.0.expect:");
    expect(errors([{ do: "jammed-valve", expect: ["gas leak"] }])).toContain("bad.yaml: phases.0.expect");
  });

  it("refuses a leak aired before it reaches the alarm level while GAS_LEAK is expected", () => {
    // 2 %LEL/s reaches the low set-point (10 %LEL) 5 s in: aired then or sooner, it never alarms.
    expect(errors([{ do: "press" }, { do: "gas-leak", rate: 2, ventilateAfter: "5s" }])).toContain(
      "bad.yaml: phases.1.ventilateAfter: 5 s airs the kitchen before the leak reaches the alarm level (10 %LEL at 2 %LEL/s: 5 s), yet GAS_LEAK is expected",
    );
    expect(errors([{ do: "jammed-valve", ventilateAfter: "3s" }])).toContain(
      "bad.yaml: phases.0.ventilateAfter:",
    );
    expect(errors([{ do: "gas-leak", rate: 1, ventilateAfter: "8s" }])).toContain(
      "10 %LEL at 1 %LEL/s: 10 s",
    );
    // Later than the alarm, or a leak expected to stay quiet: accepted.
    expect(errors([{ do: "gas-leak", rate: 2, ventilateAfter: "6s" }])).toBe("");
    expect(errors([{ do: "gas-leak", rate: 2, ventilateAfter: "3s", expect: "none" }])).toBe("");
  });

  it("reads the winter and power-cut phases: the heater must (tank-winter) or must not (tank-freeze) keep up", () => {
    const s = parseScenario(
      {
        name: "winter",
        description: "d",
        phases: [
          { do: "tank-winter", from: 4.5, cooling: 1, heater: 2 },
          { do: "tank-freeze" },
          { do: "tank-freeze", from: 3, cooling: 0.5, heater: 0.3 },
          { do: "power-cut" },
          { do: "power-cut", outage: "20s", duration: "40s" },
          { do: "power-cut", outage: "1m", duration: "15m" },
        ],
      },
      "winter.yaml",
    );
    expect(s.phases[0]).toMatchObject({ from: 4.5, cooling: 1, heater: 2 });
    expect(s.phases[2]).toMatchObject({ from: 3, cooling: 0.5, heater: 0.3 });
    expect(s.phases[4]).toMatchObject({ outage: 20_000, duration: 40_000 });
    expect(s.phases[5]).toMatchObject({ outage: 60_000, duration: 900_000 });
    // The defaults: cooling 0.5 °C/min, a working heater 1.0, a failed one 0.
    expect(errors([{ do: "tank-winter", heater: 0.5 }])).toContain(
      "bad.yaml: phases.0.heater: a heater of 0.5 °C/min does not keep up with 0.5 °C/min of cold: that is tank-freeze",
    );
    expect(errors([{ do: "tank-freeze", cooling: 0.2, heater: 0.3 }])).toContain(
      "bad.yaml: phases.0.heater: a heater of 0.3 °C/min keeps up with 0.2 °C/min of cold: that is tank-winter",
    );
    expect(errors([{ do: "tank-freeze", cooling: 0.2 }])).toBe("");
    expect(errors([{ do: "tank-winter", from: 3.5 }])).toContain(
      "bad.yaml: phases.0.from: a night whose water",
    );
    expect(errors([{ do: "tank-winter", cooling: 0 }])).toContain("bad.yaml: phases.0.cooling:");
    expect(errors([{ do: "tank-winter", to: "50%" }])).toContain(
      "bad.yaml: phases.0.to: not a field of tank-winter (it takes: from, cooling, heater)",
    );
    expect(errors([{ do: "power-cut", heater: 1 }])).toContain(
      "bad.yaml: phases.0.heater: not a field of power-cut (it takes: outage, duration)",
    );
    expect(errors([{ do: "tank-drawdown", outage: "1m" }])).toContain(
      "bad.yaml: phases.0.outage: not a field of tank-drawdown",
    );
    // The detector comes back on battery: the mains must stay off longer than the outage.
    expect(errors([{ do: "power-cut", duration: "60s" }])).toContain(
      "bad.yaml: phases.0.duration: the mains must stay off longer than the outage (60 s)",
    );
    expect(errors([{ do: "power-cut", outage: 0 }])).toContain("bad.yaml: phases.0.outage:");
    // 10 minutes on battery, give or take a minute: POWER_FAIL or not is heartbeat timing.
    expect(errors([{ do: "power-cut", duration: "690s" }])).toContain(
      "bad.yaml: phases.0.duration: 630 s on battery is within 60 s of POWER_FAIL's 10 minutes",
    );
    expect(errors([{ do: "power-cut", duration: "12m" }])).toBe("");
    expect(errors([{ do: "power-cut", duration: "10m" }])).toBe("");
  });

  it("the shipped scenarios keep to their kinds' fields", () => {
    for (const { scenario } of listScenarios()) expect(scenario.phases.length).toBeGreaterThan(0);
    const kt = loadScenario("kitchens-and-tanks").scenario;
    expect(kt.scale).toEqual({ kitchens: 10, tanks: 4 });
    expect(kt.phases.map((p) => p.do)).toEqual(
      expect.arrayContaining([
        "gas-leak",
        "cooking",
        "jammed-valve",
        "tank-drawdown",
        "tank-glitch",
        "tank-fault",
        "power-cut",
      ]),
    );
    const wn = loadScenario("winter-night").scenario;
    expect(wn.needs).toContain("modbus");
    expect(wn.scale.tanks).toBeGreaterThanOrEqual(2);
    expect(wn.scale.kitchens).toBeGreaterThanOrEqual(1);
    expect(wn.phases.map((p) => p.do)).toEqual(
      expect.arrayContaining(["tank-winter", "tank-freeze", "power-cut"]),
    );
  });
});
