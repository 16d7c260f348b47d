/**
 * Child process for the kiosk benchmark: the whole gateway with N GK-3
 * kiosks on Modbus TCP, polled once a second. Commands on stdin:
 *   mark    start the measurement window (CPU, poll statistics afresh)
 *   report  print one JSON line with the window's figures
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";

const ports = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as number[];
const config = validateConfig(
  {
    site: { id: "bench" },
    mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
    metrics: { enabled: false },
    // The bus benchmark measures polling; the journal is measured by the pipeline suite.
    storage: { enabled: false },
    devices: ports.map((port, i) => ({
      id: `kiosk-${i + 1}`,
      model: "gk3",
      host: "127.0.0.1",
      port,
      pollInterval: "1s",
    })),
    log: { level: "silent" },
  },
  "bench",
);
const gw = await Gateway.start({ config, logger: createLogger({ level: "silent" }) });
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
let cpu = process.cpuUsage();
let t0 = performance.now();
process.stdout.write("ready\n");

function percentile(sorted: number[], p: number): number {
  return sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number) : 0;
}

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "mark") {
    gw.modbus.resetStats();
    loop.reset();
    cpu = process.cpuUsage();
    t0 = performance.now();
    process.stdout.write("marked\n");
  } else if (line === "report") {
    const elapsedMs = performance.now() - t0;
    const used = process.cpuUsage(cpu);
    const late = gw.modbus.latenessSamples().sort((a, b) => a - b);
    const buses = gw.stats().buses;
    const ok = buses.reduce((a, b) => a + b.poller.ok, 0);
    const failed = buses.reduce((a, b) => a + b.poller.failed, 0);
    const online = gw.stats().devices.online;
    process.stdout.write(
      `${JSON.stringify({
        kiosks: ports.length,
        online,
        seconds: elapsedMs / 1000,
        pollsOk: ok,
        pollsFailed: failed,
        achievedPollsPerSec: ok / (elapsedMs / 1000),
        latenessMs: {
          p50: percentile(late, 0.5),
          p99: percentile(late, 0.99),
          max: late.at(-1) ?? 0,
          samples: late.length,
        },
        eventLoopDelayMs: {
          p50: loop.percentile(50) / 1e6,
          p99: loop.percentile(99) / 1e6,
          max: loop.max / 1e6,
        },
        cpuPctOfOneCore: ((used.user + used.system) / 1000 / elapsedMs) * 100,
        rssMb: process.memoryUsage().rss / 1048576,
      })}\n`,
    );
  } else if (line === "stop") {
    void gw.stop().then(() => process.exit(0));
  }
});
