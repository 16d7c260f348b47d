/**
 * The malformed-replies phase: the Modbus simulator's malformed-frame faults from a scenario file,
 * armed on a panel, tank or kiosk for its next replies, each refused where its transport has no
 * such frame, and disarmed at the end of the run.
 */
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { Gk3Controller } from "../modbus/gk3.js";
import { Mfs8Panel } from "../modbus/mfs8.js";
import { fleetOf, recordingMatcher, runnerOf, scenarioOf, siteOf } from "./test-fixtures.js";

const disposals: Array<() => void> = [];
afterEach(() => {
  for (const d of disposals.splice(0)) d();
});

function setup() {
  const clock = new FakeClock();
  const kiosk = new Gk3Controller({ clock });
  const panel = new Mfs8Panel({ unit: 1, clock });
  disposals.push(() => kiosk.dispose());
  const fleet = fleetOf({ panels: new Map([["fire-1", panel]]), kiosks: new Map([["kiosk-1", kiosk]]) });
  const { matcher, expectations } = recordingMatcher();
  const runner = (phases: unknown[]) => runnerOf({ scenario: phases, site: siteOf(), fleet, matcher, clock });
  return { clock, kiosk, panel, runner, expectations };
}

describe("malformed-replies phases", () => {
  it("arms the fault for the next N replies of the target (nothing expected); the end of the run disarms it", async () => {
    const { clock, kiosk, panel, runner, expectations } = setup();
    const r = runner([
      { do: "malformed-replies", targets: ["kiosk-1"], frame: "wrong-transaction", replies: 3 },
      { do: "malformed-replies", targets: ["fire-1"], frame: "corrupt-crc", replies: 2 },
      { do: "malformed-replies", targets: ["fire-1"], frame: "noise" },
    ]);
    const done = r.run();
    for (let i = 0; i < 5; i++) {
      clock.advance(0);
      await new Promise<void>((res) => setImmediate(res));
    }
    await done;
    expect(expectations).toEqual([]);
    expect(kiosk.faults.malformed["wrong-transaction"]).toBe(3);
    expect(panel.faults.corruptCrc).toBe(2);
    expect(panel.faults.malformed.noise).toBe(1);
    await r.restore();
    expect(kiosk.faults.malformed["wrong-transaction"]).toBe(0);
    expect(panel.faults).toMatchObject({ corruptCrc: 0, malformed: { noise: 0 } });
  });

  it.each([
    [{ targets: ["kiosk-1"], frame: "noise" }, /noise breaks a serial frame, and kiosk-1 is on Modbus TCP/],
    [
      { targets: ["kiosk-1"], frame: "corrupt-crc" },
      /kiosk-1 is on Modbus TCP \(it takes: wrong-transaction/,
    ],
    [
      { targets: ["fire-1"], frame: "wrong-protocol" },
      /wrong-protocol breaks an MBAP header, and fire-1 is on Modbus RTU/,
    ],
  ])("refused before the run: %j", (phase, reason) => {
    const { runner } = setup();
    expect(() => runner([{ do: "malformed-replies", ...phase }])).toThrow(reason);
  });

  it("the scenario format: frame is required and one of the simulator's faults", () => {
    const parse = (phase: Record<string, unknown>) => scenarioOf([{ do: "malformed-replies", ...phase }]);
    expect(() => parse({})).toThrow(/frame: malformed-replies needs frame/);
    expect(() => parse({ frame: "garbled" })).toThrow(/frame/);
    expect(() => parse({ frame: "truncate", days: 2 })).toThrow(/days: not a field of malformed-replies/);
    expect(parse({ frame: "wrong-length", replies: 4 }).phases[0]).toMatchObject({
      frame: "wrong-length",
      replies: 4,
    });
  });
});
