import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isRejection, parseDuration } from "../../core/index.js";
import { ConfigError, loadConfigFile, parseConfigText, validateConfig } from "./load.js";

const dir = mkdtempSync(join(tmpdir(), "linli-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function problems(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

const exampleEnv = {
  LINLI_DUTY_DESK_PASSWORD: "a",
  LINLI_NIGHT_SHIFT_PASSWORD: "b",
  LINLI_PW_EC200_0101: "c",
  LINLI_PW_DS10_0101: "e",
  LINLI_PW_DS10_0305: "f",
  LINLI_PW_DS10_FIREDOOR_B1: "g",
};

describe("config", () => {
  it("parses durations", () => {
    expect(parseDuration("300s")).toBe(300_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("24h")).toBe(86_400_000);
    expect(parseDuration(60)).toBe(60_000);
    expect(parseDuration("5 minutes")).toBeNull();
  });

  it("accepts the shipped example with its secrets from the environment", () => {
    const c = loadConfigFile("examples/community.yaml", exampleEnv);
    expect(c.site.id).toBe("sc-0451");
    expect(c.devices).toHaveLength(8);
    expect(c.buses[0]).toMatchObject({ id: "rs485-1", baudRate: 9600, parity: "even", timeout: 200 });
    expect(c.devices[5]).toMatchObject({ model: "mfs8", bus: "rs485-1", unit: 5, pollInterval: 2000 });
    expect(c.devices[2]).toMatchObject({
      model: "ds10",
      holdOpenTime: 600_000,
      heartbeatInterval: 3_600_000,
    });
    expect(c.households[1]?.welfare.period).toBe(12 * 3_600_000);
    expect(c.operators[0]?.password).toBe("a");
    expect(c.site).toMatchObject({ timezone: "Asia/Shanghai", locale: "zh-CN" });
    expect(c.households[0]).toMatchObject({ name: "1号楼 101室", residentName: "张阿姨", room: "101室" });
    expect(c.devices[0]).toMatchObject({ name: "紧急呼叫器", location: "随身佩戴" });
    expect(c.alerts.actions.FIRE_ALARM).toMatch(/119/);
    // A TLS listener, a secure WebSocket listener and hashed passwords (docs/security.md).
    expect(c.mqtt.listeners.map((l) => [l.port, l.transport, l.tls !== undefined])).toEqual([
      [1883, "mqtt", false],
      [8883, "mqtt", true],
      [8884, "websocket", true],
    ]);
    expect(c.operators[1]?.password).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(c.devices[1]?.model === "ec200" && c.devices[1].password).toMatch(/^scrypt\$1024\$/);
  });

  it("names the missing environment variable and the field that needs it", () => {
    const e = problems(() =>
      loadConfigFile("examples/community.yaml", { ...exampleEnv, LINLI_PW_DS10_0305: undefined }),
    );
    expect(e.message).toContain("examples/community.yaml");
    expect(e.problems).toEqual([
      {
        path: "devices[3].password",
        message: "environment variable LINLI_PW_DS10_0305 is not set",
        line: expect.any(Number),
      },
    ]);
  });

  it("names the file, the line, the field path and what is wrong", () => {
    const f = file(
      "bad.yaml",
      [
        "site:",
        "  id: s1",
        "devices:",
        "  - id: p1",
        "    model: ec200",
        "    password: x",
        "    heartbeatInterval: soon",
        "",
      ].join("\n"),
    );
    const e = problems(() => loadConfigFile(f));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatchObject({ path: "devices[0].heartbeatInterval", line: 7 });
    expect(e.problems[0]?.message).toMatch(/expected a duration/);
    expect(e.message).toContain(`${f}:7: devices[0].heartbeatInterval`);
  });

  it("a config problem is the one refusal shape: reason, path, words, and where in the file", () => {
    const e = problems(() =>
      validateConfig({ site: { id: "s" }, alerts: { welfarePeriode: "1h" } }, "x.yaml"),
    );
    const p = e.problems[0];
    expect(isRejection(p)).toBe(true);
    expect(p).toMatchObject({
      reason: "invalid",
      path: "alerts.welfarePeriode",
      detail: "unknown field (did you mean welfarePeriod?)",
    });
    expect(p?.detail).toBe(p?.message);
  });

  it("refuses unknown fields (typos) instead of ignoring them", () => {
    const e = problems(() =>
      validateConfig({ site: { id: "s" }, alerts: { welfarePeriode: "1h" } }, "x.yaml"),
    );
    expect(e.problems[0]).toMatchObject({
      path: "alerts.welfarePeriode",
      message: "unknown field (did you mean welfarePeriod?)",
    });
  });

  it("names each unknown field at its own line and path, with the closest known field", () => {
    const f = file(
      "unknown.yaml",
      [
        "site:", // 1
        "  id: s1",
        "  idd: s2", // 3
        "devices:",
        "  - id: p1", // 5
        "    model: ec200",
        "    password: xxxxxxxx",
        "    heartbeatIntervall: 5m", // 8
        "    colour: red", // 9
        "",
      ].join("\n"),
    );
    const e = problems(() => loadConfigFile(f));
    expect(e.problems.map((p) => [p.line, p.path, p.message])).toEqual([
      [3, "site.idd", "unknown field (did you mean id?)"],
      [8, "devices[0].heartbeatIntervall", "unknown field (did you mean heartbeatInterval?)"],
      [9, "devices[0].colour", "unknown field"],
    ]);
    expect(e.message).toContain(`${f}:8: devices[0].heartbeatIntervall: unknown field`);
  });

  it("says what a field must be and what the file has, and that a required field is required", () => {
    const f = file(
      "types.yaml",
      [
        "site:", // 1
        "  name: no id", // 2
        "mqtt:",
        "  listeners:",
        "    - port: abc", // 5
        "metrics:",
        "  enabled: yes please", // 7
        "log:",
        "  level: verbose", // 9
        "devices:",
        "  - id: p1", // 11
        "    password: xxxxxxxx",
        "  - id: p2", // 13
        "    model: ec201",
        "",
      ].join("\n"),
    );
    const e = problems(() => loadConfigFile(f));
    const shown = e.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`);
    expect(shown).toHaveLength(6);
    expect(shown).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^1: site\.id: required \(a short id for the site, .*e\.g\. "[a-z-]+"/),
        '5: mqtt.listeners[0].port: must be a number, got the string "abc"',
        '7: metrics.enabled: must be true or false, got the string "yes please"',
        '9: log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got the string "verbose"',
        expect.stringMatching(/^11: devices\[0\]\.model: required \(one of "ec200", "ds10", .*\)$/),
        expect.stringMatching(
          /^14: devices\[1\]\.model: unknown device model "ec201": expected one of "ec200"/,
        ),
      ]),
    );
    expect(e.message).not.toMatch(/Invalid input|received/);
  });

  it("shows the time zone it could not find (a typo is then plain to see)", () => {
    const f = file("tz.yaml", "site:\n  id: s1\n  timezone: Asia/Shangai\n");
    const e = problems(() => loadConfigFile(f));
    expect(e.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`)).toEqual([
      '3: site.timezone: must be an IANA time zone such as Asia/Shanghai, got "Asia/Shangai"',
    ]);
  });

  it("refuses unknown device models, bad ids, duplicates and dangling households", () => {
    expect(
      problems(() =>
        validateConfig({ site: { id: "s" }, devices: [{ id: "x", model: "zz9", password: "p" }] }),
      ).problems[0]?.path,
    ).toBe("devices[0].model");
    expect(problems(() => validateConfig({ site: { id: "a/b" } })).problems[0]?.path).toBe("site.id");
    const dup = problems(() =>
      validateConfig({
        site: { id: "s" },
        households: [{ id: "h" }],
        devices: [
          { id: "x", model: "ec200", password: "p", household: "nope" },
          { id: "x", model: "ds10", password: "p" },
        ],
        operators: [{ name: "x", password: "p" }],
      }),
    );
    expect(dup.problems.map((p) => p.path)).toEqual([
      "devices[0].household",
      "devices[1].id",
      "operators[0].name",
    ]);
  });

  it("refuses a device id that is also a household id, and the gateway's own subject id", () => {
    const clash = problems(() =>
      validateConfig({
        site: { id: "s" },
        households: [{ id: "101" }, { id: "gateway" }],
        devices: [
          { id: "101", model: "ds10", password: "p", household: "101" },
          { id: "gateway", model: "ec200", password: "p" },
          { id: "101-door", model: "ds10", password: "p", household: "101" },
        ],
      }),
    );
    expect(clash.problems.map((p) => [p.path, p.message])).toEqual([
      ["households[1].id", '"gateway" is the subject of the gateway\'s own alerts'],
      ["devices[0].id", '"101" is also a household id'],
      ["devices[1].id", '"gateway" is also a household id'],
      ["devices[1].id", '"gateway" is the subject of the gateway\'s own alerts'],
    ]);
  });

  it("reports YAML syntax errors with their line", () => {
    const e = problems(() => loadConfigFile(file("syntax.yaml", "site:\n  id: [unclosed\n")));
    expect(e.problems[0]?.message).toMatch(/^YAML/);
    expect(e.problems[0]?.line).toBeGreaterThan(0);
  });

  it("names the line where an unclosed quote opens, not the end of the file", () => {
    const text = 'site:\n  id: "s1\n  timezone: Asia/Shanghai\nmqtt:\n  listeners:\n    - port: 1883\n';
    const e = problems(() => parseConfigText(text, "quote.yaml", {}));
    expect(e.problems).toEqual([
      expect.objectContaining({ line: 2, message: 'YAML: the quote opened here ("s1) is never closed' }),
    ]);
    const single = problems(() => parseConfigText("site:\n  id: s1\ndevices:\n  - id: 'p1\n", "q.yaml", {}));
    expect(single.problems[0]).toMatchObject({ line: 4, message: expect.stringContaining("never closed") });
    // A closed quote whose value ends in an escaped quote is not taken for an unclosed one.
    expect(() => parseConfigText('site:\n  id: "s\\""\n', "ok.yaml", {})).not.toThrow(/never closed/);
  });

  it("reports the first YAML syntax error with its line and nothing that follows from it", () => {
    const text =
      "site:\n  id: s1\ndevices: [\n  - id: p1\n    model: ec200\n    password: x\noperators:\n  - name: a\n";
    const e = problems(() => parseConfigText(text, "bracket.yaml", {}));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatchObject({ path: "", line: 4, message: expect.stringMatching(/^YAML: /) });
    expect(e.message).toBe(`invalid config bracket.yaml:\n  bracket.yaml:4: ${e.problems[0]?.message}`);
  });

  it("refuses a YAML alias bomb with a ConfigError naming the file, not a bare exception", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(", ")}]`);
    }
    const err = problems(() => parseConfigText(`${levels.join("\n")}\nsite: { id: s }\n`, "bomb.yaml", {}));
    expect(err.message).toMatch(/^invalid config bomb\.yaml:/);
    expect(err.problems[0]?.message).toMatch(/YAML: .*alias/i);
  });

  it("refuses nesting deep enough to overflow the YAML parser's recursion with a ConfigError", () => {
    for (const text of ["[".repeat(5000), "{a: ".repeat(5000)]) {
      const err = problems(() => parseConfigText(text, "deep.yaml", {}));
      expect(err.problems[0]?.message).toMatch(/^YAML: /);
    }
  });

  it("reports an unreadable file in words, not errno codes", () => {
    expect(problems(() => loadConfigFile(join(dir, "missing.yaml"))).problems[0]?.message).toBe(
      "cannot read file: no such file (check the path)",
    );
    expect(problems(() => loadConfigFile(dir)).problems[0]?.message).toBe(
      "cannot read file: it is a directory, not a file",
    );
  });

  it("fills defaults from the datasheets", () => {
    const c = validateConfig({
      site: { id: "s" },
      devices: [
        { id: "p", model: "ec200", password: "x" },
        { id: "d", model: "ds10", password: "x" },
      ],
    });
    expect(c.devices[0]).toMatchObject({ heartbeatInterval: 300_000 });
    expect(c.devices[1]).toMatchObject({ heartbeatInterval: 3_600_000, holdOpenTime: 600_000 });
    expect(c.alerts).toMatchObject({
      emergencyCallWindow: 60_000,
      welfarePeriod: 86_400_000,
      lostGrace: 60_000,
    });
    expect(c.mqtt.listeners).toEqual([{ host: "127.0.0.1", port: 1883, transport: "mqtt", path: "/mqtt" }]);
  });
});
