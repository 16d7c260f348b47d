/**
 * What a valid configuration may still get wrong on this machine: warnings
 * for `linli config check`, never errors (the file may be checked on another
 * box than the one it runs on, and a USB adapter may be plugged in later).
 */
import { existsSync, statSync } from "node:fs";
import { profileFor } from "../../devices/index.js";
import { isHashed, parseSecret, scryptMatches } from "../broker/credentials.js";
import { DEFAULT_ROLE } from "../operator-roles.js";
import type { Config } from "./schema.js";

type TlsFilesConfig = NonNullable<Config["mqtt"]["listeners"][number]["tls"]>;

/** A file's permission bits, or null if it cannot be stat'ed (checked elsewhere). */
function modeOf(path: string): number | null {
  try {
    return statSync(path).mode;
  } catch {
    return null;
  }
}

export function configWarnings(
  config: Config,
  exists: (path: string) => boolean = existsSync,
  fileMode: (path: string) => number | null = modeOf,
): string[] {
  const out: string[] = [];
  // Without a role an operator may do everything, as before roles existed (0.13.25): said, so that
  // a site gives its duty desk `responder` and keeps device commands to its supervisors.
  (config.operators ?? []).forEach((o, i) => {
    if (o.role === undefined)
      out.push(
        `operators[${i}].role: operator ${o.name} has no role and so is a ${DEFAULT_ROLE}: every action, out of service and device commands (a GD-2's valve_open) included; give it viewer, responder or supervisor (docs/security.md "Operator roles")`,
      );
  });
  config.buses.forEach((b, i) => {
    if (!exists(b.path))
      out.push(
        `buses[${i}].path: serial device ${b.path} of bus ${b.id} does not exist here (adapter unplugged, or wrong path?)`,
      );
  });
  config.buses.forEach((b, i) => {
    const slow = slowestReplyOnBus(config, b.id);
    if (slow !== null && b.timeout < slow.ms)
      out.push(
        `buses[${i}].timeout: ${b.timeout} ms on bus ${b.id} is shorter than the ${slow.label} datasheet asks a master to wait for a reply (${slow.ms} ms): its replies would be called lost`,
      );
  });
  // A console without tls is plain HTTP: beyond the box, operators' passwords would cross the LAN readable.
  const loopback = /^(127\.|::1$|localhost$)/;
  if (config.console.enabled && config.console.tls === undefined && !loopback.test(config.console.host))
    out.push(
      `console.host: the operators' console on ${config.console.host}:${config.console.port} is plain HTTP; logins cross the network readable (give it tls, or keep 127.0.0.1: docs/console.md)`,
    );
  // /metrics tells anyone who asks the site's devices, alert counts, operators' activity and the
  // journal's state; beyond the box it needs credentials, and these need TLS not to be read off the wire.
  // Partial configs (tests, other callers) may have no metrics section.
  const m = config.metrics ?? { enabled: false, host: "127.0.0.1", port: 0 };
  if (m.enabled && !loopback.test(m.host)) {
    if (m.auth === undefined)
      out.push(
        `metrics.host: /metrics on ${m.host}:${m.port} is open to anyone who can reach it (device and alert counts, rejections, the journal's state); give it metrics.auth (a bearer token or basic auth from a file), or keep 127.0.0.1: docs/metrics.md`,
      );
    if (m.tls === undefined)
      out.push(
        `metrics.host: /metrics on ${m.host}:${m.port} is plain HTTP; ${m.auth === undefined ? "its figures cross" : "its credentials and figures cross"} the network readable (give it metrics.tls, or keep 127.0.0.1: docs/metrics.md)`,
      );
  }
  if (m.enabled && m.auth !== undefined) {
    const [key, file] =
      m.auth.type === "bearer" ? ["tokenFile", m.auth.tokenFile] : ["passwordFile", m.auth.passwordFile];
    if (!exists(file))
      out.push(`metrics.auth.${key}: ${file} does not exist here (the gateway will not start without it)`);
    else {
      const mode = fileMode(file);
      if (mode !== null && (mode & 0o077) !== 0)
        out.push(
          `metrics.auth.${key}: ${file} can be read by other users of this box (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
        );
    }
  }
  // The device listener speaks plain MQTT: beyond the box, device passwords cross the LAN readable.
  const devices = config.mqtt?.deviceListener;
  if (devices !== undefined && devices.tls === undefined && !loopback.test(devices.host))
    out.push(
      `mqtt.deviceListener.host: the device listener on ${devices.host}:${devices.port} is plain MQTT; device passwords cross the network readable (give it tls: docs/security.md)`,
    );
  // docs/security.md: "use TLS on any listener that is not 127.0.0.1" (passwords cross it readable).
  (config.mqtt?.listeners ?? []).forEach((l, i) => {
    if (l.tls === undefined && !loopback.test(l.host))
      out.push(
        `mqtt.listeners[${i}].host: the ${l.transport === "websocket" ? "MQTT-over-WebSocket" : "MQTT"} listener on ${l.host}:${l.port} has no TLS; passwords and alerts cross the network readable (give it tls, or keep it on 127.0.0.1: docs/security.md)`,
      );
  });
  // The upstream link carries the upstream password and alerts out, and operator requests in,
  // which the gateway acts on (docs/security.md): in plain text they can be read and forged.
  const up = config.northbound?.upstream;
  if (up !== undefined && /^(mqtt|tcp):/.test(up.url)) {
    const host = new URL(up.url).hostname.replace(/^\[(.*)\]$/, "$1");
    if (!loopback.test(host))
      out.push(
        `northbound.upstream.url: the upstream broker ${host} is reached without TLS; its password, the alerts and the operator requests the gateway takes from it (acknowledge, shelve, out of service) cross the network readable and forgeable (use mqtts://: docs/security.md)`,
      );
  }
  // Certificates are often installed after the file is written (and checked on another box).
  const tlsListeners: Array<readonly [string, TlsFilesConfig | undefined]> = (
    config.mqtt?.listeners ?? []
  ).map((l, i) => [`mqtt.listeners[${i}]`, l.tls] as const);
  if (devices?.tls) tlsListeners.push(["mqtt.deviceListener", devices.tls]);
  if (config.console.enabled && config.console.tls) tlsListeners.push(["console", config.console.tls]);
  if (m.enabled && m.tls) tlsListeners.push(["metrics", m.tls]);
  for (const [path, tls] of tlsListeners)
    for (const key of ["cert", "key", "ca"] as const) {
      const file = tls && key in tls ? tls[key] : undefined;
      if (file !== undefined && !exists(file))
        out.push(`${path}.tls.${key}: ${file} does not exist here (the gateway will not start without it)`);
    }
  return out;
}

/**
 * The site file's own permissions (docs/security.md "Threat model": whoever reads it has every
 * secret). A file written with the usual umask (022) is readable by every user of the box: its
 * passwords (plain, or hashes to guess at offline) and the upstream broker's. Null when the file
 * holds no secret, is not readable by others, or cannot be stat'ed.
 */
export function siteFileWarning(
  file: string,
  config: Config,
  fileMode: (path: string) => number | null = modeOf,
): string | null {
  const mode = fileMode(file);
  if (mode === null || (mode & 0o004) === 0) return null;
  const secrets =
    config.operators.some((o) => o.password !== undefined) ||
    config.devices.some((d) => "password" in d && d.password !== undefined) ||
    config.northbound?.upstream?.password !== undefined;
  if (!secrets) return null;
  return `${file} can be read by every user of this box (mode ${(mode & 0o777).toString(8)}) and holds passwords; chmod o-r it (docs/security.md)`;
}

/** The longest reply wait a device's datasheet asks for among the devices on a bus, with its model's label. */
function slowestReplyOnBus(config: Config, bus: string): { ms: number; label: string } | null {
  let slow: { ms: number; label: string } | null = null;
  // Partial configs (tests, other callers) may have no device list.
  for (const d of config.devices ?? []) {
    if (!("bus" in d) || d.bus !== bus) continue;
    const p = profileFor(d.model);
    const ms = p?.transport === "modbus" ? p.minReplyTimeoutMs : undefined;
    if (p && ms !== undefined && (slow === null || ms > slow.ms)) slow = { ms, label: p.label };
  }
  return slow;
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

/**
 * The demo's (`linli start --demo`) and `linli sim`'s well-known password for an account:
 * `demo-<username>` (operator / demo-operator, the pendants' demo-<id>; cli/demo.test.ts
 * checks every demo account against it). Published in the README: anyone can log in with it.
 */
export const demoPassword = (username: string) => `demo-${username}`;

/** Guessed first (plain text is compared with all of them; a hash with the first few). */
const COMMON = ["admin", "password", "123456", "12345678", "123456789", "111111", "000000", "qwerty"];
const COMMON_MORE = ["changeme", "secret", "letmein", "root", "linli", "admin123", "password1", "88888888"];
/** People's passwords shorter than this are trivial to guess online (login bans slow, never stop, that). */
export const MIN_PASSWORD_LENGTH = 8;
/** Candidates tried against each hash: scrypt costs 35 ms (cost 14) per candidate. */
const HASH_CANDIDATES = 5;
/**
 * scrypt work (N x r x p) spent on hashes at most: 64 verifications at the default cost,
 * 2-3 s of a small box's core. A site of 10,000 devices hashed at cost 10 would otherwise
 * take minutes; the accounts beyond it are counted, not checked.
 */
export const HASH_CHECK_BUDGET = 64 * 2 ** 14 * 8;

type Weakness = "demo" | "username" | "common" | "short";
const WHY: Record<Weakness, string> = {
  demo: "the demo's well-known password",
  username: "the user name",
  common: "a common password",
  short: `shorter than ${MIN_PASSWORD_LENGTH} characters`,
};

/**
 * Accounts whose password anyone could guess: the demo's well-known ones and trivial ones
 * (the user name, a common password, shorter than MIN_PASSWORD_LENGTH), plain text or hashed
 * (a hash is tried with a handful of candidates, within HASH_CHECK_BUDGET). Warnings for
 * `linli config check`; never a password in them.
 */
export async function weakPasswordWarnings(config: Config, budget = HASH_CHECK_BUDGET): Promise<string[]> {
  const accounts = [
    ...config.operators.map((o) => ({ name: o.name, password: o.password })),
    ...config.devices.map((d) => ({ name: d.id, password: "password" in d ? d.password : undefined })),
  ];
  const found: Array<{ name: string; why: Weakness }> = [];
  let unchecked = 0;
  let spent = 0;
  for (const { name, password } of accounts) {
    if (password === undefined) continue;
    const candidates: Array<[string, Weakness]> = [
      [demoPassword(name), "demo"],
      [name, "username"],
      ...COMMON.map((c) => [c, "common"] as [string, Weakness]),
    ];
    if (!isHashed(password)) {
      const hit =
        candidates.find(([c]) => c === password) ??
        (COMMON_MORE.includes(password.toLowerCase()) || COMMON.includes(password.toLowerCase())
          ? [password, "common"]
          : undefined);
      const why = hit?.[1] ?? ([...password].length < MIN_PASSWORD_LENGTH ? "short" : undefined);
      if (why) found.push({ name, why });
      continue;
    }
    const secret = parseSecret(password);
    if (secret.kind !== "scrypt") continue;
    const tried = candidates.slice(0, HASH_CANDIDATES);
    const cost = secret.N * secret.r * secret.p * tried.length;
    if (spent + cost > budget) {
      unchecked++;
      continue;
    }
    spent += cost;
    const matches = await Promise.all(
      tried.map(([c]) => scryptMatches(secret, Buffer.from(c, "utf8")).catch(() => false)),
    );
    const hit = tried.find((_, i) => matches[i]);
    if (hit) found.push({ name, why: hit[1] });
  }
  const out: string[] = [];
  for (const why of ["demo", "username", "common", "short"] as const) {
    const names = found.filter((f) => f.why === why).map((f) => f.name);
    if (names.length === 0) continue;
    const more = names.length - PLAIN_TEXT_NAMED_MAX;
    const named = names.slice(0, PLAIN_TEXT_NAMED_MAX).join(", ") + (more > 0 ? ` and ${more} more` : "");
    out.push(
      why === "demo"
        ? `passwords of ${named}: ${WHY.demo} (demo-<name>, printed in the README and by linli start --demo): anyone can log in; give each account its own (linli passwd, docs/security.md)`
        : `passwords of ${named}: ${WHY[why]}, trivial to guess; choose longer ones (linli passwd, docs/security.md)`,
    );
  }
  if (unchecked > 0)
    out.push(
      `hashed passwords of ${unchecked} account(s) not checked against the demo's and trivial passwords (the check's scrypt time is bounded)`,
    );
  return out;
}
