/**
 * The LV-4's behaviour as its datasheet states it (../shared/datasheets/lv4-water-tank.md),
 * as one suite that any LV-4 profile must pass: the code profile (devices/lv4.ts) and the
 * same device written as data (examples/profiles/lv4.yaml). Registers come from the
 * register-exact emulator (sim/modbus/lv4.ts, its own tables) and from the datasheet's
 * example frames; alerts go through the real alert engine on a fake clock.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { LANE_TELEMETRY } from "../../core/index.js";
import { deviceSchema } from "../../devices/config.js";
import { pointRanges } from "../../devices/modbus-decode.js";
import { decodePollSample } from "../../devices/modbus-sample.js";
import {
  type AnyProfile,
  type DeviceSettings,
  isRejection,
  type ModbusCommand,
  type ModbusDeviceProfile,
} from "../../devices/profile.js";
import { siteSettings } from "../../devices/test-fixtures.js";
import type { Alert, AlertSubject, Transition } from "../../gateway/alerts/alert.js";
import { AlertEngine } from "../../gateway/alerts/engine.js";
import { DeviceRuleContext } from "../../gateway/rule-context.js";
import { TimerWheel } from "../../gateway/time/timer-wheel.js";
import { coalesceRanges } from "../../protocols/modbus/index.js";
import { MAX_READ_REGISTERS } from "../../protocols/modbus/pdu.js";
import { Lv4Sensor } from "../../sim/modbus/lv4.js";

// biome-ignore lint/suspicious/noExplicitAny: the suite runs profiles of any sample type.
export type Lv4ProfileFactory = () => ModbusDeviceProfile<any, any>;

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).map((h) => Number.parseInt(h, 16)));

/** Register words of a read reply frame (address, fn, byte count ... CRC). */
function replyWords(frame: Uint8Array): number[] {
  const n = frame[2]!;
  const out: number[] = [];
  for (let i = 0; i < n / 2; i++) out.push((frame[3 + 2 * i]! << 8) | frame[4 + 2 * i]!);
  return out;
}

/** The request PDU a command becomes on the wire (what the gateway's bus sends). */
function commandPdu(cmd: ModbusCommand, value?: number): number[] {
  const v =
    cmd.value === "request" ? (value as number) : cmd.fn === 5 ? (cmd.value !== 0 ? 0xff00 : 0) : cmd.value;
  return [cmd.fn, cmd.address >> 8, cmd.address & 0xff, v >> 8, v & 0xff];
}

const toHex = (b: readonly number[]) => b.map((x) => x.toString(16).padStart(2, "0").toUpperCase()).join(" ");

// The datasheet's example reply: slave 9, 2350 mm, -3.5 °C, 42.3 m³, low + heater, 259,217 s, 4000 mm, counter 3.
const EXAMPLE_REPLY =
  "09 04 18 4C 34 01 05 09 2E FF DD 42 29 33 33 00 05 00 00 00 03 F4 91 0F A0 00 03 69 6E";

interface Seen {
  code: string;
  t: Transition;
  priority: number;
  causes: string[];
}

/**
 * The settings the gateway gives the rules: the site's, and the profile's own
 * from a device entry as the config describes it (`reserve:` for the code
 * profile, `settings: { reserve }` for a YAML one), validated by its schema.
 */
function settingsFor(profile: AnyProfile, reserve?: number): DeviceSettings {
  const own = profile.model === "lv4" ? { reserve } : { settings: reserve === undefined ? {} : { reserve } };
  const entry = deviceSchema(profile).parse({
    id: "tank-1",
    model: profile.model,
    bus: "b1",
    unit: 9,
    ...own,
  });
  return {
    ...siteSettings({ pollIntervalMs: 1000, timezone: "Asia/Shanghai" }),
    ...profile.settings(entry),
  };
}

export function describeLv4Behaviour(name: string, profileFactory: Lv4ProfileFactory): void {
  function rig(
    opts: {
      reserve?: number;
      levelMm?: number;
      temperatureC?: number;
      lowSetPointMm?: number;
      /** The profile's setting reads (the low set-point) go unanswered. */
      settingReadsFail?: boolean;
    } = {},
  ) {
    const profile = profileFactory();
    const clock = new FakeClock();
    const seen: Seen[] = [];
    const escalated: string[] = [];
    const engine = new AlertEngine(
      "s",
      clock,
      new TimerWheel(clock),
      {
        alertChanged: (a: Alert, t) =>
          seen.push({ code: a.code, t, priority: a.priority, causes: [...a.causes] }),
        escalated: (a: Alert) => escalated.push(a.code),
      },
      { escalationP1Ms: 60_000, escalationP2Ms: 300_000 },
    );
    const sensor = new Lv4Sensor({
      unit: 9,
      clock,
      levelMm: opts.levelMm ?? 3600,
      temperatureC: opts.temperatureC ?? 8,
      ...(opts.lowSetPointMm !== undefined ? { lowSetPointMm: opts.lowSetPointMm } : {}),
    });
    const subject: AlertSubject = {
      id: "tank-1",
      model: profile.model as AlertSubject["model"],
      household: null,
    };
    const settings = settingsFor(profile, opts.reserve);
    const rules = new DeviceRuleContext<AlertSubject>(() => false);
    const state = profile.initialState();
    let previous: unknown = null;
    let lastSample: unknown = null;
    const lanes: number[] = [];
    const settingDue = new Map<string, number>();
    /**
     * The profile's registers beside the poll, as the gateway reads them (gateway/southbound/modbus.ts
     * readSettings): due ones after a good poll, a written one at once; `word` stands for the
     * sensor's answer (a value the emulator would never hold).
     */
    const readSettings = (writtenAddress?: number, word?: number) => {
      for (const r of profile.settingReads ?? []) {
        const written = writtenAddress !== undefined && r.fn === 3 && r.address === writtenAddress;
        if (!written && (settingDue.get(r.name) ?? 0) > clock.now()) continue;
        settingDue.set(r.name, clock.now() + r.refreshMs);
        if (opts.settingReadsFail) continue;
        const reply = sensor.handle(Uint8Array.from([r.fn, r.address >> 8, r.address & 0xff, 0, 1]));
        expect(reply[0], `setting read ${r.name}`).toBe(r.fn);
        profile.applySetting?.(state, r.name, word ?? (reply[2]! << 8) | reply[3]!);
      }
    };
    /** One poll as the gateway makes it: fn 4, registers 0-11, `afterMs` after the last (1 s). */
    const poll = (afterMs = 1000) => {
      clock.advance(afterMs);
      const reply = sensor.handle(Uint8Array.from([4, 0, 0, 0, 12]));
      expect(reply[0]).toBe(4);
      const words: number[] = [];
      for (let i = 0; i < reply[1]! / 2; i++) words.push((reply[2 + 2 * i]! << 8) | reply[3 + 2 * i]!);
      const sample = decodePollSample(profile, [{ address: 0, words }]);
      if (isRejection(sample)) throw new Error(`refused: ${sample.detail}`);
      // As the gateway lanes a poll: with the device's rule state and settings.
      lanes.push(profile.lane(sample, previous, state, settings));
      previous = sample;
      lastSample = sample;
      profile.rules(
        sample,
        state,
        settings,
        rules.for(subject, engine.contextFor(subject, profile.suppressed(sample)), false, clock.monotonic()),
      );
      // The gateway asks after a good poll; the answer reaches the rules from the next poll on.
      readSettings();
      return sample;
    };
    const pollFor = (ms: number) => {
      for (let t = 0; t < ms; t += 1000) poll();
    };
    const open = () =>
      engine
        .openAlerts()
        .filter((a) => a.conditionActive)
        .map((a) => a.code)
        .sort();
    const metrics = () => profile.metrics(lastSample, state);
    /** The telemetry's quality flag from the profile (null: the values are fine). */
    const quality = () => profile.quality?.(lastSample, state) ?? null;
    /** Sends a command to the emulator as the bus would; returns the reply PDU. */
    const command = (cmdName: string, value?: number) => {
      const cmd = profile.commands[cmdName];
      if (!cmd) throw new Error(`no command ${cmdName}`);
      const reply = Array.from(sensor.handle(Uint8Array.from(commandPdu(cmd, value))));
      if (cmd.fn === 6 && reply[0] === 6) readSettings(cmd.address);
      return reply;
    };
    return {
      profile,
      clock,
      engine,
      seen,
      escalated,
      sensor,
      poll,
      pollFor,
      open,
      metrics,
      quality,
      command,
      readSettings,
      lanes,
    };
  }

  describe(`LV-4 behaviour per its datasheet: ${name}`, () => {
    it("polls input registers 0-11 with fn 0x04 in one read; lost after 3 missed polls at P2", () => {
      const p = profileFactory();
      expect(p.transport).toBe("modbus");
      expect(p.fn).toBe(4);
      expect(coalesceRanges(pointRanges(p.points), MAX_READ_REGISTERS, p.maxGap)).toEqual([
        { address: 0, count: 12 },
      ]);
      expect(p.missedPollsForLost).toBe(3);
      expect(p.lostPriority).toBe(2);
      // "Answers within 80 ms of the end of a request."
      expect(p.turnaroundMs).toBe(80);
      expect(p.minReplyTimeoutMs).toBe(80);
    });

    it("decodes the datasheet's example reply: 2350 mm, -3.5 °C, 42.3 m³, heater on", () => {
      const p = profileFactory();
      const s = decodePollSample(p, [{ address: 0, words: replyWords(hex(EXAMPLE_REPLY)) }]);
      if (isRejection(s)) throw new Error(s.detail);
      const m = p.metrics(s, p.initialState());
      expect(m.level).toEqual({ value: 2350, unit: "mm" });
      expect(m.temperature).toEqual({ value: -3.5, unit: "°C" });
      expect(m.volume?.unit).toBe("m³");
      expect(m.volume?.value as number).toBeCloseTo(42.3, 4);
      expect(m.heater?.value).toBe(true);
      expect(m.selfTest?.value).toBe(false);
    });

    it("refuses a reply whose model register is not 0x4C34", () => {
      const p = profileFactory();
      const words = replyWords(hex(EXAMPLE_REPLY));
      words[0] = 0x4d38; // an MFS-8 at the LV-4's address
      const s = decodePollSample(p, [{ address: 0, words }]);
      expect(isRejection(s) && s.reason).toBe("bad-field");
    });

    it("refuses a reply whose tank height is 0 mm as out of range (the same counter for both profiles)", () => {
      const p = profileFactory();
      const words = replyWords(hex(EXAMPLE_REPLY));
      words[10] = 0;
      const s = decodePollSample(p, [{ address: 0, words }]);
      expect(isRejection(s) && s.reason).toBe("out-of-range");
    });

    it("commands are the datasheet's frames: self-test coil 0 ON, set-points by fn 0x06", () => {
      const r = rig();
      expect(toHex(r.command("self_test"))).toBe("05 00 00 FF 00");
      expect(r.sensor.selfTestRunning).toBe(true);
      expect(toHex(r.command("set_low", 3000))).toBe("06 00 00 0B B8");
      expect(r.sensor.setPoints().low).toBe(3000);
      expect(r.command("set_high", 3900)[0]).toBe(6);
      expect(r.sensor.setPoints().high).toBe(3900);
      // Out of the sensor's range: exception 0x03, reported as such.
      expect(toHex(r.command("set_high", 5000))).toBe("86 03");
    });

    it("self-test and set-points move something on site (actuates): readings not real for 10 s, the sensor's own alarms and reserve", () => {
      const p = profileFactory();
      const flags = Object.fromEntries(Object.entries(p.commands).map(([n, c]) => [n, c.actuates === true]));
      expect(flags).toEqual({ self_test: true, set_low: true, set_high: true });
    });

    it("WATER_LEVEL_LOW at P2 once the level has been under the reserve 30 s; clears 50 mm above it", () => {
      const r = rig({ reserve: 3000 });
      r.poll();
      r.sensor.setLevel(2950);
      r.pollFor(28_000);
      expect(r.open()).toEqual([]);
      r.pollFor(3000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      expect(r.seen.at(-1)).toMatchObject({ code: "WATER_LEVEL_LOW", t: "raised", priority: 2 });
      r.sensor.setLevel(3040);
      r.pollFor(5000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      r.sensor.setLevel(3050);
      r.poll();
      expect(r.open()).toEqual([]);
      expect(r.seen.at(-1)).toMatchObject({ code: "WATER_LEVEL_LOW", t: "cleared" });
    });

    it("a dip under the reserve shorter than 30 s raises nothing", () => {
      const r = rig({ reserve: 3000 });
      r.sensor.setLevel(2900);
      r.pollFor(20_000);
      r.sensor.setLevel(3200);
      r.pollFor(60_000);
      expect(r.seen).toEqual([]);
    });

    it("without a configured reserve and no set-point read, the reserve is 60 % of the tank height (2400 of 4000 mm)", () => {
      const r = rig({ lowSetPointMm: 3000, settingReadsFail: true });
      r.sensor.setLevel(2450);
      r.pollFor(60_000);
      expect(r.open()).toEqual([]);
      r.sensor.setLevel(2350);
      r.pollFor(31_000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
    });

    it("without a configured reserve, the reserve is the sensor's low set-point (holding register 0), re-read after set_low", () => {
      const r = rig({ lowSetPointMm: 3000, levelMm: 3600 });
      r.poll();
      r.sensor.setLevel(3100);
      r.pollFor(5000);
      r.sensor.setLevel(2950); // under the 3000 mm set-point, over 60 % (2400 mm)
      r.pollFor(31_000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      r.sensor.setLevel(3040); // inside the 50 mm deadband above the set-point: held
      r.pollFor(5000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      r.sensor.setLevel(3050);
      r.poll();
      expect(r.open()).toEqual([]);
      // An operator lowers the set-point to 2000 mm: read back at once, 2950 mm is no longer low.
      expect(toHex(r.command("set_low", 2000))).toBe("06 00 00 07 D0");
      r.sensor.setLevel(2950);
      r.pollFor(60_000);
      expect(r.open()).toEqual([]);
      r.sensor.setLevel(2700);
      r.pollFor(5000);
      r.sensor.setLevel(2500);
      r.pollFor(5000);
      r.sensor.setLevel(2300);
      r.pollFor(5000);
      r.sensor.setLevel(1950);
      r.pollFor(31_000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      expect(r.seen.map((x) => [x.code, x.t, x.priority])).toEqual([
        ["WATER_LEVEL_LOW", "raised", 2],
        ["WATER_LEVEL_LOW", "cleared", 2],
        ["WATER_LEVEL_LOW", "reactivated", 2],
      ]);
    });

    it("a set-point read outside 100 mm..tank height is not used: 60 % of the tank height", () => {
      for (const word of [50, 4500]) {
        const r = rig({ levelMm: 3600 });
        r.poll();
        r.readSettings(0, word); // a sensor answering a set-point outside its own range
        r.sensor.setLevel(3000);
        r.pollFor(5000);
        r.sensor.setLevel(2450);
        r.pollFor(60_000);
        expect(r.open(), `set-point ${word}`).toEqual([]);
        r.sensor.setLevel(2350);
        r.pollFor(31_000);
        expect(r.open(), `set-point ${word}`).toEqual(["WATER_LEVEL_LOW"]);
      }
    });

    it("under 30 % of the tank height WATER_LEVEL_CRITICAL replaces WATER_LEVEL_LOW while it lasts", () => {
      const r = rig({ reserve: 3000 });
      r.sensor.setLevel(2000);
      r.pollFor(31_000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      r.sensor.setLevel(1500);
      r.poll();
      r.sensor.setLevel(1100); // 27.5 % of 4000 mm (in steps: a jump of 20 % of the height is suspect)
      r.poll();
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      expect(r.seen.find((s) => s.code === "WATER_LEVEL_CRITICAL")).toMatchObject({
        t: "raised",
        priority: 2,
      });
      expect(r.seen.filter((s) => s.code === "WATER_LEVEL_LOW").map((s) => s.t)).toEqual([
        "raised",
        "cleared",
      ]);
      // Refilled past 30 % + 50 mm but still under the reserve: LOW again, at once (it never left the reserve).
      r.sensor.setLevel(1300);
      r.poll();
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
    });

    it("WATER_LEVEL_CRITICAL escalates like a P1 (the P1 escalation time, not the P2's)", () => {
      const r = rig({ reserve: 3000 });
      r.sensor.setLevel(800);
      r.poll();
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      r.pollFor(65_000);
      expect(r.escalated).toContain("WATER_LEVEL_CRITICAL");
    });

    it("a tank drawn down by fire fighting (30 mm/s) raises LOW then CRITICAL, and no reading is suspect", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.poll();
      r.sensor.drawDown(30, 0);
      let suspect = false;
      const order: string[] = [];
      for (let t = 0; t < 150_000; t += 1000) {
        r.poll();
        if (r.metrics().levelSuspect?.value === true) suspect = true;
        for (const c of r.open()) if (!order.includes(c)) order.push(c);
      }
      expect(suspect).toBe(false);
      expect(order).toEqual(["WATER_LEVEL_LOW", "WATER_LEVEL_CRITICAL"]);
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
    });

    it("FREEZE_RISK at P3 after 10 minutes under 4.0 °C; clears at 5.0 °C", () => {
      const r = rig({ temperatureC: 3.9 });
      r.pollFor(590_000);
      expect(r.open()).toEqual([]);
      r.pollFor(15_000);
      expect(r.open()).toEqual(["FREEZE_RISK"]);
      expect(r.seen.at(-1)).toMatchObject({ code: "FREEZE_RISK", t: "raised", priority: 3 });
      r.sensor.setTemperature(4.9);
      r.pollFor(5000);
      expect(r.open()).toEqual(["FREEZE_RISK"]);
      r.sensor.setTemperature(5.0);
      r.poll();
      expect(r.open()).toEqual([]);
    });

    it("a winter night that stays between 4 and 5 °C under the heater raises nothing", () => {
      const r = rig({ temperatureC: 6 });
      r.sensor.winterNight(0.2, 0.4);
      let heater = false;
      for (let t = 0; t < 1_200_000; t += 1000) {
        r.poll();
        if (r.metrics().heater?.value === true) heater = true;
      }
      expect(heater).toBe(true);
      // The water dipped to 4.0 (heater on) but never stayed under 4.0 °C for 10 minutes.
      expect(r.open()).toEqual([]);
    });

    it("a winter night whose heater gives no heat (linli sim tank-freeze): FREEZE_RISK 10 minutes after the first reading under 4.0 °C", () => {
      const r = rig({ temperatureC: 4.6 });
      r.poll();
      // What the simulator forecasts for the night, from the emulator's own model.
      const forecast = r.sensor.winterForecast(4.0, 0.5, 0) as number;
      r.sensor.winterNight(0.5, 0);
      let firstUnder = 0;
      let raisedAt = 0;
      for (let t = 0; t < 15 * 60_000; t += 1000) {
        r.poll();
        const c = r.metrics().temperature?.value as number;
        if (firstUnder === 0 && c < 4.0) firstUnder = r.clock.now();
        if (raisedAt === 0 && r.open().includes("FREEZE_RISK")) raisedAt = r.clock.now();
      }
      expect(r.sensor.heaterOn).toBe(true);
      expect(firstUnder).toBeGreaterThan(0);
      // The forecast is the first reading under 4.0 °C, to the poll.
      expect(Math.abs(firstUnder - (r.clock.now() - 15 * 60_000 + forecast))).toBeLessThanOrEqual(1000);
      // Raised 10 minutes after the first reading under 4.0 °C, not a poll later.
      expect(raisedAt - firstUnder).toBeGreaterThanOrEqual(600_000);
      expect(raisedAt - firstUnder).toBeLessThanOrEqual(601_000);
      expect(r.seen.filter((x) => x.code === "FREEZE_RISK").map((x) => x.t)).toEqual(["raised"]);
    });

    it("FREEZE_RISK counts 10 minutes under 4.0 °C without a break: a dip the heater brings back to 4-5 °C raises nothing", () => {
      // "under 4.0 °C for 10 minutes, clearing at 5.0 °C": 5.0 is where a raised alert clears,
      // not where a dip under 4.0 °C ends. A thermostat that holds the water at 4.0-4.9 °C after
      // a short dip (the heater switches on at 4 °C) is the heater working.
      const r = rig({ temperatureC: 3.9 });
      r.pollFor(30_000);
      r.sensor.setTemperature(4.5);
      r.pollFor(15 * 60_000);
      expect(r.open()).toEqual([]);
      // Nine minutes under, back to 4.2 for a minute, nine under again: no 10 minutes in a row.
      r.sensor.setTemperature(3.8);
      r.pollFor(9 * 60_000);
      r.sensor.setTemperature(4.2);
      r.pollFor(60_000);
      r.sensor.setTemperature(3.8);
      r.pollFor(9 * 60_000);
      expect(r.open()).toEqual([]);
      // Ten in a row: raised; back at 4.5 it holds (clears at 5.0 only).
      r.pollFor(65_000);
      expect(r.open()).toEqual(["FREEZE_RISK"]);
      r.sensor.setTemperature(4.5);
      r.pollFor(60_000);
      expect(r.open()).toEqual(["FREEZE_RISK"]);
      r.sensor.setTemperature(5.0);
      r.poll();
      expect(r.open()).toEqual([]);
    });

    it("WATER_LEVEL_LOW needs the level under the reserve 30 s in a row: a dip back to within 50 mm above it raises nothing", () => {
      const r = rig({ reserve: 3000, levelMm: 3100 });
      r.poll();
      r.sensor.setLevel(2990);
      r.pollFor(10_000);
      r.sensor.setLevel(3020); // above the reserve, inside the 50 mm it clears at
      r.pollFor(60_000);
      expect(r.open()).toEqual([]);
      r.sensor.setLevel(2990);
      r.pollFor(29_000);
      expect(r.open()).toEqual([]);
      r.pollFor(2_000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      r.sensor.setLevel(3030); // raised: it holds until 50 mm above the reserve
      r.pollFor(5_000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
      r.sensor.setLevel(3050);
      r.poll();
      expect(r.open()).toEqual([]);
    });

    it("status bit 3 is FAULT at P3 naming the fault code's meaning; it clears with the bit", () => {
      const r = rig();
      r.poll();
      r.sensor.setFault(1);
      r.poll();
      expect(r.open()).toEqual(["FAULT"]);
      expect(r.seen.at(-1)).toMatchObject({ code: "FAULT", t: "raised", priority: 3 });
      expect(r.seen.at(-1)!.causes.join(" ")).toContain("pressure cell open circuit");
      r.sensor.setFault(0);
      r.poll();
      expect(r.open()).toEqual([]);
    });

    it("fault code 3 (temperature probe fault): the temperature is suspect, FREEZE_RISK neither raised nor cleared, its 10 minutes start again after", () => {
      // Register 7: "3 temperature probe fault" (status bit 3 is FAULT, naming it).
      const r = rig({ temperatureC: 8 });
      r.poll();
      r.sensor.setFault(3);
      r.sensor.setTemperature(-20); // a broken probe's reading
      r.pollFor(15 * 60_000);
      expect(r.open()).toEqual(["FAULT"]);
      expect(r.seen.at(-1)!.causes.join(" ")).toContain("temperature probe fault");
      expect(r.quality()).toBe("suspect");
      // The level is not named by code 3: believed.
      expect(r.metrics().levelSuspect?.value).toBe(false);
      // The probe is back, the water really is cold: 10 minutes from the first believed reading.
      r.sensor.setFault(0);
      r.sensor.setTemperature(3.5);
      r.poll();
      expect(r.quality()).toBeNull();
      r.pollFor(9 * 60_000);
      expect(r.open()).toEqual([]);
      r.pollFor(65_000);
      expect(r.open()).toEqual(["FREEZE_RISK"]);
      // Raised, then the probe fails reading warm water: held; cleared by a believed reading only.
      r.sensor.setFault(3);
      r.sensor.setTemperature(20);
      r.pollFor(60_000);
      expect(r.open()).toEqual(["FAULT", "FREEZE_RISK"]);
      r.sensor.setFault(0);
      r.poll();
      expect(r.open()).toEqual([]);
      expect(r.seen.filter((x) => x.code === "FREEZE_RISK").map((x) => x.t)).toEqual(["raised", "cleared"]);
    });

    it("fault code 3: a FREEZE_RISK hold under way when the probe fails is not completed by the fault's time", () => {
      const r = rig({ temperatureC: 3.5 });
      r.pollFor(8 * 60_000);
      r.sensor.setFault(3);
      r.pollFor(5 * 60_000);
      expect(r.open()).toEqual(["FAULT"]);
      r.sensor.setFault(0);
      r.pollFor(5 * 60_000);
      expect(r.open()).toEqual([]);
      r.pollFor(5 * 60_000 + 5000);
      expect(r.open()).toEqual(["FREEZE_RISK"]);
    });

    it("fault codes 1 and 2 (pressure cell): the level is suspect and raises no level alert; the temperature is still believed", () => {
      for (const code of [1, 2]) {
        const r = rig({ reserve: 3000, levelMm: 3600, temperatureC: 3.5 });
        r.poll();
        r.sensor.setFault(code);
        r.sensor.setLevel(0); // a broken cell reads an empty tank, in steps a second apart too
        r.pollFor(11 * 60_000);
        expect(r.quality(), `code ${code}`).toBe("suspect");
        expect(r.metrics().levelSuspect?.value, `code ${code}`).toBe(true);
        // FREEZE_RISK still runs on the temperature.
        expect(r.open(), `code ${code}`).toEqual(["FAULT", "FREEZE_RISK"]);
        expect(
          r.seen.filter((x) => x.code.startsWith("WATER_LEVEL")),
          `code ${code}`,
        ).toEqual([]);
        r.sensor.setFault(0);
        r.sensor.setLevel(3600);
        r.pollFor(60_000);
        expect(
          r.seen.filter((x) => x.code.startsWith("WATER_LEVEL")),
          `code ${code}`,
        ).toEqual([]);
        expect(r.open(), `code ${code}`).toEqual(["FREEZE_RISK"]);
      }
    });

    it("fault code 2: a raised WATER_LEVEL_CRITICAL is not cleared by the broken cell's readings; a believed one clears it", () => {
      const r = rig({ reserve: 3000, levelMm: 1000 });
      r.poll();
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      r.sensor.setFault(2);
      r.sensor.setLevel(3900); // over range, inside the tank height
      r.pollFor(120_000);
      expect(r.open()).toEqual(["FAULT", "WATER_LEVEL_CRITICAL"]);
      expect(r.quality()).toBe("suspect");
      r.sensor.setFault(0);
      r.sensor.setLevel(1000);
      r.poll();
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      expect(r.quality()).toBeNull();
      r.sensor.setLevel(1300); // 50 mm above 30 % of 4000 mm and more
      r.poll();
      expect(r.open()).not.toContain("WATER_LEVEL_CRITICAL");
      expect(
        r.seen.filter((x) => x.code === "WATER_LEVEL_CRITICAL" && x.t !== "escalated").map((x) => x.t),
      ).toEqual(["raised", "cleared"]);
    });

    it("fault code 1: a WATER_LEVEL_LOW hold under way is neither raised by the fault's time nor completed after it", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.poll();
      r.sensor.setLevel(2900);
      r.pollFor(20_000);
      r.sensor.setFault(1);
      r.pollFor(60_000);
      expect(r.open()).toEqual(["FAULT"]);
      r.sensor.setFault(0);
      r.pollFor(29_000);
      expect(r.open()).toEqual([]);
      r.pollFor(2000);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
    });

    it("a pressure-cell fault is a gap in the level's polls: the tank drained during a minute's fault is believed at the first reading after it", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.pollFor(5000);
      r.sensor.setFault(1);
      r.sensor.setLevel(0); // the broken cell
      r.pollFor(60_000);
      // Meanwhile fire fighting drew the tank down to 1000 mm (25 % of its height).
      r.sensor.setFault(0);
      r.sensor.setLevel(1000);
      r.poll();
      expect(r.quality()).toBeNull();
      expect(r.metrics().levelSuspect?.value).toBe(false);
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      // Polls a second apart again: the rate is the datasheet's 20 % per second.
      r.sensor.setLevel(0);
      r.poll();
      expect(r.quality()).toBe("suspect");
    });

    it("judged as after a gap, not believed blindly: 2600 mm a 2 s fault after the last reading is still too fast", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.pollFor(5000);
      r.sensor.setFault(2);
      r.poll(); // one poll under the fault: 2 s from the last level to the next
      r.sensor.setFault(0);
      r.sensor.setLevel(1000); // 2600 mm in 2 s: more than 20 % of 4000 mm per second
      r.poll();
      expect(r.quality()).toBe("suspect");
      expect(r.open()).toEqual([]);
      r.sensor.setLevel(3500); // 100 mm from the last believed level: fine
      r.poll();
      expect(r.quality()).toBeNull();
    });

    it("fault code 4 (supply voltage low) names no sensor: readings believed, alerts as usual", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.poll();
      r.sensor.setFault(4);
      r.sensor.setLevel(2900);
      r.pollFor(31_000);
      expect(r.quality()).toBeNull();
      expect(r.open()).toEqual(["FAULT", "WATER_LEVEL_LOW"]);
    });

    it("readings during a self-test are marked and raise no level alert", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.poll();
      expect(toHex(r.command("self_test"))).toBe("05 00 00 FF 00");
      // The emulator's readings sweep the whole range during the test (under 30 % at first).
      expect(r.quality()).toBeNull();
      for (let t = 0; t < 9000; t += 1000) {
        r.poll();
        expect(r.metrics().selfTest?.value).toBe(true);
        expect(r.quality()).toBe("self-test");
      }
      r.pollFor(40_000);
      expect(r.metrics().selfTest?.value).toBe(false);
      expect(r.quality()).toBeNull();
      expect(r.seen.filter((s) => s.code.startsWith("WATER_LEVEL"))).toEqual([]);
    });

    it("a WATER_LEVEL_LOW hold that runs out during a self-test raises nothing until a real reading after it", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.poll();
      r.sensor.setLevel(2900); // under the reserve, over 30 % of the tank height
      r.pollFor(25_000);
      r.command("self_test"); // 10 s: the 30 s hold runs out during it
      const lowDuringTest: Seen[] = [];
      for (let t = 0; t < 9000; t += 1000) {
        r.poll();
        lowDuringTest.push(...r.seen.filter((x) => x.code === "WATER_LEVEL_LOW"));
      }
      expect(r.metrics().selfTest?.value).toBe(true);
      expect(lowDuringTest).toEqual([]);
      r.pollFor(3000); // the test is over; still under the reserve
      expect(r.metrics().selfTest?.value).toBe(false);
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
    });

    it("a FREEZE_RISK hold that runs out during a self-test raises nothing until a real reading after it", () => {
      const r = rig({ temperatureC: 3.9 });
      r.pollFor(595_000); // under 4.0 °C for 9 min 55 s
      r.command("self_test"); // 10 s: the 10 minutes run out during it
      const duringTest: Seen[] = [];
      for (let t = 0; t < 9000; t += 1000) {
        r.poll();
        duringTest.push(...r.seen.filter((x) => x.code === "FREEZE_RISK"));
      }
      expect(r.metrics().selfTest?.value).toBe(true);
      expect(duringTest).toEqual([]);
      r.pollFor(3000); // the test is over; still under 4.0 °C: raised, counted from the first reading
      expect(r.metrics().selfTest?.value).toBe(false);
      expect(r.open()).toEqual(["FREEZE_RISK"]);
    });

    it("nor do suspect readings (a failing cell) confirm the 30 s hold: the next believed reading decides", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.poll();
      r.sensor.setLevel(2900);
      r.pollFor(27_000);
      for (let i = 0; i < 5; i++) r.sensor.glitch(0xffff); // 5 polls read 65535 mm: suspect
      r.pollFor(5000);
      expect(r.quality()).toBe("suspect");
      expect(r.seen.filter((x) => x.code === "WATER_LEVEL_LOW")).toEqual([]);
      r.poll(); // believed again, still under the reserve: held long enough
      expect(r.open()).toEqual(["WATER_LEVEL_LOW"]);
    });

    it("a failing cell's single-poll jump to 0 or 65535 mm is flagged, not alerted", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.pollFor(5000);
      for (const g of [0, 0xffff] as const) {
        r.sensor.glitch(g);
        r.poll();
        expect(r.metrics().levelSuspect?.value).toBe(true);
        expect(r.quality()).toBe("suspect");
        r.poll();
        expect(r.metrics().levelSuspect?.value).toBe(false);
        expect(r.quality()).toBeNull();
      }
      r.pollFor(60_000);
      expect(r.seen).toEqual([]);
    });

    it("status bit 0 (level under the sensor's own low set-point) is a metric", () => {
      const r = rig({ levelMm: 2500 });
      r.poll();
      expect(r.metrics().belowLowSetPoint?.value).toBe(false);
      r.sensor.setLevel(2300); // the emulator's low set-point is 2400 mm
      r.poll();
      expect(r.metrics().belowLowSetPoint?.value).toBe(true);
    });

    it("the jump filter is a rate (20 % of the tank height per second between two polls): after a 90 s gap in the polls a drained tank is believed at once", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.pollFor(5000);
      r.sensor.drawDown(30, 0); // fire fighting: 30 mm/s
      // The bus is silent for 90 s (89 s without a poll): 2700 mm lower at the next one, under 30 %.
      r.clock.advance(89_000);
      r.poll();
      expect(r.metrics().level?.value).toBeLessThan(1200);
      expect(r.quality()).toBeNull();
      expect(r.metrics().levelSuspect?.value).toBe(false);
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      // Polls a second apart again, the drain goes on: nothing suspect.
      for (let t = 0; t < 10_000; t += 1000) {
        r.poll();
        expect(r.quality()).toBeNull();
      }
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
    });

    it("polled every 10 s, a level 1500 mm lower at the next poll (150 mm/s) is believed at once", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      for (let i = 0; i < 3; i++) r.poll(10_000);
      r.sensor.setLevel(2100);
      r.poll(10_000);
      expect(r.quality()).toBeNull();
      r.sensor.setLevel(600); // 15 % of the tank height
      r.poll(10_000);
      expect(r.quality()).toBeNull();
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
    });

    it("polls a second apart keep the datasheet's 20 %: 900 mm in one second is suspect, 800 mm is not", () => {
      const r = rig({ reserve: 1000, levelMm: 3600 });
      r.pollFor(3000);
      r.sensor.setLevel(2800);
      r.poll();
      expect(r.quality()).toBeNull();
      r.sensor.setLevel(1900);
      r.poll();
      expect(r.quality()).toBe("suspect");
      // Half a second later, 450 mm from the believed 2800 mm is still too fast (more than 400 mm).
      r.sensor.setLevel(2350);
      r.poll(500);
      expect(r.quality()).toBe("suspect");
      r.sensor.setLevel(2750);
      r.poll(500);
      expect(r.quality()).toBeNull();
    });

    it("a level above the tank height (65535 mm) is suspect whatever the time: after a gap, at the first poll, and for longer than 30 s", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.sensor.glitch(0xffff);
      r.poll(); // the very first reading
      expect(r.quality()).toBe("suspect");
      r.poll(); // the real level is believed: the impossible one was never the reference
      expect(r.quality()).toBeNull();
      r.clock.advance(120_000);
      r.sensor.glitch(0xffff);
      r.poll();
      expect(r.quality()).toBe("suspect");
      r.poll();
      expect(r.quality()).toBeNull();
      // A cell stuck over range: suspect as long as it lasts, never a level.
      r.sensor.setLevel(0xffff);
      r.pollFor(60_000);
      expect(r.quality()).toBe("suspect");
      r.sensor.setLevel(3600);
      r.poll();
      expect(r.quality()).toBeNull();
      expect(r.seen).toEqual([]);
    });

    it("a jump that persists 30 s is believed: the level alerts follow", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.pollFor(5000);
      r.sensor.setLevel(500);
      r.pollFor(25_000);
      expect(r.open()).toEqual([]);
      expect(r.metrics().levelSuspect?.value).toBe(true);
      r.pollFor(10_000);
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      expect(r.metrics().levelSuspect?.value).toBe(false);
    });

    it("a level crossing 30 % of the tank height, down or back up past its 50 mm, is an alert-lane event with no status bit moving", () => {
      const r = rig({ reserve: 3000, levelMm: 1400 }); // under the sensor's low set-point (2400) throughout
      r.pollFor(3000);
      r.sensor.setLevel(1150);
      r.poll();
      expect(r.lanes.at(-1)).toBeLessThan(LANE_TELEMETRY);
      expect(r.open()).toEqual(["WATER_LEVEL_CRITICAL"]);
      r.pollFor(3000);
      r.sensor.setLevel(1260);
      r.poll();
      expect(r.lanes.at(-1)).toBeLessThan(LANE_TELEMETRY);
      expect(r.open()).not.toContain("WATER_LEVEL_CRITICAL");
    });

    it("a steady tank is telemetry; a change of the sensor's status bits is an alert-lane event", () => {
      const r = rig({ reserve: 3000, levelMm: 3600 });
      r.pollFor(3000);
      expect(r.lanes.slice(1)).toEqual([LANE_TELEMETRY, LANE_TELEMETRY]);
      r.sensor.setLevel(2000); // under the sensor's low set-point (2400): bit 0 and the alarm counter move
      r.poll();
      expect(r.lanes.at(-1)).not.toBe(LANE_TELEMETRY);
      expect(r.lanes.at(-1)).toBeLessThan(LANE_TELEMETRY);
    });
  });
}
