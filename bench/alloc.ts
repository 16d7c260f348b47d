/**
 * What the gateway's main thread allocates per message, and where (`npm run bench:alloc`).
 *
 * A scavenge comes every few MB allocated, and a P1 that arrives during one waits for it: bytes
 * allocated per message decide how often that happens at a given rate. Unlike a latency, the
 * figure hardly depends on how busy the machine is, so it can be compared between builds on a
 * shared machine (docs/performance.md, "Allocation per message").
 *
 * One process: the gateway (as the bench's child configures it), the bench's load generator on
 * its raw MQTT links and a raw subscriber of every topic. V8's sampling heap profiler (objects
 * later collected by scavenges and full GCs included) runs over a window of steady load; each
 * sample is charged to the gateway unless a frame of the simulator or the bench is on its stack.
 *
 *   node dist/bench/alloc.js [--rate 2000] [--seconds 5] [--device-listener] [--journal] [--top 25]
 *
 * `--journal`: the journal on (sync "batch", a fresh directory in the OS temp dir, removed after);
 * also prints what it did in the window per second: records, writes handed to the libuv pool,
 * writes on the event loop for a P1, fdatasyncs. Each pool write or sync is a submission and a
 * completion on the event loop, counted here because their cost in a CPU profile depends on how
 * busy the machine is.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { LoadGenerator, loadDevices } from "../sim/mqtt/load.js";
import { RawLink } from "../sim/mqtt/raw-link.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface SamplingNode {
  callFrame: CallFrame;
  selfSize: number;
  children: SamplingNode[];
}

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "2000" },
    seconds: { type: "string", default: "5" },
    warmup: { type: "string", default: "3" },
    registered: { type: "string", default: "10000" },
    "alarm-fraction": { type: "string", default: "0.01" },
    "device-listener": { type: "boolean", default: false },
    journal: { type: "boolean", default: false },
    interval: { type: "string", default: "1024" },
    top: { type: "string", default: "25" },
    /** Also print the callers (three frames up) of the sites whose text contains this. */
    callers: { type: "string" },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const SITE = "alloc";
const OPERATOR = { name: "bench-ops", password: "bench-ops-pw" };

function post<T = unknown>(s: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    s.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r as T))),
  );
}

/** The load side: the generator and the subscriber (their frames are under dist/sim or dist/bench). */
const isLoadSide = (url: string) => url.includes("/dist/sim/") || url.includes("/dist/bench/");

function where(url: string): string {
  if (url === "") return "(v8/native)";
  if (url.startsWith("node:")) return "node:internals";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length).split("/")[0] ?? url;
  const d = url.indexOf("/dist/");
  return d >= 0 ? `linli/${url.slice(d + 6).split("/")[0]}` : url;
}

function site(f: CallFrame): string {
  const d = f.url.indexOf("/dist/");
  const nm = f.url.lastIndexOf("node_modules/");
  const file = d >= 0 ? f.url.slice(d + 6) : nm >= 0 ? f.url.slice(nm + 13) : f.url;
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
}

/** Self bytes per gateway-side site and package; load-side bytes summed apart. */
function charge(head: SamplingNode) {
  const bySite = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const callers = new Map<string, number>();
  const stack: string[] = [];
  let gateway = 0;
  let load = 0;
  const walk = (n: SamplingNode, loadSide: boolean) => {
    const ls = loadSide || isLoadSide(n.callFrame.url);
    if (n.selfSize > 0) {
      if (ls) load += n.selfSize;
      else {
        gateway += n.selfSize;
        const s = site(n.callFrame);
        bySite.set(s, (bySite.get(s) ?? 0) + n.selfSize);
        const p = where(n.callFrame.url);
        byPackage.set(p, (byPackage.get(p) ?? 0) + n.selfSize);
        if (values.callers !== undefined && s.includes(values.callers)) {
          const chain = `${s} <- ${stack.slice(-3).reverse().join(" <- ")}`;
          callers.set(chain, (callers.get(chain) ?? 0) + n.selfSize);
        }
      }
    }
    stack.push(site(n.callFrame));
    for (const c of n.children) walk(c, ls);
    stack.pop();
  };
  walk(head, false);
  return { gateway, load, bySite, byPackage, callers };
}

async function main(): Promise<void> {
  const devices = loadDevices({ brokerUrl: "", rate, connections: 100 });
  const fillers = [];
  for (let i = 0; fillers.length + devices.length < Number(values.registered); i++) {
    const model = i % 2 === 0 ? "ec200" : "ds10";
    fillers.push({ id: `idle-${model}-${String(i + 1).padStart(5, "0")}`, model, password: `idle-${i}` });
  }
  const dataDir = values.journal ? mkdtempSync(path.join(tmpdir(), "linli-bench-alloc-")) : null;
  const config = validateConfig(
    {
      site: { id: SITE },
      mqtt: {
        listeners: [{ host: "127.0.0.1", port: 0 }],
        ...(values["device-listener"] ? { deviceListener: { host: "127.0.0.1", port: 0 } } : {}),
      },
      operators: [OPERATOR],
      devices: [...devices, ...fillers].map((d) => ({ id: d.id, model: d.model, password: d.password })),
      log: { level: "error", format: "json" },
      storage: dataDir === null ? { enabled: false } : { dir: dataDir, sync: "batch" },
      metrics: { host: "127.0.0.1", port: 0 },
      limits: { deviceRate: { enabled: false } },
    },
    "<bench:alloc>",
  );
  const gw = await Gateway.start({ config });
  const devicePort = gw.broker.deviceListenerPort ?? gw.mqttPort;
  const sub = await RawLink.connect(`mqtt://127.0.0.1:${gw.mqttPort}`, {
    clientId: `${OPERATOR.name}-subscriber-${process.pid}`,
    username: OPERATOR.name,
    password: OPERATOR.password,
  });
  let received = 0;
  sub.onPublish = () => {
    received++;
  };
  await sub.subscribe(`linli/${SITE}/#`);
  const gen = new LoadGenerator({
    brokerUrl: `mqtt://127.0.0.1:${devicePort}`,
    rate,
    connections: 100,
    alarmFraction: Number(values["alarm-fraction"]),
    raw: true,
  });
  await gen.connect();
  const running = gen.run((Number(values.warmup) + seconds + 1) * 1000, 2000);
  await new Promise((r) => setTimeout(r, Number(values.warmup) * 1000));

  const session = new Session();
  session.connect();
  await post(session, "HeapProfiler.enable");
  const sent0 = gen.report();
  const received0 = received;
  const taken = () => Object.values(gw.stats().counters.messages).reduce((a, b) => a + b, 0);
  const taken0 = taken();
  const consumed = () => {
    const p = gw.stats().pipeline;
    return p.p1.processed + p.alert.processed + p.telemetry.processed;
  };
  const consumed0 = consumed();
  const journal0 = gw.journalStats();
  await post(session, "HeapProfiler.startSampling", {
    samplingInterval: Number(values.interval),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { profile } = await post<{ profile: { head: SamplingNode } }>(session, "HeapProfiler.stopSampling");
  const sent1 = gen.report();
  const receivedIn = received - received0;
  const takenIn = taken() - taken0;
  const consumedIn = consumed() - consumed0;
  const journal1 = gw.journalStats();
  session.disconnect();
  await running;
  await sub.end();
  await gw.stop();
  if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });

  const sent = sent1.sent - sent0.sent;
  const presses = sent1.alarms - sent0.alarms;
  const c = charge(profile.head);
  // Per message the gateway took in (decoded, on its main thread) in the window: on a busy machine
  // the generator runs ahead, and what still waits in the device listener's ring was not.
  const per = (b: number) => (b / Math.max(1, takenIn)).toFixed(0);
  const perSecond = (n: number) => (n / seconds).toFixed(0);
  const out = [
    `bench:alloc: ${rate} msg/s offered, ${seconds} s sampled (every ${values.interval} B), ` +
      `${values["device-listener"] ? "devices on the device listener (a worker: its heap is not in these figures)" : "devices on the main listener"}`,
    `in the window: sent ${sent} messages (${presses} presses), taken in ${takenIn}, consumed by the pipeline ${consumedIn}, ` +
      `publishes received by the subscriber ${receivedIn}` +
      (takenIn < 0.95 * sent || consumedIn < 0.95 * takenIn
        ? " (the gateway fell behind or conflated: a busy machine; compare only windows that kept up)"
        : ""),
    `gateway main thread: ${per(c.gateway)} B allocated per message taken in (${(c.gateway / 1048576).toFixed(1)} MB); ` +
      `load side in this process: ${per(c.load)} B`,
    ...(journal0 !== null && journal1 !== null
      ? [
          `journal (sync batch), per second: ${perSecond(journal1.records - journal0.records)} records, ` +
            `${perSecond(journal1.poolWrites - journal0.poolWrites)} pool writes, ` +
            `${perSecond(journal1.urgentWrites - journal0.urgentWrites)} writes on the event loop (P1), ` +
            `${perSecond(journal1.syncs - journal0.syncs)} fdatasyncs`,
        ]
      : []),
    "",
    "by package, B per message:",
    ...[...c.byPackage].sort((a, b) => b[1] - a[1]).map(([p, b]) => `  ${per(b).padStart(6)}  ${p}`),
    "",
    `top ${values.top} sites, B per message:`,
    ...[...c.bySite]
      .sort((a, b) => b[1] - a[1])
      .slice(0, Number(values.top))
      .map(([s, b]) => `  ${per(b).padStart(6)}  ${s}`),
    ...(values.callers === undefined
      ? []
      : [
          "",
          `callers of sites matching "${values.callers}", B per message:`,
          ...[...c.callers]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 15)
            .map(([s, b]) => `  ${per(b).padStart(6)}  ${s}`),
        ]),
  ];
  process.stdout.write(`${out.join("\n")}\n`);
}

await main();
