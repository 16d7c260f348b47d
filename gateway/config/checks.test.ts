import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "./load.js";

function problems(yaml: string): ConfigError["problems"] {
  try {
    parseConfigText(yaml, "site.yaml", {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

/** Ten MFS-8 panels polled every 100 ms on a 9600 baud line: far over its budget. */
function overBudget(): string {
  let out = "";
  for (let i = 1; i <= 10; i++)
    out += `  - id: f${i}\n    model: mfs8\n    bus: b1\n    unit: ${i}\n    pollInterval: 100ms\n`;
  return out;
}

describe("config checks (the same for config check, start and reload)", () => {
  it("plans a bus with its slowest model's turnaround: an LV-4 (80 ms) among MFS-8 panels", () => {
    const bus = (extra: string, lv4: boolean) =>
      [
        "site:",
        "  id: s1",
        "buses:",
        "  - id: b1",
        "    type: rtu",
        "    path: /dev/null",
        ...(extra ? [extra] : []),
        "devices:",
        ...Array.from(
          { length: 7 },
          (_, i) => `  - { id: f${i}, model: mfs8, bus: b1, unit: ${i + 1}, pollInterval: 1s }`,
        ),
        lv4
          ? "  - { id: t1, model: lv4, bus: b1, unit: 9, pollInterval: 1s }"
          : "  - { id: f8, model: mfs8, bus: b1, unit: 9, pollInterval: 1s }",
      ].join("\n");
    // Eight polls a second at 9600 8E1 fit with the MFS-8's 50 ms, not with the LV-4's 80 ms.
    expect(problems(bus("", false))).toEqual([]);
    expect(problems(bus("", true))).toEqual([
      expect.objectContaining({ path: "buses[0]", message: expect.stringContaining("turnaround 80 ms") }),
    ]);
    // A measured turnaround in the config is what the plan uses.
    expect(problems(bus("    turnaround: 20ms", true))).toEqual([]);
  });

  it("names every problem in one pass, each with its line: schema, ports, budget, references", () => {
    const yaml = [
      "site:",
      "  id: s1",
      "mqtt:",
      "  listeners:",
      "    - port: 18830",
      "metrics:",
      "  port: 18830",
      "buses:",
      "  - id: b1",
      "    type: rtu",
      "    path: /dev/null",
      "    timeout: 0",
      "devices:",
      "  - id: p1",
      "    model: ec200",
      "    password: x",
      "    heartbeatInterval: 0",
      "    household: nowhere",
      overBudget(),
    ].join("\n");
    const p = problems(yaml);
    const byPath = Object.fromEntries(p.map((x) => [x.path, x]));
    expect(byPath["buses[0].timeout"]).toMatchObject({
      line: 12,
      message: expect.stringContaining("more than 0"),
    });
    expect(byPath["devices[0].heartbeatInterval"]).toMatchObject({ line: 17 });
    expect(byPath["metrics.port"]).toMatchObject({
      line: 7,
      message: expect.stringContaining("mqtt.listeners[0]"),
    });
    expect(byPath["devices[0].household"]).toMatchObject({ line: 18 });
    expect(byPath["buses[0]"]).toMatchObject({ line: 9 });
    expect(byPath["buses[0]"]?.message).toMatch(/b1/);
    expect(p).toHaveLength(5);
  });

  it("a zero where 0 has a meaning is fine (escalation off, no debounce); negatives are not durations", () => {
    expect(
      problems("site:\n  id: s1\nalerts:\n  contactDebounce: 0\n  escalation:\n    p1: 0\n    p2: 0\n"),
    ).toEqual([]);
    expect(problems("site:\n  id: s1\nalerts:\n  welfarePeriod: -5\n")[0]?.path).toBe("alerts.welfarePeriod");
    expect(problems("site:\n  id: s1\nlimits:\n  connectTimeout: 0\n")[0]).toMatchObject({
      path: "limits.connectTimeout",
      line: 4,
    });
  });

  it("port 0 never clashes; metrics disabled frees its port; 0.0.0.0 clashes with any host", () => {
    expect(problems("site:\n  id: s1\nmqtt:\n  listeners:\n    - port: 0\nmetrics:\n  port: 0\n")).toEqual(
      [],
    );
    expect(
      problems("site:\n  id: s1\nmqtt:\n  listeners:\n    - port: 9464\nmetrics:\n  enabled: false\n"),
    ).toEqual([]);
    expect(
      problems(
        "site:\n  id: s1\nmqtt:\n  listeners:\n    - host: 0.0.0.0\n      port: 1883\n    - host: 10.0.0.1\n      port: 1883\n",
      )[0],
    ).toMatchObject({ path: "mqtt.listeners[1]" });
    expect(
      problems(
        "site:\n  id: s1\nmqtt:\n  listeners:\n    - port: 1883\n  deviceListener:\n    port: 1883\n",
      )[0],
    ).toMatchObject({ path: "mqtt.deviceListener" });
  });

  it("the console's port clashes like any listener's, both fields named; a disabled console takes none", () => {
    const site = (console: string) =>
      `site:\n  id: s1\nmqtt:\n  listeners:\n    - port: 18830\n  deviceListener:\n    port: 18840\nmetrics:\n  port: 18850\nconsole:\n${console}`;
    for (const [port, other] of [
      [18830, "mqtt.listeners[0]"],
      [18840, "mqtt.deviceListener"],
      [18850, "metrics.port"],
    ] as const)
      expect(problems(site(`  enabled: true\n  port: ${port}\n`))).toEqual([
        expect.objectContaining({
          path: "console.port",
          line: 12,
          message: `console port ${port} is also ${other}'s (127.0.0.1:${port})`,
        }),
      ]);
    expect(problems(site("  enabled: false\n  port: 18830\n"))).toEqual([]);
    expect(problems(site("  enabled: true\n  host: 0.0.0.0\n  port: 18850\n"))[0]?.path).toBe("console.port");
  });
  it("profile-declared devices keep the gateway's field rules: passwords by binding, hashes, zero durations", () => {
    const gd2 = (extra: string) => `site:\n  id: s1\ndevices:\n  - id: g1\n    model: gd2\n${extra}`;
    // GD-2 is bound as mqtt by its profile: it logs in, so it needs a password like any MQTT device.
    expect(problems(gd2(""))).toEqual([expect.objectContaining({ path: "devices[0].password" })]);
    expect(problems(gd2("    password: x\n"))).toEqual([]);
    expect(problems(gd2("    password: scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaA==\n"))[0]).toMatchObject({
      path: "devices[0].password",
      message: expect.stringMatching(/power of two/),
    });
    expect(problems(gd2("    password: x\n    heartbeatInterval: 0\n"))[0]).toMatchObject({
      path: "devices[0].heartbeatInterval",
      message: expect.stringContaining("more than 0"),
    });
    // Without a password it may log in with a client certificate when a listener verifies them.
    const tls = "mqtt:\n  listeners:\n    - port: 0\n      tls: { cert: c.pem, key: k.pem, ca: ca.pem }\n";
    expect(problems(`${tls}${gd2("")}`)).toEqual([]);
    // A polled model has no password field at all; 0 keeps its meaning where it has one.
    const mfs8 =
      "buses:\n  - id: b1\n    type: rtu\n    path: /dev/null\ndevices:\n  - id: f1\n    model: mfs8\n    bus: b1\n    unit: 1\n";
    expect(problems(`site:\n  id: s1\n${mfs8}    extinguisherGrace: 0\n`)).toEqual([]);
    expect(problems(`site:\n  id: s1\n${mfs8}    pollInterval: 0\n`)[0]?.path).toBe(
      "devices[0].pollInterval",
    );
    expect(problems(`site:\n  id: s1\n${mfs8}    password: x\n`)[0]?.message).toMatch(/unknown field/);
  });
});
