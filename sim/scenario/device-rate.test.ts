import { describe, expect, it } from "vitest";
import { DOCUMENTED_DEVICE_RATES, deviceLoad, overDeviceRate, siteDeviceRates } from "./device-rate.js";
import { isLoad, type LoadPhase, listScenarios, loadScenario, parseScenario } from "./schema.js";

const loadOf = (phases: unknown[]): LoadPhase[] =>
  parseScenario({ name: "t", description: "d", phases }, "t.yaml").phases.filter(isLoad);
const evening = loadScenario("evening-peak").scenario.phases.filter(isLoad);
/** A --scale site's MQTT models: an EC-200 and a DS-10 per household. */
const scaleModels = (households: number) =>
  Array.from({ length: households }, () => ["ec200", "ds10"]).flat();
const scale = (n: number) => ({ site: `--scale ${n}`, devicesPerHousehold: 2 });

describe("a scenario's load against the gateway's per-device rate (docs/security.md Limits)", () => {
  it("evening-peak on --scale 20 is refused: 400 msg/s is 10 msg/s for each of 40 devices, over 1 msg/s", () => {
    const why = overDeviceRate(evening, scaleModels(20), siteDeviceRates(), scale(20));
    expect(why).toMatch(
      /^its load peaks at 400 msg\/s, 10 msg\/s for each of the 40 MQTT devices of --scale 20: over the gateway's per-device limit \(EC-200, DS-10: 1 msg\/s, burst 120; docs\/security.md "Limits"\), which would drop about \d+ of its messages as rate-limited\. Carrying it needs at least 78 MQTT devices \(--scale 39\), or a lower rate in the scenario$/,
    );
    expect(deviceLoad(evening, 40, DOCUMENTED_DEVICE_RATES.ec200 as never).droppedPerDevice).toBeGreaterThan(
      100,
    );
  });

  it("on its minimum site (--scale 50) each device's 4 msg/s at the peak fits in its burst: carried", () => {
    expect(overDeviceRate(evening, scaleModels(50), siteDeviceRates(), scale(50))).toBeUndefined();
  });

  it("a short burst over few devices fits the bucket; the same rate held does not", () => {
    const models = scaleModels(5);
    expect(
      overDeviceRate(
        loadOf([{ do: "burst", count: 500, within: "1s" }]),
        models,
        siteDeviceRates(),
        scale(5),
      ),
    ).toBeUndefined();
    expect(
      overDeviceRate(
        loadOf([{ do: "steady", rate: 500, duration: "10s" }]),
        models,
        siteDeviceRates(),
        scale(5),
      ),
    ).toMatch(/50 msg\/s for each of the 10 MQTT devices/);
  });

  it("malformed messages take no token (refused before the rate); devices of a model without a rate are not limited", () => {
    const half = loadOf([{ do: "steady", rate: 40, duration: "5m", malformed: "50%" }]);
    expect(overDeviceRate(half, scaleModels(10), siteDeviceRates(), scale(10))).toBeUndefined();
    const full = loadOf([{ do: "steady", rate: 40, duration: "5m" }]);
    expect(overDeviceRate(full, scaleModels(10), siteDeviceRates(), scale(10))).toMatch(/2 msg\/s for each/);
    expect(
      overDeviceRate(full, Array(20).fill("gd2"), siteDeviceRates(), { site: "site.yaml" }),
    ).toBeUndefined();
  });

  it("follows the site file's limits.deviceRate: its own rate per model, or none", () => {
    const load = loadOf([{ do: "steady", rate: 40, duration: "5m" }]);
    const own = siteDeviceRates({
      enabled: true,
      models: { ec200: { perSecond: 5, burst: 10 }, ds10: { perSecond: 5, burst: 10 } },
    });
    expect(overDeviceRate(load, scaleModels(10), own, { site: "site.yaml" })).toBeUndefined();
    const off = siteDeviceRates({ enabled: false, models: {} });
    expect(
      overDeviceRate(loadOf([{ do: "steady", rate: 4000, duration: "5m" }]), scaleModels(10), off, {
        site: "site.yaml",
      }),
    ).toBeUndefined();
    const tight = siteDeviceRates({ enabled: true, models: { ds10: { perSecond: 0.1, burst: 5 } } });
    expect(overDeviceRate(load, scaleModels(20), tight, { site: "site.yaml" })).toMatch(
      /of site.yaml: over the gateway's per-device limit \(EC-200, DS-10: 0.1 msg\/s, burst 5;.*at least \d+ MQTT devices, or a lower rate/,
    );
  });

  it("every shipped scenario's load fits the documented limits on its minimum --scale site", () => {
    for (const { name, scenario: s } of listScenarios()) {
      const n = s.minHouseholds ?? 1;
      const models = [...scaleModels(n), ...Array(Math.min(n, s.scale.kitchens ?? 0)).fill("gd2")];
      expect(
        overDeviceRate(s.phases.filter(isLoad), models, siteDeviceRates(), scale(n)),
        name,
      ).toBeUndefined();
    }
  });
});
