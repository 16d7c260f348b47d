/** Supervision across a live reload: deadlines move by the change, they do not restart from zero. */
import { beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { AlertEngine } from "./alerts/engine.js";
import { validateConfig } from "./config/load.js";
import type { Config, ConfigInput } from "./config/schema.js";
import { Publisher } from "./northbound/publisher.js";
import { type DeviceEntry, type HouseholdEntry, Registry } from "./registry.js";
import { Supervisor, type WelfareCareOptions } from "./supervision.js";
import { TimerWheel } from "./time/timer-wheel.js";

const MIN = 60_000;

function config(change: (c: ConfigInput) => void = () => {}): Config {
  const c: ConfigInput = {
    site: { id: "s" },
    households: [{ id: "hh-1", welfare: { period: "24h" } }, { id: "hh-2" }],
    devices: [{ id: "p-1", model: "ec200", password: "x", household: "hh-1", heartbeatInterval: "300s" }],
    alerts: { lostGrace: "60s" },
  };
  change(c);
  return validateConfig(c, "test", {});
}

/** The site of `config()` under a started supervisor, with what it published. */
function supervised(clock: FakeClock, opts?: WelfareCareOptions) {
  const wheel = new TimerWheel(clock);
  const published: Array<{ topic: string; payload: string }> = [];
  const publisher = new Publisher("s", { publish: (topic, payload) => published.push({ topic, payload }) });
  const engine = new AlertEngine("s", clock, wheel, { alertChanged: (a, t) => publisher.alert(a, t) });
  const registry = new Registry(config(), {
    onLost: (t) => supervisor.onLost(t),
    onWelfareDue: (t) => supervisor.onWelfareDue(t),
  });
  const supervisor = new Supervisor(clock, wheel, engine, publisher, 60_000, opts);
  supervisor.start(registry);
  const household = (id: string): HouseholdEntry => {
    const h = registry.households.get(id);
    if (!h) throw new Error(`household ${id} missing`);
    return h;
  };
  /** A reload's change of households as gateway/reload.ts applies it: every entry, then supervision. */
  const reloadHouseholds = (next: Config, ...hs: HouseholdEntry[]) => {
    const old = hs.map((h) => h.welfarePeriodMs);
    for (const h of hs)
      registry.updateHousehold(
        h,
        next.households.find((x) => x.id === h.id) as Config["households"][number],
        next,
      );
    for (const [i, h] of hs.entries()) supervisor.householdChanged(h, old[i] as number, undefined);
  };
  return { registry, supervisor, engine, published, household, reloadHouseholds };
}

/** A supervisor of its own: the site's zone UTC, hh-1 quiet 08:00-10:00 (the clock starts 09:00 UTC). */
const withQuietHours = (clock: FakeClock) =>
  supervised(clock, { timeZone: "UTC", quietHours: new Map([["hh-1", "08:00-10:00"]]) });

describe("Supervisor reload support", () => {
  let clock: FakeClock;
  let s: ReturnType<typeof supervised>;
  let registry: Registry;
  let supervisor: Supervisor;
  let engine: AlertEngine;

  beforeEach(() => {
    clock = new FakeClock();
    s = supervised(clock);
    ({ registry, supervisor, engine } = s);
  });

  const lostRaised = () => engine.find("p-1", "DEVICE_LOST") !== undefined;

  it("a shorter heartbeat moves the lost deadline by the difference, from the last message", () => {
    const p1 = registry.devices.get("p-1") as DeviceEntry;
    clock.advance(2 * MIN);
    const before = p1.lostAfterMs(supervisor.lostGrace); // 2 x 300 s + 60 s
    const next = config((c) => {
      (c.devices?.[0] as { heartbeatInterval: string }).heartbeatInterval = "60s";
    });
    registry.updateDevice(p1, next.devices[0] as Config["devices"][number], next);
    supervisor.retime(p1, before);
    // New deadline: start + 2 x 60 s + 60 s = start + 3 min, 1 min from now.
    clock.advance(MIN - 2_000);
    expect(lostRaised()).toBe(false);
    clock.advance(3_000);
    expect(lostRaised()).toBe(true);
  });

  it("each model is lost as its datasheet says: EC-200 2 intervals + grace, GD-2 3 intervals", () => {
    const next = config((c) => {
      c.devices?.push({ id: "k-1", model: "gd2", password: "y", heartbeatInterval: "120s" });
    });
    const k1 = registry.addDevice(next.devices[1] as Config["devices"][number], next);
    supervisor.track(k1);
    expect((registry.devices.get("p-1") as DeviceEntry).lostAfterMs(60_000)).toBe(2 * 300_000 + 60_000);
    // "silent for 3 heartbeat intervals": 360 s, where 2 x 120 s + 60 s would be 300 s.
    expect(k1.lostAfterMs(60_000)).toBe(360_000);
    clock.advance(6 * MIN - 1_000);
    expect(engine.find("k-1", "DEVICE_LOST")).toBeUndefined();
    clock.advance(2_000);
    expect(engine.find("k-1", "DEVICE_LOST")).toBeDefined();
  });

  it("a longer lost grace postpones a pending deadline", () => {
    const p1 = registry.devices.get("p-1") as DeviceEntry;
    const before = p1.lostAfterMs(supervisor.lostGrace);
    supervisor.setOptions({ lostGraceMs: 10 * MIN, awayExitGraceMs: 15 * MIN });
    supervisor.retime(p1, before);
    clock.advance(11 * MIN + 5_000);
    expect(lostRaised()).toBe(false);
    clock.advance(10 * MIN);
    expect(lostRaised()).toBe(true);
  });

  it("a device added by a reload is supervised from the reload", () => {
    clock.advance(30 * MIN);
    const next = config((c) => {
      c.devices?.push({ id: "p-9", model: "ec200", password: "y", heartbeatInterval: "60s" });
    });
    const p9 = registry.addDevice(next.devices[1] as Config["devices"][number], next);
    supervisor.track(p9);
    clock.advance(3 * MIN - 2_000);
    expect(engine.find("p-9", "DEVICE_LOST")).toBeUndefined();
    clock.advance(3_000);
    expect(engine.find("p-9", "DEVICE_LOST")).toBeDefined();
  });

  it("a shorter welfare period moves the running one; a household gaining its first device starts one", () => {
    const h1 = s.household("hh-1");
    const h2 = s.household("hh-2");
    expect(h2.welfareTimer.armed).toBe(false); // no device: nobody to watch
    clock.advance(30 * MIN);
    const next = config((c) => {
      c.households = [
        { id: "hh-1", welfare: { period: "1h" } },
        { id: "hh-2", welfare: { period: "2h" } },
      ];
      (c.devices?.[0] as { household: string }).household = "hh-2";
      (c.devices?.[0] as { name: string }).name = "紧急呼叫器";
    });
    // Devices first, as gateway/reload.ts does.
    const p1 = registry.devices.get("p-1") as DeviceEntry;
    registry.updateDevice(p1, next.devices[0] as Config["devices"][number], next);
    s.reloadHouseholds(next, h1, h2);
    // hh-1 lost its only device: nothing to watch. hh-2 starts a 2 h period now.
    expect(h1.welfareTimer.armed).toBe(false);
    expect(h2.welfareTimer.deadline).toBe(clock.now() + 2 * 60 * MIN);
    expect(p1.household).toBe("hh-2");
    expect(p1.telemetryPrefix).toContain('"household":"hh-2","deviceName":"紧急呼叫器",');
    // Only the name changes: telemetry carries the new one.
    const renamed = structuredClone(next);
    (renamed.devices[0] as { name: string }).name = "演示呼叫器";
    registry.updateDevice(p1, renamed.devices[0] as Config["devices"][number], renamed);
    expect(p1.telemetryPrefix).toContain('"deviceName":"演示呼叫器",');
  });

  it("a shorter welfare period moves the running one by the difference", () => {
    const h1 = s.household("hh-1");
    const start = clock.now();
    clock.advance(30 * MIN);
    const next = config((c) => {
      c.households = [{ id: "hh-1", welfare: { period: "1h" } }, { id: "hh-2" }];
    });
    s.reloadHouseholds(next, h1);
    expect(h1.welfareTimer.deadline).toBe(start + 60 * MIN);
    clock.advance(31 * MIN);
    expect(engine.find("hh-1", "WELFARE_CHECK")).toBeDefined();
  });

  it("an open WELFARE_CHECK clears on the next activity after a reload switched welfare checks off", () => {
    const h1 = s.household("hh-1");
    clock.advance(24 * 60 * MIN + 1_000);
    const id = engine.find("hh-1", "WELFARE_CHECK")?.id;
    expect(id).toBeDefined();
    engine.acknowledge(id as string, "wang", null);
    const next = config((c) => {
      c.households = [{ id: "hh-1", welfare: { enabled: false } }, { id: "hh-2" }];
    });
    s.reloadHouseholds(next, h1);
    supervisor.activity(h1, clock.now());
    // Acknowledged and now cleared: closed, not open on every console for good.
    expect(engine.find("hh-1", "WELFARE_CHECK")).toBeUndefined();
    expect(h1.welfareTimer.armed).toBe(false);
  });

  it("activity within the away exit grace clears an open WELFARE_CHECK (the resident is about)", () => {
    const h1 = s.household("hh-1");
    clock.advance(24 * 60 * MIN + 1_000);
    expect(engine.find("hh-1", "WELFARE_CHECK")?.state).toBe("active-unacknowledged");
    supervisor.setAway(h1, true, "wang", null, "visiting her daughter");
    clock.advance(MIN);
    supervisor.activity(h1, clock.now()); // the door, on the way out
    expect(engine.find("hh-1", "WELFARE_CHECK")?.state).toBe("cleared-unacknowledged");
    expect(supervisor.isAway("hh-1")).toBe(true);
  });

  it("a welfare check waiting for the end of quiet hours follows new quiet hours: none, it is raised now", () => {
    const { engine: eng, supervisor: sup, household } = withQuietHours(clock);
    const h1 = household("hh-1");
    clock.advance(24 * 60 * MIN + MIN); // due at 09:00 the next day: deferred to 10:00
    expect(eng.find("hh-1", "WELFARE_CHECK")).toBeUndefined();
    // The reload drops the quiet hours: the check that is due is raised now, not at the old 10:00.
    sup.householdChanged(h1, h1.welfarePeriodMs, undefined);
    clock.advance(2_000);
    expect(eng.find("hh-1", "WELFARE_CHECK")).toBeDefined();
  });

  it("a welfare check waiting for the end of quiet hours waits for the end of the new ones", () => {
    const { engine: eng, supervisor: sup, household } = withQuietHours(clock);
    const h1 = household("hh-1");
    clock.advance(24 * 60 * MIN + MIN);
    sup.householdChanged(h1, h1.welfarePeriodMs, "08:00-09:30");
    clock.advance(28 * MIN);
    expect(eng.find("hh-1", "WELFARE_CHECK")).toBeUndefined();
    clock.advance(2 * MIN);
    expect(eng.find("hh-1", "WELFARE_CHECK")).toBeDefined();
  });

  it("a removed household's retained monitoring status is deleted", () => {
    const h1 = s.household("hh-1");
    supervisor.householdRemoved(h1);
    expect(h1.welfareTimer.armed).toBe(false);
    expect(s.published).toContainEqual({ topic: "linli/s/households/hh-1/monitoring", payload: "" });
  });
});
