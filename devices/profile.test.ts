import { describe, expect, it } from "vitest";
import { deviceSchema } from "./config.js";
import { gd2 } from "./gd2.js";
import { mfs8 } from "./mfs8.js";
import { MODELS, PROFILES, profileFor } from "./models.js";
import { type AnyProfile, type DurableRuleState, profileProblem } from "./profile.js";

describe("registered profiles", () => {
  it("every one can be polled or supervised, and the model names are unique", () => {
    for (const p of PROFILES) expect(profileProblem(p), p.model).toBeNull();
    expect(new Set(MODELS).size).toBe(PROFILES.length);
    expect(profileFor("gd2")).toBe(gd2);
    expect(profileFor("nope")).toBeUndefined();
  });

  it("every one declares its simulator counterpart by name, and documents its alerts and commands", () => {
    for (const p of PROFILES) {
      expect(p.simulator).toMatch(/^sim\/.+\.ts$/);
      for (const a of Object.values(p.alerts as Record<string, { raised: string; cleared: string }>)) {
        expect(a.raised.length).toBeGreaterThan(0);
        expect(a.cleared.length).toBeGreaterThan(0);
      }
    }
  });
});

describe("a model the gateway could not poll or supervise is refused, never ignored", () => {
  const broken: Array<[string, AnyProfile, RegExp]> = [
    [
      "a Modbus profile bound to MQTT",
      { ...mfs8, binding: "mqtt" } as unknown as AnyProfile,
      /never be polled/,
    ],
    [
      "an MQTT profile bound to a serial bus",
      { ...gd2, binding: "modbus-serial" } as unknown as AnyProfile,
      /never be polled/,
    ],
    ["an unknown binding", { ...gd2, binding: "lora" } as unknown as AnyProfile, /unknown binding "lora"/],
    ["a polled model never called lost", { ...mfs8, missedPollsForLost: 0 }, /never called lost/],
    ["a polled model without points", { ...mfs8, points: [] }, /no points/],
    ["no interval", { ...gd2, interval: "" }, /could not be supervised/],
    ["an interval of zero", { ...gd2, interval: "0s" }, /could not be supervised/],
  ];
  it.each(broken)("%s", (_name, profile, message) => {
    expect(profileProblem(profile)).toMatch(message);
  });

  it("a model field that shadows its binding's is a programming error", () => {
    expect(() =>
      deviceSchema({
        ...gd2,
        config: { ...gd2.config, password: gd2.config.autoShutOff },
      } as unknown as AnyProfile),
    ).toThrow(/binding/);
  });
});

describe("durable rule state (profile.durable) of every registered model", () => {
  it("a fresh state saved and restored into another is the same; a record of wrong values restores nothing", () => {
    for (const p of PROFILES as readonly AnyProfile[]) {
      // biome-ignore lint/suspicious/noExplicitAny: each model's own state type, checked by the profile.
      const durable = p.durable as DurableRuleState<any> | undefined;
      if (durable === undefined) continue;
      const st = p.initialState();
      const saved = durable.save(st);
      expect(durable.same(st, saved), p.model).toBe(true);
      for (const v of saved)
        expect(["number", "string", "boolean"].includes(typeof v) || v === null, p.model).toBe(true);
      const other = p.initialState();
      durable.restore(other, structuredClone(saved), 0);
      expect(durable.same(other, saved), p.model).toBe(true);
      const junk = p.initialState();
      durable.restore(
        junk,
        saved.map(() => ({})),
        0,
      );
      expect(durable.same(junk, saved), p.model).toBe(true);
    }
  });

  it("the models whose rule memory decides alerts across a restart declare it", () => {
    expect(
      PROFILES.filter((p) => p.durable !== undefined)
        .map((p) => p.model)
        .sort(),
    ).toEqual(["ds10", "ec200", "gd2", "gk3", "lv4", "mfs8"]);
  });
});
