/**
 * The simulator's view of a site: which devices to attach, with which
 * credentials, and which operator login reads the alerts. Read from a site
 * configuration file with the simulator's own schema (only the fields it
 * needs, everything else passes), so the simulator never borrows the
 * gateway's configuration code; or generated for `--scale N` households,
 * written out as a configuration the gateway accepts.
 */
import { readFileSync } from "node:fs";
import { Document, isScalar, LineCounter, parseDocument, type YAMLMap } from "yaml";
import { z } from "zod";
import { formatPath, type PathKey, yamlLine } from "../core/index.js";
import { communityDevices, demoCredentials } from "./community/community.js";
import type { Encoding } from "./mqtt/codec.js";
import { deriveSeed, randomInt, seededRandom } from "./mqtt/random.js";

export type MqttModel = "ec200" | "ds10" | "gd2";
export type PolledModel = "mfs8" | "gk3" | "lv4";

export interface MqttDeviceSpec {
  id: string;
  model: MqttModel;
  password: string;
  household?: string;
  heartbeatIntervalS: number;
  /** DS-10 hold-open time, s (DOOR_HELD_OPEN after it). */
  holdOpenTimeS?: number;
  /** GD-2: the site has the gateway close the valve itself on a leak (written to a generated config). */
  autoShutOff?: boolean;
  encoding: Encoding;
  clockSkewMs: number;
}

export interface RtuDeviceSpec {
  id: string;
  model: "mfs8" | "lv4";
  bus: string;
  unit: number;
  pollIntervalS: number;
}

export interface TcpDeviceSpec {
  id: string;
  model: "gk3";
  host: string;
  port: number;
  unit: number;
  pollIntervalS: number;
}

export interface BusSpec {
  id: string;
  /** The gateway's end of the line (the simulator needs its own end: `--bus ID=PATH`). */
  path: string;
  baudRate: number;
  parity: "even" | "odd" | "none";
  stopBits: 1 | 2;
}

export interface SiteModel {
  /** Where it came from, for messages: a file name, `--scale N` or `demo`. */
  source: string;
  siteId: string;
  operator: { name: string; password: string };
  households: string[];
  mqtt: MqttDeviceSpec[];
  rtu: RtuDeviceSpec[];
  tcp: TcpDeviceSpec[];
  buses: BusSpec[];
  /** Welfare period, s (WELFARE_CHECK after this long without activity). */
  welfarePeriodS: number;
  /** Households whose welfare checks the file sets apart (`households[].welfare`), by id. */
  householdWelfare?: Record<string, { enabled: boolean; periodS?: number; quietHours?: string }>;
  emergencyCallWindowS: number;
  /**
   * The file's `limits.deviceRate` (docs/security.md "Limits"): off, or per-model rates that replace
   * the documented defaults (scenario/device-rate.ts); absent: the defaults.
   */
  deviceRate?: { enabled: boolean; models: Record<string, { perSecond: number; burst: number }> };
  /**
   * Where the file's gateway serves its counters (docs/metrics.md `metrics`): a URL of /metrics, or
   * why the simulator cannot read them (turned off, credentials asked). Absent: not said (defaults).
   */
  metrics?: { url: string } | { unreadable: string };
}

/** A household's welfare check as the gateway runs it: on or off, its period, its quiet hours. */
export function welfareOf(
  site: SiteModel,
  household: string,
): { enabled: boolean; periodS: number; quietHours?: string } {
  const own = site.householdWelfare?.[household];
  return {
    enabled: own?.enabled ?? true,
    periodS: own?.periodS ?? site.welfarePeriodS,
    ...(own?.quietHours ? { quietHours: own.quietHours } : {}),
  };
}

export class SiteError extends Error {}

/** "250ms", "300s", "10m", "24h", "2d" or a number of seconds (the configuration's duration format). */
export function parseDuration(v: unknown, fallbackS: number, where = "duration"): number {
  if (v === undefined || v === null) return fallbackS;
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(String(v).trim());
  if (!m)
    throw new SiteError(
      `${where}: expected a duration such as "300s", "10m" or "24h", got ${JSON.stringify(v)}`,
    );
  const n = Number(m[1]);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"];
  return n * unit;
}

/** The line of the deepest part of `path` a YAML text has (for messages: `file:line: field`). */
export function yamlLines(text: string): (path: readonly PropertyKey[]) => number | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  return (path) => yamlLine(doc, lines, path);
}

/** The validator's words for a wrong type, as the gateway's `config check` says it. */
function issueMessage(issue: z.core.$ZodIssue, value: unknown): string {
  if (issue.code !== "invalid_type") return issue.message;
  if (value === undefined) return "required";
  const got = typeof value === "string" ? `the string ${JSON.stringify(value)}` : JSON.stringify(value);
  return `must be ${/^[aeiou]/.test(issue.expected) ? "an" : "a"} ${issue.expected}, got ${got}`;
}

const durationField = z.union([z.number().nonnegative(), z.string()]).optional();

const siteFile = z.looseObject({
  site: z.looseObject({ id: z.string().min(1) }),
  operators: z.array(z.looseObject({ name: z.string().min(1), password: z.string().min(1) })).default([]),
  households: z
    .array(
      z.looseObject({
        id: z.string().min(1),
        welfare: z
          .looseObject({
            enabled: z.boolean().optional(),
            period: durationField,
            quietHours: z.string().optional(),
          })
          .optional(),
      }),
    )
    .default([]),
  devices: z
    .array(
      z.looseObject({
        id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "1-32 of [A-Za-z0-9_-]"),
        model: z.enum(["ec200", "ds10", "gd2", "mfs8", "gk3", "lv4"]),
        password: z.string().optional(),
        household: z.string().optional(),
        heartbeatInterval: durationField,
        holdOpenTime: durationField,
        bus: z.string().optional(),
        unit: z.number().int().optional(),
        host: z.string().optional(),
        port: z.number().int().optional(),
        pollInterval: durationField,
      }),
    )
    .default([]),
  buses: z
    .array(
      z.looseObject({
        id: z.string(),
        type: z.string().optional(),
        path: z.string().optional(),
        baudRate: z.number().int().default(9600),
        parity: z.enum(["even", "odd", "none"]).default("even"),
        stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
      }),
    )
    .default([]),
  alerts: z.looseObject({ welfarePeriod: durationField, emergencyCallWindow: durationField }).optional(),
  limits: z
    .looseObject({
      deviceRate: z
        .looseObject({
          enabled: z.boolean().default(true),
          models: z
            .record(
              z.string(),
              z.looseObject({ perSecond: z.number().positive(), burst: z.number().int().min(1) }),
            )
            .default({}),
        })
        .optional(),
    })
    .optional(),
  metrics: z
    .looseObject({
      enabled: z.boolean().default(true),
      host: z.string().default("127.0.0.1"),
      port: z.number().int().default(9464),
      auth: z.unknown().optional(),
      tls: z.unknown().optional(),
    })
    .optional(),
});

/** The gateway's metrics endpoint as a site file gives it (docs/metrics.md), for the report's counters. */
function metricsOf(m: z.output<typeof siteFile>["metrics"], file: string): SiteModel["metrics"] {
  if (m === undefined) return undefined;
  if (!m.enabled) return { unreadable: `${file}: metrics.enabled is false` };
  if (m.auth !== undefined)
    return { unreadable: `${file}: metrics.auth asks credentials the simulator does not have` };
  if (m.port === 0) return { unreadable: `${file}: metrics.port is 0 (a free port picked at start)` };
  const host =
    m.host === "0.0.0.0" || m.host === "::" ? "127.0.0.1" : m.host.includes(":") ? `[${m.host}]` : m.host;
  return { url: `${m.tls !== undefined ? "https" : "http"}://${host}:${m.port}/metrics` };
}

/** `${NAME}` from the environment, as the gateway reads its file; a missing variable names the field. */
function substitute(value: unknown, path: PathKey[], where: (path: readonly PathKey[]) => string): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = process.env[name];
      if (v === undefined) throw new SiteError(`${where(path)}: environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, [...path, i], where));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v, [...path, k], where);
    return out;
  }
  return value;
}

/** Stable per-device encoding and clock skew, so a file-based site is as reproducible as a generated one. */
function deviceTraits(seed: number, id: string): { encoding: Encoding; clockSkewMs: number } {
  const rng = seededRandom(deriveSeed(seed, `traits:${id}`));
  return { encoding: rng() < 0.4 ? "cbor" : "json", clockSkewMs: randomInt(rng, -2_000, 2_000) };
}

/** Reads the devices, buses, operators and alert periods of a site configuration file. */
export function loadSiteFile(file: string, opts: { seed?: number; operator?: string } = {}): SiteModel {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new SiteError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const syntax = doc.errors[0];
  if (syntax)
    throw new SiteError(
      `${file}${syntax.linePos ? `:${syntax.linePos[0].line}` : ""}: YAML: ${syntax.message.split("\n")[0]}`,
    );
  const lineOf = (path: readonly PropertyKey[]) => yamlLine(doc, lineCounter, path);
  const where = (path: readonly PathKey[]) => {
    const line = lineOf(path);
    return `${file}${line ? `:${line}` : ""}: ${formatPath(path) || "(top)"}`;
  };
  const raw = substitute(doc.toJS(), [], where);
  const parsed = siteFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    let value: unknown = raw;
    for (const key of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
    throw new SiteError(`${where(issue.path as PathKey[])}: ${issueMessage(issue, value)}`);
  }
  const c = parsed.data;
  const seed = opts.seed ?? 1;
  const operator = opts.operator ? c.operators.find((o) => o.name === opts.operator) : c.operators[0];
  if (!operator)
    throw new SiteError(
      `${where(["operators"])}: ${opts.operator ? `no operator named ${opts.operator}` : "no operator login to read alerts with"}`,
    );
  const at = (i: number, field: string) => where(["devices", i, field]);
  const site: SiteModel = {
    source: file,
    siteId: c.site.id,
    operator: { name: operator.name, password: operator.password },
    households: c.households.map((h) => h.id),
    mqtt: [],
    rtu: [],
    tcp: [],
    buses: c.buses
      .filter((b) => (b.type ?? "rtu") === "rtu")
      .map((b) => ({
        id: b.id,
        path: b.path ?? "",
        baudRate: b.baudRate,
        parity: b.parity,
        stopBits: b.stopBits,
      })),
    welfarePeriodS: parseDuration(c.alerts?.welfarePeriod, 86_400, where(["alerts", "welfarePeriod"])),
    householdWelfare: Object.fromEntries(
      c.households.flatMap((h, i) =>
        h.welfare
          ? [
              [
                h.id,
                {
                  enabled: h.welfare.enabled ?? true,
                  ...(h.welfare.period !== undefined
                    ? {
                        periodS: parseDuration(
                          h.welfare.period,
                          0,
                          where(["households", i, "welfare", "period"]),
                        ),
                      }
                    : {}),
                  ...(h.welfare.quietHours ? { quietHours: h.welfare.quietHours } : {}),
                },
              ],
            ]
          : [],
      ),
    ),
    emergencyCallWindowS: parseDuration(
      c.alerts?.emergencyCallWindow,
      60,
      where(["alerts", "emergencyCallWindow"]),
    ),
    ...(c.limits?.deviceRate
      ? { deviceRate: { enabled: c.limits.deviceRate.enabled, models: c.limits.deviceRate.models } }
      : {}),
    ...(c.metrics ? { metrics: metricsOf(c.metrics, file) } : {}),
  };
  c.devices.forEach((d, i) => {
    if (d.model === "ec200" || d.model === "ds10" || d.model === "gd2") {
      if (!d.password) throw new SiteError(`${at(i, "password")}: an MQTT device needs its password`);
      const hb = { ec200: 300, ds10: 3600, gd2: 60 }[d.model];
      site.mqtt.push({
        id: d.id,
        model: d.model,
        password: d.password,
        household: d.household,
        heartbeatIntervalS: parseDuration(d.heartbeatInterval, hb, at(i, "heartbeatInterval")),
        holdOpenTimeS:
          d.model === "ds10" ? parseDuration(d.holdOpenTime, 600, at(i, "holdOpenTime")) : undefined,
        ...deviceTraits(seed, d.id),
      });
    } else if (d.model === "gk3") {
      if (!d.host) throw new SiteError(`${at(i, "host")}: a GK-3 needs its host`);
      site.tcp.push({
        id: d.id,
        model: "gk3",
        host: d.host,
        port: d.port ?? 502,
        unit: d.unit ?? 1,
        pollIntervalS: parseDuration(d.pollInterval, 10, at(i, "pollInterval")),
      });
    } else {
      if (!d.bus) throw new SiteError(`${at(i, "bus")}: a polled RTU device needs its bus`);
      if (d.unit === undefined) throw new SiteError(`${at(i, "unit")}: a polled RTU device needs its unit`);
      site.rtu.push({
        id: d.id,
        model: d.model,
        bus: d.bus,
        unit: d.unit,
        pollIntervalS: parseDuration(d.pollInterval, 2, at(i, "pollInterval")),
      });
    }
  });
  return site;
}

export interface ScaleOptions {
  households: number;
  seed?: number;
  /** The gateway's host and port, written as its listener. */
  host: string;
  port: number;
  siteId?: string;
  /** Fire stations on one RS-485 bus (`--stations`), default 0; the bus path is the gateway's end of a pty. */
  stations?: number;
  busPath?: string;
  /** GK-3 kiosks on Modbus TCP, each on `kioskPorts[i]` of 127.0.0.1. */
  kioskPorts?: number[];
  /** GD-2 gas detectors in the kitchens of the first N households (`--kitchens`), default 0. */
  kitchens?: number;
  /** LV-4 fire-water tanks on the stations' RS-485 bus (`--tanks`), default 0. */
  tanks?: number;
  /** Welfare period, s (a scenario's `scale.welfarePeriod`), default 24 h. */
  welfarePeriodS?: number;
}

export const SCALE_OPERATOR = { name: "sim-operator", password: "sim-operator" };

/**
 * N synthetic households (an EC-200 and a DS-10 each, the community's table
 * for the seed, demo credentials), heartbeats at datasheet defaults, a hold
 * time of 60 s (so door-held-open scenarios finish) and the default welfare period (or the
 * scenario's, `welfarePeriodS`).
 */
export function scaleSite(o: ScaleOptions): SiteModel {
  const table = communityDevices({
    households: o.households,
    seed: o.seed ?? 1,
    credentials: demoCredentials,
    heartbeatScale: 1,
  });
  const stations = o.stations ?? 0;
  const tanks = o.tanks ?? 0;
  const kitchens = Math.min(o.kitchens ?? 0, table.households.length);
  if (stations + tanks > 247)
    throw new SiteError("stations and tanks share one RS-485 bus: at most 247 slaves");
  const width = Math.max(2, String(o.households).length);
  return {
    source: `--scale ${o.households}`,
    siteId: o.siteId ?? "sim",
    operator: { ...SCALE_OPERATOR },
    households: table.households.map((h) => h.id),
    mqtt: table.devices
      .map(
        (d): MqttDeviceSpec => ({
          id: d.id,
          model: d.model,
          password: d.password,
          household: d.household,
          heartbeatIntervalS: d.heartbeatIntervalS,
          holdOpenTimeS: d.model === "ds10" ? 60 : undefined,
          encoding: d.encoding,
          // Badly set clocks are a scenario's business ("clock skew"), not the default fleet's.
          clockSkewMs: Math.max(-2_000, Math.min(2_000, d.clockSkewMs)),
        }),
      )
      .concat(
        // A kitchen's detector belongs to its household (datasheet), JSON only; the site has the
        // gateway close the valve on a leak too (the datasheet's "if the site enables it").
        table.households.slice(0, kitchens).map((h, i): MqttDeviceSpec => {
          const id = `gas-${String(i + 1).padStart(width, "0")}`;
          return {
            id,
            model: "gd2" as const,
            password: demoCredentials(id),
            household: h.id,
            heartbeatIntervalS: 60,
            autoShutOff: true,
            encoding: "json" as const,
            clockSkewMs: 0,
          };
        }),
      ),
    rtu: [
      ...Array.from({ length: stations }, (_, i) => ({
        id: `fire-station-${i + 1}`,
        model: "mfs8" as const,
        bus: "rs485-1",
        unit: i + 1,
        pollIntervalS: 1,
      })),
      // The LV-4 shares the stations' bus as another slave (datasheet), polled every second
      // (its jump filter compares polls a second apart).
      ...Array.from({ length: tanks }, (_, i) => ({
        id: `tank-${i + 1}`,
        model: "lv4" as const,
        bus: "rs485-1",
        unit: stations + i + 1,
        pollIntervalS: 1,
      })),
    ],
    tcp: (o.kioskPorts ?? []).map((port, i) => ({
      id: `kiosk-${i + 1}`,
      model: "gk3" as const,
      host: "127.0.0.1",
      port,
      unit: 1,
      pollIntervalS: 2,
    })),
    buses:
      stations + tanks > 0
        ? [{ id: "rs485-1", path: o.busPath ?? "/dev/ttyUSB0", baudRate: 9600, parity: "even", stopBits: 1 }]
        : [],
    // Scenario residents only press and fall: no welfare check may fire while a gateway runs for
    // hours, unless a welfare scenario shortens the period and drives every door itself.
    welfarePeriodS: o.welfarePeriodS ?? 86_400,
    emergencyCallWindowS: 60,
  };
}

/** The gateway configuration for a generated site (YAML text), with its listener on host:port. */
export function siteConfigYaml(
  site: SiteModel,
  host: string,
  port: number,
  notes: { buses?: string } = {},
): string {
  const config = {
    site: { id: site.siteId, name: `Simulated community (${site.source})` },
    mqtt: { listeners: [{ host, port }], maxConnections: Math.max(1000, site.mqtt.length + 100) },
    operators: [site.operator],
    households: site.households.map((id) => ({ id })),
    devices: [
      ...site.mqtt.map((d) => ({
        id: d.id,
        model: d.model,
        password: d.password,
        ...(d.household ? { household: d.household } : {}),
        heartbeatInterval: `${d.heartbeatIntervalS}s`,
        ...(d.holdOpenTimeS !== undefined ? { holdOpenTime: `${d.holdOpenTimeS}s` } : {}),
        ...(d.autoShutOff ? { autoShutOff: true } : {}),
      })),
      ...site.rtu.map((d) => ({
        id: d.id,
        model: d.model,
        bus: d.bus,
        unit: d.unit,
        pollInterval: `${d.pollIntervalS}s`,
      })),
      ...site.tcp.map((d) => ({
        id: d.id,
        model: d.model,
        host: d.host,
        port: d.port,
        pollInterval: `${d.pollIntervalS}s`,
        openingHours: "00:00-23:59",
      })),
    ],
    buses: site.buses.map((b) => ({
      id: b.id,
      type: "rtu",
      path: b.path,
      baudRate: b.baudRate,
      parity: b.parity,
      stopBits: b.stopBits,
    })),
    alerts: {
      welfarePeriod: `${site.welfarePeriodS}s`,
      emergencyCallWindow: `${site.emergencyCallWindowS}s`,
    },
    limits: { login: simLoginLimits(site.mqtt.length) },
  };
  const doc = new Document(config);
  const limits = (doc.contents as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === "limits");
  if (limits && isScalar(limits.key)) limits.key.commentBefore = SIM_LOGIN_COMMENT;
  const buses = (doc.contents as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === "buses");
  if (notes.buses && buses && isScalar(buses.key))
    buses.key.commentBefore = notes.buses
      .split("\n")
      .map((l) => ` ${l}`)
      .join("\n");
  return `# Generated by linli sim (${site.source}); demo credentials, loopback only.\n${doc.toString()}`;
}

/** The gateway's per-address login limit by default (docs/security.md, limits): 20/s, burst 200. */
const LOGIN_DEFAULT = { attemptsPerSecond: 20, attemptBurst: 200 };

const SIM_LOGIN_COMMENT = [
  " Every simulated device connects from the simulator's one address; a real site's devices",
  " come from many (base stations, gateways). The default per-address limit (20/s, burst 200)",
  " would refuse most of the fleet: here the whole fleet may connect, or reconnect after a",
  " gateway restart, at once. Do not copy this to a site with devices on the network.",
].join("\n");

/** Login limits for one address that holds every simulated MQTT device (and the operator). */
export function simLoginLimits(mqttDevices: number): { attemptsPerSecond: number; attemptBurst: number } {
  return {
    attemptsPerSecond: Math.max(LOGIN_DEFAULT.attemptsPerSecond, mqttDevices),
    attemptBurst: Math.max(LOGIN_DEFAULT.attemptBurst, mqttDevices + 100),
  };
}

/**
 * The demo gateway (`linli start --demo`): its README-published operator and
 * the pendant it leaves for a person to press (every other demo device is
 * already emulated by the demo itself; a second client with the same id
 * would keep taking its session).
 */
export function demoSite(): SiteModel {
  return {
    source: "demo",
    siteId: "demo",
    operator: { name: "operator", password: "demo-operator" },
    households: [],
    mqtt: [
      {
        id: "demo-pendant",
        model: "ec200",
        password: "demo-pendant",
        heartbeatIntervalS: 43_200,
        encoding: "json",
        clockSkewMs: 0,
      },
    ],
    rtu: [],
    tcp: [],
    buses: [],
    welfarePeriodS: 600,
    emergencyCallWindowS: 60,
  };
}
