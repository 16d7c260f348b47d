import { describe, expect, it } from "vitest";
import { devicesOn } from "./options.js";

describe("--devices-on", () => {
  it("puts the ceiling suite's devices on the device listener and the other suites' on aedes", () => {
    expect(devicesOn("ceiling", undefined, false)).toBe("listener");
    for (const suite of ["all", "pipeline", "startup", "bus"])
      expect(devicesOn(suite, undefined, false)).toBe("aedes");
  });

  it("takes the option over the suite's default, and --device-listener as listener", () => {
    expect(devicesOn("ceiling", "aedes", false)).toBe("aedes");
    expect(devicesOn("pipeline", "listener", false)).toBe("listener");
    expect(devicesOn("pipeline", undefined, true)).toBe("listener");
    expect(devicesOn("ceiling", "listener", true)).toBe("listener");
  });

  it("refuses an unknown value and a contradiction", () => {
    expect(() => devicesOn("ceiling", "worker", false)).toThrow(/listener or aedes/);
    expect(() => devicesOn("pipeline", "aedes", true)).toThrow(/contradict/);
  });
});
