import { describe, expect, it } from "vitest";
import { validateConfig } from "./config/load.js";
import type { ConfigInput } from "./config/schema.js";
import { planIsEmpty, planReload, sameValue } from "./reload.js";

const base = (): ConfigInput => ({
  site: { id: "s1", timezone: "Asia/Shanghai" },
  mqtt: { listeners: [{ host: "127.0.0.1", port: 1883 }] },
  operators: [
    { name: "ops", password: "a" },
    { name: "ops2", password: "b" },
  ],
  households: [{ id: "hh-1" }, { id: "hh-2", welfare: { period: "12h" } }],
  buses: [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0", baudRate: 9600 }],
  devices: [
    { id: "p-1", model: "ec200", password: "pw1", household: "hh-1" },
    { id: "d-1", model: "ds10", password: "pwd", household: "hh-1", holdOpenTime: "60s" },
    { id: "p-2", model: "ec200", password: "pw2", household: "hh-2" },
    { id: "fire-1", model: "mfs8", bus: "rs485-1", unit: 1 },
    { id: "kiosk-1", model: "gk3", host: "10.0.0.5" },
  ],
});

const cfg = (input: ConfigInput) => validateConfig(input, "test", {});

function edit(f: (c: ConfigInput) => void) {
  const c = structuredClone(base());
  f(c);
  return planReload(cfg(base()), cfg(c));
}

describe("planReload", () => {
  it("the same file: nothing to do, nothing needs a restart", () => {
    const p = planReload(cfg(base()), cfg(base()));
    expect(planIsEmpty(p)).toBe(true);
    expect(p.restartNeeded).toEqual([]);
  });

  it("names added, removed and changed devices; a model change is a replacement", () => {
    const p = edit((c) => {
      const devices = c.devices ?? [];
      devices.push({ id: "p-3", model: "ec200", password: "pw3" });
      devices.splice(2, 1); // p-2 removed
      (devices[1] as { holdOpenTime: string }).holdOpenTime = "5s";
      devices[0] = { id: "p-1", model: "ds10", password: "pw1" };
    });
    expect(p.devices.added.map((d) => d.id)).toEqual(["p-3"]);
    expect(p.devices.removed).toEqual(["p-2"]);
    expect(p.devices.replaced.map((d) => [d.id, d.model])).toEqual([["p-1", "ds10"]]);
    expect(p.devices.changed).toEqual([
      expect.objectContaining({ id: "d-1", fields: ["holdOpenTime"], credentials: false, polling: false }),
    ]);
    expect(planIsEmpty(p)).toBe(false);
  });

  it("a password change is a credentials change; polling fields of Modbus devices are named", () => {
    const p = edit((c) => {
      const d = c.devices ?? [];
      (d[0] as { password: string }).password = "new";
      (d[3] as { unit: number }).unit = 2;
      (d[4] as { port: number }).port = 1502;
      (d[3] as { minPressure: number }).minPressure = 0.2;
    });
    const byId = Object.fromEntries(p.devices.changed.map((c) => [c.id, c]));
    expect(byId["p-1"]).toMatchObject({ fields: ["password"], credentials: true, polling: false });
    expect(byId["fire-1"]).toMatchObject({ credentials: false, polling: true });
    expect(byId["fire-1"]?.fields.sort()).toEqual(["minPressure", "unit"]);
    expect(byId["kiosk-1"]).toMatchObject({ fields: ["port"], polling: true });
  });

  it("a settings-only Modbus change does not re-poll", () => {
    const p = edit((c) => {
      (c.devices?.[4] as { openingHours: string }).openingHours = "07:00-19:00";
    });
    expect(p.devices.changed).toEqual([
      expect.objectContaining({ id: "kiosk-1", fields: ["openingHours"], polling: false }),
    ]);
  });

  it("operators: added, removed, password changed", () => {
    const p = edit((c) => {
      c.operators = [
        { name: "ops", password: "changed" },
        { name: "ops3", password: "c" },
      ];
    });
    expect(p.operators).toEqual({ added: ["ops3"], removed: ["ops2"], changed: ["ops"], roles: [] });
  });

  it("households: a new default welfare period changes only those without their own", () => {
    const p = edit((c) => {
      c.alerts = { welfarePeriod: "6h" };
      c.households?.push({ id: "hh-3" });
    });
    expect(p.households.added.map((h) => h.id)).toEqual(["hh-3"]);
    expect(p.households.changed.map((h) => h.id)).toEqual(["hh-1"]);
    expect(p.alerts).toEqual(["alerts.welfarePeriod"]);
  });

  it("alert settings are named by path", () => {
    const p = edit((c) => {
      c.alerts = { escalation: { p1: "30s", factor: 3 }, lostGrace: "2m" };
    });
    expect(p.alerts.sort()).toEqual(["alerts.escalation.factor", "alerts.escalation.p1", "alerts.lostGrace"]);
    expect(p.effective.alerts.escalation.p1).toBe(30_000);
    expect(p.restartNeeded).toEqual([]);
  });

  it("buses: a changed line restarts that bus only", () => {
    const p = edit((c) => {
      (c.buses?.[0] as { baudRate: number }).baudRate = 19200;
    });
    expect(p.buses).toEqual({ added: [], removed: [], changed: ["rs485-1"] });
  });

  it("restart-only settings are reported and keep their running values; the rest applies", () => {
    const p = edit((c) => {
      c.site = { id: "s2", timezone: "UTC", name: "renamed" };
      c.mqtt = { listeners: [{ host: "127.0.0.1", port: 1884 }] };
      c.metrics = { port: 9999 };
      c.pipeline = { p1LaneSize: 512 };
      c.log = { level: "debug", format: "pretty" };
      c.devices?.push({ id: "p-9", model: "ec200", password: "x" });
    });
    const paths = p.restartNeeded.map((r) => r.path).sort();
    expect(paths).toEqual([
      "log.format",
      "metrics.port",
      "mqtt.listeners",
      "pipeline.p1LaneSize",
      "site.id",
      "site.timezone",
    ]);
    expect(p.restartNeeded.find((r) => r.path === "metrics.port")).toEqual({
      path: "metrics.port",
      running: 9464,
      requested: 9999,
    });
    const e = p.effective;
    expect(e.site).toEqual({ id: "s1", timezone: "Asia/Shanghai", locale: "zh-CN", name: "renamed" });
    expect(e.mqtt.listeners[0]?.port).toBe(1883);
    expect(e.metrics.port).toBe(9464);
    expect(e.pipeline.p1LaneSize).toBe(256);
    expect(e.log).toEqual({ level: "debug", format: "auto" });
    expect(p.logLevel).toBe("debug");
    expect(e.devices.map((d) => d.id)).toContain("p-9");
  });

  it("site.locale and site.name are applied and named: not 'nothing to change'", () => {
    const p = edit((c) => {
      c.site = { ...c.site, id: "s1", locale: "en", name: "Heping Road centre" };
    });
    expect(p.site.sort()).toEqual(["site.locale", "site.name"]);
    expect(planIsEmpty(p)).toBe(false);
    expect(p.restartNeeded).toEqual([]);
    expect(p.effective.site).toMatchObject({ locale: "en", name: "Heping Road centre" });
    // site.id and site.timezone are restart items, not live ones.
    const q = edit((c) => {
      c.site = { id: "s2", timezone: "Europe/Paris" };
    });
    expect(q.site).toEqual([]);
    expect(q.restartNeeded.map((r) => r.path).sort()).toEqual(["site.id", "site.timezone"]);
  });

  it("storage (the journal's directory and policy) needs a restart; the running value is kept", () => {
    const running = cfg(base());
    const next = cfg({ ...base(), storage: { dir: "/var/lib/linli" } });
    const p = planReload(running, next);
    expect(p.restartNeeded).toEqual([
      { path: "storage.dir", running: undefined, requested: "/var/lib/linli" },
    ]);
    expect(p.effective.storage.dir).toBeUndefined();
  });
});

describe("sameValue", () => {
  it("compares plain values structurally, regardless of key order", () => {
    expect(sameValue({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(sameValue({ a: 1 }, { a: 1, b: undefined })).toBe(true);
    expect(sameValue([1, 2], [2, 1])).toBe(false);
    expect(sameValue({ a: null }, { a: 0 })).toBe(false);
  });
});
