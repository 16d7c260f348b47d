/**
 * What a valid configuration may still get wrong on this machine: warnings
 * for `linli config check`, never errors (the file may be checked on another
 * box than the one it runs on, and a USB adapter may be plugged in later).
 */
import { existsSync } from "node:fs";
import { isHashed } from "../broker/credentials.js";
import type { Config } from "./schema.js";

type TlsFilesConfig = NonNullable<Config["mqtt"]["listeners"][number]["tls"]>;

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
  // The device listener speaks plain MQTT: beyond the box, device passwords cross the LAN readable.
  const devices = config.mqtt?.deviceListener;
  if (devices !== undefined && devices.tls === undefined && !loopback.test(devices.host))
    out.push(
      `mqtt.deviceListener.host: the device listener on ${devices.host}:${devices.port} is plain MQTT; device passwords cross the network readable (give it tls: docs/security.md)`,
    );
  // Certificates are often installed after the file is written (and checked on another box).
  const tlsListeners: Array<readonly [string, TlsFilesConfig | undefined]> = (
    config.mqtt?.listeners ?? []
  ).map((l, i) => [`mqtt.listeners[${i}]`, l.tls] as const);
  if (devices?.tls) tlsListeners.push(["mqtt.deviceListener", devices.tls]);
  for (const [path, tls] of tlsListeners)
    for (const key of ["cert", "key", "ca"] as const) {
      const file = tls?.[key];
      if (file !== undefined && !exists(file))
        out.push(`${path}.tls.${key}: ${file} does not exist here (the gateway will not start without it)`);
    }
  return out;
}

/**
 * Accounts whose password is plain text in the configuration (docs/security.md
 * "Credentials": store `linli passwd` hashes instead). Names only, never a password.
 */
export function plainTextPasswordAccounts(config: Config): string[] {
  const plain = (p: string | undefined) => p !== undefined && !isHashed(p);
  return [
    ...config.operators.filter((o) => plain(o.password)).map((o) => o.name),
    ...config.devices.filter((d) => "password" in d && plain(d.password)).map((d) => d.id),
  ];
}

/** Accounts the warning names; a site of 10,000 devices with plain passwords made it a 130 KB log line. */
export const PLAIN_TEXT_NAMED_MAX = 10;

/**
 * The start-up warning about plain-text passwords, or null. Names the first PLAIN_TEXT_NAMED_MAX
 * accounts and counts the rest (`linli config check` does the same); never a password.
 */
export function plainTextPasswordWarning(config: Config): string | null {
  const plain = plainTextPasswordAccounts(config);
  if (plain.length === 0) return null;
  const more = plain.length - PLAIN_TEXT_NAMED_MAX;
  const named = plain.slice(0, PLAIN_TEXT_NAMED_MAX).join(", ") + (more > 0 ? ` and ${more} more` : "");
  return `plain-text passwords in the configuration for ${named}: store scrypt hashes instead (linli passwd, docs/security.md)`;
}
