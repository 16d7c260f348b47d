#!/usr/bin/env node
/**
 * The `linli` command line (a public contract, docs/cli.md):
 *   linli start [--config FILE | --demo] [--mqtt-port N] [--log-level L] [--log-format F]
 *   linli config check FILE
 *   linli config schema
 */
import { Command, InvalidArgumentError } from "commander";
import {
  DEMO_HOUSEHOLDS,
  DEMO_OPERATOR,
  DEMO_SITE,
  demoConfig,
  HAND_PENDANT,
  startDemoCommunity,
} from "./cli/demo.js";
import { ConfigError, loadConfigFile, validateConfig } from "./config/load.js";
import { type Config, configJsonSchema } from "./config/schema.js";
import { Gateway } from "./gateway.js";
import { createLogger } from "./log.js";

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

interface StartOptions {
  config?: string;
  demo?: boolean;
  mqttPort?: number;
  logLevel?: Config["log"]["level"];
  logFormat?: Config["log"]["format"];
}

async function start(opts: StartOptions): Promise<void> {
  if (!opts.config && !opts.demo)
    fail(new Error("linli start: give --config FILE, or --demo for the simulated community"));
  let config: Config;
  try {
    config = opts.config
      ? loadConfigFile(opts.config)
      : validateConfig(demoConfig(opts.mqttPort ?? 1883), "(demo)");
  } catch (err) {
    fail(err);
  }
  if (opts.logLevel) config.log.level = opts.logLevel;
  if (opts.logFormat) config.log.format = opts.logFormat;
  const logger = createLogger({ level: config.log.level, format: config.log.format });

  // The gateway must outlive any stray promise: log it, count it, keep serving.
  let unhandled = 0;
  process.on("unhandledRejection", (reason) => {
    unhandled++;
    logger.error({ err: reason, unhandled }, "unhandled promise rejection (kept running)");
  });

  let gateway: Gateway;
  try {
    gateway = await Gateway.start({ config, logger, mqttPort: opts.mqttPort });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE") {
      fail(
        new Error(
          `MQTT port ${opts.mqttPort ?? config.mqtt.listeners[0]?.port} is already in use; choose another with --mqtt-port`,
        ),
      );
    }
    fail(err);
  }

  let community: ReturnType<typeof startDemoCommunity> | null = null;
  if (opts.demo) {
    const p = gateway.mqttPort;
    community = startDemoCommunity(p);
    const started = await community.start();
    process.stderr.write(
      [
        "",
        `Linli demo: ${DEMO_HOUSEHOLDS} simulated households (${started.connected} devices connected) on mqtt://127.0.0.1:${p}`,
        "Watch alerts as an operator:",
        `  mosquitto_sub -h 127.0.0.1 -p ${p} -u ${DEMO_OPERATOR.name} -P ${DEMO_OPERATOR.password} -t 'linli/${DEMO_SITE}/alerts/#' -v`,
        "Press the demo pendant's button by hand:",
        `  mosquitto_pub -h 127.0.0.1 -p ${p} -u ${HAND_PENDANT.id} -P ${HAND_PENDANT.password} -q 1 -t devices/ec200/${HAND_PENDANT.id}/up -m '{"t":"evt","seq":1042,"ts":1763798400123,"evt":"press","bat":87,"rssi":-71}'`,
        "Ctrl-C stops the gateway cleanly.",
        "",
      ].join("\n"),
    );
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    await community?.stop();
    await gateway.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

const program = new Command()
  .name("linli")
  .description("Linli edge gateway for smart-community safety devices")
  .showHelpAfterError();

program
  .command("start")
  .description("run the gateway")
  .option("-c, --config <file>", "site configuration (YAML)")
  .option("--demo", "run with a simulated community on 127.0.0.1 (no config file needed)")
  .option("--mqtt-port <port>", "override the port of the first MQTT listener", port)
  .option("--log-level <level>", "trace | debug | info | warn | error | fatal | silent")
  .option("--log-format <format>", "auto (pretty on a terminal) | json | pretty")
  .action((opts: StartOptions) => start(opts).catch(fail));

const configCmd = program.command("config").description("configuration tools");
configCmd
  .command("check")
  .description("validate a configuration file without starting; exit status 2 if it is invalid")
  .argument("<file>")
  .action((file: string) => {
    try {
      const c = loadConfigFile(file);
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

program.parseAsync(process.argv).catch(fail);
