import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { attachFailures, metricsUrl, runSim, type SimOptions, UsageError } from "./cli.js";
import { socatMissingReason } from "./modbus/pty.js";
import { startTestBroker } from "./mqtt/test-broker.js";
import { scaleSite, siteConfigYaml } from "./site.js";

/**
 * `linli sim` exit status (README): 2 a bad option, 3 the gateway could not be reached. An option
 * the run would ignore is refused rather than dropped without a word. Nothing here connects:
 * every case is refused before the first device is started (port 1 has nothing listening).
 */

/** A connection to 127.0.0.1:port once something listens there (retried until `ms`). */
async function connectWithin(port: number, ms: number): Promise<net.Socket> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, "127.0.0.1", () => resolve(s));
        s.once("error", reject);
      });
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** What the command writes to stdout and stderr (restored by vi.restoreAllMocks()). */
function captureOutput(): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    out.stderr += String(chunk);
    return true;
  });
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out.stdout += String(chunk);
    return true;
  });
  return out;
}

describe("linli sim: bad and ignored options", () => {
  let stderr = "";
  afterEach(() => {
    vi.restoreAllMocks();
    stderr = "";
  });
  const sim = (o: Partial<SimOptions>) => {
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    return runSim({ gateway: "mqtt://127.0.0.1:1", seed: 1, ...o });
  };

  it("--ca naming a file that is not there is a bad option (2), not an unreachable gateway (3)", async () => {
    expect(await sim({ gateway: "mqtts://127.0.0.1:1", scale: 2, ca: "/nonexistent/nofile.pem" })).toBe(2);
    expect(stderr).toMatch(/--ca \/nonexistent\/nofile\.pem: ENOENT/);
  });

  it("a site too small for the scenario is refused (2) before anything connects or is written, naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "linli-sim-cli-"));
    try {
      const file = join(dir, "small.yaml");
      writeFileSync(
        file,
        siteConfigYaml(scaleSite({ households: 20, seed: 1, host: "127.0.0.1", port: 1 }), "127.0.0.1", 1),
      );
      expect(await sim({ config: file, scenario: "evening-peak" })).toBe(2);
      expect(stderr).toContain(
        `linli sim: evening-peak needs at least 50 households; ${file} has 20: run it on a larger site (--scale 50 writes one)\n`,
      );
      const written = join(dir, "written.yaml");
      expect(await sim({ scale: 20, writeConfig: written, scenario: "evening-peak" })).toBe(2);
      expect(stderr).toContain(
        "evening-peak needs at least 50 households; --scale 20 has 20: give --scale 50 or more",
      );
      expect(existsSync(written)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [{ stations: 1 }, /--stations goes with --scale N/],
    [{ kiosks: 1 }, /--kiosks goes with --scale N/],
    [{ kitchens: 1 }, /--kitchens goes with --scale N/],
    [{ tanks: 1 }, /--tanks goes with --scale N/],
    [{ kioskPort: 1502 }, /--kiosk-port goes with --scale N/],
    [
      { scale: 2, operator: "nobody" },
      /--operator goes with --config FILE \(a --scale site has one operator/,
    ],
    [{ operator: "nobody" }, /--operator goes with --config FILE/],
  ])("%j is refused with exit 2 instead of being ignored", async (o, reason) => {
    expect(await sim(o)).toBe(2);
    expect(stderr).toMatch(reason);
  });
});

describe.skipIf(socatMissingReason() !== undefined)("linli sim --write-config with a socat bus", () => {
  // Made in beforeAll, not at collection: a run that filters these tests out (-t) skips the hooks.
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "linli-sim-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the written file and the command say the bus is gone with the simulator; kiosks on --kiosk-port", async () => {
    let stderr = "";
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    const file = join(dir, "wc.yaml");
    const code = await runSim({
      gateway: "mqtt://127.0.0.1:1",
      seed: 1,
      scale: 2,
      stations: 1,
      tanks: 1,
      kiosks: 2,
      kioskPort: 42850,
      writeConfig: file,
    });
    vi.restoreAllMocks();
    expect(code).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/# This bus was one end of a socat pty pair[\s\S]*--gateway-cmd[\s\S]*\nbuses:\n/);
    const config = parse(text) as { devices: Array<{ model: string; port?: number }> };
    expect(config.devices.filter((d) => d.model === "gk3").map((d) => d.port)).toEqual([42850, 42851]);
    expect(stderr).toMatch(/socat pty bus that exists only while linli sim runs/);
    expect(stderr).toMatch(/--gateway-cmd "linli start --config \{config\}/);
  });
});

describe("linli sim without a scenario (attach only): devices that could not connect", () => {
  afterEach(() => vi.restoreAllMocks());

  it("fail the run (exit 1, a FAIL line) and are listed by reason, a few named, the rest counted", async () => {
    // Six households, twelve MQTT devices: the gateway refuses seven of them, accepts five.
    const site = scaleSite({ households: 6, seed: 1, host: "127.0.0.1", port: 1 });
    const refused = new Set(site.mqtt.slice(0, 7).map((d) => d.id));
    const broker = await startTestBroker({ authenticate: (u) => !refused.has(u ?? "") });
    const out = captureOutput();
    try {
      const code = await runSim({ gateway: broker.url, seed: 1, scale: 6, duration: 1, progress: false });
      vi.restoreAllMocks();
      expect(code, out.stderr).toBe(1);
      expect(out.stdout).toBe("FAIL 7 device(s) could not connect\n");
      expect(out.stderr).toMatch(/attached to \S+: 5\/12 MQTT devices/);
      expect(out.stderr).toContain(
        "failed: 7 of 12 MQTT devices could not connect (stopped, not retried):\n",
      );
      // One reason, five devices named and two counted: not one line per device.
      const line = out.stderr.split("\n").find((l) => l.startsWith("  7 devices: "));
      expect(line).toMatch(/^ {2}7 devices: .+ \((\S+, ){4}\S+ and 2 more\)$/);
      expect(out.stderr.split("\n").filter((l) => [...refused].some((id) => l.includes(id)))).toHaveLength(1);
      // Every connected device stopped with the run.
      expect(broker.broker.connectedClients).toBe(0);
    } finally {
      await broker.close();
    }
  });

  it("a kiosk that cannot listen on its port fails the run too (exit 1), named with its reason", async () => {
    // The kiosk's port taken by another program: a port the system gave this test on loopback.
    const taken = net.createServer();
    await new Promise<void>((r, j) => {
      taken.once("error", j);
      taken.listen(0, "127.0.0.1", () => r());
    });
    const port = (taken.address() as net.AddressInfo).port;
    const broker = await startTestBroker();
    const out = captureOutput();
    try {
      const code = await runSim({
        gateway: broker.url,
        seed: 1,
        scale: 1,
        kiosks: 1,
        kioskPort: port,
        duration: 1,
        progress: false,
      });
      vi.restoreAllMocks();
      expect(code, out.stderr).toBe(1);
      expect(out.stdout).toBe("FAIL 1 device(s) could not connect\n");
      expect(out.stderr).toMatch(/attached to \S+: 2\/2 MQTT devices in .*, 0 kiosks/);
      expect(out.stderr).toMatch(/^failed: kiosk kiosk-1: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/m);
      expect(out.stderr).toContain(`127.0.0.1:${port}:`);
      expect(broker.broker.connectedClients).toBe(0);
    } finally {
      vi.restoreAllMocks();
      await broker.close();
      await new Promise((r) => taken.close(r));
    }
  });

  it("the list stays short however many reasons: five listed, the others counted", () => {
    const failed = Array.from({ length: 40 }, (_, i) => ({ id: `d-${i}`, error: `reason ${i % 8}` }));
    const text = attachFailures(failed, 50);
    expect(text.split("\n")).toEqual([
      "failed: 40 of 50 MQTT devices could not connect (stopped, not retried):",
      "  5 devices: reason 0 (d-0, d-8, d-16, d-24, d-32)",
      "  5 devices: reason 1 (d-1, d-9, d-17, d-25, d-33)",
      "  5 devices: reason 2 (d-2, d-10, d-18, d-26, d-34)",
      "  5 devices: reason 3 (d-3, d-11, d-19, d-27, d-35)",
      "  5 devices: reason 4 (d-4, d-12, d-20, d-28, d-36)",
      "  15 more devices, for 3 other reasons",
      "",
    ]);
  });
});

describe("linli sim without a scenario: what the simulated devices received", () => {
  afterEach(() => vi.restoreAllMocks());

  it("says the malformed requests the simulated devices received (Modbus TCP headers, bad downlinks)", async () => {
    // A gateway under test that frames its requests wrongly: the integrator sees it in the summary.
    const free = net.createServer();
    await new Promise<void>((r, j) => {
      free.once("error", j);
      free.listen(0, "127.0.0.1", () => r());
    });
    const kioskPort = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const pendant = scaleSite({ households: 1, seed: 1, host: "127.0.0.1", port: 1 }).mqtt.find(
      (d) => d.model === "ec200",
    );
    const downlink = `devices/ec200/${pendant?.id}/down`;
    const broker = await startTestBroker();
    const subscribed = new Promise<void>((r) =>
      broker.broker.on("subscribe", (subs) => {
        if (subs.some((x) => x.topic === downlink)) r();
      }),
    );
    const out = captureOutput();
    try {
      const run = runSim({
        gateway: broker.url,
        seed: 1,
        scale: 1,
        kiosks: 1,
        kioskPort,
        duration: 3,
        progress: false,
      });
      await subscribed;
      await broker.publish(downlink, "not json");
      const socket = await connectWithin(kioskPort, 2_000);
      // Protocol id 1 (not MODBUS), well delimited: discarded. Then a length of 0: frames nothing.
      socket.write(Buffer.from("000100010006010300000001", "hex"));
      await new Promise((r) => setTimeout(r, 100));
      socket.write(Buffer.from("00020000000001", "hex"));
      await new Promise((r) => setTimeout(r, 100));
      socket.destroy();
      const code = await run;
      vi.restoreAllMocks();
      expect(code, out.stderr).toBe(0);
      expect(out.stderr).toContain(
        "malformed requests to the simulator: Modbus TCP 1 foreign protocol id, 1 framing errors; MQTT 1 bad downlinks\n",
      );
    } finally {
      vi.restoreAllMocks();
      await broker.close();
    }
  });
});

describe("linli sim: where the report reads the gateway's counters", () => {
  it("--metrics, else --gateway-cmd's --metrics-port, else the site file's, else 9464 for a gateway on this machine", () => {
    const file = { metrics: { url: "http://10.0.0.5:9500/metrics" } };
    expect(metricsUrl({ metrics: "http://127.0.0.1:27901" }, file, "127.0.0.1")).toEqual({
      url: "http://127.0.0.1:27901/metrics",
    });
    expect(
      metricsUrl({ gatewayCmd: "linli start --config {config} --metrics-port 27902" }, file, "127.0.0.1"),
    ).toEqual({
      url: "http://127.0.0.1:27902/metrics",
    });
    expect(metricsUrl({}, file, "10.0.0.5")).toEqual({ url: "http://10.0.0.5:9500/metrics" });
    expect(
      metricsUrl({}, { metrics: { unreadable: "site.yaml: metrics.enabled is false" } }, "127.0.0.1"),
    ).toEqual({
      url: null,
      why: "site.yaml: metrics.enabled is false",
    });
    expect(metricsUrl({}, {}, "localhost")).toEqual({ url: "http://127.0.0.1:9464/metrics" });
    expect(metricsUrl({}, {}, "10.0.0.5")).toMatchObject({
      url: null,
      why: expect.stringMatching(/its own loopback/),
    });
    expect(() => metricsUrl({ metrics: "9464" }, {}, "127.0.0.1")).toThrow(UsageError);
  });
});
