/**
 * The gateway's connection caps against the process's open-file limit (docs/security.md
 * "Limits"). Every cap bounds sockets, and so file descriptors: with several MQTT listeners at
 * 20,000 each, plus the console's and the metrics port's, the caps can add up past
 * RLIMIT_NOFILE (LimitNOFILE=65536 in deploy/linli.service). A flood then runs the process out
 * of descriptors before any cap refuses it: a pendant's reconnect, the journal's next file and a
 * serial port's reopen fail with EMFILE. A warning, not a refusal: a site far below its caps runs
 * fine, and the limit may be raised without touching the file.
 */
import { openFileLimit } from "../core/index.js";
import type { Config } from "./config/schema.js";
import { CONSOLE_MAX_CONNECTIONS } from "./console/server.js";
import { METRICS_MAX_CONNECTIONS } from "./metrics/server.js";

/**
 * Descriptors besides the caps and the counted links below: stdio, the journal's files and its
 * lock, the last-good copy, Node's own (event loop, worker threads' pipes, DNS), systemd-notify.
 */
export const FD_MARGIN = 128;

/** The caps and links, by the config field that sets each, and their sum. */
export function fdBudget(config: Config): { parts: [field: string, fds: number][]; total: number } {
  const parts: [string, number][] = [];
  const listeners = config.mqtt.listeners.length;
  const cap = config.mqtt.maxConnections;
  parts.push([
    listeners === 1
      ? "mqtt.listeners[0] (mqtt.maxConnections)"
      : `mqtt.listeners (${listeners} x mqtt.maxConnections ${cap})`,
    listeners * cap,
  ]);
  if (config.mqtt.deviceListener) parts.push(["mqtt.deviceListener (mqtt.maxConnections)", cap]);
  if (config.console.enabled) parts.push(["console", CONSOLE_MAX_CONNECTIONS]);
  // Partial configs (tests, other callers) may have no metrics section.
  if (config.metrics?.enabled) parts.push(["metrics", METRICS_MAX_CONNECTIONS]);
  // A serial port each; a Modbus TCP device (a kiosk) is a socket the gateway opens.
  const links =
    (config.buses?.length ?? 0) +
    (config.devices ?? []).filter((d) => "host" in d).length +
    (config.northbound?.upstream ? 1 : 0);
  parts.push(["margin (journal, serial ports, Modbus TCP devices, upstream, Node's own)", FD_MARGIN + links]);
  return { parts, total: parts.reduce((sum, [, n]) => sum + n, 0) };
}

/** Null when the caps fit the soft RLIMIT_NOFILE (or it cannot be read), else the warning. */
export function fdLimitWarning(
  config: Config,
  readLimit: () => number | undefined = () => openFileLimit(),
): string | null {
  const limit = readLimit();
  if (limit === undefined) return null;
  const { parts, total } = fdBudget(config);
  if (total <= limit) return null;
  const sum = parts.map(([field, n]) => `${field} ${n}`).join(" + ");
  return (
    `mqtt.maxConnections: the connection caps may need ${total} file descriptors (${sum}) but this process may open ${limit} ` +
    `(soft RLIMIT_NOFILE: ulimit -n, LimitNOFILE= under systemd): a connection flood would run it out of descriptors ` +
    `(EMFILE: pendants' reconnects, the journal's files) before the caps refuse it; raise the limit to ${total} or more, or lower mqtt.maxConnections (docs/security.md "Limits")`
  );
}
