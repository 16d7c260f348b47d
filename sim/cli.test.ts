import { afterEach, describe, expect, it, vi } from "vitest";
import { runSim, type SimOptions } from "./cli.js";

/**
 * `linli sim` exit status (README): 2 a bad option, 3 the gateway could not be reached. An option
 * the run would ignore is refused rather than dropped without a word. Nothing here connects:
 * every case is refused before the first device is started (port 1 has nothing listening).
 */
describe("linli sim: bad and ignored options", () => {
  let stderr = "";
  afterEach(() => {
    vi.restoreAllMocks();
    stderr = "";
  });
  const sim = (o: Partial<SimOptions>) => {
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    return runSim({ gateway: "mqtt://127.0.0.1:1", seed: 1, ...o });
  };

  it("--ca naming a file that is not there is a bad option (2), not an unreachable gateway (3)", async () => {
    expect(await sim({ gateway: "mqtts://127.0.0.1:1", scale: 2, ca: "/nonexistent/nofile.pem" })).toBe(2);
    expect(stderr).toMatch(/--ca \/nonexistent\/nofile\.pem: ENOENT/);
  });

  it.each([
    [{ stations: 1 }, /--stations goes with --scale N/],
    [{ kiosks: 1 }, /--kiosks goes with --scale N/],
    [{ kitchens: 1 }, /--kitchens goes with --scale N/],
    [{ tanks: 1 }, /--tanks goes with --scale N/],
    [
      { scale: 2, operator: "nobody" },
      /--operator goes with --config FILE \(a --scale site has one operator/,
    ],
    [{ operator: "nobody" }, /--operator goes with --config FILE/],
  ])("%j is refused with exit 2 instead of being ignored", async (o, reason) => {
    expect(await sim(o)).toBe(2);
    expect(stderr).toMatch(reason);
  });
});
