/**
 * The gateway's process of bench/connections.ts: the gateway alone, with its 10,000 registered
 * devices, and the memory readings it is asked for. A module of its own, so that the process
 * loads what a gateway loads and nothing of the bench's load side (mqtt.js, hdr-histogram-js and
 * its Intl formatter, the simulator's codec): 4.5-5 MB of RSS that no gateway has
 * (docs/performance.md, "Memory, sixth pass").
 *
 * LINLI_BENCH_SMAPS=DIR: /proc/self/smaps at each reading, as DIR/smaps-N.txt (where the RSS is,
 * by mapping: V8's pages, malloc, the node binary, shared libraries).
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { applyEdgeHeapSettings } from "../gateway/heap.js";

export interface Memory {
  rssMb: number;
  heapUsedMb: number;
  /** V8 heap committed (used + free pages kept). */
  heapTotalMb: number;
  /** Per V8 space: committed / used MB. */
  spaces: Record<string, { committedMb: number; usedMb: number }>;
  externalMb: number;
  arrayBuffersMb: number;
  /** Connected aedes clients and open sockets the gateway holds. */
  clients: number;
  /** The device listener's worker (when used): its V8 heap, MB. */
  workerHeapUsedMb?: number;
  workerHeapTotalMb?: number;
}

export type ToChild =
  | { cmd: "start"; registered: number; storageDir: string | null; deviceListener: boolean }
  | { cmd: "sample"; snapshot?: string }
  | { cmd: "stop" };
export type FromChild = { ev: "ready"; port: number; opsPort: number } | ({ ev: "sample" } & Memory);

export const SITE = "conn";
export const OPERATOR = { name: "conn-operator", password: "conn-operator-pass" };
export const deviceId = (i: number) => `pendant-${String(i).padStart(5, "0")}`;
export const password = (i: number) => `pw-${i}-secret`;

async function child(): Promise<void> {
  applyEdgeHeapSettings();
  let gw: Gateway | null = null;
  let samples = 0;
  const send = (m: FromChild) => process.send?.(m);
  const memory = (): Memory => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    const aedes = gw?.broker.aedes as unknown as { clients: object } | undefined;
    const clients = Object.keys(aedes?.clients ?? {}).length + (gw?.broker.deviceListenerConnections ?? 0);
    return {
      rssMb: m.rss / 1048576,
      heapUsedMb: m.heapUsed / 1048576,
      heapTotalMb: m.heapTotal / 1048576,
      spaces: Object.fromEntries(
        v8
          .getHeapSpaceStatistics()
          .map((sp) => [
            sp.space_name,
            { committedMb: sp.physical_space_size / 1048576, usedMb: sp.space_used_size / 1048576 },
          ]),
      ),
      externalMb: m.external / 1048576,
      arrayBuffersMb: m.arrayBuffers / 1048576,
      clients,
    };
  };
  process.on("disconnect", () => process.exit(0));
  process.on("message", async (m: ToChild) => {
    if (m.cmd === "start") {
      const config = validateConfig(
        {
          site: { id: SITE },
          mqtt: {
            listeners: [{ host: "127.0.0.1", port: 0 }],
            ...(m.deviceListener ? { deviceListener: { host: "127.0.0.1", port: 0 } } : {}),
          },
          devices: Array.from({ length: m.registered }, (_, i) => ({
            id: deviceId(i),
            model: "ec200",
            password: password(i),
          })),
          // The realistic load's console (bench/connected-load.ts).
          operators: [OPERATOR],
          log: { level: "error", format: "json" },
          // The bench's default is the journal off (as in the first measurements); --storage turns it
          // on in a temporary directory, the site's default.
          storage: m.storageDir === null ? { enabled: false } : { enabled: true, dir: m.storageDir },
          metrics: { host: "127.0.0.1", port: 0 },
          // Every device of this bench connects from 127.0.0.1; on a site each has its own address.
          // The per-address login rate (20/s, burst 200) would close most of them at once.
          limits: { login: { attemptsPerSecond: 1_000_000, attemptBurst: 1_000_000 } },
        },
        "<bench:connections>",
      );
      gw = await Gateway.start({ config });
      send({ ev: "ready", port: gw.broker.deviceListenerPort ?? gw.mqttPort, opsPort: gw.mqttPort });
    } else if (m.cmd === "sample") {
      // Let closed sockets and timers settle before reading.
      await new Promise((r) => setTimeout(r, 500));
      const mem = memory();
      const worker = await gw?.broker.deviceListenerStats(
        m.snapshot?.replace(/\.heapsnapshot$/, ".worker.heapsnapshot"),
      );
      if (worker) {
        mem.workerHeapUsedMb = worker.heapUsed / 1048576;
        mem.workerHeapTotalMb = worker.heapTotal / 1048576;
      }
      if (m.snapshot) v8.writeHeapSnapshot(m.snapshot);
      // LINLI_BENCH_SMAPS=DIR: the process's memory map at each sample (where the RSS is, by mapping).
      const smapsDir = process.env.LINLI_BENCH_SMAPS;
      if (smapsDir)
        writeFileSync(path.join(smapsDir, `smaps-${samples++}.txt`), readFileSync("/proc/self/smaps"));
      send({ ev: "sample", ...mem });
    } else if (m.cmd === "stop") {
      await gw?.stop();
      process.exit(0);
    }
  });
}

// Run as the forked process only; bench/connections.ts imports the shared names above.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  await child();
