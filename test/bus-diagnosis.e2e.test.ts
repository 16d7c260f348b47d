/**
 * Bus problems say what failed, where and the likely cause in the log
 * (bus diagnosis): a wrong unit id, a kiosk that refuses connections, a serial
 * device that does not exist. Before, only DEVICE_LOST and counters told.
 */
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { defaultModbusLinks } from "../gateway/southbound/modbus.js";
import { MemoryLine } from "../protocols/links/index.js";
import { Mfs8Panel } from "../sim/modbus/mfs8.js";
import { RtuSlaveServer } from "../sim/modbus/rtu-server.js";
import { SITE, sleep } from "./support/harness.js";

/** A port nothing listens on: bound once by us, then released. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function sink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

async function waitForLine(lines: Array<Record<string, unknown>>, re: RegExp, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    const hit = lines.find((l) => re.test(String(l.msg)));
    if (hit) return hit;
    if (Date.now() > until)
      throw new Error(`no log line matching ${re}; got:\n${lines.map((l) => l.msg).join("\n")}`);
    await sleep(25);
  }
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

describe("the log names bus problems with their place and likely cause", () => {
  it("wrong unit id, refused TCP connection, missing serial device", async () => {
    const line = new MemoryLine("rs485-1");
    const rtu = new RtuSlaveServer(line.b).add(new Mfs8Panel({ unit: 1 }));
    await rtu.start();
    stops.push(() => rtu.stop());
    const kioskPort = await deadPort();
    const missingTty = join(tmpdir(), `linli-no-such-tty-${process.pid}`);
    const out = sink();
    const config = validateConfig(
      {
        site: { id: SITE },
        mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
        buses: [
          {
            id: "rs485-1",
            type: "rtu",
            path: "/dev/null-memory",
            baudRate: 115200,
            turnaround: "5ms",
            timeout: "100ms",
          },
          { id: "rs485-2", type: "rtu", path: missingTty },
        ],
        devices: [
          // The panel answers as unit 1; the installer typed 7.
          { id: "fire-x", model: "mfs8", bus: "rs485-1", unit: 7, pollInterval: "200ms" },
          { id: "fire-y", model: "mfs8", bus: "rs485-2", unit: 1, pollInterval: "1s" },
          { id: "kiosk-z", model: "gk3", host: "127.0.0.1", port: kioskPort, pollInterval: "1s" },
        ],
        metrics: { enabled: false },
        storage: { enabled: false },
      },
      "test",
    );
    const gw = await Gateway.start({
      config,
      logger: createLogger({ level: "info", format: "json", destination: out.stream }),
      modbusLinks: (spec) =>
        spec.kind === "serial" && spec.settings.path === "/dev/null-memory"
          ? line.a
          : defaultModbusLinks(spec),
    });
    stops.push(() => gw.stop());

    const unit = await waitForLine(out.lines, /no reply from unit 7/);
    expect(unit).toMatchObject({
      level: 40,
      deviceId: "fire-x",
      bus: "rs485-1",
      unit: 7,
      failure: "timeout",
    });
    expect(unit.msg).toBe(
      "no reply from unit 7 on bus rs485-1 (/dev/null-memory): wrong unit id or wiring, or line settings (115200 baud, even parity, 1 stop bit) not the device's?",
    );

    const refused = await waitForLine(out.lines, /cannot connect to 127\.0\.0\.1/);
    expect(refused).toMatchObject({ level: 40, code: "ECONNREFUSED", host: "127.0.0.1", port: kioskPort });
    expect(refused.msg).toMatch(/ECONNREFUSED: controller not listening/);

    const tty = await waitForLine(out.lines, /cannot open serial device/);
    expect(tty).toMatchObject({ level: 40, bus: "rs485-2", path: missingTty, code: "ENOENT" });
    expect(tty.msg).toBe(
      `cannot open serial device ${missingTty} (bus rs485-2): ENOENT: no such serial device (adapter unplugged, or wrong path?); retrying`,
    );

    // Rate-limited: the backoff retries and the polls every 200 ms do not repeat the lines within a minute.
    await sleep(1_000);
    expect(out.lines.filter((l) => /no reply from unit 7/.test(String(l.msg)))).toHaveLength(1);
    expect(out.lines.filter((l) => /cannot connect to/.test(String(l.msg)))).toHaveLength(1);
    expect(out.lines.filter((l) => /cannot open serial device/.test(String(l.msg)))).toHaveLength(1);
  });
});
