/**
 * Supervision of polled devices is driven by their polls: a panel
 * or kiosk that answers every poll is never DEVICE_LOST, however long the
 * gateway runs past the silence period of heartbeat devices; one whose slave
 * stops answering is lost at the profile's limit of missed polls, not before.
 *
 * Real time with a short `lostGrace`: a polled device has no heartbeat, so the
 * silence timer that wrongly supervised it fired `lostGrace` after start (60 s
 * by default); 300 ms here, and the gateway runs ten times that.
 */
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { MemoryLine, TcpLink } from "../protocols/links/index.js";
import { Gk3Controller } from "../sim/modbus/gk3.js";
import { Mfs8Panel } from "../sim/modbus/mfs8.js";
import { RtuSlaveServer } from "../sim/modbus/rtu-server.js";
import { ModbusTcpSlaveServer } from "../sim/modbus/tcp-server.js";
import { connect, OPS, SITE, sleep, type TestClient } from "./support/harness.js";

const LOST_GRACE_MS = 300;

describe("polled devices are supervised by their polls", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function rig() {
    const line = new MemoryLine("rs485-ps");
    const panel = new Mfs8Panel({ unit: 1 });
    const rtu = new RtuSlaveServer(line.b).add(panel);
    await rtu.start();
    cleanups.push(() => rtu.stop());
    const kiosk = new Gk3Controller();
    cleanups.push(() => kiosk.dispose());
    const tcp = new ModbusTcpSlaveServer(kiosk, { host: "127.0.0.1", port: 0 });
    const kioskPort = await tcp.start();
    cleanups.push(() => tcp.stop());
    const config = validateConfig(
      {
        site: { id: SITE },
        mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
        operators: [OPS],
        // Generous reply timeouts: a loaded machine must not turn a healthy poll into a missed one.
        buses: [{ id: "rs485-ps", type: "rtu", path: "/dev/null-memory", baudRate: 115200, timeout: "1s" }],
        households: [{ id: "hh-1" }],
        devices: [
          { id: "fire-a", model: "mfs8", bus: "rs485-ps", unit: 1, pollInterval: "100ms" },
          {
            id: "kiosk-1",
            model: "gk3",
            host: "127.0.0.1",
            port: kioskPort,
            pollInterval: "100ms",
            timeout: "1s",
          },
          // A heartbeat device beside them: its silence timer still works.
          { id: "p-1", model: "ec200", password: "pw-p1", household: "hh-1", heartbeatInterval: "100ms" },
        ],
        alerts: { lostGrace: `${LOST_GRACE_MS}ms` },
        metrics: { enabled: false },
        log: { level: "silent" },
        // Polling behaviour only; without this the journal would go to .linli-data in the working directory.
        storage: { enabled: false },
      },
      "test",
    );
    const gw = await Gateway.start({
      config,
      logger: createLogger({ level: "silent" }),
      modbusLinks: (spec) =>
        spec.kind === "serial" ? line.a : new TcpLink({ host: spec.host, port: spec.port }),
    });
    cleanups.push(() => gw.stop());
    const ops: TestClient = await connect(gw, OPS.name, OPS.password);
    cleanups.push(() => ops.end());
    await ops.subscribe(`linli/${SITE}/#`);
    return { gw, ops, panel };
  }

  // Status transitions: a retained copy and a live publish can both reach a subscription made
  // just as the device comes online (the same "online" twice), which is not a transition.
  const status = (ops: TestClient, id: string) =>
    ops
      .on(`/devices/${id}/status`)
      .map((m) => m.payload.toString())
      .filter((s, i, all) => i === 0 || s !== all[i - 1]);
  const lostAlerts = (ops: TestClient, id: string) =>
    ops.on(`/DEVICE_LOST/${id}`).filter((m) => m.payload.length > 0);

  it("healthy polls for 10x the silence period: no DEVICE_LOST; a silent slave is lost after 3 missed polls", async () => {
    const { gw, ops, panel } = await rig();
    // The heartbeat device never talks: it is lost by silence (the control that the timer runs).
    await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/DEVICE_LOST/p-1`, 10_000);
    await ops.waitFor(
      () => status(ops, "fire-a").includes("online") && status(ops, "kiosk-1").includes("online"),
      10_000,
    );
    await sleep(10 * LOST_GRACE_MS);
    expect(lostAlerts(ops, "fire-a")).toEqual([]);
    expect(lostAlerts(ops, "kiosk-1")).toEqual([]);
    expect(status(ops, "fire-a")).toEqual(["online"]);
    expect(status(ops, "kiosk-1")).toEqual(["online"]);
    // Polls did run all along (3 s at 10/s each; half of that is plenty on a loaded machine).
    const okPolls = gw.stats().buses.reduce((n, b) => n + b.poller.ok, 0);
    expect(okPolls).toBeGreaterThan(30);

    panel.faults.silent = true;
    const lost = await ops.waitFor(
      (m) => m.topic === `linli/${SITE}/alerts/p2/DEVICE_LOST/fire-a` && m.payload.length > 0,
      20_000,
    );
    expect(lost.json().causes).toEqual(["3 polls missed (timeout)"]);
    // Lost at the limit, not before: at least 3 polls had failed when the alert went out.
    expect(gw.counters.rejected("mfs8", "poll-timeout")).toBeGreaterThanOrEqual(3);
    expect(status(ops, "fire-a")).toEqual(["online", "lost"]);
    expect(lostAlerts(ops, "kiosk-1")).toEqual([]);
  }, 60_000);
});
