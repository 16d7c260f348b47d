/**
 * What a valid configuration may still get wrong on this machine: warnings
 * for `linli config check`, never errors (the file may be checked on another
 * box than the one it runs on, and a USB adapter may be plugged in later).
 */
import { existsSync } from "node:fs";
import type { Config } from "./schema.js";

export function configWarnings(config: Config, exists: (path: string) => boolean = existsSync): string[] {
  const out: string[] = [];
  config.buses.forEach((b, i) => {
    if (!exists(b.path))
      out.push(
        `buses[${i}].path: serial device ${b.path} of bus ${b.id} does not exist here (adapter unplugged, or wrong path?)`,
      );
  });
  // The console is plain HTTP: beyond the box, operators' passwords would cross the LAN readable.
  const loopback = /^(127\.|::1$|localhost$)/;
  if (config.console.enabled && !loopback.test(config.console.host))
    out.push(
      `console.host: the operators' console on ${config.console.host}:${config.console.port} is plain HTTP; logins cross the network readable (keep 127.0.0.1, or put it behind TLS: docs/console.md)`,
    );
  return out;
}
