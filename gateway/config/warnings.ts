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
  // The section is read by the browser console, which this version does not serve yet.
  if (config.console.enabled)
    out.push(
      `console.enabled: this version of linli has no browser console yet; nothing is served on ${config.console.host}:${config.console.port}`,
    );
  return out;
}
