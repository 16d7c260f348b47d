/**
 * The site configuration `linli sim --scale N --write-config` writes is one the gateway accepts,
 * and it lets the whole simulated fleet log in from the simulator's single address.
 */
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../gateway/config/load.js";
import { scaleSite, siteConfigYaml } from "../sim/site.js";

describe("the site configuration the simulator writes", () => {
  it("at 2,000 households: the per-address login limit fits the 4,000 devices on one address, and says why", () => {
    const site = scaleSite({ households: 2000, seed: 1, host: "127.0.0.1", port: 1883 });
    const yaml = siteConfigYaml(site, "127.0.0.1", 1883);
    const config = parseConfigText(yaml, "site2000.yaml", {});
    expect(site.mqtt.length).toBe(4000);
    expect(config.mqtt.maxConnections).toBeGreaterThanOrEqual(4000);
    // The whole fleet may connect at once (the attach) and again each second (a gateway restart).
    expect(config.limits.login.attemptBurst).toBeGreaterThanOrEqual(4000);
    expect(config.limits.login.attemptsPerSecond).toBeGreaterThanOrEqual(4000);
    expect(yaml).toMatch(/# .*one address[\s\S]*limits:\n {2}login:/);
  });

  it("a small site keeps at least the defaults (20/s, burst 200)", () => {
    const site = scaleSite({ households: 3, seed: 1, host: "127.0.0.1", port: 1883 });
    const config = parseConfigText(siteConfigYaml(site, "127.0.0.1", 1883), "site3.yaml", {});
    expect(config.limits.login).toMatchObject({ attemptsPerSecond: 20, attemptBurst: 200 });
  });
});
