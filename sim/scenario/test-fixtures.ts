/**
 * Stand-ins the scenario runner's tests share (runner, welfare, malformed-replies): a fleet of
 * only the devices a test hands it, a site with nothing else, a matcher that records what the
 * runner expects, and a scenario of a test's phases. Each test still builds its own devices and
 * says what it checks; these only spare it the runner's plumbing. Not used by the simulator.
 */
import type { Clock } from "../../core/index.js";
import type { Fleet } from "../fleet.js";
import type { MqttDeviceSpec, SiteModel } from "../site.js";
import type { AlertMatcher, Expectation, ReadingExpectation } from "./matcher.js";
import { ScenarioRunner } from "./runner.js";
import { parseScenario, type Scenario } from "./schema.js";

/**
 * A fleet of these devices alone (MQTT ones by id with their specs, panels, tanks, kiosks by
 * target id); `ofModel` lists the MQTT devices whose spec has the model, as the real fleet does.
 */
export function fleetOf(parts: {
  mqtt?: ReadonlyMap<string, unknown>;
  specs?: ReadonlyMap<string, Pick<MqttDeviceSpec, "id"> & { model: string }>;
  panels?: ReadonlyMap<string, unknown>;
  tanks?: ReadonlyMap<string, unknown>;
  kiosks?: ReadonlyMap<string, unknown>;
}): Fleet {
  const mqtt = parts.mqtt ?? new Map();
  const specs = parts.specs ?? new Map();
  return {
    mqtt,
    specs,
    panels: parts.panels ?? new Map(),
    tanks: parts.tanks ?? new Map(),
    kiosks: parts.kiosks ?? new Map(),
    busSlaves: new Map(),
    ofModel: (model: string) =>
      [...specs.values()]
        .filter((s) => s.model === model)
        .map((spec) => ({ spec, device: mqtt.get(spec.id) })),
  } as unknown as Fleet;
}

/** A site with no devices of its own (the fleet holds them), and whatever `extra` gives. */
export function siteOf(extra: Partial<SiteModel> = {}): SiteModel {
  return {
    source: "test",
    households: [],
    mqtt: [],
    rtu: [],
    tcp: [],
    buses: [],
    ...extra,
  } as unknown as SiteModel;
}

/** A matcher that only records the alerts and readings the runner expects. */
export function recordingMatcher(): {
  matcher: AlertMatcher;
  expectations: Expectation[];
  readings: ReadingExpectation[];
} {
  const expectations: Expectation[] = [];
  const readings: ReadingExpectation[] = [];
  const matcher = {
    begin: () => {},
    expect: (e: Expectation) => expectations.push(e),
    expectReading: (e: ReadingExpectation) => readings.push(e),
  } as unknown as AlertMatcher;
  return { matcher, expectations, readings };
}

/** A scenario "t" of these phases (parsed as a file would be). */
export function scenarioOf(phases: unknown[]): Scenario {
  return parseScenario({ name: "t", description: "d", phases }, "t.yaml");
}

/** A runner of `scenario` (or of these phases) on `clock`; it throws as the real one refuses. */
export function runnerOf(o: {
  scenario: Scenario | unknown[];
  site: SiteModel;
  fleet: Fleet;
  matcher: AlertMatcher;
  clock: Clock;
  seed?: number;
}): ScenarioRunner {
  const scenario = Array.isArray(o.scenario) ? scenarioOf(o.scenario) : o.scenario;
  return new ScenarioRunner({
    scenario,
    site: o.site,
    fleet: o.fleet,
    matcher: o.matcher,
    seed: o.seed ?? 1,
    clock: o.clock,
  });
}
