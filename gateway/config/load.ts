/**
 * Loads and validates a site config. A bad file is reported with the file
 * name, the line, the path of the field and what is wrong; the gateway does
 * not start on it (`linli config check FILE` runs the same checks).
 */
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { type DeclaredProfileDoc, profiles } from "../../devices/index.js";
import { loadDeviceProfiles } from "./device-profiles.js";
import { type ConfigProblem, formatPath, lineOf } from "./problems.js";
import { type Config, type ConfigInput, configSchema } from "./schema.js";

export { type ConfigProblem, formatPath } from "./problems.js";

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `invalid config ${file}:\n` +
        problems
          .map(
            (p) =>
              `  ${p.file ?? file}${p.line ? `:${p.line}` : ""}: ${p.path || "(top level)"}: ${p.message}`,
          )
          .join("\n"),
    );
    this.name = "ConfigError";
  }
}

type PathKey = string | number;

/**
 * `${NAME}` in a string value is replaced by the environment variable NAME,
 * so secrets need not sit in the file. A missing variable is a config error.
 */
function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: PathKey[],
  problems: ConfigProblem[],
): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
        return "";
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, i], problems));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, [...path, k], problems);
    return out;
  }
  return value;
}

/** Cross-field rules that a schema cannot express. */
function checkReferences(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const households = new Set<string>();
  config.households.forEach((h, i) => {
    if (households.has(h.id))
      problems.push({ path: `households[${i}].id`, message: `duplicate household id "${h.id}"` });
    households.add(h.id);
  });
  const buses = new Set<string>();
  config.buses.forEach((b, i) => {
    if (buses.has(b.id)) problems.push({ path: `buses[${i}].id`, message: `duplicate bus id "${b.id}"` });
    buses.add(b.id);
  });
  const units = new Map<string, string>();
  const names = new Map<string, string>();
  config.devices.forEach((d, i) => {
    const seen = names.get(d.id);
    if (seen) problems.push({ path: `devices[${i}].id`, message: `duplicate id "${d.id}" (also ${seen})` });
    names.set(d.id, `devices[${i}]`);
    if (d.model === "declared") problems.push(...checkDeclaredDevice(d, i, config.deviceProfiles));
    if ("bus" in d && d.bus !== undefined && d.unit !== undefined) {
      if (!buses.has(d.bus)) problems.push({ path: `devices[${i}].bus`, message: `unknown bus "${d.bus}"` });
      const unitKey = `${d.bus}/${d.unit}`;
      const other = units.get(unitKey);
      if (other)
        problems.push({
          path: `devices[${i}].unit`,
          message: `unit ${d.unit} on bus ${d.bus} is also ${other}`,
        });
      units.set(unitKey, `devices[${i}]`);
    }
    if (d.household !== undefined && !households.has(d.household)) {
      problems.push({ path: `devices[${i}].household`, message: `unknown household "${d.household}"` });
    }
  });
  config.operators.forEach((o, i) => {
    const seen = names.get(o.name);
    // Usernames share one namespace on the broker: an operator named like a device would be ambiguous.
    if (seen)
      problems.push({ path: `operators[${i}].name`, message: `"${o.name}" is already used by ${seen}` });
    names.set(o.name, `operators[${i}]`);
  });
  const ports = new Set<string>();
  config.mqtt.listeners.forEach((l, i) => {
    const key = `${l.host}:${l.port}`;
    if (l.port !== 0 && ports.has(key))
      problems.push({ path: `mqtt.listeners[${i}]`, message: `duplicate listener ${key}` });
    ports.add(key);
  });
  return problems;
}

type DeclaredDevice = Extract<Config["devices"][number], { model: "declared" }>;

/** A device of a declared profile: the transport fields its profile needs, and only those. */
function checkDeclaredDevice(
  d: DeclaredDevice,
  i: number,
  docs: readonly DeclaredProfileDoc[],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (field: string) => `devices[${i}].${field}`;
  const doc = docs.find((p) => p.model === d.profile);
  if (!doc) return [{ path: at("model"), message: `unknown device model "${d.profile}"` }];
  const has = (k: keyof DeclaredDevice) => d[k] !== undefined;
  if (doc.transport === "mqtt") {
    if (!has("password"))
      problems.push({ path: at("password"), message: `required by the MQTT profile "${d.profile}"` });
    for (const k of ["bus", "host", "unit", "timeout"] as const)
      if (has(k))
        problems.push({ path: at(k), message: `not a field of MQTT devices (profile "${d.profile}")` });
  } else {
    if (has("password"))
      problems.push({
        path: at("password"),
        message: "polled devices have no password (the gateway is the master)",
      });
    if (has("bus") === has("host"))
      problems.push({
        path: at(has("bus") ? "host" : "bus"),
        message: `a Modbus device needs either bus: (RTU) or host: (TCP) (profile "${d.profile}")`,
      });
    else if (has("bus") && (d.unit === undefined || d.unit < 1 || d.unit > 247))
      problems.push({ path: at("unit"), message: "an RTU device needs unit: its slave address 1-247" });
    else if (has("bus") && has("timeout"))
      problems.push({
        path: at("timeout"),
        message: "the reply timeout of an RTU device is its bus's timeout",
      });
  }
  for (const [k, v] of Object.entries(d.settings)) {
    const spec = doc.settings[k];
    if (!spec) {
      const known = Object.keys(doc.settings);
      problems.push({
        path: at(`settings.${k}`),
        message: `not a setting of profile "${d.profile}" (${known.length ? `known: ${known.join(", ")}` : "it has none"})`,
      });
    } else if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max))
      problems.push({
        path: at(`settings.${k}`),
        message: `${v} is outside ${spec.min ?? "-∞"}..${spec.max ?? "∞"}`,
      });
  }
  return problems;
}

function issuesToProblems(issues: readonly z.core.$ZodIssue[], declared: readonly string[]): ConfigProblem[] {
  return issues.map((issue) => {
    let message = issue.message;
    if (issue.code === "unrecognized_keys") message = `unknown field(s): ${issue.keys.join(", ")}`;
    if (issue.code === "invalid_union" && "discriminator" in issue) {
      const known = [...Object.keys(profiles), ...declared].map((m) => `"${m}"`).join(", ");
      message = `unknown device model: expected one of ${known} (or a model of deviceProfiles)`;
    }
    return { path: formatPath(issue.path as PathKey[]), message };
  });
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Validates an already-parsed object (used by the CLI demo and by tests).
 * `siteFile`: where profile files named in `deviceProfiles` are looked for
 * (beside it); null: the working directory.
 */
export function validateConfig(
  input: unknown,
  source = "<config>",
  env: NodeJS.ProcessEnv = process.env,
  siteFile: string | null = null,
): Config {
  const problems: ConfigProblem[] = [];
  let substituted = substituteEnv(input ?? {}, env, [], problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  let docs: DeclaredProfileDoc[] = [];
  if (isMapping(substituted)) {
    const loaded = loadDeviceProfiles(substituted.deviceProfiles, siteFile);
    if (loaded.problems.length > 0) throw new ConfigError(source, loaded.problems);
    docs = loaded.docs;
    // A device of a declared model: `model: "declared"` + `profile` for the schema (schema.ts).
    const declared = new Set(docs.map((d) => d.model));
    const devices = substituted.devices;
    substituted = {
      ...substituted,
      deviceProfiles: [],
      ...(Array.isArray(devices)
        ? {
            devices: devices.map((d) =>
              isMapping(d) && typeof d.model === "string" && declared.has(d.model)
                ? { ...d, model: "declared", profile: d.model }
                : d,
            ),
          }
        : {}),
    };
  }
  const result = configSchema.safeParse(substituted);
  if (!result.success)
    throw new ConfigError(
      source,
      issuesToProblems(
        result.error.issues,
        docs.map((d) => d.model),
      ),
    );
  const config: Config = { ...result.data, deviceProfiles: docs };
  const refs = checkReferences(config);
  if (refs.length > 0) throw new ConfigError(source, refs);
  return config;
}

/** Reads, parses and validates a YAML (or JSON) config file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [{ path: "", message: `cannot read file: ${(err as Error).message}` }]);
  }
  return parseConfigText(text, file, env);
}

/**
 * Parses and validates config text (YAML or JSON); `file` names it in problems.
 * Anything wrong with the text is a ConfigError, never another exception (fuzz/config.ts).
 */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: "",
        message: `YAML: ${e.message.split("\n")[0]}`,
        line: e.linePos?.[0]?.line,
      })),
    );
  }
  let input: unknown;
  try {
    input = doc.toJS();
  } catch (err) {
    // yaml refuses an alias bomb ("Excessive alias count ...", its maxAliasCount) while building values.
    throw new ConfigError(file, [{ path: "", message: `YAML: ${(err as Error).message.split("\n")[0]}` }]);
  }
  try {
    return validateConfig(input as ConfigInput, file, env, file);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) if (p.file === undefined) p.line ??= lineOf(doc, lines, p.path);
      throw new ConfigError(file, err.problems);
    }
    throw err;
  }
}
