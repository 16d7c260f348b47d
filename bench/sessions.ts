/**
 * What durable operator sessions cost (docs/durability.md): QoS 1 alerts
 * published by the embedded broker to one online operator console, with and
 * without its session kept in a store. Closed loop (at most WINDOW messages
 * published and not yet received), so the figure is the sustained rate.
 *
 *   npm run build && node dist/bench/sessions.js [--messages N] [--rounds R] [--journal DIR]
 *
 * Stores: none (sessions in memory), and "journal" (gateway/journal/journal.ts in a temp dir; its
 * puts are write-through, one write(2) each; nobody calls commit() here, so no fdatasync:
 * in the gateway the queue's records ride in the pipeline's group commits).
 *
 * Measured 2026-12-02, 2 cores shared with other jobs (load average 14): the rate swings with the
 * neighbours, CPU time per message much less. 9 rounds, medians, ratios to the first line of the
 * same round.
 *   Run 1 (aedes' own memory persistence as the baseline, before sessions.ts served every broker):
 *     aedes memory persistence, clean console           9992 msg/s  1.00   27.2 us CPU/msg  1.00
 *     sessions.ts without store, clean console          9462        0.96   28.1             1.03
 *     sessions.ts without store, persistent console     7259        0.81   32.3             1.15
 *     journal store, persistent console                 8581        0.81   31.9             1.21
 *     journal store, write-through (writeAfterMs 0)     5508        0.50   49.1             1.76
 *   Run 2 (this script as it is):
 *     no store, clean console                           2754        1.00   31.4             1.00
 *     no store, persistent console                      2899        0.88   32.8             1.04
 *     journal store, persistent console                 2921        0.94   31.2             0.99
 *     journal store, write-through, persistent console  1633        0.56   47.8             1.53
 * With writeAfterMs (default 500 ms) a console that acknowledges at once costs the journal
 * nothing; writing every delivery through (two write(2) per message) costs 1.5-1.8x the CPU.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import mqtt from "mqtt";
import { AccessPolicy } from "../gateway/broker/access.js";
import { EmbeddedBroker } from "../gateway/broker/embedded.js";
import { validateConfig } from "../gateway/config/load.js";
import { Journal } from "../gateway/journal/journal.js";
import { createLogger, RateLimitedLog } from "../gateway/log.js";
import { Registry } from "../gateway/registry.js";
import { Counters } from "../gateway/stats.js";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
  },
  strict: true,
});
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const WINDOW = Number(process.env.WINDOW ?? 100);

const config = validateConfig({
  site: { id: "s1" },
  operators: [{ name: "ops", password: "secret" }],
  devices: [],
});

type Variant =
  | "no store, clean console"
  | "no store, persistent console"
  | "journal store, persistent console"
  | "journal store, write-through, persistent console";

interface Run {
  rate: number;
  /** CPU time of this process (broker and console) per message: steadier than the rate on a shared machine. */
  cpuUs: number;
}

async function once(variant: Variant, dir: string): Promise<Run> {
  const log = createLogger({ level: "silent" });
  const store = variant.startsWith("journal store")
    ? Journal.open({ dir: mkdtempSync(path.join(dir, "journal-")) })
    : undefined;
  const broker = await EmbeddedBroker.start({
    listeners: [{ host: "127.0.0.1", port: 0 }],
    maxConnections: 10,
    policy: new AccessPolicy("s1", new Registry(config, { onLost: () => {}, onWelfareDue: () => {} })),
    handlers: { uplink: (_d, _p, _c, done) => done(null), operator: () => {} },
    counters: new Counters(),
    log,
    rateLog: new RateLimitedLog(log),
    urgentTopicPrefixes: ["linli/s1/alerts/p1/"],
    sessions: { store, writeAfterMs: variant.includes("write-through") ? 0 : 500 },
  });
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.addresses()[0]?.port}`, {
    username: "ops",
    password: "secret",
    clientId: "ops-console",
    clean: !variant.endsWith("persistent console"),
    reconnectPeriod: 0,
  });
  await client.subscribeAsync("linli/s1/alerts/#", { qos: 1 });
  let received = 0;
  let wake: (() => void) | null = null;
  client.on("message", () => {
    received++;
    if (wake && received % 100 === 0) {
      const w = wake;
      wake = null;
      w();
    }
  });
  const payload = JSON.stringify({
    id: "a".repeat(26),
    type: "EMERGENCY_CALL",
    state: "raised",
    ts: Date.now(),
  });
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let sent = 0;
  while (sent < MESSAGES) {
    while (sent < MESSAGES && sent - received < WINDOW) {
      broker.publish(
        `linli/s1/alerts/p${(sent % 2) + 1}/EMERGENCY_CALL/dev-${sent % 1000}`,
        payload,
        1,
        false,
      );
      sent++;
    }
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 50);
    });
  }
  while (received < MESSAGES) await new Promise((r) => setTimeout(r, 5));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const stats = broker.sessionStats();
  await client.endAsync();
  await broker.close();
  if (store instanceof Journal) store.close();
  if (stats && stats.dropped > 0) console.error(`  (${variant}: ${stats.dropped} not kept, queue full)`);
  return { rate: MESSAGES / secs, cpuUs: (cpu.user + cpu.system) / MESSAGES };
}

const dir = mkdtempSync(path.join(os.tmpdir(), "linli-sessions-bench-"));
try {
  const only = process.env.ONLY;
  const variants: Variant[] = (
    [
      "no store, clean console",
      "no store, persistent console",
      "journal store, persistent console",
      "journal store, write-through, persistent console",
    ] as Variant[]
  ).filter((v) => only === undefined || v === only || v === "no store, clean console");
  const runs = new Map<Variant, Run[]>(variants.map((v) => [v, []]));
  await once(variants[0] as Variant, dir); // warm-up
  for (let r = 0; r < ROUNDS; r++) for (const v of variants) runs.get(v)?.push(await once(v, dir));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = runs.get(variants[0] as Variant) as Run[];
  // The machine is shared: each variant is compared with the baseline of its own round.
  console.log(
    `${MESSAGES} QoS 1 alerts to one online console, ${ROUNDS} rounds (window ${WINDOW}), medians:`,
  );
  console.log(`  ${"variant".padEnd(50)}   msg/s  rate ratio  CPU us/msg  CPU ratio`);
  for (const v of variants) {
    const xs = runs.get(v) as Run[];
    const rate = median(xs.map((x) => x.rate));
    const rateRatio = median(xs.map((x, i) => x.rate / (base[i] as Run).rate));
    const cpu = median(xs.map((x) => x.cpuUs));
    const cpuRatio = median(xs.map((x, i) => x.cpuUs / (base[i] as Run).cpuUs));
    console.log(
      `  ${v.padEnd(50)} ${Math.round(rate).toString().padStart(7)}  ${rateRatio.toFixed(2).padStart(10)}  ${cpu.toFixed(1).padStart(10)}  ${cpuRatio.toFixed(2).padStart(9)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
