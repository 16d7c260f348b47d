/**
 * Limits from another point (`{ point, min, max, else }`) and registers read beside the poll
 * (`modbus.reads`), on both transports. The LV-4 suite (test/lv4-behaviour.test.ts) covers the
 * YAML LV-4's set-point end to end.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../../core/index.js";
import type { DeviceSettings, ModbusDeviceProfile, MqttDeviceProfile, RuleContext } from "../profile.js";
import { isRejection } from "../profile.js";
import { siteSettings } from "../test-fixtures.js";
import { compileProfile, type DeclaredSettings } from "./compile.js";
import { declaredProfileSchema } from "./schema.js";

const SETTINGS: DeviceSettings & DeclaredSettings = {
  ...siteSettings({ pollIntervalMs: 1000, timezone: "Asia/Shanghai" }),
  params: {},
};

/** A rule context that records the last state of each condition. */
function recorder() {
  const active = new Map<string, boolean>();
  const ctx = {
    now: 0,
    subject: { id: "x", model: "x", household: null },
    condition: (code: string, on: boolean) => active.set(code, on),
    raise: () => {},
    markCancelled: () => 0,
    confirmDelivered: () => {},
    command: () => false,
  } as unknown as RuleContext;
  return { active, ctx };
}

describe("what a datasheet says of its link, declared", () => {
  it("Modbus: default poll interval, turnaround, least reply timeout, idle close (tcp)", () => {
    const p = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-kiosk",
        transport: "modbus",
        modbus: {
          link: "tcp",
          points: [{ name: "state", address: 0, type: "uint16" }],
          pollInterval: "10s",
          turnaround: "50ms",
          minReplyTimeout: "100ms",
          idleClose: "120s",
        },
      }),
    ) as ModbusDeviceProfile;
    expect(p.interval).toBe("10000ms");
    expect([p.turnaroundMs, p.minReplyTimeoutMs, p.peerIdleCloseMs]).toEqual([50, 100, 120_000]);
    const plain = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-panel",
        transport: "modbus",
        modbus: { points: [{ name: "state", address: 0, type: "uint16" }] },
      }),
    ) as ModbusDeviceProfile;
    expect(plain.interval).toBe("2000ms");
    expect([plain.turnaroundMs, plain.minReplyTimeoutMs, plain.peerIdleCloseMs]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    const serialIdle = declaredProfileSchema.safeParse({
      model: "acme-panel",
      transport: "modbus",
      modbus: { points: [{ name: "state", address: 0, type: "uint16" }], idleClose: "120s" },
    });
    expect(serialIdle.success).toBe(false);
  });

  it("MQTT: default heartbeat interval and when a silent device is lost (GD-2: 3 intervals, no grace)", () => {
    const doc = (mqtt: object) =>
      compileProfile(
        declaredProfileSchema.parse({
          model: "acme-gas",
          transport: "mqtt",
          mqtt: { uplink: "acme/{id}/up", fields: [{ name: "lel", path: "lel", type: "number" }], ...mqtt },
        }),
      ) as MqttDeviceProfile;
    const gas = doc({ heartbeatInterval: "60s", lostAfter: { heartbeats: 3, plusGrace: false } });
    expect(gas.interval).toBe("60000ms");
    expect(gas.lostAfter).toEqual({ heartbeats: 3, plusGrace: false });
    const plain = doc({});
    expect(plain.interval).toBe("300000ms");
    expect(plain.lostAfter).toEqual({ heartbeats: 2, plusGrace: true });
  });
});

describe("what makes a declared device's message resident activity, and its encoding", () => {
  const door = (extra: object) =>
    compileProfile(
      declaredProfileSchema.parse({
        model: "acme-door",
        transport: "mqtt",
        mqtt: {
          uplink: "acme/{id}/up",
          fields: [
            { name: "kind", path: "t", type: "string" },
            { name: "flags", path: "f", type: "integer" },
          ],
        },
        ...extra,
      }),
    ) as MqttDeviceProfile;
  const parse = (p: MqttDeviceProfile, msg: object) => {
    const s = p.parse(msg);
    if (isRejection(s)) throw new Error(s.detail);
    return s;
  };

  it("activityWhen: an equality or a bit; without it no message is activity", () => {
    const byKind = door({ activityWhen: { point: "kind", equals: "state" } });
    expect(byKind.isActivity(parse(byKind, { t: "state", f: 0 }))).toBe(true);
    expect(byKind.isActivity(parse(byKind, { t: "hb", f: 0 }))).toBe(false);
    const byBit = door({ activityWhen: { point: "flags", bit: 2 } });
    expect(byBit.isActivity(parse(byBit, { t: "hb", f: 4 }))).toBe(true);
    expect(byBit.isActivity(parse(byBit, { t: "hb", f: 3 }))).toBe(false);
    const none = door({});
    expect(none.isActivity(parse(none, { t: "state", f: 4 }))).toBe(false);
    for (const bad of [{ point: "kind" }, { point: "nope", equals: 1 }, { point: "kind", equals: 1, bit: 0 }])
      expect(
        declaredProfileSchema.safeParse({
          model: "acme-door",
          transport: "mqtt",
          mqtt: { uplink: "acme/{id}/up", fields: [{ name: "kind", path: "t", type: "string" }] },
          activityWhen: bad,
        }).success,
        JSON.stringify(bad),
      ).toBe(false);
  });

  it('mqtt.jsonOnly: the datasheet\'s "JSON only" refuses CBOR; by default both', () => {
    expect(door({}).jsonOnly).toBe(false);
    const json = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-gas",
        transport: "mqtt",
        mqtt: {
          uplink: "acme/{id}/up",
          jsonOnly: true,
          fields: [{ name: "lel", path: "lel", type: "number" }],
        },
      }),
    ) as MqttDeviceProfile;
    expect(json.jsonOnly).toBe(true);
  });
});

describe("a limit from another point", () => {
  it("an MQTT field as the limit while it is within min..max; absent or out of range, the else limit", () => {
    const profile = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-tank",
        transport: "mqtt",
        mqtt: {
          uplink: "acme/{id}/up",
          fields: [
            { name: "level", path: "level", type: "number" },
            { name: "alarmAt", path: "cfg.alarmAt", type: "number", required: false },
          ],
        },
        alarms: [
          {
            code: "TANK_LOW",
            priority: 2,
            when: { point: "level", below: { point: "alarmAt", min: 10, max: 90, else: 30 } },
          },
        ],
      }),
    ) as MqttDeviceProfile;
    const st = profile.initialState();
    const { active, ctx } = recorder();
    const run = (msg: object) => {
      const s = profile.parse(msg);
      if (isRejection(s)) throw new Error(s.detail);
      profile.rules(s, st, SETTINGS, ctx);
      return active.get("TANK_LOW");
    };
    expect(run({ level: 40, cfg: { alarmAt: 50 } })).toBe(true); // under its own 50
    expect(run({ level: 40 })).toBe(false); // no alarmAt: 30
    expect(run({ level: 25 })).toBe(true);
    expect(run({ level: 25, cfg: { alarmAt: 5 } })).toBe(true); // 5 is out of 10..90: 30
    expect(run({ level: 25, cfg: { alarmAt: 20 } })).toBe(false);
  });

  it("a modbus.reads register: its word decoded as int16 with scale, not read yet: the else limit", () => {
    const profile = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-chiller",
        transport: "modbus",
        modbus: {
          registers: "input",
          points: [{ name: "temperature", address: 0, type: "int16", scale: 0.1 }],
          reads: [{ name: "freezeSetPoint", address: 5, type: "int16", scale: 0.1, every: "1m" }],
        },
        settings: {
          freezeAt: { default: { point: "freezeSetPoint", min: -20, max: 10, else: 2 } },
        },
        alarms: [
          {
            code: "FREEZE_RISK",
            priority: 3,
            when: { point: "temperature", below: { setting: "freezeAt" } },
          },
        ],
      }),
    ) as ModbusDeviceProfile;
    expect(profile.settingReads).toEqual([{ name: "freezeSetPoint", fn: 3, address: 5, refreshMs: 60_000 }]);
    const st = profile.initialState();
    const { active, ctx } = recorder();
    const run = (tenths: number) => {
      const s = profile.decode({ temperature: tenths / 10 });
      if (isRejection(s)) throw new Error(s.detail);
      profile.rules(s, st, SETTINGS, ctx);
      return active.get("FREEZE_RISK");
    };
    expect(run(15)).toBe(true); // 1.5 °C under the fallback 2 °C
    profile.applySetting?.(st, "freezeSetPoint", 0xfff6); // -10 as int16: -1.0 °C
    expect(run(15)).toBe(false);
    expect(run(-15)).toBe(true);
    // A device's own setting still wins over the default.
    const { active: a2, ctx: c2 } = recorder();
    const s = profile.decode({ temperature: 0.5 });
    if (isRejection(s)) throw new Error(s.detail);
    const own: DeviceSettings & DeclaredSettings = { ...SETTINGS, params: { freezeAt: 1 } };
    profile.rules(s, st, own, c2);
    expect(a2.get("FREEZE_RISK")).toBe(true);
  });
});

/** A declared gas sensor: a P1 `above` alarm whose limit is a setting, and a P3 one at a number. */
const GAS = {
  model: "acme-gas",
  settings: { gasHigh: { default: 50 } },
  alarms: [
    { code: "GAS_HIGH", priority: 1, when: { point: "gas", above: { setting: "gasHigh" }, deadband: 5 } },
    { code: "WARM", priority: 3, when: { point: "temperature", above: 60 } },
  ],
};

describe("the lane of a threshold alarm's message (a P1 alert never waits behind telemetry)", () => {
  const mqtt = compileProfile(
    declaredProfileSchema.parse({
      ...GAS,
      transport: "mqtt",
      mqtt: {
        uplink: "acme/{id}/up",
        fields: [
          { name: "gas", path: "gas", type: "number" },
          { name: "temperature", path: "t", type: "number" },
        ],
      },
    }),
  ) as MqttDeviceProfile;
  const msg = (gas: number, t = 20) => {
    const s = mqtt.parse({ gas, t });
    if (isRejection(s)) throw new Error(s.detail);
    return s;
  };

  it("MQTT: above the P1 limit, P1; not yet back across the deadband, P1; back, the alert lane; calm, telemetry", () => {
    const st = mqtt.initialState();
    const { ctx } = recorder();
    const lane = (gas: number, t?: number) => {
      const s = msg(gas, t);
      const l = mqtt.lane(s, st, SETTINGS);
      mqtt.rules(s, st, SETTINGS, ctx);
      return l;
    };
    expect(lane(30)).toBe(LANE_TELEMETRY);
    expect(lane(51)).toBe(LANE_P1);
    expect(lane(47)).toBe(LANE_P1); // 47 > 50 - 5: the alarm holds
    expect(lane(44)).toBeLessThanOrEqual(LANE_ALERT); // the clear
    expect(lane(44)).toBe(LANE_TELEMETRY);
    expect(lane(30, 61)).toBe(LANE_ALERT); // a P3 threshold: the alert lane
    expect(lane(30, 20)).toBe(LANE_ALERT); // and its clear
    expect(lane(30, 20)).toBe(LANE_TELEMETRY);
  });

  it("MQTT: a clear laned before the rules ran its raise (lanes reorder) still leaves the telemetry lane", () => {
    const st = mqtt.initialState();
    expect(mqtt.lane(msg(60), st, SETTINGS)).toBe(LANE_P1);
    expect(mqtt.lane(msg(40), st, SETTINGS)).toBeLessThanOrEqual(LANE_ALERT);
    expect(mqtt.lane(msg(40), st, SETTINGS)).toBe(LANE_TELEMETRY);
  });

  it("MQTT: the limit is the device's own setting, as the rules read it (changed in place by a reload)", () => {
    const settings: DeviceSettings & DeclaredSettings = { ...SETTINGS, params: { gasHigh: 80 } };
    const mine = mqtt.initialState();
    const other = mqtt.initialState();
    expect(mqtt.lane(msg(60), mine, settings)).toBe(LANE_TELEMETRY);
    expect(mqtt.lane(msg(60), other, SETTINGS)).toBe(LANE_P1); // the default, 50
    expect(mqtt.lane(msg(81), mine, settings)).toBe(LANE_P1);
    (settings as { params: Record<string, number> }).params = { gasHigh: 40 };
    expect(mqtt.lane(msg(41), mine, settings)).toBe(LANE_P1);
  });

  it("MQTT with an optional alarm point (partial messages): a threshold's message takes the P1 lane", () => {
    const partial = compileProfile(
      declaredProfileSchema.parse({
        ...GAS,
        transport: "mqtt",
        mqtt: {
          uplink: "acme/{id}/up",
          fields: [
            { name: "gas", path: "gas", type: "number" },
            { name: "temperature", path: "t", type: "number", required: false },
          ],
        },
      }),
    ) as MqttDeviceProfile;
    expect(partial.telemetryWhen).toBeUndefined();
    const st = partial.initialState();
    const s = (gas: number, t: number) => partial.parse({ gas, t });
    expect(partial.lane(s(30, 20), st, SETTINGS)).toBe(LANE_TELEMETRY);
    expect(partial.lane(s(30, 61), st, SETTINGS)).toBe(LANE_P1);
  });

  it("Modbus: the same, per poll, with the device's setting", () => {
    const modbus = compileProfile(
      declaredProfileSchema.parse({
        ...GAS,
        transport: "modbus",
        modbus: {
          registers: "input",
          points: [
            { name: "gas", address: 0, type: "uint16" },
            { name: "temperature", address: 1, type: "int16" },
          ],
        },
      }),
    ) as ModbusDeviceProfile;
    const st = modbus.initialState();
    const { ctx } = recorder();
    let previous: unknown = null;
    const lane = (gas: number, settings = SETTINGS) => {
      const s = modbus.decode({ gas, temperature: 20 });
      if (isRejection(s)) throw new Error(s.detail);
      const l = modbus.lane(s, previous, st, settings);
      modbus.rules(s, st, settings, ctx);
      previous = s;
      return l;
    };
    lane(30); // the first poll: the alert lane, as ever
    expect(lane(30)).toBe(LANE_TELEMETRY);
    expect(lane(51)).toBe(LANE_P1);
    expect(lane(47)).toBe(LANE_P1);
    expect(lane(44)).toBeLessThanOrEqual(LANE_ALERT);
    expect(lane(44)).toBe(LANE_TELEMETRY);
    const raised: DeviceSettings & DeclaredSettings = { ...SETTINGS, params: { gasHigh: 80 } };
    expect(lane(60, raised)).toBe(LANE_TELEMETRY);
    expect(lane(81, raised)).toBe(LANE_P1);
  });
});

describe("unreliableWhen: a point not believed while another names its sensor faulty", () => {
  const doc = (unreliableWhen: unknown, extra: Record<string, unknown>[] = []) => ({
    model: "acme-tank",
    transport: "modbus",
    modbus: {
      points: [
        { name: "level", address: 0, type: "uint16", unreliableWhen },
        { name: "fault", address: 1, type: "enum", values: { 0: "none", 1: "cell open", 2: "cell over" } },
        { name: "status", address: 2, type: "bitfield", bits: { a: 0 } },
        ...extra,
      ],
    },
    alarms: [{ code: "LOW", priority: 2, when: { point: "level", below: 100 } }],
  });
  const messages = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("names a point of the poll, not itself nor a bitfield; an enum's values by register value or name", () => {
    expect(messages(doc({ point: "fault", oneOf: [1, "cell over"] }))).toEqual([]);
    expect(messages(doc({ point: "faults", oneOf: [1] }))[0]).toMatch(
      /unreliableWhen\.point: unknown point "faults"/,
    );
    expect(messages(doc({ point: "level", oneOf: [1] }))[0]).toMatch(/cannot name itself/);
    expect(messages(doc({ point: "fault", oneOf: [7] }))[0]).toMatch(/oneOf\.0: enum "fault" has no value 7/);
    expect(messages(doc({ point: "status", oneOf: [1] }))[0]).toMatch(/is bitfield/);
    expect(messages(doc({ point: "fault", oneOf: [] })).length).toBeGreaterThan(0);
  });

  it("while it holds: quality suspect, the alarm neither raised nor cleared; a change of the fault point is an alert-lane event", () => {
    for (const oneOf of [
      [1, 2],
      ["cell open", 2],
    ]) {
      const p = compileProfile(
        declaredProfileSchema.parse(doc({ point: "fault", oneOf })),
      ) as ModbusDeviceProfile;
      const st = p.initialState();
      const { active, ctx } = recorder();
      const sample = (level: number, fault: number) => {
        const s = p.decode({
          level,
          fault: ["none", "cell open", "cell over"][fault]!,
          status: { a: false },
        });
        if (isRejection(s)) throw new Error(s.detail);
        return s;
      };
      const ok = sample(500, 0);
      p.rules(ok, st, SETTINGS, ctx);
      expect(p.quality?.(ok, st)).toBeNull();
      const broken = sample(0, 1);
      expect(p.lane(broken, ok, st, SETTINGS)).toBe(LANE_ALERT);
      p.rules(broken, st, SETTINGS, ctx);
      expect(active.get("LOW")).toBe(false); // not raised by the broken reading
      expect(p.quality?.(broken, st)).toBe("suspect");
      const real = sample(50, 0);
      p.rules(real, st, SETTINGS, ctx);
      expect(active.get("LOW")).toBe(true);
      active.clear();
      p.rules(sample(500, 2), st, SETTINGS, ctx);
      expect(active.has("LOW")).toBe(false); // held: not cleared (no on-delay: nothing reported)
      expect(p.lane(sample(500, 2), sample(500, 2), st, SETTINGS)).toBe(LANE_TELEMETRY);
    }
  });
});

describe("unreliableWhen on an MQTT field (a GD-2-like detector: `fault` in its heartbeat only)", () => {
  const doc = (unreliableWhen: unknown = { point: "fault", oneOf: [1, 2] }, lelRequired = false) => ({
    model: "acme-gas",
    transport: "mqtt",
    mqtt: {
      uplink: "acme/{id}/up",
      fields: [
        { name: "kind", path: "t", type: "string" },
        { name: "lel", path: "lel", type: "number", required: lelRequired, unreliableWhen },
        { name: "fault", path: "fault", type: "integer", required: false },
        { name: "sensorOk", path: "ok", type: "boolean", required: false },
      ],
    },
    alarms: [
      { code: "GAS_LEAK", priority: 1, when: { point: "lel", above: 10, deadband: 5 }, onDelay: "10s" },
    ],
  });
  const messages = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("names another field; its values of that field's type", () => {
    expect(messages(doc())).toEqual([]);
    expect(messages(doc({ point: "sensorOk", oneOf: [false] }))).toEqual([]);
    expect(messages(doc({ point: "faults", oneOf: [1] }))[0]).toMatch(
      /mqtt\.fields\.1\.unreliableWhen\.point: unknown point "faults"/,
    );
    expect(messages(doc({ point: "lel", oneOf: [1] }))[0]).toMatch(/cannot name itself/);
    expect(messages(doc({ point: "fault", oneOf: ["1"] }))[0]).toMatch(/oneOf\.0: field "fault" is integer/);
    expect(messages(doc({ point: "fault", oneOf: [1.5] }))[0]).toMatch(/oneOf\.0: field "fault" is integer/);
    expect(messages(doc({ point: "sensorOk", oneOf: [0] }))[0]).toMatch(/field "sensorOk" is boolean/);
  });

  it("while it holds, by the message or the last one that had it: suspect, the alarm neither raised nor cleared, its on-delay started again after", () => {
    // The fault field decides alarms: a message without it is not the device's whole state.
    expect(
      (compileProfile(declaredProfileSchema.parse(doc(undefined, true))) as MqttDeviceProfile).snapshot,
    ).toBe(false);
    const p = compileProfile(declaredProfileSchema.parse(doc())) as MqttDeviceProfile;
    const st = p.initialState();
    const since: number[] = [];
    const { active, ctx } = recorder();
    const record = ctx.condition;
    (ctx as { condition: RuleContext["condition"] }).condition = (code, on, opts) => {
      if (opts.since !== undefined) since.push(opts.since);
      record(code, on, opts);
    };
    const run = (m: Record<string, unknown>, at: number) => {
      const s = p.parse(m);
      if (isRejection(s)) throw new Error(s.detail);
      (ctx as { now: number }).now = at;
      p.rules(s, st, SETTINGS, ctx);
      return p.quality?.(s, st) ?? null;
    };
    expect(run({ t: "hb", lel: 0, fault: 0 }, 0)).toBeNull();
    // Gas over the limit for 6 s, then the heartbeat names the sensor faulty.
    run({ t: "alarm", lel: 30 }, 1000);
    expect(since).toEqual([1000]);
    expect(run({ t: "hb", lel: 30, fault: 2 }, 7000)).toBe("suspect");
    // An alarm message carries no `fault`: the heartbeat's stands.
    expect(run({ t: "alarm", lel: 30 }, 12_000)).toBe("suspect");
    expect(since).toEqual([1000]);
    // A message without the reading is not suspect.
    expect(run({ t: "valve" }, 13_000)).toBeNull();
    // The sensor is back: the on-delay counts from the first believed reading, not from 1000.
    expect(run({ t: "hb", lel: 30, fault: 0 }, 20_000)).toBeNull();
    expect(since).toEqual([1000, 20_000]);
    expect(active.get("GAS_LEAK")).toBe(true);
    // Raised, then the sensor fails reading 0: held, in messages with and without `fault`.
    active.clear();
    expect(run({ t: "hb", lel: 0, fault: 1 }, 40_000)).toBe("suspect");
    expect(run({ t: "alarm", lel: 0 }, 41_000)).toBe("suspect");
    expect(active.get("GAS_LEAK")).not.toBe(false);
    expect(run({ t: "hb", lel: 0, fault: 0 }, 50_000)).toBeNull();
    expect(active.get("GAS_LEAK")).toBe(false);
  });

  it("the last fault value survives a restart (profile.durable): a fresh state restored from it still doubts the reading", () => {
    const p = compileProfile(declaredProfileSchema.parse(doc())) as MqttDeviceProfile;
    const durable = p.durable;
    if (durable === undefined) throw new Error("a profile with unreliableWhen keeps its fault field");
    const st = p.initialState();
    const { ctx } = recorder();
    const run = (state: unknown, m: Record<string, unknown>) => {
      const s = p.parse(m);
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, state, SETTINGS, ctx);
      return p.quality?.(s, state) ?? null;
    };
    // Layout version 4: the fault field, then whether the alarm (GAS_LEAK) is active (no holdWhile,
    // no peak nor command).
    expect(durable.version).toBe(4);
    const fresh = durable.save(p.initialState());
    expect(fresh).toEqual([null, false]);
    expect(durable.same(st, fresh)).toBe(true);
    run(st, { t: "hb", lel: 0, fault: 2 });
    expect(durable.same(st, fresh)).toBe(false);
    const saved = durable.save(st);
    expect(saved).toEqual([2, false]);
    // The restart: a fresh state, the journaled values put back; an alarm without `fault` is doubted.
    const after = p.initialState();
    durable.restore(after, saved, 0);
    expect(run(after, { t: "alarm", lel: 50 })).toBe("suspect");
    // Without them (an older journal), it is believed, as before.
    expect(run(p.initialState(), { t: "alarm", lel: 50 })).toBeNull();
    // A version-1 record (the field only, before the alarms were kept) restores the field.
    const v1 = p.initialState();
    durable.restore(v1, [2], 0, 1);
    expect(run(v1, { t: "alarm", lel: 50 })).toBe("suspect");
    // A list of another length (the profile file changed) restores nothing.
    const other = p.initialState();
    durable.restore(other, [2, 1, true], 0);
    expect(run(other, { t: "alarm", lel: 50 })).toBeNull();
  });

  it("whether the alarm is active survives a restart: a reading inside the deadband holds the restored alert", () => {
    const p = compileProfile(declaredProfileSchema.parse(doc())) as MqttDeviceProfile;
    const durable = p.durable;
    if (durable === undefined) throw new Error("a profile with alarms keeps them");
    const { active, ctx } = recorder();
    const run = (state: unknown, m: Record<string, unknown>) => {
      const s = p.parse(m);
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, state, SETTINGS, ctx);
    };
    const st = p.initialState();
    run(st, { t: "hb", lel: 30, fault: 0 });
    expect(active.get("GAS_LEAK")).toBe(true);
    const saved = durable.save(st);
    expect(saved).toEqual([0, true]);
    // After the restart: 7 %LEL is inside the deadband (over 10, back only at 5): still active.
    const after = p.initialState();
    durable.restore(after, saved, 0);
    run(after, { t: "hb", lel: 7, fault: 0 });
    expect(active.get("GAS_LEAK")).toBe(true);
    run(after, { t: "hb", lel: 4, fault: 0 });
    expect(active.get("GAS_LEAK")).toBe(false);
    // Journaled are the alarms a message may not decide by itself: a threshold, a bit or equals
    // alarm on an optional field (the template's TAMPER). One on a field every message carries
    // (FIRE_ALARM, FAULT) is null: decided again by the first message, its flips write nothing.
    const template = compileProfile(
      declaredProfileSchema.parse(parse(readFileSync("examples/profiles/template-mqtt.yaml", "utf8"))),
    ) as MqttDeviceProfile;
    expect(template.durable?.save(template.initialState())).toEqual([null, false, false, null]);
    // Fresh (a journal without it, or a version-1 record): the deadband is not known, 7 clears it.
    const v1 = p.initialState();
    durable.restore(v1, [0], 0, 1);
    run(v1, { t: "hb", lel: 7, fault: 0 });
    expect(active.get("GAS_LEAK")).toBe(false);
  });

  it("a boolean field as the judge, and an older message does not overrule the newer fault state", () => {
    const p = compileProfile(
      declaredProfileSchema.parse(doc({ point: "sensorOk", oneOf: [false] })),
    ) as MqttDeviceProfile;
    const st = p.initialState();
    const { active, ctx } = recorder();
    const run = (m: Record<string, unknown>, stale = false) => {
      const s = p.parse(m);
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, st, SETTINGS, { ...ctx, stale } as RuleContext);
      return p.quality?.(s, st) ?? null;
    };
    expect(run({ t: "hb", lel: 50, ok: false })).toBe("suspect");
    expect(active.get("GAS_LEAK")).not.toBe(true);
    // An older heartbeat saying the sensor was fine, run after the newer one: its own reading is
    // judged by its own word, but the newer fault state stands for the next message.
    expect(run({ t: "hb", lel: 1, ok: true }, true)).toBeNull();
    expect(run({ t: "alarm", lel: 50 })).toBe("suspect");
  });
});

describe("an optional MQTT field's bit or equals alarm", () => {
  it("keeps its state in a message without the field (the template's TAMPER); the field's own value decides", () => {
    const p = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-smoke",
        transport: "mqtt",
        mqtt: {
          uplink: "acme/{id}/up",
          fields: [
            { name: "battery", path: "bat", type: "integer" },
            { name: "tamper", path: "tamper", type: "boolean", required: false },
            { name: "flags", path: "flags", type: "integer", required: false },
          ],
        },
        alarms: [
          { code: "TAMPER", priority: 2, when: { point: "tamper", equals: true } },
          { code: "FAULT", priority: 3, when: { point: "flags", bit: 1 } },
        ],
      }),
    ) as MqttDeviceProfile;
    const st = p.initialState();
    const { active, ctx } = recorder();
    const run = (m: Record<string, unknown>) => {
      const s = p.parse(m);
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, st, SETTINGS, ctx);
    };
    run({ bat: 80, tamper: true, flags: 2 });
    expect([active.get("TAMPER"), active.get("FAULT")]).toEqual([true, true]);
    run({ bat: 79 });
    expect([active.get("TAMPER"), active.get("FAULT")]).toEqual([true, true]);
    run({ bat: 79, tamper: false, flags: 0 });
    expect([active.get("TAMPER"), active.get("FAULT")]).toEqual([false, false]);
    run({ bat: 78 });
    expect([active.get("TAMPER"), active.get("FAULT")]).toEqual([false, false]);
  });
});

describe("an inclusive limit (GD-2: GAS_LEAK at or above 10 %LEL, clearing under 5 %LEL)", () => {
  const doc = (when: Record<string, unknown>) => ({
    model: "acme-gas",
    transport: "mqtt",
    mqtt: { uplink: "acme/{id}/up", fields: [{ name: "lel", path: "lel", type: "number" }] },
    settings: { leakThreshold: { unit: "%LEL", default: 10 } },
    alarms: [{ code: "GAS_LEAK", priority: 1, when }],
  });
  const issues = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("the limit itself raises, the deadband's end holds, under it clears; the lane agrees with the rules", () => {
    const p = compileProfile(
      declaredProfileSchema.parse(
        doc({ point: "lel", above: { setting: "leakThreshold" }, deadband: 5, inclusive: true }),
      ),
    ) as MqttDeviceProfile;
    expect(p.alerts.GAS_LEAK!.raised).toBe("lel at or over the leakThreshold");
    const st = p.initialState();
    const { active, ctx } = recorder();
    const step = (lel: number) => {
      const s = p.parse({ lel });
      if (isRejection(s)) throw new Error(s.detail);
      const lane = p.lane(s, st, SETTINGS);
      p.rules(s, st, SETTINGS, ctx);
      return [lane, active.get("GAS_LEAK")];
    };
    expect(step(9.9)).toEqual([LANE_TELEMETRY, false]);
    expect(step(10)).toEqual([LANE_P1, true]); // "at or above"
    expect(step(5)).toEqual([LANE_P1, true]); // not yet under 5
    expect(step(4.9)).toEqual([LANE_ALERT, false]); // "clears when lel is under 5"
    expect(step(4.9)).toEqual([LANE_TELEMETRY, false]);
    // Strict by default: the limit itself is not beyond it.
    const strict = compileProfile(
      declaredProfileSchema.parse(doc({ point: "lel", above: 10, deadband: 5 })),
    ) as MqttDeviceProfile;
    const s10 = strict.parse({ lel: 10 });
    if (isRejection(s10)) throw new Error(s10.detail);
    const sst = strict.initialState();
    strict.rules(s10, sst, SETTINGS, ctx);
    expect(active.get("GAS_LEAK")).toBe(false);
  });

  it("only with below or above", () => {
    expect(issues(doc({ point: "lel", equals: 10, inclusive: true }))).toEqual([
      "alarms.0.when.inclusive: inclusive applies to below/above",
    ]);
  });
});

describe("alarms sharing a code: one alert naming each condition that holds (GD-2 GAS_LEAK, MFS-8 FAULT)", () => {
  /** The GD-2 as its datasheet's message tables and expected alerts say, in YAML terms. */
  const GD2 = {
    model: "acme-gd2",
    transport: "mqtt",
    mqtt: {
      uplink: "devices/gd2/{id}/up",
      jsonOnly: true,
      maxPayloadBytes: 384,
      seq: "seq",
      time: "ts",
      lostAfter: { heartbeats: 3, plusGrace: false },
      fields: [
        { name: "kind", path: "t", type: "string" },
        { name: "lel", path: "lel", type: "number", min: 0, max: 100, required: false },
        { name: "level", path: "level", type: "string", required: false },
        { name: "valve", path: "valve", type: "string", required: false },
        { name: "mains", path: "mains", type: "boolean", required: false },
        { name: "fault", path: "fault", type: "integer", min: 0, max: 4, required: false },
      ],
    },
    settings: { leakThreshold: { unit: "%LEL", default: 10 } },
    alarms: [
      { code: "GAS_LEAK", priority: 1, when: { point: "level", equals: "low" } },
      { code: "GAS_LEAK", priority: 1, when: { point: "level", equals: "high" } },
      {
        code: "GAS_LEAK",
        priority: 1,
        when: { point: "lel", above: { setting: "leakThreshold" }, deadband: 5, inclusive: true },
      },
      { code: "FAULT", priority: 2, when: { point: "valve", equals: "fault" } },
      { code: "FAULT", priority: 2, when: { point: "fault", equals: 3 }, cause: "valve motor fault" },
      { code: "FAULT", priority: 2, when: { point: "fault", equals: 2 }, cause: "sensor fault" },
      { code: "POWER_FAIL", priority: 3, when: { point: "mains", equals: false }, onDelay: "10m" },
    ],
  };
  /** The last options each code was reported with. */
  function reports() {
    const last = new Map<
      string,
      { on: boolean; priority: number; causes: readonly string[]; onDelayMs?: number }
    >();
    const { ctx } = recorder();
    (ctx as { condition: RuleContext["condition"] }).condition = (code, on, opts) =>
      last.set(code, { on, priority: opts.priority, causes: opts.causes ?? [], onDelayMs: opts.onDelayMs });
    return { last, ctx };
  }

  it("GAS_LEAK: the detector's level or the gas at or above the threshold, one alert; clears under 5 %LEL with level none", () => {
    const p = compileProfile(declaredProfileSchema.parse(GD2)) as MqttDeviceProfile;
    expect(p.alerts.GAS_LEAK!.priority).toBe(1);
    const st = p.initialState();
    const { last, ctx } = reports();
    let seq = 0;
    const run = (m: Record<string, unknown>) => {
      const s = p.parse({ seq: ++seq, ts: 0, ...m });
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, st, SETTINGS, ctx);
      return last.get("GAS_LEAK");
    };
    expect(run({ t: "hb", lel: 0, valve: "open", mains: true, fault: 0 })?.on).toBe(false);
    // The datasheet's example.
    expect(run({ t: "alarm", lel: 18.5, level: "low", valve: "closed" })).toMatchObject({
      on: true,
      priority: 1,
      causes: ["level is low", "lel at or over the leakThreshold"],
    });
    expect(run({ t: "alarm", lel: 30, level: "high", valve: "closed" })?.causes).toEqual([
      "level is high",
      "lel at or over the leakThreshold",
    ]);
    // A heartbeat carries no level: the detector's high alarm stands.
    expect(run({ t: "hb", lel: 6, valve: "closed", mains: true, fault: 0 })?.causes).toEqual([
      "level is high",
      "lel at or over the leakThreshold",
    ]);
    // The detector is back to none, the gas not yet under 5 %LEL.
    expect(run({ t: "alarm", lel: 5, level: "none", valve: "closed" })).toMatchObject({
      on: true,
      causes: ["lel at or over the leakThreshold"],
    });
    expect(run({ t: "hb", lel: 4.9, valve: "closed", mains: true, fault: 0 })).toMatchObject({
      on: false,
      causes: [],
    });
    // The detector's own low alarm under the gateway's threshold raises it alone.
    expect(run({ t: "alarm", lel: 8, level: "low", valve: "open" })).toMatchObject({
      on: true,
      causes: ["level is low"],
    });
  });

  it("FAULT names each cause; POWER_FAIL keeps its on-delay", () => {
    const p = compileProfile(declaredProfileSchema.parse(GD2)) as MqttDeviceProfile;
    const st = p.initialState();
    const { last, ctx } = reports();
    const run = (m: Record<string, unknown>) => {
      const s = p.parse({ ts: 0, ...m });
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, st, SETTINGS, ctx);
    };
    run({ seq: 1, t: "hb", lel: 0, valve: "fault", mains: false, fault: 3 });
    expect(last.get("FAULT")).toMatchObject({
      on: true,
      priority: 2,
      causes: ["valve is fault", "valve motor fault"],
    });
    expect(last.get("POWER_FAIL")).toMatchObject({ on: true, onDelayMs: 600_000 });
    run({ seq: 2, t: "valve", valve: "closed", cause: "remote" });
    expect(last.get("FAULT")).toMatchObject({ on: true, causes: ["valve motor fault"] });
    run({ seq: 3, t: "hb", lel: 0, valve: "closed", mains: true, fault: 0 });
    expect(last.get("FAULT")).toMatchObject({ on: false, causes: [] });
  });

  it("at the highest priority among those that hold (MFS-8: FAULT P2 while the pump's, else P3)", () => {
    const p = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-panel",
        transport: "modbus",
        modbus: {
          points: [{ name: "status", address: 4, type: "bitfield", bits: { pumpFault: 4, batteryFault: 6 } }],
        },
        alarms: [
          { code: "FAULT", priority: 2, when: { point: "status", bit: "pumpFault" }, cause: "pump fault" },
          {
            code: "FAULT",
            priority: 3,
            when: { point: "status", bit: "batteryFault" },
            cause: "battery fault",
          },
        ],
      }),
    ) as ModbusDeviceProfile;
    expect(p.alerts.FAULT!.priority).toEqual([2, 3]);
    const st = p.initialState();
    const { last, ctx } = reports();
    const poll = (status: number) => {
      const s = p.decode({ status: { pumpFault: (status & 16) !== 0, batteryFault: (status & 64) !== 0 } });
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, st, SETTINGS, ctx);
      return last.get("FAULT");
    };
    expect(poll(64)).toMatchObject({ on: true, priority: 3, causes: ["battery fault"] });
    expect(poll(64 | 16)).toMatchObject({ on: true, priority: 2, causes: ["pump fault", "battery fault"] });
    expect(poll(0)).toMatchObject({ on: false });
  });

  it("they must time and replace the alert alike", () => {
    const r = declaredProfileSchema.safeParse({
      ...GD2,
      alarms: [...GD2.alarms, { code: "POWER_FAIL", priority: 3, when: { point: "fault", equals: 4 } }],
    });
    expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      'alarms.7.onDelay: alarms sharing the code "POWER_FAIL" must give the same onDelay',
    ]);
  });
});

describe("suppressWhen: alerts suppressed by design (MFS-8 test mode, GK-3 maintenance)", () => {
  const doc = (suppressWhen: unknown) => ({
    model: "acme-panel",
    transport: "modbus",
    modbus: {
      points: [
        { name: "status", address: 4, type: "bitfield", bits: { smoke: 0, testMode: 15 } },
        { name: "state", address: 5, type: "enum", values: { 2: "in service", 4: "maintenance" } },
      ],
    },
    suppressWhen,
    alarms: [{ code: "FIRE_ALARM", priority: 1, when: { point: "status", bit: "smoke" } }],
  });
  const issues = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("a bit or an equality, as test or maintenance; without it, never", () => {
    const panel = compileProfile(
      declaredProfileSchema.parse(doc({ point: "status", bit: "testMode", as: "test" })),
    ) as ModbusDeviceProfile;
    const poll = (p: ModbusDeviceProfile, testMode: boolean, state: string) => {
      const s = p.decode({ status: { smoke: true, testMode }, state });
      if (isRejection(s)) throw new Error(s.detail);
      return p.suppressed(s);
    };
    expect(poll(panel, true, "in service")).toBe("test");
    expect(poll(panel, false, "in service")).toBe(false);
    const kiosk = compileProfile(
      declaredProfileSchema.parse(doc({ point: "state", equals: "maintenance", as: "maintenance" })),
    ) as ModbusDeviceProfile;
    expect(poll(kiosk, false, "maintenance")).toBe("maintenance");
    expect(poll(kiosk, true, "in service")).toBe(false);
    const plain = compileProfile(declaredProfileSchema.parse(doc(undefined))) as ModbusDeviceProfile;
    expect(poll(plain, true, "maintenance")).toBe(false);
  });

  it("names a point of the profile, and exactly one of bit, equals", () => {
    expect(issues(doc({ point: "status", bit: "testMode", equals: 1, as: "test" }))).toEqual([
      "suppressWhen: give exactly one of bit, equals",
    ]);
    expect(issues(doc({ point: "staus", equals: 1, as: "test" }))[0]).toMatch(
      /suppressWhen\.point: unknown point/,
    );
    expect(issues(doc({ point: "status", bit: "testMode", as: "paused" }))[0]).toMatch(/^suppressWhen\.as/);
  });
});

describe("an on-delay from a per-device setting (DS-10: DOOR_HELD_OPEN after the hold time, default 600 s, per device)", () => {
  const doc = (holdOpen: Record<string, unknown>) => ({
    model: "acme-door",
    transport: "mqtt",
    mqtt: { uplink: "acme/{id}/up", fields: [{ name: "state", path: "state", type: "string" }] },
    settings: { holdOpen },
    alarms: [
      {
        code: "DOOR_HELD_OPEN",
        priority: 3,
        when: { point: "state", equals: "open" },
        onDelay: { setting: "holdOpen" },
      },
    ],
  });
  const issues = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("the device's setting in seconds, else the setting's default", () => {
    const p = compileProfile(
      declaredProfileSchema.parse(doc({ unit: "s", default: 600 })),
    ) as MqttDeviceProfile;
    const onDelays: (number | undefined)[] = [];
    const { ctx } = recorder();
    (ctx as { condition: RuleContext["condition"] }).condition = (_code, _on, opts) =>
      onDelays.push(opts.onDelayMs);
    const open = p.parse({ state: "open" });
    if (isRejection(open)) throw new Error(open.detail);
    p.rules(open, p.initialState(), SETTINGS, ctx);
    const mine: DeviceSettings & DeclaredSettings = { ...SETTINGS, params: { holdOpen: 120 } };
    p.rules(open, p.initialState(), mine, ctx);
    expect(onDelays).toEqual([600_000, 120_000]);
  });

  it("a setting in seconds, with a number default", () => {
    expect(issues(doc({ unit: "s", default: 600 }))).toEqual([]);
    expect(issues(doc({ unit: "min", default: 10 }))).toEqual([
      'alarms.0.onDelay.setting: setting "holdOpen" must have unit: s and a number default (seconds) to be an onDelay',
    ]);
    expect(issues({ ...doc({ unit: "s", default: 600 }), settings: {} })[0]).toMatch(
      /alarms\.0\.onDelay\.setting: unknown setting "holdOpen"/,
    );
  });
});

describe("clearAt: where a raised threshold alarm clears, whatever its limit (GD-2: under 5 %LEL at any site threshold)", () => {
  const doc = (when: Record<string, unknown>) => ({
    model: "acme-gas",
    transport: "mqtt",
    mqtt: { uplink: "acme/{id}/up", fields: [{ name: "lel", path: "lel", type: "number" }] },
    settings: { leakThreshold: { unit: "%LEL", default: 10 } },
    alarms: [{ code: "GAS_LEAK", priority: 1, when }],
  });

  it("a site threshold of 20 %LEL still clears under 5; the lane agrees with the rules", () => {
    const p = compileProfile(
      declaredProfileSchema.parse(
        doc({ point: "lel", above: { setting: "leakThreshold" }, inclusive: true, clearAt: 5 }),
      ),
    ) as MqttDeviceProfile;
    const settings: DeviceSettings & DeclaredSettings = { ...SETTINGS, params: { leakThreshold: 20 } };
    const st = p.initialState();
    const { active, ctx } = recorder();
    const step = (lel: number) => {
      const s = p.parse({ lel });
      if (isRejection(s)) throw new Error(s.detail);
      const lane = p.lane(s, st, settings);
      p.rules(s, st, settings, ctx);
      return [lane, active.get("GAS_LEAK")];
    };
    expect(step(19.9)).toEqual([LANE_TELEMETRY, false]);
    expect(step(20)).toEqual([LANE_P1, true]);
    expect(step(5)).toEqual([LANE_P1, true]);
    expect(step(4.9)).toEqual([LANE_ALERT, false]);
  });

  it("a low limit: LV-4 FREEZE_RISK under 4.0 °C, clearing at 5.0 °C", () => {
    const p = compileProfile(
      declaredProfileSchema.parse({
        ...doc({ point: "lel", below: 4, clearAt: 5 }),
      }),
    ) as MqttDeviceProfile;
    const st = p.initialState();
    const { active, ctx } = recorder();
    const step = (v: number) => {
      const s = p.parse({ lel: v });
      if (isRejection(s)) throw new Error(s.detail);
      p.rules(s, st, SETTINGS, ctx);
      return active.get("GAS_LEAK");
    };
    expect([step(4), step(3.9), step(4.9), step(5)]).toEqual([false, true, true, false]);
  });

  it("only with below or above, and not with deadband", () => {
    const issues = (d: unknown) => {
      const r = declaredProfileSchema.safeParse(d);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(issues(doc({ point: "lel", above: 10, deadband: 5, clearAt: 5 }))).toEqual([
      "alarms.0.when.clearAt: give deadband or clearAt, not both",
    ]);
    expect(issues(doc({ point: "lel", equals: 10, clearAt: 5 }))).toEqual([
      "alarms.0.when.clearAt: clearAt applies to below/above",
    ]);
    expect(issues(doc({ point: "lel", above: 10, clearAt: { setting: "nope" } }))[0]).toMatch(
      /alarms\.0\.when\.clearAt\.setting: unknown setting "nope"/,
    );
  });
});

describe("mqtt.reply: the device's answer to a command (GD-2 `reply`)", () => {
  const doc = (reply: Record<string, unknown>) => ({
    model: "acme-gas",
    transport: "mqtt",
    mqtt: {
      uplink: "acme/{id}/up",
      downlink: "acme/{id}/down",
      fields: [
        { name: "kind", path: "t", type: "string" },
        { name: "rid", path: "id", type: "string", required: false },
        { name: "cmd", path: "cmd", type: "string", required: false },
        { name: "result", path: "result", type: "string", required: false },
        { name: "seqNo", path: "n", type: "integer", required: false },
      ],
      reply,
    },
    commands: { valve_close: { cmd: "valve_close", id: "{id}", also: ["{id}"] } },
  });
  const REPLY = {
    when: { point: "kind", equals: "reply" },
    id: "rid",
    command: "cmd",
    result: "result",
    ok: "ok",
  };

  it("maps the answer; other messages are none; the downlink carries the request's id", () => {
    const p = compileProfile(declaredProfileSchema.parse(doc(REPLY))) as MqttDeviceProfile;
    const s = (m: Record<string, unknown>) => {
      const r = p.parse(m);
      if (isRejection(r)) throw new Error(r.detail);
      return r;
    };
    expect(p.reply?.(s({ t: "reply", id: "c1", cmd: "valve_close", result: "ok" }))).toEqual({
      id: "c1",
      command: "valve_close",
      result: "ok",
      ok: true,
    });
    expect(p.reply?.(s({ t: "reply", id: "c1", cmd: "valve_close", result: "busy" }))?.ok).toBe(false);
    expect(p.reply?.(s({ t: "hb" }))).toBeNull();
    expect(p.reply?.(s({ t: "reply", cmd: "valve_close", result: "ok" }))).toBeNull();
    expect(p.commands.valve_close!.message("c-9")).toEqual({ cmd: "valve_close", id: "c-9", also: ["c-9"] });
  });

  it("names string fields", () => {
    const r = declaredProfileSchema.safeParse(doc({ ...REPLY, id: "seqNo", result: "nope" }));
    expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      'mqtt.reply.id: field "seqNo" must be a string field',
      expect.stringMatching(/^mqtt\.reply\.result: unknown point "nope"/),
    ]);
  });
});

describe("all: conditions joined by AND (GD-2 GAS_VALVE_NOT_CLOSED, GK-3 TAMPER only while not in maintenance)", () => {
  const GD2 = {
    model: "acme-gd2",
    transport: "mqtt",
    mqtt: {
      uplink: "devices/gd2/{id}/up",
      seq: "seq",
      fields: [
        { name: "kind", path: "t", type: "string" },
        { name: "lel", path: "lel", type: "number", min: 0, max: 100, required: false },
        { name: "level", path: "level", type: "string", required: false },
        { name: "valve", path: "valve", type: "string", required: false },
      ],
    },
    settings: { leakThreshold: { unit: "%LEL", default: 10 } },
    alarms: [
      { code: "GAS_LEAK", priority: 1, when: { point: "level", equals: "low" } },
      {
        code: "GAS_LEAK",
        priority: 1,
        when: { point: "lel", above: { setting: "leakThreshold" }, inclusive: true, clearAt: 5 },
      },
      {
        code: "GAS_VALVE_NOT_CLOSED",
        priority: 1,
        when: { all: [{ alarm: "GAS_LEAK" }, { point: "valve", notEquals: "closed" }] },
        onDelay: "20s",
      },
    ],
  };
  const issues = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  function reports() {
    const last = new Map<
      string,
      { on: boolean; since?: number; onDelayMs?: number; causes: readonly string[] }
    >();
    const { ctx } = recorder();
    (ctx as { condition: RuleContext["condition"] }).condition = (code, on, opts) =>
      last.set(code, { on, since: opts.since, onDelayMs: opts.onDelayMs, causes: opts.causes ?? [] });
    return { last, ctx };
  }

  it("a leak whose valve is not closed: timed from the leak's onset (20 s of the leak, as gd2.ts), cleared by a closed valve or the leak's end", () => {
    const p = compileProfile(declaredProfileSchema.parse(GD2)) as MqttDeviceProfile;
    const st = p.initialState();
    const { last, ctx } = reports();
    let seq = 0;
    const run = (now: number, m: Record<string, unknown>) => {
      const s = p.parse({ seq: ++seq, ...m });
      if (isRejection(s)) throw new Error(s.detail);
      (ctx as { now: number }).now = now;
      const lane = p.lane(s, st, SETTINGS);
      p.rules(s, st, SETTINGS, ctx);
      return { ...last.get("GAS_VALVE_NOT_CLOSED")!, lane };
    };
    expect(run(1000, { t: "hb", lel: 0, valve: "open" })).toMatchObject({ on: false, lane: LANE_TELEMETRY });
    expect(run(2000, { t: "alarm", lel: 18.5, level: "low", valve: "open" })).toMatchObject({
      on: true,
      since: 2000,
      onDelayMs: 20_000,
      causes: ["GAS_LEAK and valve is not closed"],
      lane: LANE_P1,
    });
    // A heartbeat: the leak and the open valve hold, from the leak's onset.
    expect(run(6000, { t: "hb", lel: 20, valve: "open" })).toMatchObject({ on: true, since: 2000 });
    // A valve message: closed clears it, and its lane is not telemetry (a P1 clear).
    expect(run(9000, { t: "valve", valve: "closed" })).toMatchObject({ on: false, lane: LANE_P1 });
    // Opened again during the same leak: the 20 s are the leak's, long past.
    expect(run(40_000, { t: "valve", valve: "open" })).toMatchObject({ on: true, since: 2000 });
    // The leak clears (under 5 %LEL, level none): so does it, the valve open or not.
    expect(run(50_000, { t: "alarm", lel: 4, level: "none", valve: "open" })).toMatchObject({ on: false });
    expect(last.get("GAS_LEAK")?.on).toBe(false);
    // Calm heartbeats with the valve open are telemetry.
    expect(run(51_000, { t: "hb", lel: 0, valve: "open" })).toMatchObject({
      on: false,
      lane: LANE_TELEMETRY,
    });
    // A new leak is a new incident: timed from its own onset; the gas alone raises it.
    expect(run(60_000, { t: "hb", lel: 12, valve: "moving" })).toMatchObject({ on: true, since: 60_000 });
  });

  it("after a restart, a message without a part's point (the GD-2's reply) leaves a restored alert as it was", () => {
    const p = compileProfile(declaredProfileSchema.parse(GD2)) as MqttDeviceProfile;
    const durable = p.durable!;
    const { last, ctx } = reports();
    const run = (st: unknown, now: number, m: Record<string, unknown>) => {
      const s = p.parse(m);
      if (isRejection(s)) throw new Error(s.detail);
      (ctx as { now: number }).now = now;
      p.rules(s, st, SETTINGS, ctx);
    };
    const before = p.initialState();
    run(before, 1000, { seq: 1, t: "alarm", lel: 30, level: "low", valve: "open" });
    expect(last.get("GAS_VALVE_NOT_CLOSED")?.on).toBe(true);
    const after = p.initialState();
    durable.restore(after, durable.save(before), 90_000);
    last.clear();
    run(after, 90_000, { seq: 2, t: "reply" });
    expect(last.get("GAS_LEAK")?.on).toBe(true);
    expect(last.get("GAS_VALVE_NOT_CLOSED")).toBeUndefined();
    // The next message with the valve decides; the 20 s run again from the restart, as gd2.ts's.
    run(after, 95_000, { seq: 3, t: "hb", lel: 30, valve: "open" });
    expect(last.get("GAS_VALVE_NOT_CLOSED")).toMatchObject({ on: true, since: 90_000 });
  });

  it("a part's optional field makes the messages partial: none is the device's whole state (snapshot)", () => {
    const doc = (doorRequired: boolean) =>
      compileProfile(
        declaredProfileSchema.parse({
          model: "acme-cabinet",
          transport: "mqtt",
          mqtt: {
            uplink: "acme/{id}/up",
            fields: [
              { name: "state", path: "state", type: "string" },
              { name: "door", path: "door", type: "string", required: doorRequired },
            ],
          },
          alarms: [
            { code: "OUT_OF_SERVICE", priority: 3, when: { point: "state", equals: "out" } },
            {
              code: "TAMPER",
              priority: 2,
              when: {
                all: [
                  { point: "door", equals: "open" },
                  { point: "state", notEquals: "maintenance" },
                ],
              },
            },
          ],
        }),
      ) as MqttDeviceProfile;
    expect(doc(true).snapshot).toBe(true);
    expect(doc(false).snapshot).toBe(false);
  });

  it("GK-3 TAMPER: the cabinet door open while the kiosk is not in maintenance (a bit and an enum's inequality)", () => {
    const p = compileProfile(
      declaredProfileSchema.parse({
        model: "acme-kiosk",
        transport: "modbus",
        modbus: {
          link: "tcp",
          points: [
            {
              name: "state",
              address: 0,
              type: "enum",
              values: {
                "0": "off",
                "1": "booting",
                "2": "inService",
                "3": "outOfService",
                "4": "maintenance",
              },
            },
            { name: "status", address: 4, type: "bitfield", bits: { doorOpen: 0 } },
          ],
        },
        alarms: [
          {
            code: "TAMPER",
            priority: 2,
            when: {
              all: [
                { point: "status", bit: "doorOpen" },
                { point: "state", notEquals: "maintenance" },
              ],
            },
          },
        ],
      }),
    ) as ModbusDeviceProfile;
    const st = p.initialState();
    const { last, ctx } = reports();
    let previous: Parameters<typeof p.lane>[1] = null;
    const poll = (state: string, doorOpen: boolean) => {
      const s = p.decode({ state, status: { doorOpen } });
      if (isRejection(s)) throw new Error(s.detail);
      const lane = p.lane(s, previous, st, SETTINGS);
      previous = s;
      p.rules(s, st, SETTINGS, ctx);
      return { on: last.get("TAMPER")?.on, lane };
    };
    expect(poll("inService", false)).toEqual({ on: false, lane: LANE_ALERT });
    expect(poll("inService", true)).toEqual({ on: true, lane: LANE_ALERT });
    expect(poll("maintenance", true)).toEqual({ on: false, lane: LANE_ALERT });
    expect(poll("maintenance", true)).toEqual({ on: false, lane: LANE_TELEMETRY });
    expect(poll("outOfService", true)).toEqual({ on: true, lane: LANE_ALERT });
    expect(poll("outOfService", false)).toEqual({ on: false, lane: LANE_ALERT });
  });

  it("shares a code with other alarms and keeps a per-device onDelay", () => {
    const doc = {
      ...GD2,
      settings: { ...GD2.settings, closeWithin: { unit: "s", default: 20 } },
      alarms: [
        ...GD2.alarms.slice(0, 2),
        {
          code: "GAS_VALVE_NOT_CLOSED",
          priority: 1,
          when: { all: [{ alarm: "GAS_LEAK" }, { point: "valve", notEquals: "closed" }] },
          onDelay: { setting: "closeWithin" },
        },
        {
          code: "GAS_VALVE_NOT_CLOSED",
          priority: 1,
          when: { point: "valve", equals: "fault" },
          onDelay: { setting: "closeWithin" },
          cause: "valve fault",
        },
      ],
    };
    const p = compileProfile(declaredProfileSchema.parse(doc)) as MqttDeviceProfile;
    const st = p.initialState();
    const { last, ctx } = reports();
    const s = p.parse({ seq: 1, t: "alarm", lel: 30, level: "low", valve: "fault" });
    if (isRejection(s)) throw new Error(s.detail);
    // At the clock's 0 (a fake clock's start): a leak there is a leak.
    (ctx as { now: number }).now = 0;
    const mine: DeviceSettings & DeclaredSettings = { ...SETTINGS, params: { closeWithin: 30 } };
    p.rules(s, st, mine, ctx);
    expect(last.get("GAS_VALVE_NOT_CLOSED")).toMatchObject({
      on: true,
      since: 0,
      onDelayMs: 30_000,
      causes: ["GAS_LEAK and valve is not closed", "valve fault"],
    });
  });

  it("is checked: all: alone, parts a bit or an (in)equality or another alarm's code, never an all: one nor its own", () => {
    const withWhen = (when: unknown, extra: unknown[] = []) => ({
      ...GD2,
      alarms: [...GD2.alarms.slice(0, 2), { code: "X_ALARM", priority: 2, when }, ...extra],
    });
    const valve = { point: "valve", notEquals: "closed" };
    expect(issues(withWhen({ all: [{ alarm: "GAS_LEAK" }, valve] }))).toEqual([]);
    expect(issues(withWhen({ all: [{ alarm: "GAS_LEAK" }, valve], point: "lel" }))).toEqual([
      "alarms.2.when: all: stands alone (move point into one of its conditions)",
    ]);
    expect(issues(withWhen({ all: [{ alarm: "GAS_LEAK" }, { point: "lel", above: 5 }] }))).toEqual([
      'alarms.2.when.all.1: Unrecognized key: "above"',
      "alarms.2.when.all.1: give exactly one of bit, equals, notEquals (got none); a limit (below/above) is an alarm of its own, named here by alarm: CODE",
    ]);
    expect(issues(withWhen({ all: [{ alarm: "GAS_LEAK" }, { point: "lel" }] }))).toEqual([
      "alarms.2.when.all.1: give exactly one of bit, equals, notEquals (got none); a limit (below/above) is an alarm of its own, named here by alarm: CODE",
    ]);
    expect(issues(withWhen({ all: [{ alarm: "NO_SUCH" }, { point: "valv", equals: "open" }] }))).toEqual([
      'alarms.2.when.all.0.alarm: "NO_SUCH" is not another alarm of this profile',
      'alarms.2.when.all.1.point: unknown point "valv" (known: kind, lel, level, valve)',
    ]);
    expect(issues(withWhen({ all: [{ alarm: "X_ALARM" }, valve] }))).toEqual([
      "alarms.2.when.all.0.alarm: an alarm cannot name its own code",
    ]);
    expect(
      issues(
        withWhen({ all: [{ alarm: "GAS_LEAK" }, valve] }, [
          { code: "Y_ALARM", priority: 2, when: { all: [{ alarm: "X_ALARM" }, valve] } },
        ]),
      ),
    ).toEqual([
      'alarms.3.when.all.0.alarm: "X_ALARM" is an all: alarm itself: name the alarms it joins instead',
    ]);
    expect(issues(withWhen({ all: [{ alarm: "GAS_LEAK", point: "valve", equals: "open" }, valve] }))).toEqual(
      ["alarms.2.when.all.0: give alarm alone, or point with one of bit, equals, notEquals"],
    );
    expect(issues(withWhen({ all: [valve] }))[0]).toMatch(/^alarms\.2\.when\.all: /);
    expect(issues(withWhen({ bit: 1 }))).toEqual([
      "alarms.2.when: give point (with one of bit, below, above, equals, notEquals), or all: [conditions]",
    ]);
  });
});

describe("mqtt.kinds: the fields each message kind carries (GD-2: a heartbeat without `fault` is refused)", () => {
  const doc = (kinds: unknown) => ({
    model: "acme-gd2",
    transport: "mqtt",
    mqtt: {
      uplink: "devices/gd2/{id}/up",
      fields: [
        { name: "kind", path: "t", type: "string" },
        { name: "lel", path: "lel", type: "number", required: false },
        { name: "valve", path: "valve", type: "string", required: false },
        { name: "fault", path: "fault", type: "integer", required: false },
        { name: "mains", path: "mains", type: "boolean", required: false },
      ],
      kinds,
    },
  });
  const issues = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  const outcome = (p: MqttDeviceProfile, m: unknown) => {
    const s = p.parse(m);
    return isRejection(s) ? `${s.reason}: ${s.detail}` : "accepted";
  };

  it("a listed kind without one of its fields is refused (bad-field, as gd2.ts); other kinds as before, or refused with others: refuse", () => {
    const require = { hb: ["lel", "valve", "mains", "fault"], valve: ["valve"] };
    const p = compileProfile(
      declaredProfileSchema.parse(doc({ field: "kind", require })),
    ) as MqttDeviceProfile;
    expect(outcome(p, { t: "hb", lel: 0, valve: "open", mains: true, fault: 0 })).toBe("accepted");
    expect(outcome(p, { t: "hb", lel: 0, valve: "open", mains: true })).toBe(
      "bad-field: fault is missing (a hb message carries it)",
    );
    expect(outcome(p, { t: "valve", valve: "closed" })).toBe("accepted");
    expect(outcome(p, { t: "valve", lel: 3 })).toBe(
      "bad-field: valve is missing (a valve message carries it)",
    );
    // A kind not listed: accepted by default.
    expect(outcome(p, { t: "reply" })).toBe("accepted");
    const strict = compileProfile(
      declaredProfileSchema.parse(doc({ field: "kind", require, others: "refuse" })),
    ) as MqttDeviceProfile;
    expect(outcome(strict, { t: "reply" })).toBe('bad-field: t must be one of hb, valve, got "reply"');
    expect(outcome(strict, { t: "hb", lel: 0, valve: "open", mains: true, fault: 0 })).toBe("accepted");
  });

  it("a message without its seq or time field: refused saying it is missing, not of the wrong type", () => {
    const p = compileProfile(
      declaredProfileSchema.parse({
        ...doc(undefined),
        mqtt: { ...doc(undefined).mqtt, seq: "seq", time: "ts" },
      }),
    ) as MqttDeviceProfile;
    expect(outcome(p, { t: "valve", seq: 1, ts: 5 })).toBe("accepted");
    expect(outcome(p, { t: "valve", ts: 5 })).toBe("bad-field: seq is missing (a non-negative integer)");
    expect(outcome(p, { t: "valve", seq: "1", ts: 5 })).toBe("bad-field: seq must be a non-negative integer");
    expect(outcome(p, { t: "valve", seq: 1 })).toBe("bad-field: ts is missing (epoch milliseconds)");
    expect(outcome(p, { t: "valve", seq: 1, ts: -1 })).toBe("bad-field: ts must be epoch milliseconds");
  });

  it("names a string or integer field, and fields of the profile", () => {
    expect(issues(doc({ field: "kind", require: { hb: ["fault"] } }))).toEqual([]);
    expect(issues(doc({ field: "mains", require: { hb: ["fault"] } }))).toEqual([
      'mqtt.kinds.field: field "mains" is boolean: name a string or integer field',
    ]);
    expect(issues(doc({ field: "fault", require: { hb: ["lel"] } }))).toEqual([
      'mqtt.kinds.require.hb: field "fault" is an integer: "hb" is not one',
    ]);
    expect(issues(doc({ field: "kind", require: { hb: ["faults", "kind"] } }))).toEqual([
      'mqtt.kinds.require.hb.0: unknown point "faults" (known: kind, lel, valve, fault, mains)',
      "mqtt.kinds.require.hb.1: the kind's own field needs no listing",
    ]);
    expect(issues(doc({ field: "kind", require: { hb: ["fault"] }, other: "refuse" }))).toEqual([
      'mqtt.kinds: Unrecognized key: "other"',
    ]);
  });
});

describe("holdWhile: the alert's own clear condition (GD-2: clears when lel is under 5 %LEL and level is none)", () => {
  const doc = (extra: Record<string, unknown> = {}, alarms?: unknown[]) => ({
    model: "acme-gd2",
    transport: "mqtt",
    mqtt: {
      uplink: "devices/gd2/{id}/up",
      fields: [
        { name: "lel", path: "lel", type: "number", required: false },
        { name: "level", path: "level", type: "string", required: false },
        { name: "fault", path: "fault", type: "integer", required: false },
      ],
    },
    alarms: alarms ?? [
      { code: "GAS_LEAK", priority: 1, when: { point: "level", equals: "low" } },
      {
        code: "GAS_LEAK",
        priority: 1,
        when: { point: "lel", above: 10, inclusive: true, clearAt: 5 },
        holdWhile: { point: "lel", above: 5, inclusive: true, cause: "not yet under 5 %LEL" },
        ...extra,
      },
    ],
  });
  const issues = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  function rig() {
    const p = compileProfile(declaredProfileSchema.parse(doc())) as MqttDeviceProfile;
    const st = p.initialState();
    const last = new Map<string, { on: boolean; causes: readonly string[]; onset?: boolean }>();
    const { ctx } = recorder();
    (ctx as { condition: RuleContext["condition"] }).condition = (code, on, opts) =>
      last.set(code, { on, causes: opts.causes ?? [], onset: opts.onset });
    const send = (m: Record<string, unknown>) => {
      const s = p.parse(m);
      if (isRejection(s)) throw new Error(s.detail);
      const lane = p.lane(s, st, SETTINGS);
      p.rules(s, st, SETTINGS, ctx);
      return { lane, leak: last.get("GAS_LEAK") };
    };
    return { p, st, send };
  }

  it("holds a raised alert, whichever alarm raised it, naming its cause; raises nothing by itself", () => {
    const { send } = rig();
    // 7 %LEL alone: under the threshold, no level: nothing.
    expect(send({ lel: 7 }).leak).toMatchObject({ on: false });
    expect(send({ lel: 7, level: "low" }).leak).toMatchObject({ on: true, causes: ["level is low"] });
    // The level back to none at 7 %LEL: held, by the hold alone (no onset: it confirms no on-delay).
    expect(send({ lel: 7, level: "none" }).leak).toEqual({
      on: true,
      causes: ["not yet under 5 %LEL"],
      onset: false,
    });
    // A message without lel says nothing of it.
    expect(send({ level: "none" }).leak).toMatchObject({ on: true });
    expect(send({ lel: 5 }).leak).toMatchObject({ on: true });
    expect(send({ lel: 4.9 }).leak).toMatchObject({ on: false });
    // Released: 6 %LEL again raises nothing.
    expect(send({ lel: 6 }).leak).toMatchObject({ on: false });
  });

  it("lanes: a held alert's reading at P1 while it holds, its clear in the alert lane at least; nothing before a raise", () => {
    const { send } = rig();
    expect(send({ lel: 7 }).lane).toBe(LANE_TELEMETRY);
    send({ lel: 7, level: "low" });
    send({ lel: 7, level: "none" });
    expect(send({ lel: 6 }).lane).toBe(LANE_P1);
    expect(send({ lel: 4 }).lane).not.toBe(LANE_TELEMETRY);
    expect(send({ lel: 4 }).lane).toBe(LANE_TELEMETRY);
  });

  it("is kept across a restart (durable version 3): a restored held leak stays held at 6 %LEL", () => {
    const { p, st, send } = rig();
    send({ lel: 7, level: "low" });
    send({ lel: 7, level: "none" });
    const saved = p.durable!.save(st);
    const fresh = p.initialState();
    p.durable!.restore(fresh, saved, 0);
    const { ctx } = recorder();
    const last = new Map<string, boolean>();
    (ctx as { condition: RuleContext["condition"] }).condition = (code, on) => last.set(code, on);
    p.rules(p.parse({ lel: 6 }), fresh, SETTINGS, ctx);
    expect(last.get("GAS_LEAK")).toBe(true);
    // A version 2 record (before holds were kept): fields and alarms restored, the hold released.
    const v2 = p.initialState();
    p.durable!.restore(v2, saved.slice(0, saved.length - 2), 0, 2);
    p.rules(p.parse({ lel: 6 }), v2, SETTINGS, ctx);
    expect(last.get("GAS_LEAK")).toBe(false);
  });

  it("is checked: once per code, one condition, a point of the right type", () => {
    expect(issues(doc())).toEqual([]);
    const hold = { point: "lel", above: 5 };
    expect(
      issues(
        doc({}, [
          { code: "GAS_LEAK", priority: 1, when: { point: "level", equals: "low" }, holdWhile: hold },
          { code: "GAS_LEAK", priority: 1, when: { point: "lel", above: 10 }, holdWhile: hold },
        ]),
      ),
    ).toEqual([
      'alarms.1.holdWhile: give holdWhile on one alarm of the code "GAS_LEAK" (it holds the alert, not one cause)',
    ]);
    expect(issues(doc({ holdWhile: { point: "lel" } }))).toEqual([
      "alarms.1.holdWhile: give exactly one of below, above, equals, notEquals (got none)",
    ]);
    expect(issues(doc({ holdWhile: { point: "level", above: 5 } }))).toEqual([
      'alarms.1.holdWhile.point: point "level" is string, not a number',
    ]);
    expect(issues(doc({ holdWhile: { point: "level", equals: "low", inclusive: true } }))).toEqual([
      "alarms.1.holdWhile.inclusive: inclusive applies to below/above",
    ]);
    expect(issues(doc({ holdWhile: { point: "gas", above: { setting: "nope" } } }))).toEqual([
      'alarms.1.holdWhile.point: unknown point "gas" (known: lel, level, fault)',
    ]);
  });
});

describe("peak and command: the incident's highest reading and the gateway's own command in the alert", () => {
  const doc = (extra: Record<string, unknown> = {}, more: Record<string, unknown> = {}) => ({
    model: "acme-tank",
    transport: "mqtt",
    mqtt: {
      uplink: "devices/tank/{id}/up",
      downlink: "devices/tank/{id}/down",
      fields: [
        {
          name: "level",
          path: "level",
          type: "number",
          required: false,
          unreliableWhen: { point: "fault", oneOf: [1] },
        },
        { name: "pump", path: "pump", type: "string", required: false },
        { name: "fault", path: "fault", type: "integer", required: false },
      ],
    },
    settings: { autoStop: { default: 1, min: 0, max: 1 } },
    alarms: [
      {
        code: "TANK_HIGH",
        priority: 2,
        when: { point: "level", above: 90 },
        peak: { point: "level", as: "peakLevel" },
        command: { name: "pump_stop", unless: { point: "pump", equals: "off" }, setting: "autoStop" },
        ...extra,
      },
    ],
    commands: { pump_stop: { cmd: "stop" } },
    ...more,
  });
  const issues = (d: unknown) => {
    const r = declaredProfileSchema.safeParse(d);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  function rig(settings: Record<string, number> = {}, more: Record<string, unknown> = {}) {
    const p = compileProfile(declaredProfileSchema.parse(doc({}, more))) as MqttDeviceProfile;
    const sent: string[] = [];
    const last = new Map<string, Record<string, unknown> | undefined>();
    const { ctx } = recorder();
    Object.assign(ctx, {
      condition: ((code, on, opts) =>
        last.set(code, on ? { ...opts.detail } : undefined)) as RuleContext["condition"],
      command: (name: string) => {
        sent.push(name);
        return true;
      },
    });
    const s = { ...SETTINGS, params: settings };
    const send = (st: unknown, m: Record<string, unknown>) => {
      const sample = p.parse(m);
      if (isRejection(sample)) throw new Error(sample.detail);
      p.rules(sample, st, s, ctx);
      return last.get("TANK_HIGH");
    };
    return { p, sent, send };
  }

  it("the peak of believed readings, the command once per incident unless the pump is off", () => {
    const { p, sent, send } = rig();
    const st = p.initialState();
    expect(send(st, { level: 95, pump: "on" })).toEqual({
      peakLevel: 95,
      autoStop: true,
      autoStopQueued: false,
    });
    expect(send(st, { level: 99 })).toMatchObject({ peakLevel: 99 });
    // Not believed: no peak of it.
    expect(send(st, { level: 100, fault: 1 })).toMatchObject({ peakLevel: 99 });
    expect(send(st, { level: 50, fault: 0 })).toBeUndefined();
    expect(sent).toEqual(["pump_stop"]);
    // A new incident with the pump off: its own peak, no command, and not the last one's (false:
    // the alert keeps a detail field an update leaves out).
    expect(send(st, { level: 92, pump: "off" })).toEqual({
      peakLevel: 92,
      autoStop: false,
      autoStopQueued: false,
    });
    expect(sent).toEqual(["pump_stop"]);
  });

  it("the switch setting at 0: no command", () => {
    const { p, sent, send } = rig({ autoStop: 0 });
    expect(send(p.initialState(), { level: 95, pump: "on" })).toEqual({
      peakLevel: 95,
      autoStop: false,
      autoStopQueued: false,
    });
    expect(sent).toEqual([]);
  });

  it("suspectFrom: the doubtful stand-in said true, then false once a believed value is the peak", () => {
    // The pump running raises it too (as the GD-2's own alarm level does, whatever its lel).
    const [high] = doc().alarms;
    const { p, send } = rig(
      { autoStop: 0 },
      {
        alarms: [
          { code: "TANK_HIGH", priority: 2, when: { point: "pump", equals: "on" } },
          {
            ...high,
            peak: { point: "level", as: "peakLevel", suspectFrom: { point: "pump", equals: "on" } },
          },
        ],
      },
    );
    const st = p.initialState();
    expect(send(st, { level: 97, pump: "on", fault: 1 })).toMatchObject({
      peakLevel: 97,
      peakLevelSuspect: true,
    });
    expect(send(st, { level: 93, fault: 0 })).toMatchObject({ peakLevel: 93, peakLevelSuspect: false });
    // A new incident with only believed values: never said doubtful.
    expect(send(st, { level: 50, pump: "off" })).toBeUndefined();
    expect(send(st, { level: 91 })).toMatchObject({ peakLevel: 91, peakLevelSuspect: false });
  });

  it("journaled (version 4); a version 3 record (before 0.13.47) restores the rest, the incident starts over", () => {
    const { p, sent, send } = rig();
    const st = p.initialState();
    send(st, { level: 95, pump: "on" });
    const saved = p.durable!.save(st);
    expect(p.durable!.version).toBe(4);
    const after = p.initialState();
    p.durable!.restore(after, JSON.parse(JSON.stringify(saved)), 0);
    expect(send(after, { level: 93 })).toMatchObject({ peakLevel: 95, autoStop: true });
    expect(sent).toEqual(["pump_stop"]);
    const v3 = p.initialState();
    p.durable!.restore(v3, saved.slice(0, saved.length - 4), 0, 3);
    expect(send(v3, { level: 93 })).toMatchObject({ peakLevel: 93, autoStop: true });
    expect(sent).toEqual(["pump_stop", "pump_stop"]);
  });

  it("is checked: once per code, a numeric point, a known command, a 0/1 switch, a detail field", () => {
    expect(issues(doc())).toEqual([]);
    expect(issues(doc({ peak: { point: "pump", as: "x" } }))).toEqual([
      'alarms.0.peak.point: point "pump" is string, not a number',
    ]);
    expect(
      issues(doc({ peak: { point: "fault", as: "x", suspectFrom: { point: "pump", equals: "on" } } })),
    ).toEqual([
      'alarms.0.peak.suspectFrom: point "fault" has no unreliableWhen: every value of it is believed',
    ]);
    expect(issues(doc({ command: { name: "pump_off", setting: "autoStop" } }))).toEqual([
      'alarms.0.command.name: "pump_off" is not a command of this profile (known: pump_stop)',
    ]);
    expect(issues(doc({ command: { name: "pump_stop", unless: { point: "pump" }, as: "stopped" } }))).toEqual(
      ["alarms.0.command.unless: give exactly one of equals, notEquals (got none)"],
    );
    expect(issues(doc({ command: { name: "pump_stop" } }))).toEqual([
      "alarms.0.command: give as: (the alert detail's field) or setting: (which names it)",
    ]);
    expect(issues(doc({ command: { name: "pump_stop", as: "peakLevel" } }))).toEqual([
      "alarms.0.command: \"peakLevel\" is already the peak's field in the alert's detail",
    ]);
    expect(issues(doc({}, { settings: { autoStop: { default: 1 } } }))).toEqual([
      'alarms.0.command.setting: setting "autoStop" must have min: 0, max: 1 and default: 0 or 1 to switch a command (1: on)',
    ]);
    expect(issues(doc({ command: { name: "pump_stop", as: "x", bogus: 1 } }))[0]).toMatch(/bogus/);
  });
});

describe("a command that moves something on site: actuates (the console asks to confirm it)", () => {
  const modbus = (commands: object) =>
    declaredProfileSchema.safeParse({
      model: "acme-pump",
      transport: "modbus",
      modbus: { points: [{ name: "state", address: 0, type: "uint16" }] },
      commands,
    });
  const mqtt = (commands: object) =>
    declaredProfileSchema.safeParse({
      model: "acme-gas",
      transport: "mqtt",
      mqtt: {
        uplink: "acme/{id}/up",
        downlink: "acme/{id}/down",
        fields: [{ name: "lel", path: "lel", type: "number" }],
      },
      commands,
    });

  it("Modbus: on a coil or register command, carried as the code profiles do (absent when false)", () => {
    const r = modbus({
      stop: { coil: 0, value: true, actuates: true },
      speed: { register: 1, value: "request", min: 0, max: 100, actuates: true },
      auto: { register: 2, value: 1, actuates: false },
      reset: { coil: 3 },
    });
    if (!r.success) throw r.error;
    const p = compileProfile(r.data) as ModbusDeviceProfile;
    expect(Object.fromEntries(Object.entries(p.commands).map(([n, c]) => [n, c.actuates]))).toEqual({
      stop: true,
      speed: true,
      auto: undefined,
      reset: undefined,
    });
    expect(p.commands.stop).toMatchObject({ fn: 5, address: 0, value: 0xff00 });
    expect(modbus({ stop: { coil: 0, actuates: "yes" } }).success).toBe(false);
  });

  it("MQTT: the command's top-level actuates is the gateway's, not sent; a nested one is the device's", () => {
    const r = mqtt({
      close: { cmd: "close", id: "{id}", actuates: true },
      test: { cmd: "test", args: { actuates: 1 } },
    });
    if (!r.success) throw r.error;
    const p = compileProfile(r.data) as MqttDeviceProfile;
    expect(p.commands.close?.actuates).toBe(true);
    expect(p.commands.close?.message("r1")).toEqual({ cmd: "close", id: "r1" });
    expect(p.commands.close?.doc).not.toMatch(/actuates/);
    expect(p.commands.test?.actuates).toBeUndefined();
    expect(p.commands.test?.message("r1")).toEqual({ cmd: "test", args: { actuates: 1 } });
    const bad = mqtt({ close: { cmd: "close", actuates: "true" } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join("."))).toEqual(["commands.close.actuates"]);
  });
});
