/**
 * Devices from configuration: profiles in the site file or beside it,
 * validated with the file, line and field path of every mistake; devices of
 * those models checked against their profile's transport and settings.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { FakeClock } from "../../core/clock.js";
import { type DeviceSettings, isRejection, type MqttDeviceProfile } from "../../devices/profile.js";
import { AlertEngine } from "../alerts/engine.js";
import { DeviceRuleContext } from "../rule-context.js";
import { TimerWheel } from "../time/timer-wheel.js";
import { deviceProfile, parseProfileText } from "./device-profiles.js";
import { ConfigError, loadConfigFile, validateConfig } from "./load.js";

const dir = mkdtempSync(join(tmpdir(), "linli-profiles-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, "profiles"));
copyFileSync("examples/profiles/lv4.yaml", join(dir, "profiles", "lv4.yaml"));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

const SITE = [
  "site: { id: s1 }",
  "buses: [{ id: rs485-1, type: rtu, path: /dev/ttyUSB0 }]",
  "deviceProfiles: [profiles/lv4.yaml]",
  "devices:",
].join("\n");

describe("deviceProfiles in the site file", () => {
  it("a profile file beside the site file: its devices get the compiled profile and their settings", () => {
    const site = write(
      "site-ok.yaml",
      `${SITE}\n  - { id: tank-1, model: lv4-yaml, bus: rs485-1, unit: 9, settings: { reserve: 3000 } }\n`,
    );
    const config = loadConfigFile(site);
    const d = config.devices[0]!;
    expect(d).toMatchObject({ model: "lv4-yaml", bus: "rs485-1", unit: 9 });
    const p = deviceProfile(d, config);
    expect(p).toMatchObject({ model: "lv4-yaml", transport: "modbus", fn: 4, lostPriority: 2 });
    expect(Object.keys(p.commands)).toEqual(["self_test", "set_low", "set_high"]);
  });

  it("the templates are valid profiles", () => {
    for (const f of ["template-modbus.yaml", "template-mqtt.yaml", "lv4.yaml", "gd2.yaml"]) {
      const r = parseProfileText(readFileSync(`examples/profiles/${f}`, "utf8"), f);
      expect(r.problems).toEqual([]);
    }
  });

  it("a mistake in a profile file names that file, the line and the field path", () => {
    const text = readFileSync("examples/profiles/lv4.yaml", "utf8")
      .replace(
        "when: { point: level, below: { setting: reserve }",
        "when: { point: levl, below: { setting: reserve }",
      )
      .replace("type: float32, wordOrder: ABCD", "type: uint16, wordOrder: ABCD");
    write("profiles/bad.yaml", text);
    const site = write("site-bad.yaml", `${SITE.replace("lv4.yaml", "bad.yaml")}\n`);
    const err = problemsOf(() => loadConfigFile(site));
    const lines = text.split("\n");
    const levl = lines.findIndex((l) => l.includes("point: levl")) + 1;
    const wide = lines.findIndex((l) => l.includes("type: uint16, wordOrder")) + 1;
    expect(err.message).toContain(
      `profiles/bad.yaml:${levl}: alarms[1].when.point: unknown point "levl" (known: model, firmware, level,`,
    );
    expect(err.message).toContain(
      `profiles/bad.yaml:${wide}: modbus.points[4].wordOrder: wordOrder applies to uint32, int32 and float32 only`,
    );
  });

  it("a profile's unclosed quote is reported on the line it opens, not at the end of the file", () => {
    const text = readFileSync("examples/profiles/lv4.yaml", "utf8").replace("unit: mm", 'unit: "mm');
    const line = text.split("\n").findIndex((l) => l.includes('unit: "mm')) + 1;
    const r = parseProfileText(text, "lv4.yaml");
    expect(r.doc).toBeNull();
    expect(r.problems).toEqual([
      expect.objectContaining({
        file: "lv4.yaml",
        line,
        message: expect.stringMatching(/^YAML: the quote opened here \("mm.*\) is never closed$/),
      }),
    ]);
  });

  it("a limit from another point (the LV-4's set-point read beside the poll): a bad reference names the file, line and field", () => {
    const good = readFileSync("examples/profiles/lv4.yaml", "utf8");
    const ok = parseProfileText(good, "lv4.yaml");
    expect(ok.problems).toEqual([]);
    expect(ok.doc?.modbus?.reads).toEqual([
      { name: "lowSetPoint", address: 0, registers: "holding", type: "uint16", unit: "mm", every: 600_000 },
    ]);
    expect(ok.doc?.settings.reserve?.default).toEqual({
      point: "lowSetPoint",
      min: 100,
      max: "tankHeight",
      else: { ratio: 0.6, of: "tankHeight" },
    });
    const text = good
      .replace("default: { point: lowSetPoint,", "default: { point: lowSetPiont,")
      .replace("max: tankHeight, else:", "max: tankHight, else:");
    write("profiles/bad-ref.yaml", text);
    const site = write("site-bad-ref.yaml", `${SITE.replace("lv4.yaml", "bad-ref.yaml")}\n`);
    const err = problemsOf(() => loadConfigFile(site));
    const line = text.split("\n").findIndex((l) => l.includes("point: lowSetPiont")) + 1;
    expect(err.message).toContain(
      `profiles/bad-ref.yaml:${line}: settings.reserve.default.point: unknown point "lowSetPiont" (known: model, firmware,`,
    );
    expect(err.message).toContain(
      `profiles/bad-ref.yaml:${line}: settings.reserve.default.max: unknown point "tankHight"`,
    );
    // A read is for limits only; a limit needs a number.
    const misuse = good
      .replace("when: { point: level, below: { setting: reserve }", "when: { point: lowSetPoint, below: 3000")
      .replace("max: tankHeight, else:", "max: status, else:");
    const r = parseProfileText(misuse, "misuse.yaml");
    expect(r.problems.map((p) => `${p.file}: ${p.path}: ${p.message}`)).toEqual([
      'misuse.yaml: settings.reserve.default.max: point "status" is bitfield, not a number',
      'misuse.yaml: alarms[1].when.point: "lowSetPoint" is a register of modbus.reads: only a limit can use it',
    ]);
  });

  it("unknown keys, bad types and dangling references are named", () => {
    const bad = (doc: Record<string, unknown>) =>
      problemsOf(() => validateConfig({ site: { id: "s1" }, deviceProfiles: [doc] })).problems.map(
        (p) => `${p.path}: ${p.message}`,
      );
    const base = {
      model: "acme-pump",
      transport: "modbus",
      modbus: { points: [{ name: "status", address: 0, type: "bitfield", bits: { tripped: 1 } }] },
    };
    expect(bad({ ...base, modbus: { points: [{ name: "p", adress: 0, type: "uint16" }] } })).toEqual(
      expect.arrayContaining([
        "deviceProfiles[0].modbus.points[0].adress: unknown field (did you mean address?)",
        expect.stringMatching(/^deviceProfiles\[0\]\.modbus\.points\[0\]\.address: /),
      ]),
    );
    expect(
      bad({ ...base, alarms: [{ code: "TRIP", priority: 2, when: { point: "status", bit: "trip" } }] }),
    ).toEqual(['deviceProfiles[0].alarms[0].when.bit: bitfield "status" has no flag "trip"']);
    expect(
      bad({ ...base, alarms: [{ code: "T", priority: 2, when: { point: "status", bit: "tripped" } }] })[0],
    ).toMatch(/^deviceProfiles\[0\]\.alarms\[0\]\.code: must be UPPER_SNAKE_CASE/);
    expect(
      bad({
        ...base,
        alarms: [{ code: "TRIP", priority: 2, when: { point: "status", bit: "tripped", below: 3 } }],
      }),
    ).toEqual([
      "deviceProfiles[0].alarms[0].when: give exactly one of bit, below, above, equals, notEquals (got bit, below)",
    ]);
    // An all: condition's part, by its path; a typo in one as an unknown field.
    expect(
      bad({
        ...base,
        alarms: [
          {
            code: "TRIP",
            priority: 2,
            when: {
              all: [
                { point: "status", bit: "tripped" },
                { point: "status", bitt: "trip" },
              ],
            },
          },
        ],
      }),
    ).toEqual(
      expect.arrayContaining([
        "deviceProfiles[0].alarms[0].when.all[1].bitt: unknown field (did you mean bit?)",
      ]),
    );
    expect(bad({ ...base, model: "mfs8" })).toEqual([
      'deviceProfiles[0].model: "mfs8" is a built-in model; choose another name',
    ]);
    expect(bad({ ...base, transport: "mqtt" })).toEqual(
      ['mqtt: a mqtt profile needs a "mqtt:" section'].map((m) => `deviceProfiles[0].${m}`),
    );
    expect(bad({ ...base, commands: { reset: { coil: 1, value: "yes" } } })[0]).toMatch(
      /^deviceProfiles\[0\]\.commands\.reset: expected \{coil: N/,
    );
  });

  it("a device of a declared model is checked against its profile's transport and settings", () => {
    const site = (device: string) => write("site-dev.yaml", `${SITE}\n  - ${device}\n`);
    const msg = (device: string) => problemsOf(() => loadConfigFile(site(device))).message;
    expect(msg("{ id: t1, model: lv4-yaml, bus: rs485-1, unit: 9, settings: { reservoir: 3 } }")).toContain(
      'site-dev.yaml:5: devices[0].settings.reservoir: not a setting of profile "lv4-yaml" (known: reserve)',
    );
    // The profile's binding (modbus.link, default rtu) gives its devices' fields: an RTU device needs its bus.
    expect(msg("{ id: t1, model: lv4-yaml, unit: 9 }")).toContain("devices[0].bus:");
    expect(msg("{ id: t1, model: lv4-yaml, bus: rs485-2, unit: 9 }")).toContain(
      'devices[0].bus: unknown bus "rs485-2"',
    );
    expect(msg("{ id: t1, model: lv4-yml, bus: rs485-1, unit: 9 }")).toContain(
      '"lv4", "lv4-yaml" (or a model of deviceProfiles)',
    );
    expect(msg("{ id: t1, model: lv4-yaml, bus: rs485-1, unit: 9, password: x }")).toContain(
      "devices[0].password: unknown field",
    );
  });

  it("a Modbus profile's link gives its devices' binding: rtu (default) by bus, tcp by host", () => {
    const doc = parseYaml(readFileSync("examples/profiles/template-modbus.yaml", "utf8"));
    const tcp = { ...doc, modbus: { ...doc.modbus, link: "tcp" } };
    const config = validateConfig({
      site: { id: "s1" },
      deviceProfiles: [tcp],
      devices: [{ id: "pump-1", model: "acme-pump", host: "127.0.0.1", port: 1502 }],
    });
    expect(deviceProfile(config.devices[0]!, config).binding).toBe("modbus-tcp");
    expect(config.devices[0]).toMatchObject({ host: "127.0.0.1", port: 1502, unit: 1, pollInterval: 2000 });
    const bus = problemsOf(() =>
      validateConfig({
        site: { id: "s1" },
        deviceProfiles: [tcp],
        devices: [{ id: "pump-1", model: "acme-pump", bus: "rs485-1", unit: 3 }],
      }),
    );
    expect(bus.message).toContain("devices[0].bus: unknown field");
  });

  it("a profile file that does not exist is named with the entry that names it", () => {
    const site = write("site-missing.yaml", `${SITE.replace("lv4.yaml", "nope.yaml")}\n`);
    expect(problemsOf(() => loadConfigFile(site)).message).toMatch(
      /site-missing\.yaml:3: deviceProfiles\[0\]: cannot read profile file profiles\/nope\.yaml/,
    );
  });

  it("a path to a device node or a directory is refused without reading it", () => {
    for (const [path, why] of [
      ["/dev/zero", "not a regular file"],
      [dir, "not a regular file"],
    ]) {
      const err = problemsOf(() => validateConfig({ site: { id: "s1" }, deviceProfiles: [path] }));
      expect(err.problems[0]?.message).toContain(why);
    }
  });

  it("the LV-4 code profile has its own config fragment: bus, unit, reserve", () => {
    const config = validateConfig({
      site: { id: "s1" },
      buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
      devices: [{ id: "tank-1", model: "lv4", bus: "rs485-1", unit: 9, reserve: 3000 }],
    });
    expect(config.devices[0]).toMatchObject({ model: "lv4", pollInterval: 1000, reserve: 3000 });
    const err = problemsOf(() =>
      validateConfig({
        site: { id: "s1" },
        buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0" }],
        devices: [
          { id: "fire-a", model: "mfs8", bus: "rs485-1", unit: 9 },
          { id: "tank-1", model: "lv4", bus: "rs485-1", unit: 9 },
        ],
      }),
    );
    expect(err.message).toContain("devices[1].unit: unit 9 on bus rs485-1 is also devices[0]");
  });
});

describe("an MQTT JSON device written as data", () => {
  const text = readFileSync("examples/profiles/template-mqtt.yaml", "utf8");

  it("topics, field mapping, refusals, alarms through the alert engine, commands", () => {
    const config = validateConfig({
      site: { id: "s1" },
      // Written inline in the site file this time.
      deviceProfiles: [parseYaml(text)],
      devices: [{ id: "corridor-3", model: "acme-smoke", password: "pw", settings: { batteryLow: 20 } }],
    });
    const d = config.devices[0]!;
    const p = deviceProfile(d, config) as MqttDeviceProfile;
    expect(p.uplinkTopic("corridor-3")).toBe("acme/corridor-3/up");
    expect(p.downlinkTopic("corridor-3")).toBe("acme/corridor-3/cmd");
    expect(p.commands.silence?.message("r1")).toEqual({ cmd: "silence" });

    const msg = (o: Record<string, unknown>) =>
      p.parse({
        seq: 7,
        ts: 1_795_000_000_000,
        data: { smoke: 0.1, alarm: false },
        bat: 80,
        state: "ok",
        ...o,
      });
    const refused = msg({ bat: 120 });
    expect(isRejection(refused) && refused.reason).toBe("out-of-range");
    const missing = p.parse({ seq: 1, data: { smoke: 0.1, alarm: false }, state: "ok" });
    expect(isRejection(missing) && missing.detail).toBe("bat is missing");
    const s = msg({});
    if (isRejection(s)) throw new Error(s.detail);
    expect(p.seq(s)).toBe(7);
    expect(p.deviceTime(s)).toBe(1_795_000_000_000);
    expect(p.metrics(s, p.initialState())).toMatchObject({
      smoke: { value: 0.1, unit: "%/m" },
      battery: { value: 80, unit: "%" },
      alarm: { value: false },
    });

    const clock = new FakeClock();
    const seen: string[] = [];
    const engine = new AlertEngine("s1", clock, new TimerWheel(clock), {
      alertChanged: (a, t) => seen.push(`${a.code}:${t}:P${a.priority}`),
    });
    const st = p.initialState();
    const settings = { ...p.settings(d as never) } as DeviceSettings;
    const rules = new DeviceRuleContext<{ id: string }>(() => false);
    const feed = (o: Record<string, unknown>) => {
      clock.advance(1000);
      const x = msg(o);
      if (isRejection(x)) throw new Error(x.detail);
      const subject = { id: "corridor-3", model: p.model as never, household: null };
      p.rules(x, st, settings, rules.for(subject, engine.contextFor(subject)));
      return x;
    };
    const fire = feed({ data: { smoke: 3.2, alarm: true } });
    expect(p.lane(fire)).toBe(0);
    expect(seen).toEqual(["FIRE_ALARM:raised:P1"]);
    feed({ bat: 19 }); // under the device's setting of 20 %
    expect(seen.at(-1)).toBe("BATTERY_LOW:raised:P4");
    feed({ bat: 24 }); // within the 5 % deadband
    expect(seen.at(-1)).toBe("BATTERY_LOW:raised:P4");
    feed({ bat: 25 });
    expect(seen.at(-1)).toBe("BATTERY_LOW:cleared:P4");
    feed({ state: "fault" });
    expect(seen.at(-1)).toBe("FAULT:raised:P3");
  });
});
