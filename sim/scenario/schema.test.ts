import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { listScenarios, loadScenario, loadScenarioFile, parseScenario, ScenarioError } from "./schema.js";

describe("scenario files", () => {
  const dir = mkdtempSync(join(tmpdir(), "linli-scenario-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("ships the six scenarios of the issue, all valid", () => {
    expect(listScenarios().map((s) => s.name)).toEqual([
      "evening-peak",
      "fire-during-flood",
      "malformed-storm",
      "restart-during-storm",
      "smoke-test",
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

  it("names the file and the field of every error", () => {
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
    expect(message).toContain(`${file}: phases.0.count:`);
    expect(message).toContain(`${file}: phases.1.do:`);
    expect(message).toContain(`${file}: phases.2: steady needs rate and duration`);
  });

  it("a gateway restart must be declared as needing gateway control", () => {
    expect(() =>
      parseScenario({ name: "r", description: "d", phases: [{ do: "gateway-restart" }] }, "r.yaml"),
    ).toThrow(/r\.yaml: needs: a gateway-restart phase needs gateway-control/);
  });

  it("an unknown name lists the shipped ones", () => {
    expect(() => loadScenario("nope")).toThrow(/no scenario nope \(shipped: evening-peak, .*smoke-test/);
  });
});
