import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { runSim, type SimOptions } from "./cli.js";
import { socatMissingReason } from "./modbus/pty.js";

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
    [{ kioskPort: 1502 }, /--kiosk-port goes with --scale N/],
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

describe.skipIf(socatMissingReason() !== undefined)("linli sim --write-config with a socat bus", () => {
  const dir = mkdtempSync(join(tmpdir(), "linli-sim-cli-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the written file and the command say the bus is gone with the simulator; kiosks on --kiosk-port", async () => {
    let stderr = "";
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    const file = join(dir, "wc.yaml");
    const code = await runSim({
      gateway: "mqtt://127.0.0.1:1",
      seed: 1,
      scale: 2,
      stations: 1,
      tanks: 1,
      kiosks: 2,
      kioskPort: 42850,
      writeConfig: file,
    });
    vi.restoreAllMocks();
    expect(code).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/# This bus was one end of a socat pty pair[\s\S]*--gateway-cmd[\s\S]*\nbuses:\n/);
    const config = parse(text) as { devices: Array<{ model: string; port?: number }> };
    expect(config.devices.filter((d) => d.model === "gk3").map((d) => d.port)).toEqual([42850, 42851]);
    expect(stderr).toMatch(/socat pty bus that exists only while linli sim runs/);
    expect(stderr).toMatch(/--gateway-cmd "linli start --config \{config\}/);
  });
});
