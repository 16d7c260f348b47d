import { describe, expect, it } from "vitest";
import { validateConfig } from "./config/load.js";
import { Registry } from "./registry.js";

describe("Registry", () => {
  it("gives every device the site's calendar from site.timezone", () => {
    const config = validateConfig(
      {
        site: { id: "s1", timezone: "Asia/Shanghai" },
        devices: [
          { id: "k-1", model: "gk3", host: "127.0.0.1", port: 502, openingHours: "08:30-17:30" },
          { id: "p-1", model: "ec200", password: "pw" },
        ],
        log: { level: "silent" },
      },
      "test",
    );
    const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
    for (const d of registry.devices.values())
      expect(d.settings.siteTime.minuteOfDay(Date.UTC(2026, 0, 5, 1, 0))).toBe(9 * 60);
  });
});
