import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import type { Fleet } from "../fleet.js";
import { Lv4Sensor } from "../modbus/lv4.js";
import { Gd2 } from "../mqtt/gd2.js";
import { startTestBroker } from "../mqtt/test-broker.js";
import { drawdownCodes, drawdownTarget } from "./incidents/modbus.js";
import { AlertMatcher, type Expectation } from "./matcher.js";
import { buildReport, formatReport } from "./report.js";
import { ScenarioRunner } from "./runner.js";
import { loadScenario, parseScenario, ScenarioError } from "./schema.js";
import { fleetOf, recordingMatcher, runnerOf, scenarioOf, siteOf } from "./test-fixtures.js";

describe("tank drawn down: what it must cause (LV-4 datasheet)", () => {
  it("`to` in mm or as a share of the tank height, half the tank by default", () => {
    expect(drawdownTarget(undefined, 4000)).toBe(2000);
    expect(drawdownTarget("25%", 4000)).toBe(1000);
    expect(drawdownTarget("12.5%", 4000)).toBe(500);
    expect(drawdownTarget(1800, 4000)).toBe(1800);
  });

  it("low under the reserve, critical too under 30 % of the height, nothing above the reserve", () => {
    // The sensor's default set-point 2400 mm, 30 % of a 4000 mm tank is 1200 mm.
    expect(drawdownCodes(2000, 2400, 1200)).toEqual(["WATER_LEVEL_LOW"]);
    expect(drawdownCodes(1000, 2400, 1200)).toEqual(["WATER_LEVEL_LOW", "WATER_LEVEL_CRITICAL"]);
    expect(drawdownCodes(2400, 2400, 1200)).toEqual(["none"]);
    expect(drawdownCodes(3000, 2400, 1200)).toEqual(["none"]);
  });
});

/**
 * The winter-night and power-cut phases driven on the fake clock the emulators use: the
 * expectations the runner registers, against what the emulated devices really do.
 */
describe("winter night and power cut phases, on the fake clock", () => {
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  };
  /** Fires what is due now (the runner's phases start in a promise, then set their own timers). */
  const kick = async (clock: FakeClock) => {
    for (let i = 0; i < 4; i++) {
      clock.advance(0);
      await flush();
    }
  };
  /** Advances the fake clock a second at a time, letting the runner's promises run in between. */
  const step = async (clock: FakeClock, ms: number) => {
    for (let t = 0; t < ms; t += 1000) {
      clock.advance(Math.min(1000, ms - t));
      await flush();
    }
  };

  const recorder = recordingMatcher;
  const site = siteOf();
  const scenario = scenarioOf;

  /** These GD-2s (heartbeat every 60 s) and LV-4 tanks. */
  function kitchenFleet(parts: { tanks?: Map<string, Lv4Sensor>; gd2?: Map<string, Gd2> }): Fleet {
    const gd2 = parts.gd2 ?? new Map<string, Gd2>();
    const specs = new Map(
      [...gd2.keys()].map((id) => [
        id,
        { id, model: "gd2", password: "x", heartbeatIntervalS: 60, encoding: "json", clockSkewMs: 0 },
      ]),
    );
    return fleetOf({ mqtt: gd2, specs, tanks: parts.tanks });
  }

  /** Phases against these emulators on a fake clock, run to the end of their scripted part. */
  async function runPhases(clock: FakeClock, phases: unknown[], parts: Parameters<typeof kitchenFleet>[0]) {
    const { matcher, expectations, readings } = recorder();
    const runner = runnerOf({ scenario: phases, site, fleet: kitchenFleet(parts), matcher, clock });
    const t0 = clock.now();
    const done = runner.run();
    await kick(clock);
    await done;
    return { runner, expectations, readings, t0 };
  }

  /** One tank phase against an LV-4 emulator ("tank-1"). */
  async function runTankPhase(phase: Record<string, unknown>, tankOptions: { temperatureC?: number } = {}) {
    const clock = new FakeClock();
    const tank = new Lv4Sensor({ unit: 1, clock, ...tankOptions });
    const run = await runPhases(clock, [phase], { tanks: new Map([["tank-1", tank]]) });
    return { clock, tank, ...run };
  }

  it("tank-freeze: FREEZE_RISK due 10 minutes after the sensor first reads under 4.0 °C, and it stays under", async () => {
    const { clock, tank, runner, expectations, t0 } = await runTankPhase({
      do: "tank-freeze",
      targets: ["tank-1"],
      from: 4.5,
      cooling: 0.5,
      heater: 0.2,
    });
    expect(expectations).toHaveLength(1);
    const e = expectations[0] as Expectation;
    expect(e).toMatchObject({ code: "FREEZE_RISK", key: "tank-1", at: t0 });
    // Watch register 3 (0.1 °C) as the gateway polls it: when does it first read under 4.0?
    let firstUnder: number | undefined;
    let backOver = false;
    for (let t = 0; t < 20 * 60_000; t += 1000) {
      await step(clock, 1000);
      const reg = tank.inputRegisters()[3] as number;
      const c = (reg << 16) >> 16; // int16
      if (c < 40 && firstUnder === undefined) firstUnder = clock.now();
      if (firstUnder !== undefined && c >= 40) backOver = true;
    }
    expect(firstUnder).toBeDefined();
    // 1 minute from 4.5 to 4.0 at 0.5 °C/min, then 0.05 °C at 0.3 °C/min net: about 70 s in.
    expect((firstUnder as number) - t0).toBeGreaterThan(60_000);
    expect((firstUnder as number) - t0).toBeLessThan(80_000);
    expect(Math.abs(e.dueAt - 600_000 - (firstUnder as number))).toBeLessThanOrEqual(1000);
    // The heater is on and cannot keep up: the water never came back to 4.0 °C.
    expect(tank.heaterOn).toBe(true);
    expect(backOver).toBe(false);
    expect(tank.getTemperature()).toBeLessThan(0);
    // Morning: the night ends and the water is as warm as before (FREEZE_RISK clears at 5.0 °C).
    await runner.restore();
    expect(tank.getTemperature()).toBe(8);
    await step(clock, 60_000);
    expect(tank.getTemperature()).toBe(8);
    await runner.stop();
    tank.dispose();
  });

  it("tank-freeze with a dead heater (default): it switches on at 4 °C and gives no heat", async () => {
    const { clock, tank, runner, expectations, t0 } = await runTankPhase(
      { do: "tank-freeze" },
      { temperatureC: 6 },
    );
    // From 6 °C at 0.5 °C/min: 4.0 after about 4 minutes (the emulator keeps the water to
    // 0.001 °C a second: 0.48 °C/min), a reading of 3.9 (under 3.95) some 6 s later.
    const due = (expectations[0] as Expectation).dueAt;
    expect(due - t0 - 600_000).toBeGreaterThanOrEqual(240_000);
    expect(due - t0 - 600_000).toBeLessThanOrEqual(260_000);
    // The forecast is the second the register first reads 3.9 °C.
    await step(clock, due - t0 - 600_000 - 1000);
    expect(tank.getTemperature()).toBeGreaterThanOrEqual(3.95);
    await step(clock, 1000);
    expect(tank.getTemperature()).toBeLessThan(3.95);
    expect(tank.heaterOn).toBe(true);
    await runner.stop();
    tank.dispose();
  });

  it("tank-winter: the heater switches on at 4 °C and holds the water at 4-5 °C all night: nothing to raise", async () => {
    const { clock, tank, runner, expectations } = await runTankPhase({
      do: "tank-winter",
      targets: ["tank-1"],
      from: 4.6,
    });
    expect(expectations).toEqual([]);
    let heaterOn = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let t = 0; t < 3 * 3_600_000; t += 1000) {
      clock.advance(1000);
      const c = (((tank.inputRegisters()[3] as number) << 16) >> 16) / 10;
      min = Math.min(min, c);
      max = Math.max(max, c);
      if (tank.heaterOn) heaterOn++;
    }
    // The heater cycles (on at 4.0, off at 5.0) and the gateway never reads under 4.0 °C.
    expect(heaterOn).toBeGreaterThan(0);
    expect(heaterOn).toBeLessThan(3 * 3600);
    expect(min).toBe(4);
    expect(max).toBeLessThanOrEqual(5.1);
    // What the runner forecast for a freeze with these rates: never.
    expect(tank.winterForecast(4.0, 0.5, 1.0)).toBeNull();
    await runner.restore();
    expect(tank.getTemperature()).toBe(8);
    await runner.stop();
    tank.dispose();
  });

  it("power-cut: silent for the outage, back with ts 0 and mains false; POWER_FAIL due 10 min after, if the mains stays off", async () => {
    const tb = await startTestBroker();
    const clock = new FakeClock(1763798400000);
    const gd2 = new Gd2({
      deviceId: "gas-1",
      brokerUrl: tb.url,
      password: "x",
      clock,
      heartbeatIntervalMs: 60_000,
    });
    const gd2b = new Gd2({
      deviceId: "gas-2",
      brokerUrl: tb.url,
      password: "x",
      clock,
      heartbeatIntervalMs: 60_000,
    });
    try {
      await gd2.start();
      await gd2b.start();
      const { runner, expectations, readings, t0 } = await runPhases(
        clock,
        [
          { do: "power-cut", targets: ["gas-1"] },
          { do: "power-cut", targets: ["gas-2"], outage: "30s", duration: "5m" },
        ],
        {
          gd2: new Map([
            ["gas-1", gd2],
            ["gas-2", gd2b],
          ]),
        },
      );
      // The one whose mains stays off: POWER_FAIL 10 minutes after it is back (60 s, datasheet).
      expect(expectations).toHaveLength(1);
      expect(expectations[0]).toMatchObject({
        code: "POWER_FAIL",
        key: "gas-1",
        at: t0,
        dueAt: t0 + 660_000,
      });
      // Both must have a ts 0 reading accepted once back.
      expect(readings.map((r) => [r.key, r.after - t0, r.dueBy - t0])).toEqual([
        ["gas-1", 60_000, 75_000],
        ["gas-2", 30_000, 45_000],
      ]);
      const json = (m: { payload: Buffer }) =>
        JSON.parse(m.payload.toString("utf8")) as Record<string, unknown>;
      const from = (id: string) => tb.received.filter((m) => m.topic === `devices/gd2/${id}/up`).map(json);
      // Both detectors have dropped their connections (their outage timers start then).
      const deadline = Date.now() + 5_000;
      while (tb.broker.connectedClients > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
      await flush();
      const before = tb.received.length;
      await step(clock, 29_000);
      await new Promise((r) => setTimeout(r, 50));
      expect(tb.received.length).toBe(before); // silent
      await step(clock, 1_000);
      const [back2] = (await tb.waitFor(before + 1)).slice(before).map(json);
      expect(back2).toMatchObject({ t: "hb", ts: 0, mains: false });
      await step(clock, 30_000);
      await tb.waitFor(1, (m) => m.topic === "devices/gd2/gas-1/up");
      expect(from("gas-1")).toEqual([expect.objectContaining({ t: "hb", ts: 0, mains: false })]);
      // gas-2's mains is back after 5 minutes: its clock is set again, mains true at once.
      await step(clock, 240_000);
      const mainsBack = (id: string) => (m: { topic: string; payload: Buffer }) =>
        m.topic === `devices/gd2/${id}/up` && json(m).mains === true;
      await tb.waitFor(1, mainsBack("gas-2"));
      const last2 = from("gas-2").at(-1);
      expect(last2).toMatchObject({ t: "hb", mains: true });
      expect(last2?.ts).toBeGreaterThan(0);
      // gas-1 is still on battery, heartbeats carry ts 0 and mains false.
      expect(from("gas-1").at(-1)).toMatchObject({ t: "hb", ts: 0, mains: false });
      await runner.restore();
      await tb.waitFor(1, mainsBack("gas-1"));
      expect(from("gas-1").at(-1)).toMatchObject({ t: "hb", mains: true });
      await runner.stop();
    } finally {
      await gd2.stop();
      await gd2b.stop();
      await tb.close();
    }
  });

  it("end-of-run restores complete: a leak's last alarm is level none, a valve fault leaves the valve as it was", async () => {
    const tb = await startTestBroker();
    const clock = new FakeClock(1763798400000);
    const leaking = new Gd2({
      deviceId: "gas-1",
      brokerUrl: tb.url,
      password: "x",
      clock,
      heartbeatIntervalMs: 0,
    });
    const faulty = new Gd2({
      deviceId: "gas-2",
      brokerUrl: tb.url,
      password: "x",
      clock,
      heartbeatIntervalMs: 0,
    });
    try {
      await leaking.start();
      await faulty.start();
      expect(faulty.valve).toBe("open");
      const { runner } = await runPhases(
        clock,
        [
          { do: "gas-leak", targets: ["gas-1"] },
          { do: "valve-fault", targets: ["gas-2"] },
        ],
        {
          gd2: new Map([
            ["gas-1", leaking],
            ["gas-2", faulty],
          ]),
        },
      );
      const json = (m: { payload: Buffer }) =>
        JSON.parse(m.payload.toString("utf8")) as Record<string, unknown>;
      const alarms = () =>
        tb.received
          .filter((m) => m.topic === "devices/gd2/gas-1/up")
          .map(json)
          .filter((m) => m.t === "alarm");
      // 2 %LEL/s: high (26 %LEL) 13 s in; the run ends at 20 s with the leak still there.
      await step(clock, 20_000);
      await tb.waitFor(1, (m) => m.topic === "devices/gd2/gas-1/up" && json(m).level === "high");
      await runner.stop();
      await runner.restore();
      // The restore resolved once the detector's messages were sent: nothing to wait for here.
      expect(alarms().at(-1)).toMatchObject({ t: "alarm", level: "none", lel: 0 });
      expect(faulty.valve).toBe("open");
      // Its heartbeat (QoS 0) says so too.
      await tb.waitFor(
        1,
        (m) => m.topic === "devices/gd2/gas-2/up" && json(m).t === "hb" && json(m).valve === "open",
      );
    } finally {
      await leaking.stop();
      await faulty.stop();
      await tb.close();
    }
  });

  it("a phase's targets and draws are the seed's alone: what (and when) other phases draw never shifts them", async () => {
    // Eight tanks; a glitching tank draws its glitch values when its incident runs, and a later
    // phase picks three tanks for a fault. With one stream for the whole run, the pick depended
    // on how many numbers had been drawn before it, so on which timers a loaded loop fired first.
    const faultTargets = async (glitches: number) => {
      const clock = new FakeClock();
      const tanks = new Map(
        Array.from({ length: 8 }, (_, i) => [`tank-${i + 1}`, new Lv4Sensor({ unit: i + 1, clock })]),
      );
      const { matcher, expectations } = recorder();
      const runner = new ScenarioRunner({
        scenario: scenario([
          { at: "0s", do: "tank-glitch", targets: ["tank-1"], glitches },
          { at: "1s", do: "tank-fault", count: 3, targets: [...tanks.keys()].slice(1) },
        ]),
        site,
        fleet: kitchenFleet({ tanks }),
        matcher,
        seed: 1,
        clock,
      });
      const done = runner.run();
      await kick(clock);
      await step(clock, 1000);
      await kick(clock);
      await done;
      for (const t of tanks.values()) t.dispose();
      return expectations.filter((e) => e.code === "FAULT").map((e) => e.key);
    };
    const picked = await faultTargets(1);
    expect(picked).toHaveLength(3);
    for (const glitches of [2, 3, 5, 8, 13]) expect(await faultTargets(glitches)).toEqual(picked);
  });

  it("counts the incidents that must cause no alert, so incidents and expected alerts add up in the report", async () => {
    const clock = new FakeClock();
    const tanks = new Map(
      Array.from({ length: 3 }, (_, i) => [`tank-${i + 1}`, new Lv4Sensor({ unit: i + 1, clock })]),
    );
    const { matcher, expectations } = recorder();
    const runner = runnerOf({
      scenario: [
        { at: "0s", do: "tank-glitch", targets: ["tank-1"] },
        { at: "0s", do: "tank-fault", targets: ["tank-2", "tank-3"] },
      ],
      site,
      fleet: kitchenFleet({ tanks }),
      matcher,
      clock,
    });
    const done = runner.run();
    await kick(clock);
    await step(clock, 1000);
    await kick(clock);
    await done;
    for (const t of tanks.values()) t.dispose();
    expect(expectations).toHaveLength(2);
    expect(runner.stats).toMatchObject({ incidents: 3, quietIncidents: 1 });
  });

  it("a phase drives every target it lists unless count picks fewer of them", async () => {
    // A user who lists three tanks means three faults: the default count was 1, which drove one.
    const faultKeys = async (phase: Record<string, unknown>) => {
      const clock = new FakeClock();
      const tanks = new Map(
        Array.from({ length: 4 }, (_, i) => [`tank-${i + 1}`, new Lv4Sensor({ unit: i + 1, clock })]),
      );
      const { matcher, expectations } = recorder();
      const runner = runnerOf({ scenario: [phase], site, fleet: kitchenFleet({ tanks }), matcher, clock });
      const done = runner.run();
      await kick(clock);
      await done;
      await runner.stop();
      await runner.restore();
      for (const t of tanks.values()) t.dispose();
      return expectations.filter((e) => e.code === "FAULT").map((e) => e.key);
    };
    const listed = ["tank-1", "tank-3", "tank-4"];
    expect((await faultKeys({ do: "tank-fault", targets: listed })).sort()).toEqual(listed);
    const two = await faultKeys({ do: "tank-fault", targets: listed, count: 2 });
    expect(two).toHaveLength(2);
    for (const id of two) expect(listed).toContain(id);
    // Without targets, one seeded pick of the site's tanks, as before.
    expect(await faultKeys({ do: "tank-fault" })).toHaveLength(1);
  });

  it("a count over the site's devices of the model, without targets, is refused at the start with file, line and field", () => {
    // Three tank faults asked of a site with two tanks drove two, and the run passed.
    const dir = mkdtempSync(join(tmpdir(), "linli-scenario-"));
    try {
      const file = join(dir, "too-many.yaml");
      writeFileSync(
        file,
        "name: t\ndescription: d\nphases:\n  - do: tank-fault\n    count: 2\n  - do: tank-fault\n    count: 3\n",
      );
      const { scenario, lineOf } = loadScenario(file);
      const clock = new FakeClock();
      const tanks = new Map([
        ["tank-1", new Lv4Sensor({ unit: 1, clock })],
        ["tank-2", new Lv4Sensor({ unit: 2, clock })],
      ]);
      const fleet = fleetOf({ tanks });
      const start = (s: typeof scenario) =>
        new ScenarioRunner({
          scenario: s,
          site: siteOf({ source: "site.yaml" }),
          fleet,
          matcher: recordingMatcher().matcher,
          seed: 1,
          clock,
          source: { file, lineOf },
        });
      expect(() => start(scenario)).toThrow(ScenarioError);
      expect(() => start(scenario)).toThrow(
        `${file}:7: phases.1.count: count 3 is more than the 2 LV-4 the site (site.yaml) has attached: lower count, give targets, or run it on a site with more`,
      );
      // As many as the site has is fine (phase 0 alone).
      expect(() => start({ ...scenario, phases: scenario.phases.slice(0, 1) })).not.toThrow();
      for (const t of tanks.values()) t.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("two disturbance phases alike (same at, same do) draw their devices apart", async () => {
    // Two groups of residents' base stations whose clocks go wrong, one ahead, one behind: with a
    // stream keyed by `at` and `do`, both phases drew the same devices and the second undid the first.
    const skews = new Map<string, number[]>();
    const mqtt = new Map(
      Array.from({ length: 16 }, (_, i) => {
        const id = `door-${i + 1}`;
        const device = { online: true, resync: (ms = 0) => skews.set(id, [...(skews.get(id) ?? []), ms]) };
        return [id, device];
      }),
    );
    const fleet = fleetOf({ mqtt });
    const clock = new FakeClock();
    const runner = new ScenarioRunner({
      scenario: scenario([
        { at: "0s", do: "clock-skew", share: 0.25, skewMs: 60_000 },
        { at: "0s", do: "clock-skew", share: 0.25, skewMs: -60_000 },
      ]),
      site,
      fleet,
      matcher: recorder().matcher,
      seed: 1,
      clock,
    });
    const done = runner.run();
    await kick(clock);
    await done;
    const ahead = [...skews].filter(([, s]) => s.includes(60_000)).map(([id]) => id);
    const behind = [...skews].filter(([, s]) => s.includes(-60_000)).map(([id]) => id);
    expect(ahead).toHaveLength(4);
    expect(behind).toHaveLength(4);
    expect(ahead.filter((id) => behind.includes(id)).length).toBeLessThan(4);
  });

  it("refuses a power cut as long as 2 heartbeat intervals (it may be DEVICE_LOST)", () => {
    const clock = new FakeClock();
    const gd2 = new Gd2({ deviceId: "gas-1", brokerUrl: "mqtt://127.0.0.1:1", password: "x", clock });
    const { matcher } = recorder();
    expect(
      () =>
        new ScenarioRunner({
          scenario: scenario([{ do: "power-cut", outage: "2m" }]),
          site,
          fleet: kitchenFleet({ gd2: new Map([["gas-1", gd2]]) }),
          matcher,
          seed: 1,
          clock,
        }),
    ).toThrow(/an outage of 120 s on gas-1 \(heartbeat every 60 s\) may be DEVICE_LOST/);
  });
});

/**
 * A single SIGINT/SIGTERM stops the runner: every pending wait must end (the churn phase waits on
 * its devices' downtime), churned devices come back, and the report can be built.
 */
describe("stopping a run during churn", () => {
  /** The part of an MQTT device churn and load use, without a broker. */
  class FakeDevice {
    online = true;
    heartbeats = 0;
    constructor(readonly deviceId: string) {}
    async goOffline() {
      this.online = false;
    }
    async goOnline() {
      this.online = true;
    }
    async heartbeat() {
      this.heartbeats++;
    }
    once() {}
  }

  it("load: a message due on an offline device is counted as skipped, next to offered and sent", async () => {
    const clock = new FakeClock();
    const devices = new Map(Array.from({ length: 10 }, (_, i) => [`d${i}`, new FakeDevice(`d${i}`)]));
    for (const i of [2, 5, 7]) (devices.get(`d${i}`) as FakeDevice).online = false;
    const fleet = fleetOf({ mqtt: devices });
    const site = siteOf();
    const s = parseScenario(
      { name: "load", description: "d", phases: [{ at: 0, do: "steady", rate: 10, duration: "3s" }] },
      "load.yaml",
    );
    const { matcher } = recordingMatcher();
    const runner = new ScenarioRunner({ scenario: s, site, fleet, matcher, seed: 1, clock });
    const run = runner.run();
    for (let i = 0; i < 40; i++) {
      clock.advance(100);
      for (let k = 0; k < 3; k++) await new Promise<void>((r) => setImmediate(r));
    }
    await run;
    // 30 due over 10 devices in turn: 3 each, 9 of them on the three offline ones.
    expect(runner.stats).toMatchObject({ loadOffered: 30, loadSent: 21, loadSkippedOffline: 9 });
    const sent = [...devices.values()].reduce((n, d) => n + d.heartbeats, 0);
    expect(sent).toBe(21);
  });

  it("ends at once with every churned device back online, and the report is built", async () => {
    const clock = new FakeClock();
    const devices = new Map(Array.from({ length: 20 }, (_, i) => [`d${i}`, new FakeDevice(`d${i}`)]));
    const fleet = fleetOf({ mqtt: devices });
    const site = siteOf();
    const s = parseScenario(
      {
        name: "churny",
        description: "d",
        phases: [
          { at: 0, do: "churn", share: 1, duration: "1s", downFor: "10m" },
          { at: 0, do: "steady", rate: 10, duration: "10m" },
        ],
      },
      "churny.yaml",
    );
    const matcher = new AlertMatcher({
      brokerUrl: "mqtt://127.0.0.1:1",
      site: "s",
      operator: { name: "o", password: "p" },
      ownKeys: new Set(),
      allowUnexpected: [],
    });
    const runner = new ScenarioRunner({ scenario: s, site, fleet, matcher, seed: 1, clock });
    const run = runner.run();
    for (let i = 0; i < 20; i++) {
      clock.advance(100);
      for (let k = 0; k < 5; k++) await new Promise<void>((r) => setImmediate(r));
    }
    expect([...devices.values()].every((d) => !d.online)).toBe(true);
    expect(runner.stats.churned).toBe(20);

    const deadline = new Promise<"hung">((r) => setTimeout(() => r("hung"), 2_000).unref());
    const stopped = (async () => {
      await runner.stop();
      await runner.restore();
      await run;
      return "stopped" as const;
    })();
    expect(await Promise.race([stopped, deadline])).toBe("stopped");
    expect([...devices.values()].every((d) => d.online)).toBe(true);
    const report = buildReport(
      {
        scenario: s.name,
        description: s.description,
        site: "s",
        source: "test",
        gateway: "mqtt://127.0.0.1:1",
        seed: 1,
        startedAt: new Date(0).toISOString(),
        durationS: 2,
        devices: { mqtt: 20, connected: 20, failed: 0, rtuSlaves: 0, kiosks: 0, closedByGateway: 0 },
        run: runner.stats,
        malformedInput: {
          modbusTcp: { foreignProtocol: 2, framingErrors: 1 },
          modbusRtu: { crcErrors: 3, incompleteFrames: 0 },
          mqtt: { badDownlinks: 0 },
        },
        gatewayRefusals: { metrics: null, error: "not read in this test", byReason: null },
        operator: { reconnects: 0, lastError: null },
      },
      s,
      matcher,
      ["interrupted before the end"],
    );
    expect(report.passed).toBe(false);
    expect(report.run.churned).toBe(20);
    expect(formatReport(report)).toContain("interrupted before the end");
    expect(formatReport(report)).toMatch(/\d+\/\d+ load messages sent/);
    expect(formatReport({ ...report, run: { ...report.run, incidents: 40, quietIncidents: 10 } })).toContain(
      "injected: 40 incidents (10 of them to cause no alert), ",
    );
    // Load skipped on devices offline with no churn of ours: the gateway closed their connections.
    expect(formatReport({ ...report, devices: { ...report.devices, closedByGateway: 37 } })).toContain(
      "devices: 20/20 MQTT connected, 0 RTU slaves, 0 kiosks; 37 MQTT connection(s) closed by the gateway during the run (the devices reconnected; load due meanwhile was skipped)\n",
    );
    // What the gateway refused and its flood are said whether or not they could be read.
    expect(formatReport(report)).toContain(
      "\ngateway refused: not read (not read in this test; --metrics URL names the gateway's /metrics)\nalert flood: none seen\n",
    );
    // The site has MQTT devices only: the Modbus counters are not said (the JSON has them all).
    expect(formatReport(report)).toContain("\nmalformed requests to the simulator: MQTT 0 bad downlinks\n");
    expect(JSON.parse(JSON.stringify(report)).malformedInput.modbusTcp).toEqual({
      foreignProtocol: 2,
      framingErrors: 1,
    });
  });
});

describe("refused before the run: a site too small for the scenario", () => {
  /** A fleet of `households` EC-200 + DS-10 pairs, with their specs (models), none connected. */
  function pairs(households: number): { fleet: Fleet; ids: string[] } {
    const specs = new Map<string, { id: string; model: string }>();
    for (let i = 1; i <= households; i++)
      for (const model of ["ec200", "ds10"]) specs.set(`${model}-${i}`, { id: `${model}-${i}`, model });
    const mqtt = new Map([...specs.keys()].map((id) => [id, { id, online: false }]));
    return { fleet: fleetOf({ mqtt, specs }), ids: [...specs.keys()] };
  }
  const households = (n: number) => Array.from({ length: n }, (_, i) => `hh-${i + 1}`);
  const refusal = (site: ReturnType<typeof siteOf>, fleet: Fleet): string => {
    try {
      runnerOf({
        scenario: loadScenario("evening-peak").scenario,
        site,
        fleet,
        matcher: recordingMatcher().matcher,
        clock: new FakeClock(),
      });
    } catch (err) {
      expect(err).toBeInstanceOf(ScenarioError);
      return (err as Error).message;
    }
    return "";
  };

  it("minHouseholds holds for a --config site too, naming the file and the numbers", () => {
    const { fleet } = pairs(20);
    expect(refusal(siteOf({ source: "site.yaml", households: households(20) }), fleet)).toBe(
      "evening-peak needs at least 50 households; site.yaml has 20: run it on a larger site (--scale 50 writes one)",
    );
    expect(refusal(siteOf({ source: "--scale 20", households: households(20) }), fleet)).toBe(
      "evening-peak needs at least 50 households; --scale 20 has 20: give --scale 50 or more",
    );
  });

  it("a site with the households but too few MQTT devices for the load is refused with the per-device rate", () => {
    // 50 households in the file, 20 of them with devices: 400 msg/s over 40 devices.
    const { fleet } = pairs(20);
    expect(refusal(siteOf({ source: "site.yaml", households: households(50) }), fleet)).toMatch(
      /^evening-peak: its load peaks at 400 msg\/s, 10 msg\/s for each of the 40 MQTT devices of site.yaml: over the gateway's per-device limit \(EC-200, DS-10: 1 msg\/s, burst 120; .* needs at least 78 MQTT devices, or a lower rate in the scenario$/,
    );
    // The same site whose gateway allows 10/s (its file's limits.deviceRate) carries it.
    const fast = {
      enabled: true,
      models: { ec200: { perSecond: 10, burst: 120 }, ds10: { perSecond: 10, burst: 120 } },
    };
    expect(
      refusal(siteOf({ source: "site.yaml", households: households(50), deviceRate: fast }), fleet),
    ).toBe("");
    expect(refusal(siteOf({ source: "--scale 50", households: households(50) }), pairs(50).fleet)).toBe("");
  });
});
