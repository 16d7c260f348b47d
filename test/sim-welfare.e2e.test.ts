/**
 * Welfare checks as an integrator tries them, against a real gateway started by the simulator:
 * `linli sim --config site.yaml --scenario welfare.yaml --gateway-cmd "linli start ..."` on
 * loopback. Two households, each an EC-200 and a DS-10 on the front door; in one the resident
 * lives ordinary days (shopping in the morning, a walk in the afternoon), in the other the resident
 * comes home and stays in. The gateway must raise WELFARE_CHECK for the second household, once
 * (three days indoors: a second check, a period after the first, would come while the resident is
 * still in), and nothing for the first.
 *
 * A real welfare period is a day: the site is configured with a 16 s one (`alerts.welfarePeriod`,
 * as the gateway's own tests shorten it) and the simulator's day lasts 16 s alike (`dayLength`),
 * so the longest night (19 h: 12.7 s) stays shorter than the period, as it is on a real site.
 * The shipped scenario (sim/scenarios/welfare-check.yaml) does the same on a `--scale 4` site,
 * which the simulator writes with the scenario's 16 s period. Needs `npm run build`.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "./support/free-port.js";
import { CLI, listens, runSim } from "./support/sim-run.js";
import { suiteTempDir } from "./support/temp-dir.js";

describe("linli sim: a resident who stays in raises the welfare check, a resident's day does not", () => {
  const dir = suiteTempDir("linli-sim-welfare-");

  it("WELFARE_CHECK once for the household that stays in, nothing for the one out and about; exit 0", async () => {
    expect(existsSync(CLI)).toBe(true);
    const port = await freePort();
    const site = join(dir, "site.yaml");
    const scenario = join(dir, "welfare.yaml");
    const device = (id: string, model: string, household: string) =>
      `  - { id: ${id}, model: ${model}, password: pw-${id}, household: ${household} }`;
    writeFileSync(
      site,
      [
        "site: { id: welfare-test }",
        `mqtt: { listeners: [{ host: 127.0.0.1, port: ${port} }] }`,
        "operators: [{ name: desk, password: desk-password-1 }]",
        "households: [{ id: hh-out }, { id: hh-in }]",
        "devices:",
        device("pendant-out", "ec200", "hh-out"),
        device("door-out", "ds10", "hh-out"),
        device("pendant-in", "ec200", "hh-in"),
        device("door-in", "ds10", "hh-in"),
        "alerts: { welfarePeriod: 16s }",
        "",
      ].join("\n"),
    );
    writeFileSync(
      scenario,
      [
        "name: welfare-two-households",
        "description: one resident lives three ordinary days, the other stays in for three days",
        "settle: 3s",
        "latency: { max: 5s }",
        "phases:",
        "  - { do: resident-day, targets: [door-out], days: 3, dayLength: 16s }",
        "  - { do: stays-in, targets: [door-in], days: 3, dayLength: 16s }",
        "",
      ].join("\n"),
    );
    const r = await runSim(dir, port, ["--config", site, "--scenario", scenario, "--seed", "4"], 150_000);
    const _gatewayLog = r.gatewayLog;
    expect(r.code, r.explain()).toBe(0);
    expect(r.stdout).toMatch(/^PASS$/m);
    const report = r.report();
    expect(report.passed).toBe(true);
    // Raised once for the household that stayed in, within its period after the door last closed.
    expect(report.codes).toEqual([
      expect.objectContaining({
        code: "WELFARE_CHECK",
        expected: 1,
        received: 1,
        missing: 0,
        duplicated: 0,
        unexpected: 0,
        late: 0,
      }),
    ]);
    // Nothing on the household out and about: no WELFARE_CHECK, no DOOR_HELD_OPEN.
    expect(report.unexpected).toEqual([]);
    expect(report.run.phases.map((p) => p.do).sort()).toEqual(["resident-day", "stays-in"]);
    expect(report.run.incidents).toBe(2);
    // The simulator stopped the gateway it started.
    expect(await listens(port)).toBe(false);
  }, 160_000);

  it("the shipped welfare-check scenario on --scale 4: WELFARE_CHECK once on hh-04, nothing on the three others; exit 0", async () => {
    const port = await freePort();
    const r = await runSim(
      dir,
      port,
      ["--scale", "4", "--scenario", "welfare-check", "--seed", "4"],
      150_000,
    );
    expect(r.code, r.explain()).toBe(0);
    expect(r.stdout).toMatch(/^PASS$/m);
    const report = r.report();
    expect(report.passed).toBe(true);
    expect(report.devices).toMatchObject({ mqtt: 8, connected: 8, failed: 0 });
    expect(report.codes).toEqual([
      expect.objectContaining({
        code: "WELFARE_CHECK",
        expected: 1,
        received: 1,
        missing: 0,
        duplicated: 0,
        unexpected: 0,
        late: 0,
      }),
    ]);
    expect(report.unexpected).toEqual([]);
    // Three resident days and one stay indoors: four incidents.
    expect(report.run.incidents).toBe(4);
    expect(await listens(port)).toBe(false);
  }, 160_000);
});
