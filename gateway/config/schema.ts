/**
 * The site configuration format (a public contract: docs/configuration.md,
 * docs/config.schema.json). Unknown keys are errors, so a typo is named
 * instead of silently ignored.
 */
import { z } from "zod";
import {
  duration,
  durationOrZero,
  isTimeZone,
  label,
  optionalDuration,
  optionalDurationOrZero,
  password,
  topicId,
} from "../../core/index.js";
import {
  type AnyProfile,
  type DeclaredProfileDoc,
  declaredProfileSchema,
  deviceSchema,
  deviceSchemas,
  PROFILES,
} from "../../devices/index.js";
import { ALERT_CODES, LOCALES } from "../content/codes.js";
import { DEFAULT_ROLE, OPERATOR_ROLES } from "../operator-roles.js";
import { limitsSchema } from "./limits.js";

const file = z.string().min(1).meta({ description: "Path of a PEM file" });

const tlsFiles = z.strictObject({
  cert: file.meta({ description: "Server certificate (chain), PEM; re-read on reload" }),
  key: file.meta({ description: "Its private key, PEM; re-read on reload" }),
  ca: file.optional().meta({
    description:
      "CA of client certificates: a client whose verified certificate names its account (subject CN or a DNS subject alternative name equal to the device id or operator name) needs no password",
  }),
  minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2"),
});

const listener = z.strictObject({
  host: z
    .string()
    .default("127.0.0.1")
    .meta({ description: "Address to bind; 127.0.0.1 keeps the broker local" }),
  port: z.number().int().min(0).max(65535).default(1883),
  transport: z.enum(["mqtt", "websocket"]).default("mqtt").meta({
    description: "mqtt: MQTT on the socket; websocket: MQTT over WebSocket (browser consoles)",
  }),
  path: z
    .string()
    .regex(/^\/[^\s?#]*$/, 'must be a path such as "/mqtt"')
    .default("/mqtt")
    .meta({ description: "WebSocket listeners: the HTTP path" }),
  tls: tlsFiles.optional().meta({ description: "TLS on this listener (mqtts://, or wss:// for websocket)" }),
});

const operator = z.strictObject({
  name: topicId.meta({ description: "MQTT username of the operator; shown as ackedBy" }),
  password: password.optional(),
  role: z.enum(OPERATOR_ROLES).optional().meta({
    description:
      "What the operator may ask of the gateway (docs/security.md, Operator roles): viewer (reads only), responder (acknowledge, shelve, unshelve, away mode), supervisor (also out of service and device commands). Without it supervisor, as before roles existed; linli config check warns",
  }),
});

const welfare = z.strictObject({
  enabled: z.boolean().default(true),
  period: optionalDuration().meta({
    description: "No activity for this long raises WELFARE_CHECK; default alerts.welfarePeriod",
  }),
  quietHours: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, 'must look like "22:00-07:00"')
    .refine((v) => v.slice(0, 5) !== v.slice(6), "start and end must differ")
    .optional()
    .meta({
      description:
        "Local time (site.timezone) in which a due welfare check waits: it is raised when the quiet hours end",
    }),
});

/** Text shown to operators: one line, no control characters (it goes into one-line messages). */
/**
 * A phone number as an operator dials it: digits with an optional leading +,
 * spaces, dashes, parentheses and an extension ("ext." / "转"). The message
 * never echoes the value: it must not reach a log.
 */
const phone = z
  .string()
  .regex(
    /^\+?[0-9(][0-9 ()-]{2,30}((ext\.?|转) ?[0-9]{1,6})?$/,
    "must be a phone number: digits, optional leading +, spaces, dashes, parentheses (value not shown)",
  );

const household = z.strictObject({
  id: topicId,
  name: label(64)
    .optional()
    .meta({ description: 'Shown to operators in every alert, e.g. "1号楼 101室" or "Building 1, flat 101"' }),
  address: label(128).optional().meta({ description: "Street address, shown in alerts" }),
  room: label(32).optional().meta({ description: 'Room or flat, e.g. "101室"; shown in alerts' }),
  residentName: label(32)
    .optional()
    .meta({ description: 'How operators call the resident, e.g. "张阿姨"; shown in alerts' }),
  contactPhone: phone.optional().meta({
    description:
      "The number operators call for this household: carried in alerts (contactPhone), never written to logs",
  }),
  welfare: welfare.default({ enabled: true, period: undefined }),
});

/**
 * One entry per device: its binding's fields (with its name and location as
 * operators read them), `model`, and its model's own fields, each registered
 * profile's schema derived from it (devices/config.ts). A model not
 * registered is an error listing the known ones.
 */
const device = z.discriminatedUnion("model", deviceSchemas(PROFILES));

/** An RS-485 line: one bus object, one transaction at a time for every unit on it. */
const serialBus = z.strictObject({
  id: topicId,
  type: z.literal("rtu"),
  path: z
    .string()
    .min(1)
    .meta({ description: "Serial device, e.g. /dev/ttyUSB0 (a pseudo-terminal works too)" }),
  baudRate: z
    .union([z.literal(9600), z.literal(19200), z.literal(38400), z.literal(57600), z.literal(115200)])
    .default(9600),
  parity: z.enum(["even", "odd", "none"]).default("even"),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  timeout: duration("200ms").meta({
    description: "Reply timeout per attempt (MFS-8: answers within 50 ms, allow 100+)",
  }),
  retries: z.number().int().min(0).max(5).default(1),
  turnaround: optionalDurationOrZero().meta({
    description:
      "Slave turnaround assumed by the line budget (a measured figure); default: the largest of the bus's models' datasheet figures (MFS-8 50 ms, LV-4 80 ms)",
  }),
  acceptDegradation: z.boolean().default(false).meta({
    description: "Start even if the poll plan needs more than the line can carry (polls will run late)",
  }),
});

const escalation = z.strictObject({
  p1: durationOrZero("60s").meta({ description: "Unacknowledged P1 escalates after this; 0 disables" }),
  p2: durationOrZero("300s").meta({ description: "Unacknowledged P2 escalates after this; 0 disables" }),
  factor: z
    .number()
    .min(1)
    .max(10)
    .default(2)
    .meta({ description: "Each next escalation waits this much longer" }),
  maxInterval: duration("15m").meta({ description: "Longest wait between two escalations" }),
});

const alerts = z.strictObject({
  emergencyCallWindow: duration("60s").meta({
    description: "A second press within this window is the same call",
  }),
  lostGrace: durationOrZero("60s").meta({
    description:
      "DEVICE_LOST after 2 heartbeat intervals plus this grace, for models whose datasheet adds it (EC-200, DS-10; the GD-2 is lost after 3 intervals)",
  }),
  welfarePeriod: duration("24h"),
  batteryLowPercent: z.number().int().min(1).max(100).default(15),
  batteryClearPercent: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(20)
    .meta({ description: "BATTERY_LOW clears at or above this (hysteresis against flapping)" }),
  contactDebounce: durationOrZero("200ms").meta({
    description: "A door contact that bounces within this is one opening",
  }),
  escalation: escalation.default(() => escalation.parse({})),
  shelveMax: duration("8h").meta({ description: "Longest shelving an operator may ask for (never for P1)" }),
  awayExitGrace: durationOrZero("15m").meta({
    description: "Activity this soon after away mode is set is the resident leaving, not coming back",
  }),
  actions: z.partialRecord(z.enum(ALERT_CODES), label(200)).default({}).meta({
    description:
      "What operators should do, per alert code, in the site's language (site.locale): replaces the shipped text in the alert's `action` (docs/operator-guide.zh-CN.md)",
  }),
});

const pipeline = z.strictObject({
  p1LaneSize: z.number().int().min(2).default(256).meta({ description: "Rounded up to a power of two" }),
  alertLaneSize: z.number().int().min(2).default(4096),
  telemetryLaneSize: z.number().int().min(2).max(1048576).optional().meta({
    description:
      "Overrides the computed size: telemetrySpan x telemetryPeakRate, at least the device count, at most 131072; rounded up to a power of two",
  }),
  telemetrySpan: duration("1s").meta({
    description:
      "The telemetry lane holds at least this much input at telemetryPeakRate: a burst that fits is kept whole",
  }),
  telemetryPeakRate: z.number().int().min(1).default(20000).meta({
    description: "Peak telemetry readings per second over all devices, for sizing the lane",
  }),
  telemetryMaxLag: duration("250ms").meta({
    description:
      "Telemetry is conflated per device (newest reading kept) only while the oldest queued reading has waited longer than this (the consumer is behind), or the lane is full",
  }),
  telemetryBatch: z.number().int().min(1).max(4096).default(64),
});

const log = z.strictObject({
  level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  format: z.enum(["auto", "json", "pretty"]).default("auto"),
});

const ingest = z.strictObject({
  dedupWindow: z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(32)
    .meta({ description: "How many recent seq numbers per device are remembered to suppress re-sends" }),
  clockSkewTolerance: duration("24h").meta({
    description: "A device clock further off than this is marked device-clock-invalid",
  }),
});

const metrics = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: "Serve /metrics, /healthz and /readyz over HTTP" }),
  host: z
    .string()
    .default("127.0.0.1")
    .meta({ description: "Address to bind; 127.0.0.1 keeps the endpoint local (docs/metrics.md)" }),
  port: z.number().int().min(0).max(65535).default(9464).meta({ description: "0 picks a free port" }),
  auth: z
    .discriminatedUnion("type", [
      z.strictObject({
        type: z.literal("bearer"),
        tokenFile: z.string().min(1).meta({
          description:
            "File holding the token (16 characters at least, surrounding whitespace ignored): Prometheus's authorization.credentials_file",
        }),
      }),
      z.strictObject({
        type: z.literal("basic"),
        username: z
          .string()
          .regex(/^[^:\s]+$/, "must not be empty nor contain ':' or spaces")
          .meta({ description: "Prometheus's basic_auth.username" }),
        passwordFile: z.string().min(1).meta({
          description:
            "File holding the password (16 characters at least, surrounding whitespace ignored): Prometheus's basic_auth.password_file",
        }),
      }),
    ])
    .optional()
    .meta({
      description:
        "Credentials /metrics asks for (401 without them); /healthz and /readyz stay open, without detail. The file is re-read on reload (docs/metrics.md)",
    }),
  tls: tlsFiles.omit({ ca: true }).optional().meta({
    description:
      "HTTPS on the metrics port (Prometheus scheme: https); certificate and key re-read on reload",
  }),
});

const upstream = z.strictObject({
  url: z
    .string()
    .regex(
      /^(mqtt|tcp|mqtts|ssl):\/\/[^/]+$/,
      'must look like "mqtt://broker.example:1883" or "mqtts://broker.example:8883"',
    )
    .meta({ description: "Upstream broker (mosquitto, EMQX) that operations staff use; mqtts:// for TLS" }),
  username: z.string().optional(),
  password: z.string().optional(),
  tls: z
    .strictObject({
      ca: file.optional().meta({
        description: "CA that signed the upstream broker's certificate (default: the system's CAs)",
      }),
      cert: file.optional().meta({ description: "Client certificate, if the upstream broker asks for one" }),
      key: file.optional().meta({ description: "Its private key" }),
      servername: z.string().optional().meta({
        description: "Name the broker's certificate must carry, if not the url's host",
      }),
    })
    .refine((t) => (t.cert === undefined) === (t.key === undefined), "cert and key go together")
    .optional()
    .meta({ description: "mqtts:// only; files are read at every (re)connection" }),
  clientId: z.string().min(1).max(64).optional().meta({ description: 'Default "linli-<site id>"' }),
  backlog: z.number().int().min(0).default(10_000).meta({
    description:
      "Non-P1 QoS 1 messages kept while the uplink is down or congested (the oldest is dropped beyond, counted); P1 alert states are never dropped, P1 escalation and event lines only beyond 10,000",
  }),
  reconnectInitial: duration("1s"),
  reconnectMax: duration("60s"),
  keepalive: duration("30s"),
  role: z.enum(OPERATOR_ROLES).default(DEFAULT_ROLE).meta({
    description:
      "The role (as operators[].role) of every operator action taken from the upstream broker, whose users it authenticates: supervisor by default, as before roles existed",
  }),
});

/** Sizes in bytes: a number, or a string with a unit ("8MiB", "256MB", "512KiB"). */
function toBytes(v: string | number, ctx: z.core.$RefinementCtx): number {
  const m = typeof v === "number" ? [String(v), String(v), ""] : /^\s*(\d+)\s*([KMG]i?B)?\s*$/.exec(v);
  const unit = m?.[2] ?? "";
  const factor = { "": 1, KB: 1e3, KiB: 1024, MB: 1e6, MiB: 1024 ** 2, GB: 1e9, GiB: 1024 ** 3 }[unit];
  const n = m ? Number(m[1]) * (factor ?? Number.NaN) : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected a size such as "8MiB" or "256MB", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return n;
}
const size = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform(toBytes)
    .meta({ description: 'Bytes: a number, or a string with a unit: "512KiB", "8MiB", "256MB", "1GiB"' });

const storage = z.strictObject({
  enabled: z.boolean().default(true).meta({
    description:
      "Keep alerts, acknowledgements, shelving, away mode, supervision times and the upstream backlog in a journal on disk (docs/durability.md); false keeps them in memory only and loses them on restart",
  }),
  dir: z.string().min(1).optional().meta({
    description:
      'Directory of the journal; `linli start --data-dir` overrides it. Default ".linli-data" in the working directory',
  }),
  sync: z.enum(["always", "batch", "interval"]).default("batch").meta({
    description:
      "When writes reach the disk: always (each record), batch (one fdatasync per drained batch, before any PUBACK or operator result), interval (every syncInterval; a power cut can lose that much). docs/durability.md",
  }),
  syncInterval: duration("1s").meta({ description: "For sync: interval" }),
  segmentSize: size("8MiB").meta({
    description: "A journal segment is closed and a new one started beyond this",
  }),
  compactAfter: size("32MiB").meta({
    description:
      "Written since the last snapshot beyond this: a snapshot is taken and older segments deleted",
  }),
  quota: size("256MiB").meta({
    description: "Disk space the journal may use; beyond it, after compaction, the gateway runs degraded",
  }),
  checkpointInterval: durationOrZero("5s").meta({
    description:
      "How often devices' last-seen times are written at most (per device); supervision resumes from them after a restart",
  }),
});

const northbound = z.strictObject({
  upstream: upstream.optional().meta({
    description:
      "Mirror every northbound message to an upstream broker and take operator actions from it; the gateway's will is its offline status",
  }),
});

/** The operators' console in the browser (gateway/console/): off unless configured. */
const consoleSection = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .meta({ description: "Serve the operators' console page and its MQTT-over-WebSocket endpoint" }),
  host: z
    .string()
    .default("127.0.0.1")
    .meta({ description: "Address to bind; 0.0.0.0 lets tablets on the LAN reach it (docs/console.md)" }),
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(8080)
    .meta({ description: "HTTP port of the console (0 picks a free port)" }),
  tls: tlsFiles.omit({ ca: true }).optional().meta({
    description:
      "HTTPS (and wss for its MQTT) on the console's port: operators' passwords cross the LAN encrypted; certificate and key re-read on reload",
  }),
});

export const configSchema = z.strictObject({
  site: z.strictObject({
    id: topicId,
    name: z.string().optional(),
    timezone: z
      .string()
      .refine(isTimeZone, {
        error: (iss) => `must be an IANA time zone such as Asia/Shanghai, got ${JSON.stringify(iss.input)}`,
      })
      .optional()
      .meta({
        description:
          "IANA time zone of the site: quiet hours, kiosk opening hours, daily counters and the local times in alerts (raisedAtLocal ...); default the system's. `linli start` makes it the process's own zone (TZ)",
      }),
    locale: z.enum(LOCALES).default("zh-CN").meta({
      description:
        "Language of the text operators read in alerts (message, action): zh-CN (default) or en. Alert codes stay English identifiers",
    }),
  }),
  mqtt: z
    .strictObject({
      listeners: z
        .array(listener)
        .min(1)
        .default(() => [listener.parse({})]),
      maxConnections: z.number().int().min(1).default(20_000).meta({
        description:
          "Open MQTT connections per listener; beyond it new connections are closed at once (a connection flood cannot exhaust memory)",
      }),
      deviceListener: z
        .strictObject({
          host: z
            .string()
            .default("127.0.0.1")
            .meta({ description: "Address to bind; 127.0.0.1 keeps it local" }),
          port: z.number().int().min(0).max(65535).default(1884),
          tls: tlsFiles.optional().meta({
            description: "TLS on the device listener (mqtts://); with ca, client certificates log devices in",
          }),
        })
        .optional()
        .meta({
          description:
            "An MQTT listener for devices only (MQTT 3.1.1 and 5, QoS 0 and 1, plain or TLS), served by a worker thread on the second core: the device sockets and their packets cost the alert pipeline's thread nothing. Operators, the console and bridges use mqtt.listeners; devices may use either",
        }),
    })
    .default(() => ({ listeners: [listener.parse({})], maxConnections: 20_000 })),
  operators: z.array(operator).default([]),
  households: z.array(household).default([]),
  deviceProfiles: z
    .array(z.union([z.string(), declaredProfileSchema]))
    .default([])
    .meta({
      description:
        "Devices described as data (docs/devices.md): a profile file, relative to this file, or a profile written here",
    }),
  devices: z.array(device).default([]),
  buses: z.array(serialBus).default([]),
  alerts: alerts.default(() => alerts.parse({})),
  pipeline: pipeline.default(() => pipeline.parse({})),
  ingest: ingest.default(() => ingest.parse({})),
  log: log.default(() => log.parse({})),
  metrics: metrics.default(() => metrics.parse({})),
  console: consoleSection.default(() => consoleSection.parse({})),
  northbound: northbound.default({}),
  storage: storage.default(() => storage.parse({})),
  limits: limitsSchema
    .default(() => limitsSchema.parse({}))
    .meta({
      description: "What a connection may cost before and after login (docs/security.md, Limits)",
    }),
});

/**
 * The schema a site file is validated with when it declares devices as data
 * (`deviceProfiles`, compiled by the loader): each compiled profile's device
 * entry comes from deviceSchema, as a code profile's does, beside the
 * registered ones. Their devices' types are the registered union's at compile
 * time; at run time their `model` is the declared profile's name.
 */
export function configSchemaFor(declared: readonly AnyProfile[]): typeof configSchema {
  if (declared.length === 0) return configSchema;
  const all = [...deviceSchemas(PROFILES), ...declared.map((p) => deviceSchema(p))] as unknown as Parameters<
    typeof z.discriminatedUnion
  >[1];
  return configSchema.extend({
    devices: z.array(z.discriminatedUnion("model", all)).default([]),
  }) as unknown as typeof configSchema;
}

/** What a config file may contain (before defaults and durations are applied). */
export type ConfigInput = z.input<typeof configSchema>;
/** A validated config: defaults filled in, durations in milliseconds, profile files read. */
export type Config = Omit<z.output<typeof configSchema>, "deviceProfiles"> & {
  deviceProfiles: DeclaredProfileDoc[];
};
export type DeviceConfig = Config["devices"][number];
export type BusConfig = Config["buses"][number];
export type HouseholdConfig = Config["households"][number];

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" });
}
