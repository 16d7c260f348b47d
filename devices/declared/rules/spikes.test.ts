/**
 * The jump filter on an optional MQTT field: a message without the reading says nothing of it, so
 * the last believed value stays the reference for the next reading.
 */
import { expect, it } from "vitest";
import type { DeviceSettings, MqttDeviceProfile, RuleContext } from "../../profile.js";
import { siteSettings } from "../../test-fixtures.js";
import { compileProfile } from "../compile.js";
import type { DeclaredSettings } from "../sample.js";
import { declaredProfileSchema } from "../schema.js";
import type { DeclaredState } from "../state.js";

const SETTINGS: DeviceSettings & DeclaredSettings = { ...siteSettings(), params: {} };

it("a message without the filtered field keeps the reference: a jump after it is still suspect", () => {
  const p = compileProfile(
    declaredProfileSchema.parse({
      model: "acme-tank",
      transport: "mqtt",
      mqtt: {
        uplink: "t/{id}/up",
        fields: [
          { name: "n", path: "n", type: "integer" },
          { name: "level", path: "level", type: "number", required: false, metric: true },
        ],
      },
      spikes: [{ point: "level", maxJump: 10, persist: "60s" }],
    }),
  ) as unknown as MqttDeviceProfile;
  const st = p.initialState() as DeclaredState;
  let t = 0;
  const quality = (msg: object) => {
    t += 1000;
    const s = p.parse(msg);
    const ctx = { now: t, readAt: t, stale: false, condition: () => {}, command: () => false };
    p.rules(s, st, SETTINGS, ctx as unknown as RuleContext);
    return p.quality?.(s, st) ?? null;
  };
  expect(quality({ n: 1, level: 10 })).toBe(null);
  expect(quality({ n: 2, level: 90 })).toBe("suspect");
  expect(quality({ n: 3, level: 12 })).toBe(null);
  expect(quality({ n: 4 })).toBe(null);
  // 78 from the last believed 12: suspect, as it would be without the message between.
  expect(quality({ n: 5, level: 90 })).toBe("suspect");
  expect(st.spikes[0]!.good).toBe(12);
});
