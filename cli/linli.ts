#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=4
/**
 * The `linli` command line (a public contract: README.md "Run it for a site" and
 * "Attach devices", docs/reload.md, docs/security.md). A usage error (unknown
 * option, bad value, --demo with --config) exits 2, as an invalid file does.
 *   linli --version
 *   linli start (--config FILE | --demo) [--mqtt-port N] [--metrics-port N] [--console-port N] [--data-dir DIR] [--log-level L] [--log-format F]
 *   linli reload [--config FILE] [--data-dir DIR] [--timeout SECONDS]
 *   linli config check FILE
 *   linli config schema
 *   linli passwd [--cost N]      (password from stdin or a prompt without echo; prints a hash)
 *   linli modbus read (--serial PATH [--baud N --parity P --stop-bits N] | --tcp HOST:PORT) --unit N --fn 3|4 --address A --count N
 *   linli sim --gateway URL (--config FILE | --scale N) [--scenario NAME|FILE] [--seed S] [--json FILE]
 *   linli sim --list-scenarios
 */
import { readFileSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { Command, type CommanderError, InvalidArgumentError, Option } from "commander";
import { parseDocument } from "yaml";
import { formatInterpretations } from "../devices/index.js";
import {
  applyEdgeHeapSettings,
  type Config,
  ConfigError,
  configJsonSchema,
  configWarnings,
  createLogger,
  DEFAULT_LOG2_N,
  defaultModbusLinks,
  describeMove,
  fdLimitWarning,
  Gateway,
  hashPassword,
  type LastGood,
  type Logger,
  linliVersion,
  loadConfigFile,
  loadConfigFileWithInput,
  loadLastGood,
  plainTextPasswordWarning,
  portProblems,
  SystemdNotifier,
  saveLastGood,
  siteFileWarning,
  validateConfig,
  weakPasswordWarnings,
} from "../gateway/index.js";
import { modbusRead } from "../protocols/index.js";
// The simulator and the demo (with mqtt.js, the simulated devices' client) are loaded only by the
// commands that use them: `linli config check` peaked at 95-100 MB RSS without them, 103-111 MB
// with them; a gateway started from a site file does not carry them either.
import type { SimOptions, Stations } from "../sim/index.js";
import { readFailureText } from "./modbus-read-failure.js";

type Demo = typeof import("./demo.js");

import { readPassword } from "./password-input.js";
import {
  awaitReloadReport,
  DEFAULT_DATA_DIR,
  isLinliProcess,
  keepPidFile,
  type ReloadReport,
  readPidFile,
  readReloadReport,
  removePidFile,
  writeReloadReport,
} from "./pidfile.js";

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError("must be a port number 0-65535");
  return n;
}

function fail(err: unknown): never {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}

/** A usage error the option parser cannot see (options that exclude each other): exit 2, as its own. */
function usage(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

interface StartOptions {
  config?: string;
  demo?: boolean;
  mqttPort?: number;
  dataDir?: string;
  metricsPort?: number;
  consolePort?: number;
  logLevel?: Config["log"]["level"];
  logFormat?: Config["log"]["format"];
}

async function start(opts: StartOptions): Promise<void> {
  if (!opts.config && !opts.demo)
    usage("linli start: give --config FILE, or --demo for the simulated community");
  applyEdgeHeapSettings();
  // The demo's fire stations and kiosks run first: the config needs their ports.
  const demo: Demo | null = opts.demo ? await import("./demo.js") : null;
  const stations: Stations | null =
    demo !== null && !opts.config ? await (await import("../sim/index.js")).startStations() : null;
  let config: Config;
  // The file as it ran, standalone: what the last good copy keeps (null: the demo).
  let input: Record<string, unknown> | null = null;
  let refused: StartRefusal | null = null;
  try {
    if (opts.config || demo === null) {
      const loaded = loadConfigFileWithInput(opts.config as string);
      config = loaded.config;
      input = loaded.input;
    } else
      config = validateConfig(
        demo.demoConfig(opts.mqttPort ?? 1883, stations, await demo.demoMetricsPort(opts.metricsPort)),
        "(demo)",
      );
  } catch (err) {
    refused = err instanceof ConfigError && opts.config ? lastGoodFor(opts.config, opts.dataDir, err) : null;
    if (refused === null) {
      await stations?.stop();
      fail(err);
    }
    config = refused.lastGood.config;
  }
  // Command-line settings win over the file, at start and at every reload.
  const overrides = (c: Config): Config => {
    if (opts.logLevel) c.log.level = opts.logLevel;
    if (opts.logFormat) c.log.format = opts.logFormat;
    if (opts.metricsPort !== undefined) c.metrics.port = opts.metricsPort;
    if (opts.consolePort !== undefined) c.console.port = opts.consolePort;
    return c;
  };
  overrides(config);
  // The site's zone as the process's own (TZ; site.timezone takes a restart): SiteTime then reads
  // its offsets from Date instead of an Intl.DateTimeFormat, ~8 MB resident less (core/site-time.ts).
  // Nothing else in the gateway reads local time.
  if (config.site.timezone !== undefined) process.env.TZ = config.site.timezone;
  // The command line's ports are checked as the file's are (a metrics port equal to the MQTT port).
  const clashes = portProblems({
    ...config,
    mqtt: {
      ...config.mqtt,
      listeners: config.mqtt.listeners.map((l, i) =>
        i === 0 && opts.mqttPort !== undefined ? { ...l, port: opts.mqttPort } : l,
      ),
    },
  });
  if (clashes.length > 0) {
    await stations?.stop();
    fail(new ConfigError(opts.config ?? "(demo)", clashes));
  }
  const logger = createLogger({ level: config.log.level, format: config.log.format });
  if (refused !== null)
    logger.error(
      {
        config: refused.error.file,
        problems: refused.problems,
        lastGood: refused.lastGood.file,
        lastGoodFrom: refused.lastGood.source,
        lastGoodSavedAt: new Date(refused.lastGood.savedAt).toISOString(),
      },
      `site file refused at start: running on the last good configuration; correct the file, then linli reload: ${refused.problems.join("; ")}`,
    );
  // What `config check` says about exposure, said again where it matters: on the box that runs it
  // (a deployer may never have run the check). The password checks stay in `config check` (scrypt).
  for (const w of configWarnings(config)) if (/^(console|mqtt|metrics)\./.test(w)) logger.warn(w);
  // The caps against this process's own descriptor limit: only the box that runs it knows it.
  const fds = fdLimitWarning(config);
  if (fds !== null) logger.warn(fds);

  // The gateway must outlive any stray promise: log it, count it, keep serving.
  let unhandled = 0;
  process.on("unhandledRejection", (reason) => {
    unhandled++;
    logger.error({ err: reason, unhandled }, "unhandled promise rejection (kept running)");
  });

  // SIGHUP's default action ends the process: take it over before anything else can arrive.
  // On the last good copy: the directory it was found in (the refused file's, not the copy's).
  const dataDir = refused?.dataDir ?? resolve(opts.dataDir ?? config.storage.dir ?? DEFAULT_DATA_DIR);
  // The copy follows every configuration applied from the file, at start and at reload.
  const keepLastGood = (applied: Record<string, unknown>, file: string) => {
    try {
      saveLastGood(dataDir, applied, file);
    } catch (err) {
      logger.warn(
        { err, dataDir },
        "cannot write the last good configuration (a refused file at the next start cannot fall back on it)",
      );
    }
  };
  const configPath = opts.config ? resolve(opts.config) : null;
  let running: Gateway | null = null;
  let hupWhileStarting = false;
  const onHup = () => {
    if (!running) {
      hupWhileStarting = true;
      return;
    }
    const gw = running;
    if (!configPath) {
      const message = "the demo runs without a configuration file: there is no file to reload";
      logger.warn({ signal: "SIGHUP" }, message);
      report(dataDir, { pid: process.pid, config: null, result: "refused", at: Date.now(), message }, logger);
      return;
    }
    logger.info({ signal: "SIGHUP", config: configPath }, "reloading the configuration");
    let reloaded: Record<string, unknown> | null = null;
    gw.reload(() => {
      const loaded = loadConfigFileWithInput(configPath);
      reloaded = loaded.input;
      return overrides(loaded.config);
    })
      .then((r) => {
        if (r.result === "applied") {
          if (reloaded !== null) keepLastGood(reloaded, configPath);
          gw.configRefusal.applied(configPath, "reload");
        }
        const { effective: _secrets, ...shown } = r.result === "applied" ? r : { ...r, effective: null };
        report(dataDir, { pid: process.pid, config: configPath, ...shown }, logger);
      })
      .catch((err: unknown) => logger.error({ err }, "configuration reload failed"));
  };
  process.on("SIGHUP", onHup);
  // SIGTERM/SIGINT's default action ends the process at once: one that comes while the gateway is
  // still starting (systemd's stop during a long restore, a test right after "gateway started")
  // killed it uncleanly, its journal unmarked. Taken over now; the stop runs once the start is done.
  let stopWhileStarting: string | null = null;
  let stopNow: ((signal: string) => void) | null = null;
  const onStop = (signal: string) => {
    if (stopNow !== null) {
      stopNow(signal);
      return;
    }
    if (stopWhileStarting !== null) {
      logger.warn({ signal }, "second signal while starting: exiting now");
      process.exit(1);
    }
    stopWhileStarting = signal;
    logger.info({ signal }, "stop asked while starting: the gateway stops once started");
  };
  process.on("SIGINT", () => onStop("SIGINT"));
  process.on("SIGTERM", () => onStop("SIGTERM"));

  let gateway: Gateway;
  try {
    const memoryLine = stations?.gatewayLink;
    gateway = await Gateway.start({
      config,
      logger,
      mqttPort: opts.mqttPort,
      dataDir,
      modbusLinks: memoryLine
        ? (spec) => (spec.kind === "serial" ? memoryLine : defaultModbusLinks(spec))
        : undefined,
    });
  } catch (err) {
    await stations?.stop();
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE") {
      const where = `${(e as { address?: string }).address ?? ""}:${(e as { port?: number }).port ?? ""}`;
      const busy = (e as { port?: number }).port;
      const isMetrics = busy === config.metrics.port && config.metrics.enabled;
      const isConsole = busy === config.console.port && config.console.enabled;
      fail(
        new Error(
          isMetrics
            ? `metrics port ${where} is already in use; choose another with --metrics-port (or set metrics.port in the config, or metrics.enabled: false)`
            : isConsole
              ? `console port ${where} is already in use; choose another with --console-port (or console.port in the config)`
              : `MQTT port ${where} is already in use; choose another with --mqtt-port`,
        ),
      );
    }
    fail(err);
  }

  running = gateway;
  if (refused !== null && configPath !== null)
    gateway.configRefusal.startedOnLastGood({
      file: configPath,
      problems: refused.problems,
      lastGood: refused.lastGood.file,
    });
  else if (input !== null && configPath !== null) {
    keepLastGood(input, configPath);
    gateway.configRefusal.applied(configPath, "start");
  }
  // Not fatal: the gateway serves alerts without it; only `linli reload` cannot find it until written.
  const pidFile = keepPidFile(
    dataDir,
    { pid: process.pid, config: configPath, startedAt: new Date().toISOString() },
    { log: logger },
  );
  if (hupWhileStarting) onHup();

  let community: ReturnType<Demo["startDemoCommunity"]> | null = null;
  if (demo !== null) {
    const { DEMO_HOUSEHOLDS, DEMO_OPERATOR, DEMO_SITE, HAND_PENDANT } = demo;
    const p = gateway.mqttPort;
    community = demo.startDemoCommunity(p);
    const started = await community.start();
    stations?.startScript(demo.DEMO_PACE.stationEventEveryMs);
    process.stderr.write(
      [
        "",
        `Linli demo: ${DEMO_HOUSEHOLDS} simulated households (${started.connected} devices connected) on mqtt://127.0.0.1:${p}`,
        `  4 kitchen gas detectors; 2 fire stations and the fire-water tank on an RS-485 bus (${stations?.ttyPath ?? "in memory"}); 4 kiosks on Modbus TCP`,
        ...(gateway.metricsAddress
          ? [`metrics: http://${gateway.metricsAddress.host}:${gateway.metricsAddress.port}/metrics`]
          : []),
        ...(gateway.consoleUrl
          ? [
              `Operators' console (运营控制台): ${gateway.consoleUrl}  login ${DEMO_OPERATOR.name} / ${DEMO_OPERATOR.password}`,
            ]
          : []),
        "Watch alerts as an operator:",
        `  mosquitto_sub -h 127.0.0.1 -p ${p} -i ${DEMO_OPERATOR.name}-watch -u ${DEMO_OPERATOR.name} -P ${DEMO_OPERATOR.password} -t 'linli/${DEMO_SITE}/alerts/#' -v`,
        "Press the demo pendant's button by hand:",
        `  mosquitto_pub -h 127.0.0.1 -p ${p} -i ec200-${HAND_PENDANT.id} -u ${HAND_PENDANT.id} -P ${HAND_PENDANT.password} -q 1 -t devices/ec200/${HAND_PENDANT.id}/up -m '{"t":"evt","seq":1042,"ts":1763798400123,"evt":"press","bat":87,"rssi":-71}'`,
        "Ctrl-C stops the gateway cleanly.",
        "",
      ].join("\n"),
    );
  }

  // Under systemd (deploy/linli.service): READY=1 now, WATCHDOG=1 while the event loop is
  // healthy, STOPPING=1 on shutdown. Nothing unless systemd started us (NOTIFY_SOCKET).
  const systemd = SystemdNotifier.fromEnv({ log: logger });
  void systemd?.ready(`serving ${gateway.registry.devices.size} devices`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    const toldSystemd = systemd?.stopping();
    await community?.stop();
    await gateway.stop();
    await stations?.stop();
    pidFile.stop();
    try {
      removePidFile(dataDir, process.pid);
    } catch (err) {
      logger.warn({ err, dataDir }, "cannot remove the pid file");
    }
    await toldSystemd;
    process.exit(0);
  };
  stopNow = (signal) => void shutdown(signal);
  if (stopWhileStarting !== null) void shutdown(stopWhileStarting);
}

interface StartRefusal {
  error: ConfigError;
  /** Each problem as `linli config check` prints it (file, line, field, what is wrong). */
  problems: string[];
  lastGood: LastGood;
  dataDir: string;
}

/**
 * The site file was refused: the last good copy of the data directory, if there is one and it is
 * usable (null: the start refuses as without one). The directory, as the gateway would find it:
 * --data-dir, else storage.dir of the refused file if its YAML still reads, else the default.
 */
function lastGoodFor(file: string, dataDirOpt: string | undefined, error: ConfigError): StartRefusal | null {
  let storageDir: unknown;
  if (dataDirOpt === undefined) {
    try {
      const doc = parseDocument(readFileSync(file, "utf8"));
      if (doc.errors.length === 0)
        storageDir = (doc.toJS() as { storage?: { dir?: unknown } } | null)?.storage?.dir;
    } catch {
      // Unreadable or unparsable: the default directory.
    }
  }
  const dataDir = resolve(dataDirOpt ?? (typeof storageDir === "string" ? storageDir : DEFAULT_DATA_DIR));
  let lastGood: LastGood | null;
  try {
    lastGood = loadLastGood(dataDir);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return null;
  }
  if (lastGood === null) return null;
  // Only the copy of this very file: a directory shared by another site file (a test site, the file
  // renamed or a second unit pointed at the same --data-dir) holds that one's copy, and running it
  // would serve another site's devices and operators under this file's name.
  if (!sameFile(lastGood.source, file)) {
    process.stderr.write(
      `last good configuration ${lastGood.file} is of another site file (${lastGood.source}), not of ${resolve(file)}: not used\n`,
    );
    return null;
  }
  // The operator sees what config check says, then that the gateway runs anyway.
  process.stderr.write(`${error.message}\nstarting on the last good configuration ${lastGood.file}\n`);
  return {
    error,
    problems: error.message
      .split("\n")
      .slice(1)
      .map((l) => l.trim()),
    lastGood,
    dataDir,
  };
}

/** Whether two paths name the same file: the same absolute path, or the same file once links are followed. */
function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

function report(dataDir: string, r: ReloadReport, logger: Logger): void {
  try {
    writeReloadReport(dataDir, r);
  } catch (err) {
    logger.warn({ err, dataDir }, "cannot write the reload report");
  }
}

interface ReloadOptions {
  config?: string;
  dataDir?: string;
  timeout: number;
}

/**
 * `linli reload`: checks the running gateway's file as `config check` does
 * (exit 2 if invalid, nothing sent), sends SIGHUP, waits for the gateway's
 * report and prints it. Exit 0 applied, 2 refused, 1 no gateway or no answer.
 * The pid file is looked for where `start` wrote it: --data-dir, else the
 * storage.dir of --config, else .linli-data.
 */
async function reload(opts: ReloadOptions): Promise<void> {
  let storageDir: string | undefined;
  if (opts.config !== undefined && opts.dataDir === undefined) {
    try {
      storageDir = loadConfigFile(opts.config).storage.dir;
    } catch (err) {
      fail(err);
    }
  }
  const given = opts.dataDir ?? storageDir ?? DEFAULT_DATA_DIR;
  const from =
    opts.dataDir !== undefined
      ? "--data-dir"
      : storageDir !== undefined
        ? `storage.dir of ${opts.config}`
        : "the default";
  const dataDir = resolve(given);
  const info = readPidFile(dataDir);
  if (!info)
    fail(
      new Error(
        `no running gateway found: ${dataDir}/linli.pid is missing (data directory from ${from}; give the gateway's --data-dir DIR, or --config FILE when its storage.dir names it)`,
      ),
    );
  if (opts.config !== undefined && info.config !== null && info.config !== resolve(opts.config))
    fail(
      new Error(
        `the gateway (pid ${info.pid}) in ${dataDir} runs ${info.config}, not ${resolve(opts.config)}; not signalled`,
      ),
    );
  const alive = isLinliProcess(info.pid);
  if (!alive.ok)
    fail(new Error(`${dataDir}/linli.pid names pid ${info.pid}, which ${alive.reason}; not signalled`));
  if (!info.config)
    fail(new Error(`the gateway (pid ${info.pid}) runs the demo: there is no configuration file to reload`));
  try {
    loadConfigFile(info.config);
  } catch (err) {
    fail(err);
  }
  const before = readReloadReport(dataDir);
  // Started before the signal: it notes the time of sending (its first look runs synchronously).
  const answer = awaitReloadReport(dataDir, info.pid, before, opts.timeout * 1000);
  process.kill(info.pid, "SIGHUP");
  const r = await answer;
  if (r === null)
    fail(
      new Error(`sent SIGHUP to pid ${info.pid}; no report within ${opts.timeout} s (see the gateway's log)`),
    );
  process.stdout.write(describeReport(r));
  process.exit(r.result === "applied" ? 0 : 2);
}

function describeReport(r: ReloadReport): string {
  if (r.result === "refused")
    return `${r.config ?? "(demo)"}: refused by the gateway (pid ${r.pid}); running configuration kept\n${r.message ?? ""}\n`;
  const lines = [`${r.config}: applied by the gateway (pid ${r.pid})`];
  const c = r.changes as Record<string, Record<string, unknown[]> | unknown[] | string | null>;
  for (const section of ["devices", "households", "operators", "buses"]) {
    const parts = Object.entries((c[section] as Record<string, unknown[]>) ?? {})
      .filter(([, v]) => v.length > 0)
      .map(
        ([k, v]) =>
          `${k} ${v.map((x) => (typeof x === "string" ? x : `${(x as { id: string }).id} (${(x as { fields: string[] }).fields.join(", ")})`)).join(", ")}`,
      );
    if (parts.length > 0) lines.push(`  ${section}: ${parts.join("; ")}`);
  }
  // A gateway before 0.13.38 reports no `site`.
  if (((c.site as string[] | undefined) ?? []).length > 0)
    lines.push(`  site: ${(c.site as string[]).join(", ")}`);
  if ((c.alerts as unknown[]).length > 0)
    lines.push(`  alert settings: ${(c.alerts as string[]).join(", ")}`);
  if (c.logLevel) lines.push(`  log level: ${c.logLevel}`);
  // A model change is a replacement, not a removal: said apart (a gateway before 0.13.39 does not tell them apart).
  const replaced = r.replacedAlerts ?? 0;
  const removed = (r.closedAlerts ?? 0) - replaced;
  if (removed > 0) lines.push(`  alerts closed (device or household removed): ${removed}`);
  if (replaced > 0) lines.push(`  alerts closed (device replaced by another model): ${replaced}`);
  for (const m of r.moved ?? []) lines.push(`  ${describeMove(m)}`);
  if (r.disconnected) lines.push(`  connections closed (removed, or password changed): ${r.disconnected}`);
  if (r.certificates?.reloaded)
    lines.push(`  TLS certificates re-read: ${r.certificates.reloaded} listener(s)`);
  for (const f of r.certificates?.failed ?? []) lines.push(`  TLS certificate NOT reloaded (kept): ${f}`);
  if (r.secrets?.reloaded) lines.push(`  secret files re-read: ${r.secrets.reloaded} (metrics.auth)`);
  for (const f of r.secrets?.failed ?? [])
    lines.push(`  secret file NOT reloaded (current secret kept): ${f}`);
  if (lines.length === 1) lines.push("  nothing to change");
  if (r.restartNeeded?.length)
    lines.push(`  needs a restart (running values kept): ${r.restartNeeded.join(", ")}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Commander's own exits: --help and --version 0, a usage error 2 (README: "2 a bad option"),
 * a missing command included (commander shows the help and exits 1).
 */
function commanderExit(err: CommanderError): never {
  process.exit(err.exitCode === 0 ? 0 : 2);
}

// Set before any subcommand is added: each copies it.
const program = new Command()
  .name("linli")
  .description("Linli edge gateway for smart-community safety devices")
  .version(linliVersion(), "-V, --version", "print the version and exit")
  .exitOverride(commanderExit)
  .showHelpAfterError();

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
const LOG_FORMATS = ["auto", "json", "pretty"] as const;

program
  .command("start")
  .description("run the gateway")
  .option("-c, --config <file>", "site configuration (YAML)")
  // The demo's simulated devices and banner belong to its own site: with a user's file they were all refused.
  .addOption(
    new Option("--demo", "run with a simulated community on 127.0.0.1 (no config file needed)").conflicts(
      "config",
    ),
  )
  .option("--mqtt-port <port>", "override the port of the first MQTT listener", port)
  .option(
    "--metrics-port <port>",
    "override metrics.port (0 picks a free port; the demo uses 9464, or a free port when 9464 is taken)",
    port,
  )
  .option(
    "--console-port <port>",
    "override console.port, the operators' browser console (0 picks a free port)",
    port,
  )
  .option(
    "--data-dir <dir>",
    "state directory: the journal (alerts and state across restarts), pid file, reload reports (default: storage.dir, else .linli-data)",
  )
  .addOption(new Option("--log-level <level>", "override log.level").choices(LOG_LEVELS))
  .addOption(
    new Option("--log-format <format>", "override log.format (auto: pretty on a terminal)").choices(
      LOG_FORMATS,
    ),
  )
  .action((opts: StartOptions) => start(opts).catch(fail));

program
  .command("reload")
  .description(
    "apply the running gateway's changed configuration file without a restart (checks it first; exit 2 if invalid)",
  )
  .option("-c, --config <file>", "the running gateway's site file: its storage.dir gives the data directory")
  .option(
    "--data-dir <dir>",
    "the running gateway's --data-dir (default: storage.dir of --config, else .linli-data)",
  )
  .option("--timeout <seconds>", "how long to wait for the gateway's report", int("timeout", 1, 600), 10)
  .action((opts: ReloadOptions) => reload(opts).catch(fail));

const configCmd = program.command("config").description("configuration tools");
configCmd
  .command("check")
  .description("validate a configuration file without starting; exit status 2 if it is invalid")
  .argument("<file>")
  .action(async (file: string) => {
    try {
      const c = loadConfigFile(file);
      for (const w of configWarnings(c)) process.stderr.write(`${file}: warning: ${w}\n`);
      // This shell's limit: under systemd, LimitNOFILE= of the unit is the one that counts (the start warns with it).
      const fds = fdLimitWarning(c);
      if (fds !== null) process.stderr.write(`${file}: warning: ${fds}\n`);
      const plain = plainTextPasswordWarning(c);
      if (plain !== null) process.stderr.write(`${file}: warning: ${plain}\n`);
      const readable = siteFileWarning(file, c);
      if (readable !== null) process.stderr.write(`${file}: warning: ${readable}\n`);
      for (const w of await weakPasswordWarnings(c)) process.stderr.write(`${file}: warning: ${w}\n`);
      process.stdout.write(
        `${file}: ok (site ${c.site.id}, ${c.devices.length} devices, ${c.households.length} households, ${c.operators.length} operators)\n`,
      );
    } catch (err) {
      fail(err);
    }
  });
configCmd
  .command("schema")
  .description("print the JSON Schema of the configuration format (for editors)")
  .action(() => {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

program
  .command("passwd")
  .description(
    "print a salted scrypt hash of a password for the configuration (password read from stdin, or asked for without echo)",
  )
  .option(
    "--cost <log2N>",
    "scrypt cost as log2 of N: 14 (default) for people's passwords; 10 is enough for long random device secrets",
    int("cost", 10, 15),
    DEFAULT_LOG2_N,
  )
  .action(async (o: { cost: number }) => {
    try {
      const password = await readPassword(process.stdin, process.stderr);
      process.stdout.write(`${await hashPassword(password, { log2N: o.cost })}\n`);
    } catch (err) {
      fail(err);
    }
  });

function int(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}-${max}`);
    return n;
  };
}

interface ReadOptions {
  serial?: string;
  tcp?: string;
  baud: number;
  parity: "even" | "odd" | "none";
  stopBits: number;
  unit: number;
  fn: number;
  address: number;
  count: number;
  timeout: number;
}

const modbusCmd = program.command("modbus").description("Modbus tools for integrators");
modbusCmd
  .command("read")
  .description(
    "read registers from a live device and print every interpretation (word orders, signed, float)",
  )
  .option("--serial <path>", "serial port or pty, e.g. /dev/ttyUSB0")
  .option("--tcp <host:port>", "Modbus TCP endpoint, e.g. 192.168.1.20:502")
  .option("--baud <rate>", "serial speed", int("baud", 1200, 921600), 9600)
  .option("--parity <parity>", "even | odd | none", "even")
  .option("--stop-bits <n>", "1 | 2", int("stop bits", 1, 2), 1)
  .option("--unit <id>", "slave / unit id", int("unit", 0, 255), 1)
  .option("--fn <code>", "3 holding registers | 4 input registers", int("fn", 3, 4), 3)
  .option("--address <n>", "first register (0-based protocol address)", int("address", 0, 65535), 0)
  .option("--count <n>", "how many registers (1-125)", int("count", 1, 125), 1)
  .option("--timeout <ms>", "reply timeout", int("timeout", 10, 60000), 1000)
  .action(async (o: ReadOptions) => {
    if (!o.serial === !o.tcp)
      usage("linli modbus read: give exactly one of --serial PATH or --tcp HOST:PORT");
    if (!["even", "odd", "none"].includes(o.parity)) usage("--parity must be even, odd or none");
    let target: Parameters<typeof modbusRead>[0];
    const common = {
      unit: o.unit,
      fn: o.fn as 3 | 4,
      address: o.address,
      count: o.count,
      timeoutMs: o.timeout,
    };
    if (o.tcp) {
      const m = /^(.+):(\d+)$/.exec(o.tcp);
      if (!m) usage("--tcp must be HOST:PORT");
      target = { tcp: { host: m[1] as string, port: Number(m[2]) }, ...common };
    } else {
      target = {
        serial: {
          path: o.serial as string,
          baudRate: o.baud,
          parity: o.parity,
          stopBits: o.stopBits as 1 | 2,
        },
        ...common,
      };
    }
    try {
      const r = await modbusRead(target);
      process.stdout.write(`${formatInterpretations(r.words, r.address)}\n`);
    } catch (err) {
      const said = readFailureText(err, o.tcp ? { tcp: o.tcp } : { serial: o.serial as string }, o.unit);
      if (said === null) fail(err);
      process.stderr.write(`${said}\n`);
      process.exit(1);
    }
  });

/** `linli sim`: options only; the simulator itself lives in sim/ (sim/cli.ts). */
function simCommand(parent: Command): void {
  const collect = (v: string, prev: string[]) => [...prev, v];
  parent
    .command("sim")
    .description(
      "attach simulated devices to a gateway over the real protocols; run a scenario and judge its alerts",
    )
    .option(
      "--gateway <url>",
      "mqtt://, mqtts://, ws:// or wss:// address of the gateway",
      "mqtt://127.0.0.1:1883",
    )
    .option("-c, --config <file>", "attach every device of this site configuration (with its credentials)")
    .option("--scale <n>", "N synthetic households (EC-200 + DS-10 each)", int("scale", 1, 100_000))
    .option("--write-config <file>", "with --scale: write the site configuration the gateway needs")
    .option("--stations <n>", "with --scale: MFS-8 fire stations on a socat pty bus", int("stations", 0, 247))
    .option("--kiosks <n>", "with --scale: GK-3 kiosks on Modbus TCP (127.0.0.1)", int("kiosks", 0, 100))
    .option(
      "--kiosk-port <port>",
      "with --kiosks: the first kiosk's port, the others on the next ones (default: free ports)",
      int("kiosk-port", 1, 65535),
    )
    .option(
      "--kitchens <n>",
      "with --scale: GD-2 gas detectors in the first N kitchens (default: what the scenario needs)",
      int("kitchens", 0, 100_000),
    )
    .option(
      "--tanks <n>",
      "with --scale: LV-4 water tanks on the socat pty bus (default: what the scenario needs)",
      int("tanks", 0, 200),
    )
    .option("--bus <id=path>", "the simulator's end of an RTU bus of the site (repeatable)", collect, [])
    .option("--scenario <name|file>", "run a scenario (see --list-scenarios) and judge the alerts")
    .option("--list-scenarios", "list the shipped scenarios")
    .option("--seed <n>", "seed: same seed, same devices and same run", int("seed", 0, 2 ** 31 - 1), 1)
    .option("--json <file>", "write the report as JSON")
    .option(
      "--gateway-cmd <cmd>",
      "start (and restart) the gateway with this command; {config} is the site file",
    )
    .option("--gateway-log <file>", "with --gateway-cmd: append the gateway's output here")
    .option(
      "--operator <name>",
      "with --config: operator login of the site to read alerts with (default: the first)",
    )
    .option("--ca <file>", "TLS: CA certificate of the gateway")
    .option("--cert <file>", "TLS: client certificate")
    .option("--key <file>", "TLS: client key")
    .option("--insecure", "TLS: accept any server certificate (test gateways only)")
    .option(
      "--metrics <url>",
      "the gateway's /metrics, read before and after a scenario for what it dropped (default: the site file's, else http://127.0.0.1:9464/metrics for a gateway on this machine)",
    )
    .option("--no-ack", "leave the alerts the scenario caused unacknowledged")
    .option(
      "--duration <seconds>",
      "without --scenario: stay attached this long",
      int("duration", 1, 86_400 * 7),
    )
    .addHelpText(
      "after",
      "\nExit status: 0 passed (or, without --scenario, every device attached), 1 an expectation failed\n" +
        "or a device could not connect (a FAIL line says which), 2 a bad option, site file or scenario\n" +
        "(or more devices than the open-file limit, ulimit -n, lets it hold: a socket each; or\n" +
        "--stations or --tanks without socat), " +
        "3 the gateway could not be reached\n(no device connected), 130 a second Ctrl-C.",
    )
    .action(async (o: SimOptions) => {
      process.exitCode = await (await import("../sim/index.js")).runSim(o);
    });
}
simCommand(program);

// A reader that stops early (`linli config schema | head`) closes the pipe: the rest of the
// output has nowhere to go, which is no failure of the command. Without a listener the EPIPE is
// an uncaught exception with a stack trace. Node ignores SIGPIPE, so the writes that follow are
// dropped (a destroyed stream does not emit again) and the command ends with its own exit code
// (a `sim` run still undoes its incidents). Any other error on stdout is still thrown.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
});

program.parseAsync(process.argv).catch(fail);
