import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseGatewayUrl, UsageError } from "./cli.js";
import { loadSiteFile, SiteError, scaleSite, siteConfigYaml, welfareOf } from "./site.js";

describe("the simulator's site", () => {
  const dir = mkdtempSync(join(tmpdir(), "linli-site-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the file's limits.deviceRate, which the gateway drops load by (absent: the documented defaults)", () => {
    const file = join(dir, "rates.yaml");
    const base = "site: { id: s }\noperators: [{ name: op, password: pw }]\n";
    writeFileSync(
      file,
      `${base}limits:\n  deviceRate:\n    models: { ec200: { perSecond: 5, burst: 50 } }\n`,
    );
    expect(loadSiteFile(file).deviceRate).toEqual({
      enabled: true,
      models: { ec200: { perSecond: 5, burst: 50 } },
    });
    writeFileSync(file, `${base}limits: { deviceRate: { enabled: false } }\n`);
    expect(loadSiteFile(file).deviceRate).toEqual({ enabled: false, models: {} });
    writeFileSync(file, base);
    expect(loadSiteFile(file).deviceRate).toBeUndefined();
  });

  it("reads where the file's gateway serves /metrics, or why the simulator cannot read it", () => {
    const file = join(dir, "metrics.yaml");
    const base = "site: { id: s }\noperators: [{ name: op, password: pw }]\n";
    const metricsOf = (m: string) => {
      writeFileSync(file, `${base}${m}`);
      return loadSiteFile(file).metrics;
    };
    expect(metricsOf("metrics: { port: 27903 }\n")).toEqual({ url: "http://127.0.0.1:27903/metrics" });
    expect(metricsOf("metrics: { host: 0.0.0.0, port: 9464, tls: { cert: a, key: b } }\n")).toEqual({
      url: "https://127.0.0.1:9464/metrics",
    });
    expect(metricsOf("metrics: { enabled: false }\n")).toEqual({
      unreadable: `${file}: metrics.enabled is false`,
    });
    expect(metricsOf("metrics: { auth: { type: bearer, tokenFile: t } }\n")).toEqual({
      unreadable: `${file}: metrics.auth asks credentials the simulator does not have`,
    });
    expect(metricsOf("")).toBeUndefined();
  });

  it("reads the example site: every device with its credentials from the environment", () => {
    const vars = Object.keys(process.env).filter((k) => k.startsWith("LINLI_"));
    const names = [
      "LINLI_DUTY_DESK_PASSWORD",
      "LINLI_NIGHT_SHIFT_PASSWORD",
      "LINLI_PW_EC200_0101",
      "LINLI_PW_EC200_0203",
      "LINLI_PW_DS10_0101",
      "LINLI_PW_DS10_0305",
      "LINLI_PW_DS10_FIREDOOR_B1",
    ];
    for (const n of names) process.env[n] = `pw-${n}`;
    try {
      const site = loadSiteFile("examples/community.yaml");
      expect(site.siteId).toBe("sc-0451");
      expect(site.operator).toEqual({ name: "duty-desk", password: "pw-LINLI_DUTY_DESK_PASSWORD" });
      expect(site.mqtt.map((d) => [d.id, d.model, d.password])).toContainEqual([
        "ec200-0101",
        "ec200",
        "pw-LINLI_PW_EC200_0101",
      ]);
      expect(site.mqtt.find((d) => d.id === "ds10-0101")?.holdOpenTimeS).toBe(600);
      expect(site.rtu.map((d) => [d.id, d.bus, d.unit])).toEqual([
        ["fire-station-east", "rs485-1", 5],
        ["fire-station-west", "rs485-1", 6],
      ]);
      expect(site.tcp).toEqual([
        expect.objectContaining({ id: "kiosk-lobby-1", host: "127.0.0.1", port: 502 }),
      ]);
    } finally {
      for (const n of names) if (!vars.includes(n)) delete process.env[n];
    }
  });

  it("a household's own welfare check (off, its period, its quiet hours) over the site's period", () => {
    const file = join(dir, "welfare.yaml");
    writeFileSync(
      file,
      [
        "site: { id: s }",
        "operators: [{ name: o, password: p }]",
        "households:",
        "  - { id: a }",
        "  - { id: b, welfare: { enabled: false } }",
        "  - { id: c, welfare: { period: 2h, quietHours: '22:00-07:00' } }",
        "alerts: { welfarePeriod: 30s }",
        "",
      ].join("\n"),
    );
    const site = loadSiteFile(file);
    expect(welfareOf(site, "a")).toEqual({ enabled: true, periodS: 30 });
    expect(welfareOf(site, "b")).toEqual({ enabled: false, periodS: 30 });
    expect(welfareOf(site, "c")).toEqual({ enabled: true, periodS: 7200, quietHours: "22:00-07:00" });
    writeFileSync(
      file,
      "site: { id: s }\noperators: [{ name: o, password: p }]\nhouseholds:\n  - { id: a, welfare: { period: soon } }\n",
    );
    expect(() => loadSiteFile(file)).toThrow(/households\[0\]\.welfare\.period: expected a duration/);
  });

  it("names the file and the field", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      "site: { id: s }\noperators: [{ name: o, password: p }]\ndevices:\n  - { id: a, model: ec200 }\n",
    );
    expect(() => loadSiteFile(file)).toThrow(
      new SiteError(`${file}:4: devices[0].password: an MQTT device needs its password`),
    );
    // A bad value: the file, its line, the field and what it must be (README: exit 2 naming them).
    writeFileSync(
      file,
      "site: { id: s }\noperators: [{ name: o, password: p }]\ndevices:\n  - id: a\n    model: ec200\n    password: x\n    heartbeatInterval: soon\n",
    );
    expect(() => loadSiteFile(file)).toThrow(
      new SiteError(
        `${file}:7: devices[0].heartbeatInterval: expected a duration such as "300s", "10m" or "24h", got "soon"`,
      ),
    );
    writeFileSync(
      file,
      "site: { id: s }\noperators: [{ name: o, password: p }]\nbuses:\n  - id: b\n    baudRate: fast\n",
    );
    expect(() => loadSiteFile(file)).toThrow(
      new SiteError(`${file}:5: buses[0].baudRate: must be a number, got the string "fast"`),
    );
    writeFileSync(file, "site: { id: s }\ndevices: [\n  - id: a\n");
    expect(() => loadSiteFile(file)).toThrow(/bad\.yaml:\d+: YAML: /);
    // The configuration's own ${NAME} syntax, written into the file.
    writeFileSync(file, `site: { id: s }\noperators: [{ name: o, password: '$\{LINLI_SIM_TEST_UNSET}' }]\n`);
    expect(() => loadSiteFile(file)).toThrow(
      /bad\.yaml:2: operators\[0\]\.password: environment variable LINLI_SIM_TEST_UNSET/,
    );
  });

  it("a generated site is the same for the same seed, with its listener and operator", () => {
    const a = siteConfigYaml(
      scaleSite({ households: 3, seed: 5, host: "127.0.0.1", port: 1999 }),
      "127.0.0.1",
      1999,
    );
    const b = siteConfigYaml(
      scaleSite({ households: 3, seed: 5, host: "127.0.0.1", port: 1999 }),
      "127.0.0.1",
      1999,
    );
    expect(a).toBe(b);
    const c = parse(a);
    expect(c.mqtt.listeners).toEqual([{ host: "127.0.0.1", port: 1999 }]);
    expect(c.devices).toHaveLength(6);
    expect(c.operators).toEqual([{ name: "sim-operator", password: "sim-operator" }]);
  });

  it("the welfare period: a day by default, a welfare scenario's compressed one when it gives it", () => {
    const at = (o: { welfarePeriodS?: number }) =>
      parse(siteConfigYaml(scaleSite({ households: 2, host: "h", port: 1, ...o }), "h", 1)).alerts;
    expect(at({})).toMatchObject({ welfarePeriod: "86400s" });
    expect(at({ welfarePeriodS: 16 })).toMatchObject({ welfarePeriod: "16s" });
  });

  it("kitchens and tanks: a GD-2 per kitchen of the first households (automatic shut-off), LV-4s after the stations on the bus", () => {
    const site = scaleSite({
      households: 4,
      seed: 5,
      host: "127.0.0.1",
      port: 1999,
      stations: 2,
      busPath: "/dev/pts/9",
      kitchens: 2,
      tanks: 3,
    });
    const c = parse(siteConfigYaml(site, "127.0.0.1", 1999));
    const gd2 = c.devices.filter((d: { model: string }) => d.model === "gd2");
    expect(gd2).toEqual([
      expect.objectContaining({
        id: "gas-01",
        household: "hh-01",
        heartbeatInterval: "60s",
        autoShutOff: true,
      }),
      expect.objectContaining({ id: "gas-02", household: "hh-02", autoShutOff: true }),
    ]);
    expect(site.mqtt.filter((d) => d.model === "gd2").every((d) => d.encoding === "json")).toBe(true);
    const rtu = c.devices.filter((d: { bus?: string }) => d.bus === "rs485-1");
    expect(rtu.map((d: { id: string; unit: number }) => `${d.id}@${d.unit}`)).toEqual([
      "fire-station-1@1",
      "fire-station-2@2",
      "tank-1@3",
      "tank-2@4",
      "tank-3@5",
    ]);
    expect(c.buses).toEqual([expect.objectContaining({ id: "rs485-1", path: "/dev/pts/9" })]);
    // Tanks alone still get their bus; more kitchens than households is every household.
    const tanksOnly = scaleSite({ households: 2, host: "127.0.0.1", port: 1999, tanks: 1, kitchens: 9 });
    expect(tanksOnly.buses).toHaveLength(1);
    expect(tanksOnly.rtu).toEqual([expect.objectContaining({ id: "tank-1", model: "lv4", unit: 1 })]);
    expect(tanksOnly.mqtt.filter((d) => d.model === "gd2")).toHaveLength(2);
    expect(() => scaleSite({ households: 1, host: "h", port: 1, stations: 200, tanks: 48 })).toThrow(
      SiteError,
    );
  });

  it("gateway URLs: mqtt, mqtts, ws, wss; anything else is refused", () => {
    expect(parseGatewayUrl("mqtt://127.0.0.1:1884")).toMatchObject({
      host: "127.0.0.1",
      port: 1884,
      tls: false,
    });
    expect(parseGatewayUrl("mqtts://gw.local")).toMatchObject({ host: "gw.local", port: 8883, tls: true });
    expect(parseGatewayUrl("ws://127.0.0.1:8080/mqtt")).toMatchObject({ port: 8080, tls: false });
    expect(parseGatewayUrl("wss://gw.local/mqtt")).toMatchObject({ port: 443, tls: true });
    expect(() => parseGatewayUrl("http://x")).toThrow(UsageError);
  });
});
