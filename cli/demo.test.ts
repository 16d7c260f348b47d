import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig, weakPasswordWarnings } from "../gateway/index.js";
import type { Stations } from "../sim/index.js";
import {
  DEMO_HOUSEHOLDS,
  DEMO_OPERATOR,
  demoConfig,
  demoHousehold,
  demoMetricsPort,
  HAND_PENDANT,
} from "./demo.js";

describe("the demo community", () => {
  it("is a zh-CN site in Asia/Shanghai; the README's demo-pendant belongs to 1号楼 101室, 张阿姨", () => {
    const c = validateConfig(demoConfig(0), "(demo)");
    expect(c.site).toMatchObject({ timezone: "Asia/Shanghai", locale: "zh-CN" });
    expect(c.households).toHaveLength(DEMO_HOUSEHOLDS);
    const pendant = c.devices.find((d) => d.id === HAND_PENDANT.id);
    const home = c.households.find((h) => h.id === pendant?.household);
    expect(home).toMatchObject({ name: "1号楼 101室", room: "101室", residentName: "张阿姨" });
    expect(pendant?.name).toBe("演示呼叫器");
    // Every household and device has a Chinese name; household names are distinct.
    for (const h of c.households) expect(h.name).toMatch(/^\d号楼 \d0\d室$/);
    expect(new Set(c.households.map((h) => h.name)).size).toBe(DEMO_HOUSEHOLDS);
    for (const d of c.devices) expect(d.name).toMatch(/[\u4e00-\u9fff]/);
    expect(demoHousehold(7)).toMatchObject({ name: "2号楼 102室" });
  });

  it("with its fire stations, tank and kiosks, every device has a Chinese name and place", () => {
    const stations = { ttyPath: null, kioskPorts: [5021, 5022, 5023, 5024] } as unknown as Stations;
    const c = validateConfig(demoConfig(0, stations), "(demo)");
    expect(c.devices.map((d) => d.model)).toEqual(expect.arrayContaining(["mfs8", "lv4", "gk3", "gd2"]));
    for (const d of c.devices) {
      expect(d.name, d.id).toMatch(/[\u4e00-\u9fff]/);
      expect(d.location, d.id).toMatch(/[\u4e00-\u9fff]/);
    }
    for (const h of c.households) {
      expect(h.address, h.id).toMatch(/[\u4e00-\u9fff]/);
      expect(h.residentName, h.id).toMatch(/[\u4e00-\u9fff]/);
    }
  });
});

describe("the demo's credentials", () => {
  it("are each recognised by config check's warning, so a site that copied them is told", async () => {
    const c = validateConfig(demoConfig(0), "(demo)");
    const warnings = await weakPasswordWarnings({ ...c, devices: [] });
    expect(warnings).toEqual([
      expect.stringMatching(new RegExp(`^passwords of ${DEMO_OPERATOR.name}: the demo's`)),
    ]);
    // Every device of the demo: its demo-<id> password, or (the hand pendant) its own id.
    for (const d of c.devices) {
      if (!("password" in d)) continue;
      const [w] = await weakPasswordWarnings({ ...c, operators: [], devices: [d] });
      expect(w, d.id).toMatch(
        new RegExp(`^passwords of ${d.id}: ${d.id === HAND_PENDANT.id ? "the user name" : "the demo's"}`),
      );
    }
  });
});

describe("the demo's metrics port", () => {
  let held: Server | null = null;
  afterEach(async () => {
    await new Promise((r) => (held ? held.close(r) : r(null)));
    held = null;
  });

  it("the preferred port when free, a free port (0) when it is taken, --metrics-port as given", async () => {
    held = createServer();
    await new Promise<void>((r) => held?.listen(0, "127.0.0.1", r));
    const taken = (held.address() as { port: number }).port;
    expect(await demoMetricsPort(undefined, "127.0.0.1", taken)).toBe(0);
    expect(await demoMetricsPort(taken, "127.0.0.1", taken)).toBe(taken);
    await new Promise((r) => held?.close(r));
    held = null;
    // Free again: the preferred port is used (and the probe let go of it).
    expect(await demoMetricsPort(undefined, "127.0.0.1", taken)).toBe(taken);
    held = createServer();
    await new Promise<void>((r) => held?.listen(taken, "127.0.0.1", r));
  });
});
