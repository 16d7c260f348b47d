/**
 * A reload and devices described in YAML: their devices are added, changed
 * and replaced like any other; the profiles themselves are compiled at start,
 * so a new or changed profile needs a restart (and a device that needs one is refused).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { validateConfig } from "./config/load.js";
import type { ConfigInput } from "./config/schema.js";
import { planReload, staleProfiles } from "./reload.js";

const LV4 = parse(readFileSync("examples/profiles/lv4.yaml", "utf8")) as Record<string, unknown>;
const base = (): ConfigInput => ({
  site: { id: "s1" },
  buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
  deviceProfiles: [structuredClone(LV4) as never],
  devices: [{ id: "tank-1", model: "lv4-yaml", bus: "rs485-1", unit: 9 } as never],
});
const cfg = (input: ConfigInput) => validateConfig(input, "test", {});

describe("reload with devices of declared profiles", () => {
  it("a device added, one whose settings changed, one that moved to a built-in model", () => {
    const running = cfg(base());
    const next = base();
    next.devices = [
      { id: "tank-1", model: "lv4", bus: "rs485-1", unit: 9 },
      { id: "tank-2", model: "lv4-yaml", bus: "rs485-1", unit: 10, settings: { reserve: 2000 } } as never,
    ];
    const p = planReload(running, cfg(next));
    expect(p.devices.added.map((d) => d.id)).toEqual(["tank-2"]);
    expect(p.devices.replaced.map((d) => d.id)).toEqual(["tank-1"]);
    expect(staleProfiles(p.effective, cfg(next))).toEqual([]);

    const settings = base();
    settings.devices = [
      { id: "tank-1", model: "lv4-yaml", bus: "rs485-1", unit: 9, settings: { reserve: 2500 } } as never,
    ];
    const q = planReload(running, cfg(settings));
    expect(q.devices.changed).toEqual([
      expect.objectContaining({ id: "tank-1", fields: ["settings.reserve"], polling: false }),
    ]);
  });

  it("a changed profile needs a restart: kept as running, and its devices are refused until then", () => {
    const running = cfg(base());
    const next = base();
    const doc = next.deviceProfiles?.[0] as { lostPriority: number };
    doc.lostPriority = 3;
    const nextCfg = cfg(next);
    const p = planReload(running, nextCfg);
    expect(p.restartNeeded.map((r) => r.path)).toContain("deviceProfiles");
    expect(p.effective.deviceProfiles).toEqual(running.deviceProfiles);
    expect(staleProfiles(p.effective, nextCfg)).toEqual([
      'tank-1: device profile "lv4-yaml" is new or changed: restart the gateway to use it',
    ]);
  });
});
