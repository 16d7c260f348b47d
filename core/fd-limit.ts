/**
 * The soft limit on open files of this process (RLIMIT_NOFILE, `ulimit -n`, systemd's
 * LimitNOFILE=). Node has no API for it; Linux shows it in /proc/self/limits. Shared by the
 * gateway (its connection caps against it) and the simulator (its devices against it).
 */
import { readFileSync } from "node:fs";

/**
 * The soft limit ("Max open files" in /proc/self/limits; Node raised it to the hard limit at
 * start), Infinity when unlimited, undefined where there is no /proc (the checks are then skipped).
 */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/limits", "utf8");
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m) return undefined;
  return m[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(m[1]);
}
