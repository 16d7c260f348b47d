/**
 * `linli sim`: attaches a site's devices to a gateway over the real
 * protocols, optionally runs a scenario and judges the gateway's alerts.
 * The command line only parses options and calls `runSim`; everything here
 * uses the simulator's own modules (no gateway internals).
 *
 * Exit status: 0 attached (or scenario passed), 1 an expectation failed or, with or without a
 * scenario, a device could not connect (or a kiosk could not listen), 2 bad options, site file or scenario
 * (or a site larger than the open-file limit lets this process hold, or fire stations or tanks
 * without socat), 3 the gateway could not be reached (no device connected).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fdShortfall } from "./fd-limit.js";
import { Fleet } from "./fleet.js";
import { type Refusals, readRefusals, refusalsBetween } from "./gateway-metrics.js";
import { GatewayProcess } from "./gateway-process.js";
import { openPtyPair, type PtyPair, socatMissingReason } from "./modbus/pty.js";
import type { DeviceTlsOptions } from "./mqtt/link.js";
import { AlertMatcher } from "./scenario/matcher.js";
import { buildReport, formatMalformedInput, formatReport, type SimReport } from "./scenario/report.js";
import { ScenarioRunner, tooFewHouseholds } from "./scenario/runner.js";
import { listScenarios, loadScenario, ScenarioError } from "./scenario/schema.js";
import { demoSite, loadSiteFile, SiteError, type SiteModel, scaleSite, siteConfigYaml } from "./site.js";

export interface SimOptions {
  gateway: string;
  config?: string;
  scale?: number;
  scenario?: string;
  seed: number;
  json?: string;
  writeConfig?: string;
  listScenarios?: boolean;
  /** `ID=PATH`: the simulator's end of an RTU bus. */
  bus?: string[];
  /** --scale: fire stations on an RS-485 bus through a socat pty the simulator opens. */
  stations?: number;
  /** --scale: GK-3 kiosks on Modbus TCP (127.0.0.1, free ports unless --kiosk-port). */
  kiosks?: number;
  /** --kiosks: the first kiosk's port, the others on the next ones. */
  kioskPort?: number;
  /** --scale: GD-2 gas detectors in the first N households' kitchens (default: what the scenario asks). */
  kitchens?: number;
  /** --scale: LV-4 fire-water tanks on the socat pty bus (default: what the scenario asks). */
  tanks?: number;
  /** Start (and restart) the gateway: `{config}` is replaced by the site configuration file. */
  gatewayCmd?: string;
  gatewayLog?: string;
  operator?: string;
  ca?: string;
  cert?: string;
  key?: string;
  insecure?: boolean;
  /** Acknowledge the alerts the run caused (default true). */
  ack?: boolean;
  /** Without a scenario: stay attached this long (default: until Ctrl-C). */
  duration?: number;
  /** Progress line on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** The gateway's /metrics URL, read before and after a scenario (default: metricsUrl()). */
  metrics?: string;
}

export class UsageError extends Error {}

/** Gateway URL: mqtt://, tcp://, mqtts://, ssl://, ws://, wss://. */
export function parseGatewayUrl(text: string): { url: string; host: string; port: number; tls: boolean } {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`--gateway: not a URL: ${text} (e.g. mqtt://127.0.0.1:1883)`);
  }
  const defaults: Record<string, number> = {
    "mqtt:": 1883,
    "tcp:": 1883,
    "mqtts:": 8883,
    "ssl:": 8883,
    "ws:": 80,
    "wss:": 443,
  };
  const def = defaults[u.protocol];
  if (def === undefined)
    throw new UsageError(`--gateway: ${u.protocol}// is not supported: mqtt://, mqtts://, ws:// or wss://`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  return {
    url: text,
    host,
    port: u.port ? Number(u.port) : def,
    tls: u.protocol === "mqtts:" || u.protocol === "ssl:" || u.protocol === "wss:",
  };
}

/** A file an option names: one that cannot be read is a bad option (2), not an unreachable gateway (3). */
function readOptionFile(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${option} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.once("error", reject);
  });
}

const out = (s: string) => process.stderr.write(s);

/** Said in a written site file whose bus was a socat pair of a simulator that has exited. */
const SOCAT_BUS_NOTE = [
  "This bus was one end of a socat pty pair opened by `linli sim --write-config`; the pair",
  "(and this path) went away when that command exited. The fire stations and tanks on it can",
  "only be served by a simulator that opens the pair again and starts the gateway with it:",
  '  linli sim --scale N --stations N --tanks N --gateway-cmd "linli start --config {config} ..."',
  "Against a real RS-485 line: set `path` to the gateway's adapter and give the simulator its",
  "end with `linli sim --config FILE --bus rs485-1=/dev/ttyUSB1`.",
].join("\n");

/** Without a terminal (a log, CI) a plain progress line this often instead of the live one. */
const PLAIN_PROGRESS_MS = 10_000;

/** Reasons listed when devices fail to connect, and devices named per reason: the rest counted. */
const FAILED_SHOWN = 5;

/**
 * The devices that could not connect, by reason (most first), a few lines however many failed:
 * at most FAILED_SHOWN reasons with at most FAILED_SHOWN devices named each, the rest counted.
 */
export function attachFailures(failed: readonly { id: string; error: string }[], total: number): string {
  const byReason = new Map<string, string[]>();
  for (const f of failed) {
    const ids = byReason.get(f.error);
    if (ids) ids.push(f.id);
    else byReason.set(f.error, [f.id]);
  }
  const reasons = [...byReason].sort((a, b) => b[1].length - a[1].length);
  const lines = [
    `failed: ${failed.length} of ${total} MQTT devices could not connect (stopped, not retried):`,
  ];
  for (const [error, ids] of reasons.slice(0, FAILED_SHOWN)) {
    const named = ids.slice(0, FAILED_SHOWN).join(", ");
    const more = ids.length > FAILED_SHOWN ? ` and ${ids.length - FAILED_SHOWN} more` : "";
    lines.push(`  ${ids.length} ${ids.length === 1 ? "device" : "devices"}: ${error} (${named}${more})`);
  }
  const rest = reasons.slice(FAILED_SHOWN);
  if (rest.length > 0) {
    const n = rest.reduce((sum, [, ids]) => sum + ids.length, 0);
    lines.push(`  ${n} more ${n === 1 ? "device" : "devices"}, for ${rest.length} other reasons`);
  }
  return `${lines.join("\n")}\n`;
}

export function scenarioList(): string {
  const lines = listScenarios().map(({ name, scenario: s }) => {
    const needs = s.needs.length ? ` [needs ${s.needs.join(", ")}]` : "";
    return `${name.padEnd(22)}${s.description.trim().split("\n")[0]}${needs}${s.howToRun ? `\n${" ".repeat(22)}run: ${s.howToRun}` : ""}`;
  });
  return `${lines.join("\n")}\n`;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

/**
 * Where the report reads the gateway's counters: `--metrics`; else the port `--gateway-cmd` gives
 * it (`--metrics-port N`, which beats the file's); else the site file's `metrics`; else, for a
 * gateway on this machine, the documented default (docs/metrics.md: 127.0.0.1:9464). `url` null:
 * none known, `why` says so.
 */
export function metricsUrl(
  o: Pick<SimOptions, "metrics" | "gatewayCmd">,
  site: Pick<SiteModel, "metrics">,
  gatewayHost: string,
): { url: string } | { url: null; why: string } {
  if (o.metrics !== undefined) {
    let u: URL;
    try {
      u = new URL(o.metrics);
    } catch {
      throw new UsageError(`--metrics: not a URL: ${o.metrics} (e.g. http://127.0.0.1:9464/metrics)`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:")
      throw new UsageError(`--metrics: ${u.protocol}// is not supported: http:// or https://`);
    if (u.pathname === "/") u.pathname = "/metrics";
    return { url: u.toString() };
  }
  const port = /--metrics-port[ =](\d+)/.exec(o.gatewayCmd ?? "")?.[1];
  if (port !== undefined && Number(port) > 0) return { url: `http://127.0.0.1:${port}/metrics` };
  if (site.metrics !== undefined)
    return "url" in site.metrics ? { url: site.metrics.url } : { url: null, why: site.metrics.unreadable };
  if (LOOPBACK.has(gatewayHost)) return { url: "http://127.0.0.1:9464/metrics" };
  return { url: null, why: `the gateway (${gatewayHost}) serves /metrics on its own loopback by default` };
}

/** The run's failure when devices could not connect (the `FAIL` line, the report's `failures`). */
const attachFailedLine = (n: number) => `${n} device(s) could not connect`;

/** Runs `linli sim`; resolves with the exit status. */
export async function runSim(o: SimOptions): Promise<number> {
  if (o.listScenarios) {
    process.stdout.write(scenarioList());
    return 0;
  }
  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort: the rest still runs
      }
    }
    cleanups.length = 0;
  };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    out("\nstopping (again to exit now)\n");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await simulate(o, cleanups, () => interrupted);
  } catch (err) {
    if (err instanceof UsageError || err instanceof SiteError || err instanceof ScenarioError) {
      out(`linli sim: ${err.message}\n`);
      return 2;
    }
    out(`linli sim: ${err instanceof Error ? err.message : String(err)}\n`);
    return 3;
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function simulate(
  o: SimOptions,
  cleanups: Array<() => Promise<void> | void>,
  interrupted: () => boolean,
): Promise<number> {
  if (o.config && o.scale !== undefined) throw new UsageError("give --config FILE or --scale N, not both");
  if (o.writeConfig && o.scale === undefined) throw new UsageError("--write-config goes with --scale N");
  // Options that shape a --scale site: without it they would be ignored without a word.
  if (o.scale === undefined)
    for (const [name, value] of [
      ["--stations", o.stations],
      ["--kiosks", o.kiosks],
      ["--kitchens", o.kitchens],
      ["--tanks", o.tanks],
      ["--kiosk-port", o.kioskPort],
    ] as const)
      if (value !== undefined)
        throw new UsageError(`${name} goes with --scale N (a --config site has the devices its file lists)`);
  if (o.operator !== undefined && !o.config)
    throw new UsageError(
      `--operator goes with --config FILE (a ${o.scale !== undefined ? "--scale site has one operator, sim-operator" : "demo site has the demo operator"})`,
    );
  const gw = parseGatewayUrl(o.gateway);
  const scenario = o.scenario ? loadScenario(o.scenario) : undefined;
  const tls: DeviceTlsOptions | undefined = gw.tls
    ? {
        ca: o.ca ? readOptionFile("--ca", o.ca) : undefined,
        cert: o.cert ? readOptionFile("--cert", o.cert) : undefined,
        key: o.key ? readOptionFile("--key", o.key) : undefined,
        rejectUnauthorized: !o.insecure,
      }
    : undefined;
  const busPaths: Record<string, string> = {};
  for (const b of o.bus ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(b);
    if (!m) throw new UsageError(`--bus ${b}: give ID=PATH (the simulator's end of the bus)`);
    busPaths[m[1] as string] = m[2] as string;
  }

  let site: SiteModel;
  let configFile = o.config;
  if (o.config) {
    site = loadSiteFile(o.config, { seed: o.seed, operator: o.operator });
  } else if (o.scale !== undefined) {
    if (!Number.isInteger(o.scale) || o.scale < 1) throw new UsageError("--scale must be a positive integer");
    // A scenario says which GD-2s and LV-4s it drives; the command line may give more or fewer.
    const kitchens = o.kitchens ?? scenario?.scenario.scale.kitchens ?? 0;
    const tanks = o.tanks ?? scenario?.scenario.scale.tanks ?? 0;
    let pty: PtyPair | undefined;
    if ((o.stations ?? 0) + tanks > 0) {
      // Known before anything starts: not "the gateway could not be reached" (3) once spawn fails.
      const missing = socatMissingReason();
      if (missing)
        throw new UsageError(
          `${o.stations ? "--stations" : tanks === o.tanks ? "--tanks" : `the scenario's ${tanks} tanks`} need a socat pty bus: ${missing}`,
        );
      pty = await openPtyPair();
      const p = pty;
      cleanups.push(() => p.kill());
      busPaths["rs485-1"] = pty.a;
    }
    const kioskPorts: number[] = [];
    if (o.kioskPort !== undefined) {
      if (o.kiosks === undefined) throw new UsageError("--kiosk-port goes with --kiosks N");
      for (let i = 0; i < o.kiosks; i++) kioskPorts.push(o.kioskPort + i);
      if (o.kioskPort + o.kiosks - 1 > 65535)
        throw new UsageError(`--kiosk-port ${o.kioskPort}: ${o.kiosks} kiosks run past port 65535`);
    } else for (let i = 0; i < (o.kiosks ?? 0); i++) kioskPorts.push(await freePort());
    site = scaleSite({
      households: o.scale,
      seed: o.seed,
      host: gw.host,
      port: gw.port,
      stations: o.stations,
      busPath: pty?.b,
      kioskPorts,
      kitchens,
      tanks,
      // A welfare scenario's compressed period (its days last seconds): the site is written with it.
      ...(scenario?.scenario.scale.welfarePeriod !== undefined
        ? { welfarePeriodS: scenario.scenario.scale.welfarePeriod / 1000 }
        : {}),
    });
    // Not written for a scenario that would refuse it (the check below, for every site, again).
    const small = scenario ? tooFewHouseholds(scenario.scenario, site) : undefined;
    if (small !== undefined) throw new ScenarioError(small);
    // Write and exit: the socat pair is gone with this process, and so is the bus's path.
    const writeOnly = !!o.writeConfig && !o.scenario && !o.gatewayCmd && o.duration === undefined;
    const busGone = writeOnly && pty !== undefined;
    const yaml = siteConfigYaml(site, gw.host, gw.port, {
      buses: busGone ? SOCAT_BUS_NOTE : undefined,
    });
    if (o.writeConfig) {
      writeFileSync(o.writeConfig, yaml);
      configFile = o.writeConfig;
      out(
        `wrote ${o.writeConfig}: site ${site.siteId}, ${site.mqtt.length} MQTT devices, ${site.rtu.length} RTU slaves, operator ${site.operator.name}\n`,
      );
      if (writeOnly) {
        if (busGone)
          out(
            `the ${site.rtu.length} RTU slaves are on a socat pty bus that exists only while linli sim runs: ` +
              `to use them, let the simulator start the gateway (README):\n` +
              `  linli sim --scale ${o.scale}${o.stations ? ` --stations ${o.stations}` : ""}${tanks ? ` --tanks ${tanks}` : ""}${o.kiosks ? ` --kiosks ${o.kiosks}` : ""} --gateway ${o.gateway} --gateway-cmd "linli start --config {config} --data-dir DIR"\n` +
              `the MQTT devices${site.tcp.length ? " and kiosks" : ""} of ${o.writeConfig} work as below (the bus stays unattached):\n`,
          );
        out(
          `start the gateway with it:  linli start --config ${o.writeConfig}\nthen attach:  linli sim --config ${o.writeConfig} --gateway ${o.gateway}\n`,
        );
        return 0;
      }
    } else if (o.gatewayCmd) {
      const dir = mkdtempSync(join(tmpdir(), "linli-sim-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      configFile = join(dir, "site.yaml");
      writeFileSync(configFile, yaml);
    }
  } else {
    site = demoSite();
  }

  // Before anything connects (or a --write-config file is written): a site too small for the scenario.
  const small = scenario ? tooFewHouseholds(scenario.scenario, site) : undefined;
  if (small !== undefined) throw new ScenarioError(small);

  // Before the gateway is started or a device connects: a site this process cannot hold open is
  // refused with the limit to raise, not attached by half (EMFILE for the rest).
  const short = fdShortfall(
    site.mqtt.length,
    site.tcp.length,
    o.config ? `--config ${o.config}` : o.scale !== undefined ? `--scale ${o.scale}` : "demo site",
  );
  if (short) throw new UsageError(short);

  let controlled: GatewayProcess | undefined;
  if (o.gatewayCmd) {
    if (!configFile && o.gatewayCmd.includes("{config}"))
      throw new UsageError("--gateway-cmd uses {config}: give --config FILE or --scale N");
    const gateway = new GatewayProcess({
      command: o.gatewayCmd.replaceAll("{config}", configFile ? resolve(configFile) : ""),
      host: gw.host,
      port: gw.port,
      logFile: o.gatewayLog,
    });
    cleanups.push(() => gateway.close());
    await gateway.start();
    controlled = gateway;
  }

  const fleet = new Fleet({ site, brokerUrl: gw.url, tls, seed: o.seed, busPaths });
  cleanups.push(() => fleet.stop());
  const showProgress = o.progress ?? process.stderr.isTTY === true;
  const attachStart = Date.now();
  let attaching = { connected: 0, failed: 0 };
  const attachLine = () =>
    `attaching: ${attaching.connected}/${site.mqtt.length} connected, ${attaching.failed} failed (${((Date.now() - attachStart) / 1000).toFixed(0)} s)`;
  const plainAttach = showProgress
    ? undefined
    : setInterval(() => out(`${attachLine()}\n`), PLAIN_PROGRESS_MS);
  cleanups.push(() => clearInterval(plainAttach));
  const attached = await fleet.attach((c, n, f) => {
    attaching = { connected: c, failed: f };
    if (showProgress && ((c + f) % 100 === 0 || c + f === n)) out(`\r${attachLine()}`);
  }, interrupted);
  clearInterval(plainAttach);
  if (showProgress) out("\n");
  out(
    `attached to ${gw.url}: ${attached.connected}/${site.mqtt.length} MQTT devices in ${((Date.now() - attachStart) / 1000).toFixed(1)} s, ${attached.rtuSlaves} RTU slaves, ${attached.kiosks} kiosks (site ${site.siteId}, ${site.source})${attached.notAttempted ? `; stopped before the other ${attached.notAttempted} were tried` : ""}\n`,
  );
  for (const s of attached.skipped) out(`  not attached: ${s.id}: ${s.reason}\n`);
  if (attached.failed.length > 0) out(attachFailures(attached.failed, site.mqtt.length));
  for (const k of attached.kiosksFailed) out(`failed: kiosk ${k.id}: ${k.error}\n`);
  // A kiosk that could not listen fails the run as an MQTT device that could not connect does.
  const failedDevices = attached.failed.length + attached.kiosksFailed.length;
  if (site.mqtt.length > 0 && attached.connected === 0 && !interrupted()) {
    out(`linli sim: no device could connect to ${gw.url}\n`);
    return 3;
  }

  if (!scenario) {
    const until = o.duration !== undefined ? Date.now() + o.duration * 1000 : Number.POSITIVE_INFINITY;
    if (o.duration === undefined && !interrupted())
      out("devices attached, sending heartbeats; Ctrl-C stops\n");
    while (!interrupted() && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const malformed = formatMalformedInput(fleet.malformedInput(), {
      mqtt: site.mqtt.length,
      rtuSlaves: attached.rtuSlaves,
      kiosks: attached.kiosks,
    });
    if (malformed) out(`${malformed}\n`);
    // Attaching was the whole run: a device that could not connect fails it, as it fails a scenario.
    if (failedDevices === 0) return 0;
    process.stdout.write(`FAIL ${attachFailedLine(failedDevices)}\n`);
    return 1;
  }

  const s = scenario.scenario;
  const ownKeys = new Set<string>([
    ...site.mqtt.map((d) => d.id),
    ...site.rtu.map((d) => d.id),
    ...site.tcp.map((d) => d.id),
    ...site.mqtt.map((d) => d.household).filter((h): h is string => !!h),
  ]);
  const matcher = new AlertMatcher({
    brokerUrl: gw.url,
    tls,
    site: site.siteId,
    operator: site.operator,
    ownKeys,
    allowUnexpected: s.allowUnexpected,
  });
  cleanups.push(() => matcher.close());
  await matcher.connect();
  let runner: ScenarioRunner;
  try {
    runner = new ScenarioRunner({
      scenario: s,
      site,
      fleet,
      matcher,
      seed: o.seed,
      gateway: controlled,
      source: { file: scenario.file, lineOf: scenario.lineOf },
    });
  } catch (err) {
    // A phase that asks more devices than attached may be asking what the site has, less the failed ones.
    if (err instanceof ScenarioError && failedDevices > 0)
      throw new ScenarioError(`${err.message} (${attachFailedLine(failedDevices)}, see above)`);
    throw err;
  }
  cleanups.push(() => runner.stop());
  // The gateway's own count of what it dropped or left with devices, before and after the run.
  const metrics = metricsUrl(o, site, gw.host);
  const refusalsBefore: Refusals | { error: string } =
    metrics.url === null ? { error: metrics.why } : await readRefusals(metrics.url);
  const startedAt = new Date();
  const closedAtStart = fleet.closedByGateway;
  const progressLine = () => {
    const c = matcher.counts();
    const l = matcher.latency();
    return `[${(runner.elapsedMs() / 1000).toFixed(1)} s] phase ${runner.currentPhase}/${s.phases.length} · incidents ${runner.stats.incidents} · alerts ${c.matched}/${c.expected} · missing ${c.expected - c.matched} · dup ${c.duplicated} · unexpected ${c.unexpected}${l.p99Ms !== null ? ` · p99 ${l.p99Ms} ms` : ""}`;
  };
  let lastPlain = Date.now();
  const progress = () => {
    if (showProgress) out(`\r\x1b[K${progressLine()}`);
    else if (Date.now() - lastPlain >= PLAIN_PROGRESS_MS) {
      lastPlain = Date.now();
      out(`${progressLine()}\n`);
    }
  };
  const ticker = setInterval(progress, 250);
  cleanups.push(() => clearInterval(ticker));
  out(`scenario ${s.name}: ${s.phases.length} phases\n`);
  await Promise.race([
    runner.run(),
    new Promise<void>((r) => {
      const t = setInterval(() => {
        if (interrupted()) {
          clearInterval(t);
          r();
        }
      }, 100);
      cleanups.push(() => clearInterval(t));
    }),
  ]);
  // Late alerts: as long as an expectation can still be met, at most settle + the longest limit
  // past the latest deadline (an alert due long after its incident: a tank's level held 30 s).
  const lastDeadline = Math.max(0, matcher.lastDeadline() - Date.now());
  if (!interrupted()) await matcher.settle(lastDeadline + s.settle + s.latency.max, progress);
  // Anything still to come (duplicates, unexpected) within the settle time.
  const quietUntil = Date.now() + Math.min(s.settle, 5_000);
  while (!interrupted() && Date.now() < quietUntil) await new Promise((r) => setTimeout(r, 100));
  clearInterval(ticker);
  if (showProgress) out(`\r\x1b[K${progressLine()}\n`);
  await runner.stop();
  await runner.restore();
  const refusalsAfter = metrics.url === null ? refusalsBefore : await readRefusals(metrics.url);
  const gatewayRefusals: SimReport["gatewayRefusals"] =
    "error" in refusalsBefore || "error" in refusalsAfter
      ? {
          metrics: metrics.url,
          error: ("error" in refusalsBefore ? refusalsBefore : (refusalsAfter as { error: string })).error,
          byReason: null,
        }
      : { metrics: metrics.url, error: null, byReason: refusalsBetween(refusalsBefore, refusalsAfter) };
  const failures: string[] = [];
  if (interrupted()) failures.push("interrupted before the end");
  if (failedDevices > 0) failures.push(attachFailedLine(failedDevices));
  failures.push(...runner.stats.errors);
  const report: SimReport = buildReport(
    {
      scenario: s.name,
      description: s.description.trim(),
      site: site.siteId,
      source: site.source,
      gateway: gw.url,
      seed: o.seed,
      startedAt: startedAt.toISOString(),
      durationS: (Date.now() - startedAt.getTime()) / 1000,
      devices: {
        mqtt: site.mqtt.length,
        connected: attached.connected,
        failed: attached.failed.length,
        rtuSlaves: attached.rtuSlaves,
        kiosks: attached.kiosks,
        closedByGateway: fleet.closedByGateway - closedAtStart,
      },
      run: runner.stats,
      malformedInput: fleet.malformedInput(),
      gatewayRefusals,
      operator: { reconnects: matcher.reconnects, lastError: matcher.error ?? null },
    },
    s,
    matcher,
    failures,
  );
  if (o.ack !== false) await matcher.acknowledgeAll(`linli sim: scenario ${s.name}`);
  process.stdout.write(formatReport(report));
  if (o.json) writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.passed ? 0 : 1;
}
