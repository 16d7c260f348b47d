/**
 * Device rules after a restart, on the engine: the alerts come back from the journal, the rules'
 * own state starts fresh. A condition reported only when it changes must still clear a restored
 * alert whose cause ended while the gateway was down (a fire panel reset, a cover put back).
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { type Ds10Sample, ds10 } from "../../devices/ds10.js";
import { type Ec200Sample, ec200 } from "../../devices/ec200.js";
import { type Gk3Sample, gk3 } from "../../devices/gk3.js";
import { type Mfs8Sample, mfs8 } from "../../devices/mfs8.js";
import { siteSettings } from "../../devices/test-fixtures.js";
import { DeviceRuleContext } from "../rule-context.js";
import { TimerWheel } from "../time/timer-wheel.js";
import { AlertEngine } from "./engine.js";

const settings = {
  ...siteSettings({ heartbeatIntervalMs: 300_000 }),
  holdOpenMs: 600_000,
  minPressureMpa: 0.15,
  extinguisherGraceMs: 120_000,
  outOfServiceAfterMs: 300_000,
  openingHours: { from: 0, to: 0 },
};

function setup() {
  const clock = new FakeClock();
  const wheel = new TimerWheel(clock);
  const engine = new AlertEngine("s", clock, wheel, { alertChanged: () => {} });
  const rc = new DeviceRuleContext<unknown>(() => false);
  return { clock, engine, rc };
}

const panelSample = (status: number): Mfs8Sample => ({
  firmware: "2.3",
  uptime: 1,
  status,
  smoke: 0,
  temperature: 21.5,
  pressure: 0.32,
  present: 0b11111,
  slots: 5,
  faultCode: 0,
  events: 1,
});

const kioskSample = (status: number): Gk3Sample => ({
  state: "in-service",
  temperature: 25,
  humidity: 40,
  paper: 80,
  status,
  transactions: 0,
  uptime: 1,
  queue: 0,
});

describe("the first report after a restart clears a restored alert whose cause ended meanwhile", () => {
  it("MFS-8: a FIRE_ALARM, the panel reset while the gateway was down", () => {
    const { clock, engine, rc } = setup();
    const panel = { id: "m-1", model: "mfs8" as const, household: null };
    mfs8.rules(panelSample(0b1), mfs8.initialState(), settings, rc.for(panel, engine.contextFor(panel)));
    expect(engine.find("m-1", "FIRE_ALARM")?.state).toBe("active-unacknowledged");
    clock.advance(60_000);
    // Restarted: the alert is back from the journal, the rules' state is new; the panel was reset.
    mfs8.rules(panelSample(0), mfs8.initialState(), settings, rc.for(panel, engine.contextFor(panel)));
    expect(engine.find("m-1", "FIRE_ALARM")?.state).toBe("cleared-unacknowledged");
  });

  it("GK-3: a FAULT whose printer was fixed", () => {
    const { engine, rc } = setup();
    const kiosk = { id: "k-1", model: "gk3" as const, household: null };
    gk3.rules(kioskSample(0b10), gk3.initialState(), settings, rc.for(kiosk, engine.contextFor(kiosk)));
    expect(engine.find("k-1", "FAULT")?.state).toBe("active-unacknowledged");
    gk3.rules(kioskSample(0), gk3.initialState(), settings, rc.for(kiosk, engine.contextFor(kiosk)));
    expect(engine.find("k-1", "FAULT")?.state).toBe("cleared-unacknowledged");
  });

  it("DS-10: TAMPER with the cover back on, DOOR_HELD_OPEN with the door closed", () => {
    const { clock, engine, rc } = setup();
    const door = { id: "d-1", model: "ds10" as const, household: "hh-1" };
    const msg = (contact: string, tamper: boolean) =>
      ds10.parse({ t: "state", seq: 1, ts: clock.now(), contact, tamper, bat: 64 }) as Ds10Sample;
    const before = ds10.initialState();
    ds10.rules(msg("open", true), before, settings, rc.for(door, engine.contextFor(door)));
    clock.advance(700_000);
    expect(engine.find("d-1", "TAMPER")?.state).toBe("active-unacknowledged");
    expect(engine.find("d-1", "DOOR_HELD_OPEN")?.state).toBe("active-unacknowledged");
    ds10.rules(msg("closed", false), ds10.initialState(), settings, rc.for(door, engine.contextFor(door)));
    clock.advance(1_000);
    expect(engine.find("d-1", "TAMPER")?.state).toBe("cleared-unacknowledged");
    expect(engine.find("d-1", "DOOR_HELD_OPEN")?.state).toBe("cleared-unacknowledged");
  });

  it("EC-200: BATTERY_LOW after the battery was changed", () => {
    const { engine, rc } = setup();
    const pendant = { id: "p-1", model: "ec200" as const, household: "hh-1" };
    const hb = (bat: number) => ec200.parse({ t: "hb", seq: 1, ts: 1, bat, rssi: -60 }) as Ec200Sample;
    ec200.rules(hb(10), ec200.initialState(), settings, rc.for(pendant, engine.contextFor(pendant)));
    expect(engine.find("p-1", "BATTERY_LOW")?.state).toBe("active-unacknowledged");
    ec200.rules(hb(100), ec200.initialState(), settings, rc.for(pendant, engine.contextFor(pendant)));
    expect(engine.find("p-1", "BATTERY_LOW")?.state).toBe("cleared-unacknowledged");
  });
});
