/**
 * Live reconfiguration of Modbus devices: a panel added to a running RS-485
 * bus (in-memory line), a kiosk removed and another added (real Modbus TCP on
 * 127.0.0.1); a changed bus restarts alone; an overloaded bus is refused.
 */
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import type { ConfigInput } from "../gateway/config/schema.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { MemoryLine, TcpLink } from "../protocols/links/index.js";
import { Gk3Controller } from "../sim/modbus/gk3.js";
import { Mfs8Panel } from "../sim/modbus/mfs8.js";
import { RtuSlaveServer } from "../sim/modbus/rtu-server.js";
import { ModbusTcpSlaveServer } from "../sim/modbus/tcp-server.js";
import { connect, OPS, SITE, sleep, type TestClient } from "./support/harness.js";

type Bus = {
  id: string;
  type: "rtu";
  path: string;
  baudRate: 115200 | 9600;
  turnaround: string;
  retries?: number;
};

function config(
  kioskPorts: Record<string, number>,
  opts: { fireB?: boolean; bus?: Partial<Bus>; poll?: string } = {},
) {
  const poll = opts.poll ?? "100ms";
  const input: ConfigInput = {
    site: { id: SITE },
    mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
    operators: [OPS],
    buses: [
      {
        id: "rs485-1",
        type: "rtu",
        path: "/dev/null-memory",
        baudRate: 115200,
        turnaround: "5ms",
        ...opts.bus,
      },
    ],
    devices: [
      { id: "fire-a", model: "mfs8", bus: "rs485-1", unit: 1, pollInterval: poll },
      ...(opts.fireB
        ? [{ id: "fire-b", model: "mfs8" as const, bus: "rs485-1", unit: 5, pollInterval: poll }]
        : []),
      ...Object.entries(kioskPorts).map(([id, port]) => ({
        id,
        model: "gk3" as const,
        host: "127.0.0.1",
        port,
        pollInterval: "100ms",
      })),
    ],
    metrics: { enabled: false },
    log: { level: "silent" },
    // Polling behaviour only; without this the journal would go to .linli-data in the working directory.
    storage: { enabled: false },
  };
  return validateConfig(input, "test");
}

const busRequests = (gw: Gateway, name: string) =>
  gw.modbus.stats().find((r) => r.bus.name === name)?.bus.requests ?? -1;

describe("reload with Modbus devices", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  it("adds a panel to a running bus and swaps kiosks without touching the other devices", async () => {
    const line = new MemoryLine("rs485-1");
    const rtu = new RtuSlaveServer(line.b);
    const panels = [new Mfs8Panel({ unit: 1 }), new Mfs8Panel({ unit: 5 })];
    for (const p of panels) rtu.add(p);
    await rtu.start();
    cleanups.push(() => rtu.stop());
    const kiosks = [new Gk3Controller(), new Gk3Controller()];
    const servers = kiosks.map((k) => new ModbusTcpSlaveServer(k, { host: "127.0.0.1", port: 0 }));
    const ports = await Promise.all(servers.map((s) => s.start()));
    cleanups.push(async () => {
      for (const s of servers) await s.stop();
      for (const k of kiosks) k.dispose();
    });
    const [port1, port2] = ports as [number, number];

    const gw = await Gateway.start({
      config: config({ "kiosk-1": port1 }),
      logger: createLogger({ level: "silent" }),
      modbusLinks: (spec) =>
        spec.kind === "serial" ? line.a : new TcpLink({ host: spec.host, port: spec.port }),
    });
    cleanups.push(() => gw.stop());
    const ops: TestClient = await connect(gw, OPS.name, OPS.password);
    cleanups.push(() => ops.end());
    await ops.subscribe(`linli/${SITE}/#`);
    const telemetry = (id: string) => (m: { topic: string }) =>
      m.topic.endsWith(`/telemetry/${id.startsWith("fire") ? "mfs8" : "gk3"}/${id}`);
    await ops.waitFor(telemetry("fire-a"), 10_000);
    await ops.waitFor(telemetry("kiosk-1"), 10_000);

    // Reload 1: fire-b joins the running bus, kiosk-1 leaves, kiosk-2 arrives.
    const serialBefore = busRequests(gw, "rs485-1");
    const r1 = await gw.reload(config({ "kiosk-2": port2 }, { fireB: true }));
    expect(r1).toMatchObject({
      result: "applied",
      changes: { devices: { added: ["fire-b", "kiosk-2"], removed: ["kiosk-1"] } },
    });
    await ops.waitFor(telemetry("fire-b"), 10_000);
    await ops.waitFor(telemetry("kiosk-2"), 10_000);
    await ops.waitFor((m) => m.topic === `linli/${SITE}/devices/kiosk-1/status` && m.payload.length === 0);
    // The serial bus was not restarted (its counters run on), kiosk-1's bus is gone.
    expect(busRequests(gw, "rs485-1")).toBeGreaterThanOrEqual(serialBefore);
    expect(
      gw.modbus
        .stats()
        .map((r) => r.devices.join(","))
        .sort(),
    ).toEqual(["fire-a,fire-b", "kiosk-2"]);
    const k1 = ops.on("/telemetry/gk3/kiosk-1").length;
    await sleep(500);
    expect(ops.on("/telemetry/gk3/kiosk-1").length).toBe(k1);

    // Reload 2: the serial bus's settings change: that bus restarts (counters from 0), the kiosk's does not.
    const kioskBus = `tcp:127.0.0.1:${port2}`;
    const kioskBefore = busRequests(gw, kioskBus);
    const serialBefore2 = busRequests(gw, "rs485-1");
    const r2 = await gw.reload(config({ "kiosk-2": port2 }, { fireB: true, bus: { retries: 2 } }));
    expect(r2).toMatchObject({ result: "applied", changes: { buses: { changed: ["rs485-1"] } } });
    expect(busRequests(gw, "rs485-1")).toBeLessThan(serialBefore2);
    expect(busRequests(gw, kioskBus)).toBeGreaterThanOrEqual(kioskBefore);
    const seen = ops.on("/telemetry/mfs8/").length;
    await ops.waitFor(
      () => ops.on("/telemetry/mfs8/fire-a").length > 0 && ops.on("/telemetry/mfs8/").length > seen + 4,
      10_000,
    );

    // Nobody was lost on the way.
    expect(ops.on("/DEVICE_LOST/")).toEqual([]);
    for (const id of ["fire-a", "fire-b", "kiosk-2"])
      expect(gw.registry.devices.get(id)?.link).toBe("online");

    // Reload 3: a poll plan the line cannot carry (9600 baud, 2 panels every 10 ms) is refused; nothing changes.
    // (Checked as the file is loaded, as `linli reload` loads it: the same rule as config check and start.)
    const r3 = await gw.reload(() =>
      config({ "kiosk-2": port2 }, { fireB: true, bus: { baudRate: 9600, retries: 2 }, poll: "10ms" }),
    );
    expect(r3.result).toBe("refused");
    if (r3.result === "refused") expect(r3.message).toMatch(/bus "rs485-1": poll plan needs .* polls\/s/);
    expect(gw.config.buses[0]?.baudRate).toBe(115200);
    expect(gw.registry.devices.get("fire-a")?.settings.pollIntervalMs).toBe(100);
  }, 60_000);
});
