/**
 * The soak: does the gateway's memory, open files or journal keep growing over hours at a site's
 * rate? (docs/performance.md "Soak: hours at a site's rate").
 *
 *   npm run bench:soak -- [--households 2000] [--minutes 150] [--every 10] [--presses-per-second 1]
 *                         [--door-openings-per-day 6] [--port N] [--metrics-port N] [--seed 1]
 *                         [--segment-size SIZE] [--compact-after SIZE] [--json FILE] [--gateway-log FILE]
 *
 * A real gateway child as `npm start` runs it (`linli start` with its Node flags and malloc
 * setting), the journal on in a fresh temporary directory with the shipped storage settings, on a
 * generated site of N households (an EC-200 and a DS-10 each, every device on its own MQTT
 * connection: the simulator's `--scale` site). The devices send their datasheets' heartbeats
 * (EC-200 every 300 s, DS-10 every 3600 s), doors open and close, and pendants press at a steady
 * rate, each press a different pendant; an operator connection acknowledges every EMERGENCY_CALL,
 * which closes when its call window ends. `--segment-size` and `--compact-after` (the config's
 * `storage.segmentSize` and `storage.compactAfter`, e.g. "1MiB") make the journal roll and compact
 * sooner than the shipped 8 and 32 MiB, so that a run of hours goes through several compactions
 * (at a site's rate the first comes after about four hours). Every `--every` seconds the gateway
 * is sampled from outside (bench/soak-sample.ts); the figures and verdicts are bench/soak-stats.ts's.
 *
 * Exit: 0 every verdict passes, 1 one fails (or the gateway died), 2 a bad option, 130 interrupted
 * (what was measured is still printed; the gateway and the temporary directory are removed).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseDocument } from "yaml";
import { ConfigError, loadConfigFile } from "../gateway/config/load.js";
import { STARTUP_ENV, STARTUP_NODE_FLAGS } from "../gateway/heap.js";
import { fdShortfall } from "../sim/fd-limit.js";
import { Fleet } from "../sim/fleet.js";
import { GatewayProcess } from "../sim/gateway-process.js";
import { DS10_HEARTBEAT_MS, type Ds10 } from "../sim/mqtt/ds10.js";
import { EC200_HEARTBEAT_MS, type Ec200 } from "../sim/mqtt/ec200.js";
import { createDeviceClient, endClient } from "../sim/mqtt/link.js";
import { scaleSite, siteConfigYaml } from "../sim/site.js";
import { type SoakSample, sampleGateway } from "./soak-sample.js";
import {
  type AlertCounts,
  afterWarmup,
  alertFailure,
  countAlerts,
  type Figure,
  judgeSeries,
  type LatencySpan,
  latencyBySpan,
  type PressRecord,
  slopePerHour,
  TROUGH_WINDOW_S,
  troughs,
  WARMUP_FRACTION,
  warmupSeconds,
} from "./soak-stats.js";

/** RSS growth a box with little memory can carry for months: 5 MB/h is 3.6 GB in a month. */
const RSS_MAX_SLOPE_MB_H = 5;
/** Open files must not grow: one leaked socket or segment an hour is a limit reached in months. */
const FDS_MAX_SLOPE_H = 1;
/** After a press's call window, its close may take this long to be seen (a busy machine). */
const CLOSE_GRACE_MS = 15_000;
/** A door stays open this long: well under the site's hold-open time (60 s), so it raises nothing. */
const DOOR_OPEN_MS = 5_000;
/** After the load, the last presses' alerts and acknowledgements are waited for up to this long. */
const DRAIN_MS = 10_000;
const MiB = 1024 * 1024;

/**
 * The load's first round, seconds: every pendant has pressed once (each press a different pendant)
 * and every device has sent its first heartbeat (phases spread over the period: a door sensor's
 * first may come an hour in). A device's first message and first alert make state that lives as
 * long as the device (its rate budget, its rule and alert slots): in a 14-minute run at 20 presses a
 * second (2026-12-07) the live heap grew by 1,013 rate budgets, one per device heard from for the
 * first time, and by little else.
 */
function firstRoundS(households: number, pressesPerSecond: number): number {
  return Math.max(households / pressesPerSecond, DS10_HEARTBEAT_MS / 1000, EC200_HEARTBEAT_MS / 1000);
}

class UsageError extends Error {}

interface SoakOptions {
  households: number;
  minutes: number;
  everyS: number;
  pressesPerSecond: number;
  doorOpeningsPerDay: number;
  port: number;
  metricsPort: number;
  seed: number;
  /** The config's storage.segmentSize and storage.compactAfter, as written there ("1MiB"); the shipped ones if absent. */
  segmentSize?: string;
  compactAfter?: string;
  json?: string;
  gatewayLog?: string;
}

function parseOptions(argv: string[]): SoakOptions {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        households: { type: "string", default: "2000" },
        minutes: { type: "string", default: "150" },
        every: { type: "string", default: "10" },
        "presses-per-second": { type: "string", default: "1" },
        "door-openings-per-day": { type: "string", default: "6" },
        port: { type: "string", default: "0" },
        "metrics-port": { type: "string", default: "0" },
        seed: { type: "string", default: "1" },
        "segment-size": { type: "string" },
        "compact-after": { type: "string" },
        json: { type: "string" },
        "gateway-log": { type: "string" },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const num = (name: string, min: number, integer = false): number => {
    const raw = values[name] as string;
    const v = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v)))
      throw new UsageError(`--${name} ${raw}: expected ${integer ? "an integer" : "a number"} >= ${min}`);
    return v;
  };
  const o: SoakOptions = {
    households: num("households", 1, true),
    minutes: num("minutes", 0.1),
    everyS: num("every", 1),
    pressesPerSecond: num("presses-per-second", 0.001),
    doorOpeningsPerDay: num("door-openings-per-day", 0),
    port: num("port", 0, true),
    metricsPort: num("metrics-port", 0, true),
    seed: num("seed", 0, true),
    ...(values["segment-size"] === undefined ? {} : { segmentSize: values["segment-size"] }),
    ...(values["compact-after"] === undefined ? {} : { compactAfter: values["compact-after"] }),
    ...(values.json === undefined ? {} : { json: values.json }),
    ...(values["gateway-log"] === undefined ? {} : { gatewayLog: values["gateway-log"] }),
  };
  if (o.port > 65_535 || o.metricsPort > 65_535)
    throw new UsageError("--port, --metrics-port: at most 65535");
  // Under five samples after the warm-up, a slope says nothing.
  const warmupS = warmupSeconds(o.minutes * 60, firstRoundS(o.households, o.pressesPerSecond));
  if (o.minutes * 60 - warmupS < 5 * o.everyS)
    throw new UsageError(
      `--every ${o.everyS} leaves fewer than 5 samples after the warm-up of a ${o.minutes}-minute run ` +
        `(${(warmupS / 60).toFixed(1)} min: ${WARMUP_FRACTION * 100} % of the run, or the load's first round if ` +
        "longer: --households / --presses-per-second seconds, and an hour for every door sensor's first heartbeat)",
    );
  return o;
}

/** The site file with the run's storage sizes, if it sets any (the shipped defaults otherwise). */
function withStorage(yaml: string, o: SoakOptions): string {
  if (o.segmentSize === undefined && o.compactAfter === undefined) return yaml;
  const doc = parseDocument(yaml);
  if (o.segmentSize !== undefined) doc.setIn(["storage", "segmentSize"], o.segmentSize);
  if (o.compactAfter !== undefined) doc.setIn(["storage", "compactAfter"], o.compactAfter);
  return doc.toString();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const sh = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const f1 = (n: number | null): string => (n === null ? "-" : n.toFixed(1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SoakReport {
  options: SoakOptions;
  startedAt: string;
  durationS: number;
  /** Seconds left out of the slopes (soak-stats.ts warmupSeconds). */
  warmupS: number;
  interrupted: boolean;
  gatewayDied: string | null;
  storage: { quotaBytes: number; compactAfterBytes: number; segmentSizeBytes: number };
  samples: SoakSample[];
  figures: Figure[];
  informational: Array<{
    name: string;
    unit: string;
    afterWarmup: number | null;
    end: number | null;
    slopePerHour: number | null;
  }>;
  alerts: AlertCounts & { failure: string | null };
  /** The operator's wait per span of the run (soak-stats.ts latencyBySpan). */
  latency: LatencySpan[];
  doorOpenings: number;
  pass: boolean;
}

const USAGE = `usage: npm run bench:soak -- [options]

  --households N              generated households, an EC-200 and a DS-10 each (default 2000)
  --minutes M                 minutes of load (default 150). Memory is judged on the troughs of
                              4 spans of 15 min or more after the warm-up (the first 20 %, or the
                              load's first round if longer: households / presses a second, and
                              an hour for every door sensor's first heartbeat): 2 hours at least
  --every S                   seconds between samples (default 10)
  --presses-per-second R      pendant presses a second, each acknowledged (default 1)
  --door-openings-per-day N   door openings a household a day (default 6)
  --port N, --metrics-port N  the gateway's MQTT and /metrics ports (default: free ones)
  --seed N                    the site's and the load's seed (default 1)
  --json FILE                 every sample, figure and count as JSON
  --gateway-log FILE          the gateway's output

Exit: 0 every verdict passes, 1 one fails, 2 a bad option, 130 interrupted.
docs/performance.md "Soak: hours at a site's rate".`;

async function main(): Promise<number> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let o: SoakOptions;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`bench:soak: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const windowS = 60; // scaleSite's emergencyCallWindow, checked below
  const pendantsNeeded = Math.ceil(o.pressesPerSecond * (windowS + CLOSE_GRACE_MS / 1000));
  if (o.households < pendantsNeeded) {
    console.error(
      `bench:soak: ${o.pressesPerSecond} presses a second need at least ${pendantsNeeded} households: ` +
        "a pendant pressed again within its call window is the same call, not a new alert",
    );
    return 2;
  }
  const short = fdShortfall(2 * o.households + 1, 0, `--households ${o.households}`);
  if (short) {
    console.error(`bench:soak: ${short}`);
    return 2;
  }

  const port = o.port || (await freePort());
  const metricsPort = o.metricsPort || (await freePort());
  const tmp = mkdtempSync(path.join(tmpdir(), "linli-soak-"));
  // A backstop for an exit that skips the finally below (a second Ctrl-C): rmSync is synchronous,
  // and retried while a gateway SIGKILLed by the exit hook before it may still add a file.
  const removeTmp = () => rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  process.once("exit", removeTmp);
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130); // a second Ctrl-C: the exit hooks still stop the group
    interrupted = true;
    console.error("bench:soak: interrupted, stopping (Ctrl-C again to exit at once)");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const site = scaleSite({ households: o.households, seed: o.seed, host: "127.0.0.1", port, siteId: "soak" });
  if (site.emergencyCallWindowS !== windowS)
    throw new Error(`the generated site's call window is ${site.emergencyCallWindowS} s, not ${windowS}`);
  const configFile = path.join(tmp, "site.yaml");
  writeFileSync(configFile, withStorage(siteConfigYaml(site, "127.0.0.1", port), o));
  // The gateway's own reading of the file: the storage settings it runs with (a bad size is refused
  // here, naming the file and the field, before anything starts).
  const storage = loadConfigFile(configFile).storage;
  const dataDir = path.join(tmp, "data");
  const linli = fileURLToPath(new URL("../cli/linli.js", import.meta.url));
  const env = Object.entries(STARTUP_ENV).map(([k, v]) => `${k}=${v}`);
  const gateway = new GatewayProcess({
    // exec: the group's leader is the gateway itself, the process sampled.
    command: [
      "exec env",
      ...env,
      sh(process.execPath),
      ...STARTUP_NODE_FLAGS,
      sh(linli),
      "start --config",
      sh(configFile),
      "--data-dir",
      sh(dataDir),
      "--metrics-port",
      String(metricsPort),
    ].join(" "),
    host: "127.0.0.1",
    port,
    ...(o.gatewayLog ? { logFile: o.gatewayLog } : {}),
  });
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const fleet = new Fleet({ site, brokerUrl: `mqtt://127.0.0.1:${port}`, seed: o.seed });
  const operator = createDeviceClient(`mqtt://127.0.0.1:${port}`, {
    clientId: `${site.operator.name}-soak-${process.pid}`,
    username: site.operator.name,
    password: site.operator.password,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
    manualConnect: true,
  });
  const timers = new Set<NodeJS.Timeout>();
  // mqtt.js cannot end a client that never connected (it has no stream yet).
  let operatorStarted = false;
  try {
    console.log(
      `soak: ${o.households} households (${site.mqtt.length} MQTT connections), ${o.minutes} min, a sample every ` +
        `${o.everyS} s; ${o.pressesPerSecond} press/s, ${o.doorOpeningsPerDay} door openings a household a day; ` +
        `journal in ${dataDir} (quota ${storage.quota / MiB} MiB, segments of ${storage.segmentSize / MiB} MiB, ` +
        `compaction after ${storage.compactAfter / MiB} MiB written)`,
    );
    await gateway.start();
    // After the gateway's own exit hook (it SIGKILLs the group): the directory goes once it is unused.
    process.off("exit", removeTmp);
    process.once("exit", removeTmp);
    const pid = gateway.pid as number;
    const attachStart = performance.now();
    const attached = await fleet.attach(undefined, () => interrupted);
    if (interrupted) return 130;
    if (attached.failed.length > 0 || attached.notAttempted > 0)
      throw new Error(
        `${attached.failed.length} device(s) could not connect (${attached.failed[0]?.error ?? "interrupted"})`,
      );
    console.log(
      `gateway pid ${pid} on 127.0.0.1:${port} (metrics :${metricsPort}); ${attached.connected} devices attached in ` +
        `${((performance.now() - attachStart) / 1000).toFixed(1)} s`,
    );

    // The operator: every transition on the audit topic; acknowledges the presses' calls.
    const records: PressRecord[] = [];
    const awaitingRaise = new Map<string, PressRecord>();
    const byAlert = new Map<string, PressRecord>();
    operator.on("message", (_topic, payload) => {
      let ev: {
        alertId?: string;
        code?: string;
        deviceId?: string;
        transition?: string;
        state?: string;
        to?: string;
      };
      try {
        ev = JSON.parse(payload.toString("utf8"));
      } catch {
        return;
      }
      if (!ev.alertId) return;
      const now = Date.now();
      if (ev.transition === "raised" && ev.code === "EMERGENCY_CALL" && ev.deviceId) {
        const r = awaitingRaise.get(ev.deviceId);
        if (!r) return;
        awaitingRaise.delete(ev.deviceId);
        r.raisedAt = now;
        byAlert.set(ev.alertId, r);
        operator.publish(`linli/${site.siteId}/ack/${ev.alertId}`, JSON.stringify({ by: "soak" }), {
          qos: 1,
        });
        return;
      }
      const r = byAlert.get(ev.alertId);
      if (!r) return;
      if (ev.transition === "acknowledged") r.acknowledgedAt ??= now;
      if (ev.state === "closed" || ev.to === "closed") {
        r.closedAt ??= now;
        byAlert.delete(ev.alertId);
      }
    });
    await new Promise<void>((resolve, reject) => {
      operator.once("connect", () => resolve());
      operator.once("error", reject);
      operatorStarted = true;
      operator.connect();
    });
    const eventsTopic = `linli/${site.siteId}/alerts/events`;
    const granted = await operator.subscribeAsync(eventsTopic, { qos: 1 });
    if (granted[0]?.qos === 128) throw new Error(`subscription to ${eventsTopic} refused`);

    const pendants = fleet.ofModel<Ec200>("ec200").map((d) => d.device);
    const doors = fleet.ofModel<Ds10>("ds10").map((d) => d.device);
    // Each press a different pendant, each opening a different door: a stride prime to the count.
    const strideFor = (n: number) => (n % 7_919 === 0 ? 1 : 7_919);
    const durationS = o.minutes * 60;
    const doorRate = (o.doorOpeningsPerDay * doors.length) / 86_400;
    const samples: SoakSample[] = [];
    let gatewayDied: string | null = null;
    let presses = 0;
    let doorOpenings = 0;
    const t0 = performance.now();
    const startedAtMs = Date.now();
    const startedAt = new Date(startedAtMs).toISOString();
    const elapsedS = () => (performance.now() - t0) / 1000;
    const running = () => !interrupted && gatewayDied === null && elapsedS() < durationS;

    const header =
      "   min  RSS MB  heap MB    fds  journal MB  files  open alerts  presses  raised  acked  closed";
    console.log(header);
    let nextRowMin = 0;
    const sampler = (async () => {
      for (let k = 0; ; k++) {
        // The last sample at the end of the load, whatever --every.
        const dueS = Math.min(k * o.everyS, durationS);
        while (running() && elapsedS() < dueS) await sleep(Math.min(200, (dueS - elapsedS()) * 1000));
        if (!running() && dueS < durationS) break;
        let s: SoakSample;
        try {
          s = await sampleGateway(pid, dataDir, metricsUrl, Math.min(elapsedS(), durationS));
        } catch (err) {
          gatewayDied = `the gateway (pid ${pid}) could not be sampled: ${err instanceof Error ? err.message : String(err)}`;
          break;
        }
        samples.push(s);
        if (s.tS >= nextRowMin * 60 || dueS >= durationS) {
          const c = countAlerts(records, Date.now(), windowS * 1000, CLOSE_GRACE_MS);
          console.log(
            `${(s.tS / 60).toFixed(1).padStart(6)}  ${f1(s.rssMb).padStart(6)}  ${f1(s.heapUsedMb).padStart(7)}  ` +
              `${String(s.fds).padStart(5)}  ${f1(s.journalBytes / MiB).padStart(10)}  ${String(s.journalFiles).padStart(5)}  ` +
              `${String(s.openAlerts ?? "-").padStart(11)}  ${String(c.presses).padStart(7)}  ${String(c.raised).padStart(6)}  ` +
              `${String(c.acknowledged).padStart(5)}  ${String(c.cleared).padStart(6)}` +
              `${s.metricsError ? `  (/metrics: ${s.metricsError})` : ""}`,
          );
          nextRowMin = Math.floor(s.tS / 60) + 1;
        }
        if (dueS >= durationS) break;
      }
    })();

    const pressStride = strideFor(pendants.length);
    const doorStride = strideFor(doors.length);
    while (running()) {
      const t = elapsedS();
      for (const due = Math.floor(t * o.pressesPerSecond); presses < due && running(); presses++) {
        const p = pendants[(presses * pressStride) % pendants.length] as Ec200;
        const r: PressRecord = { device: p.deviceId, pressedAt: Date.now() };
        records.push(r);
        awaitingRaise.set(p.deviceId, r);
        void p.press();
      }
      for (const due = Math.floor(t * doorRate); doorOpenings < due && doors.length > 0; doorOpenings++) {
        const d = doors[(doorOpenings * doorStride) % doors.length] as Ds10;
        void d.open();
        const timer = setTimeout(() => {
          timers.delete(timer);
          void d.close();
        }, DOOR_OPEN_MS);
        timers.add(timer);
      }
      await sleep(50);
    }
    const loadS = Math.min(elapsedS(), durationS);
    const warmupS = warmupSeconds(loadS, firstRoundS(pendants.length, o.pressesPerSecond));
    await sampler;
    // The last presses' alerts and their acknowledgements.
    const drainEnd = performance.now() + DRAIN_MS;
    const settled = () => records.every((r) => r.raisedAt !== undefined && r.acknowledgedAt !== undefined);
    while (!interrupted && gatewayDied === null && !settled() && performance.now() < drainEnd)
      await sleep(100);

    const alerts = countAlerts(records, Date.now(), windowS * 1000, CLOSE_GRACE_MS);
    const series = (pick: (s: SoakSample) => number | null) =>
      samples.flatMap((s) => {
        const v = pick(s);
        return v === null ? [] : [{ tS: s.tS, value: v }];
      });
    const quotaMiB = storage.quota / MiB;
    const figures: Figure[] = [
      judgeSeries(
        "RSS",
        "MB",
        series((s) => s.rssMb),
        warmupS,
        {
          maxSlopePerHour: RSS_MAX_SLOPE_MB_H,
          troughs: true,
          why:
            "5 MB/h is 3.6 GB a month: a box with little memory runs out within one " +
            `(the slope through the lowest sample of each span of ${TROUGH_WINDOW_S / 60} min or more after the warm-up, ` +
            "and its 95 % interval under the bound: the heap's saw-tooth left out)",
        },
      ),
      judgeSeries(
        "open fds",
        "",
        series((s) => s.fds),
        warmupS,
        {
          maxSlopePerHour: FDS_MAX_SLOPE_H,
          why: "a steady site holds the same sockets and segments: any growth is a leak",
        },
      ),
      judgeSeries(
        "journal disk",
        "MiB",
        series((s) => s.journalBytes / MiB),
        warmupS,
        {
          maxSlopePerHour: quotaMiB,
          maxValue: quotaMiB,
          why:
            `storage.quota ${quotaMiB} MiB bounds the directory (docs/durability.md "Bounds"): under it always, ` +
            `and growing less than the quota an hour (compaction after ${storage.compactAfter / MiB} MiB written deletes old segments)`,
        },
      ),
    ];
    const info = (name: string, unit: string, pts: { tS: number; value: number }[], onTroughs = false) => {
      const rest = afterWarmup(pts, warmupS);
      return {
        name,
        unit,
        afterWarmup: rest[0]?.value ?? null,
        end: pts.at(-1)?.value ?? null,
        slopePerHour: slopePerHour(onTroughs ? troughs(rest) : rest),
      };
    };
    const informational = [
      info(
        "V8 heap used",
        "MB",
        series((s) => s.heapUsedMb),
        true,
      ),
      info(
        "journal files",
        "",
        series((s) => s.journalFiles),
      ),
      info(
        "open alerts",
        "",
        series((s) => s.openAlerts),
      ),
      info(
        "compactions",
        "",
        series((s) => s.compactions),
      ),
    ];
    const alertWhy = alertFailure(alerts);
    const pass = gatewayDied === null && !interrupted && figures.every((f) => f.pass) && alertWhy === null;

    console.log(
      `\nover ${(loadS / 60).toFixed(1)} min, the first ${(warmupS / 60).toFixed(1)} min left out of the slopes ` +
        `(${WARMUP_FRACTION * 100} % of the run, or the load's first round if longer: every pendant pressed and every ` +
        `device's first heartbeat, ${(firstRoundS(pendants.length, o.pressesPerSecond) / 60).toFixed(1)} min):`,
    );
    console.log("figure          after warm-up       end  slope per hour  verdict");
    const row = (
      name: string,
      unit: string,
      a: number | null,
      e: number | null,
      sl: number | null,
      verdict: string,
      halfWidth: number | null = null,
    ) =>
      console.log(
        `${name.padEnd(14)}  ${`${f1(a)} ${unit}`.padStart(13)}  ${`${f1(e)} ${unit}`.padStart(8)}  ` +
          `${`${sl === null ? "-" : sl.toFixed(2)}${halfWidth === null ? "" : ` ± ${halfWidth.toFixed(2)}`} ${unit}`.padStart(14)}  ${verdict}`,
      );
    for (const f of figures)
      row(
        f.name,
        f.unit,
        f.afterWarmup,
        f.end,
        f.slopePerHour,
        `${f.pass ? "PASS" : `FAIL (${f.failure})`}: bound < ${f.bound.maxSlopePerHour} ${f.unit}/h${f.bound.maxValue === undefined ? "" : `, at most ${f.bound.maxValue} ${f.unit}`}; ${f.bound.why}`,
        f.slopeHalfWidthPerHour,
      );
    for (const i of informational)
      row(
        i.name,
        i.unit,
        i.afterWarmup,
        i.end,
        i.slopePerHour,
        i.name === "V8 heap used" && i.end === null ? "not read (/metrics)" : "no bound (shown)",
      );
    console.log(
      `alerts: ${alerts.presses} presses, ${alerts.raised} raised, ${alerts.acknowledged} acknowledged, ` +
        `${alerts.cleared} closed, ${alerts.missing} missing, ${alerts.notAcknowledged} not acknowledged, ` +
        `${alerts.notCleared} not closed after their window, ${alerts.stillInWindow} still in their window at the end; ` +
        `${doorOpenings} door openings: ${alertWhy === null ? "PASS" : `FAIL (${alertWhy})`}`,
    );
    const latency = latencyBySpan(records, startedAtMs, loadS);
    console.log(
      "\noperator's wait by span (shown, no bound): a p99 that climbs from span to span at the same load is work that grows with the hours",
    );
    console.log("  minutes   presses  press -> raised p50 / p99 / max ms  raised -> acknowledged p99 ms");
    const ms = (v: number | null) => (v === null ? "-" : String(v));
    for (const l of latency)
      console.log(
        `${`${Number(l.fromMin.toFixed(1))}-${Number(l.toMin.toFixed(1))}`.padStart(9)}  ${String(l.raised).padStart(8)}  ` +
          `${`${ms(l.raiseP50Ms)} / ${ms(l.raiseP99Ms)} / ${ms(l.raiseMaxMs)}`.padStart(34)}  ${ms(l.ackP99Ms).padStart(29)}`,
      );
    const journal = figures[2] as Figure;
    const compactions = samples.at(-1)?.compactions ?? null;
    if (compactions === 0 && journal.slopePerHour !== null && journal.slopePerHour > 0)
      console.log(
        `journal: no compaction during the run; at ${journal.slopePerHour.toFixed(1)} MiB/h the first comes after about ` +
          `${(storage.compactAfter / MiB / journal.slopePerHour).toFixed(1)} h (${storage.compactAfter / MiB} MiB written): ` +
          "a run that shows the directory bounded by compaction lasts longer than that",
      );
    else if (compactions !== null) console.log(`journal: ${compactions} compaction(s) during the run`);
    if (gatewayDied) console.log(`FAIL ${gatewayDied}`);
    if (interrupted) console.log("interrupted: no verdict");
    else console.log(pass ? "PASS" : "FAIL");

    if (o.json) {
      const report: SoakReport = {
        options: o,
        startedAt,
        durationS: loadS,
        warmupS,
        interrupted,
        gatewayDied,
        storage: {
          quotaBytes: storage.quota,
          compactAfterBytes: storage.compactAfter,
          segmentSizeBytes: storage.segmentSize,
        },
        samples,
        figures,
        informational,
        alerts: { ...alerts, failure: alertWhy },
        latency,
        doorOpenings,
        pass,
      };
      writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
    }
    return interrupted ? 130 : pass ? 0 : 1;
  } finally {
    for (const t of timers) clearTimeout(t);
    if (operatorStarted) await endClient(operator);
    await fleet.stop();
    await gateway.close();
    removeTmp();
    process.off("exit", removeTmp);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench:soak: ${err instanceof Error ? err.message : String(err)}`);
    // A size the config refuses came from --segment-size or --compact-after: a bad option.
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
