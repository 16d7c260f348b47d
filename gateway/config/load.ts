/**
 * Loads and validates a site config. A bad file is reported with the file
 * name, the line, the path of the field and what is wrong; the gateway does
 * not start on it (`linli config check FILE` runs the same checks).
 */
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import type { DeclaredProfileDoc } from "../../devices/index.js";
import { configProblems } from "./checks.js";
import {
  compiledProfile,
  deviceProfile,
  inlineProfileEntries,
  loadDeviceProfiles,
} from "./device-profiles.js";
import { issueProblems } from "./issues.js";
import { type ConfigProblem, configProblem, formatPath, lineOf } from "./problem.js";
import { type Config, type ConfigInput, configSchemaFor } from "./schema.js";
import { unclosedQuote } from "./yaml-quote.js";

export { type ConfigProblem, formatPath } from "./problem.js";

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
              `  ${p.file ?? file}${p.line ? `:${p.line}` : ""}: ${p.path ? `${p.path}: ` : ""}${p.message}`,
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
        problems.push(
          configProblem(formatPath(path), `environment variable ${name} is not set`, {}, "env-not-set"),
        );
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

/**
 * Who can log in at all: an account without a password needs a listener that
 * verifies client certificates; TLS settings of the upstream need mqtts://.
 */
function checkCredentials(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const certificates = config.mqtt.listeners.some((l) => l.tls?.ca !== undefined);
  // Operators never log in on the device listener: its CA counts for devices only.
  const deviceCertificates = certificates || config.mqtt.deviceListener?.tls?.ca !== undefined;
  const need = "password: required unless a listener verifies client certificates (mqtt.listeners[].tls.ca)";
  const deviceNeed =
    "password: required unless a listener verifies client certificates (mqtt.listeners[].tls.ca, mqtt.deviceListener.tls.ca)";
  config.devices.forEach((d, i) => {
    // Every MQTT-bound model logs in to the broker (its profile's binding), whatever its model.
    const mqtt = deviceProfile(d, config).binding === "mqtt";
    if (mqtt && !("password" in d && d.password !== undefined) && !deviceCertificates)
      problems.push(configProblem(`devices[${i}].password`, deviceNeed));
  });
  config.operators.forEach((o, i) => {
    if (o.password === undefined && !certificates)
      problems.push(configProblem(`operators[${i}].password`, need));
  });
  const up = config.northbound.upstream;
  if (up?.tls && !/^(mqtts|ssl):/.test(up.url))
    problems.push(configProblem("northbound.upstream.tls", "TLS settings need an mqtts:// url"));
  return problems;
}

/**
 * A copy of `input` without the fields the schema refused (so their defaults apply), or
 * null when a refused path cannot be removed that way (a whole list item, a required field
 * is then refused again and the rules across sections are skipped).
 */
function withoutFields(input: unknown, issues: readonly z.core.$ZodIssue[]): unknown {
  const copy = structuredClone(input) as Record<string, unknown>;
  for (const issue of issues) {
    const path = issue.path as PathKey[];
    if (issue.code === "unrecognized_keys") {
      let obj: unknown = copy;
      for (const key of path) obj = (obj as Record<PathKey, unknown> | undefined)?.[key];
      if (obj === null || typeof obj !== "object") return null;
      for (const k of issue.keys) delete (obj as Record<string, unknown>)[k];
      continue;
    }
    const last = path[path.length - 1];
    if (typeof last !== "string") return null;
    let node: unknown = copy;
    for (const key of path.slice(0, -1)) node = (node as Record<PathKey, unknown> | undefined)?.[key];
    if (node === null || typeof node !== "object") return null;
    delete (node as Record<string, unknown>)[last];
  }
  return copy;
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
  // One pass: every problem found is reported at once. Rules across sections (configProblems)
  // need a config the schema accepted, so they run when it did.
  const problems: ConfigProblem[] = [];
  let substituted = substituteEnv(input ?? {}, env, [], problems);
  // Devices described as data come first: their compiled profiles give their devices' entries.
  let docs: DeclaredProfileDoc[] = [];
  if (isMapping(substituted)) {
    const loaded = loadDeviceProfiles(substituted.deviceProfiles, siteFile);
    if (loaded.problems.length > 0) throw new ConfigError(source, [...problems, ...loaded.problems]);
    docs = loaded.docs;
    substituted = { ...substituted, deviceProfiles: [] };
  }
  const schema = configSchemaFor(docs.map(compiledProfile));
  const withDocs = (c: Omit<Config, "deviceProfiles">): Config => ({ ...c, deviceProfiles: docs });
  const result = schema.safeParse(substituted);
  if (!result.success) {
    // A field whose variable is missing is reported once, as the missing variable.
    const missing = new Set(problems.map((p) => p.path));
    const schemaProblems = issueProblems(result.error.issues, {
      schema,
      input: substituted,
      siteDevices: true,
    }).filter((p) => !missing.has(p.path));
    problems.push(...schemaProblems);
    // The rules across sections still run, with the refused fields at their defaults, so one
    // check names every problem (a clashing port is not hidden behind a bad duration).
    const fallback = withoutFields(substituted, result.error.issues);
    const retry = fallback === null ? null : schema.safeParse(fallback);
    if (retry?.success) {
      const seen = new Set(problems.map((p) => p.path));
      const c = withDocs(retry.data);
      problems.push(...[...configProblems(c), ...checkCredentials(c)].filter((p) => !seen.has(p.path)));
    }
  } else {
    const c = withDocs(result.data);
    problems.push(...configProblems(c), ...checkCredentials(c));
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return withDocs((result as { data: Omit<Config, "deviceProfiles"> }).data);
}

/** Reads, parses and validates a YAML (or JSON) config file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfigFileWithInput(file, env).config;
}

/**
 * A validated config and the input it was validated from, standing alone: environment variables
 * substituted, profile files read in as inline profiles (what the last good copy keeps: it
 * validates again with no environment and no file beside it, config/last-good.ts).
 */
export interface LoadedConfig {
  config: Config;
  input: Record<string, unknown>;
}

export function loadConfigFileWithInput(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [configProblem("", `cannot read file: ${unreadable(err)}`)]);
  }
  return parseConfigTextWithInput(text, file, env);
}

/** Why a file could not be read, in words ("ENOENT: no such file or directory, open 'x'" says it twice). */
function unreadable(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file (check the path)";
  if (code === "EACCES" || code === "EPERM") return "permission denied for the user running linli";
  if (code === "EISDIR") return "it is a directory, not a file";
  return (err as Error).message;
}

/**
 * Parses and validates config text (YAML or JSON); `file` names it in problems.
 * Anything wrong with the text is a ConfigError, never another exception (fuzz/config.ts).
 */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfigTextWithInput(text, file, env).config;
}

function parseConfigTextWithInput(text: string, file: string, env: NodeJS.ProcessEnv): LoadedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    // The first syntax error only: the parser's later ones follow from it (one unclosed bracket
    // gave 13), and the schema is not run on what it made of the rest.
    const first = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0])[0] as (typeof doc.errors)[number];
    const opened = first.code === "MISSING_CHAR" ? unclosedQuote(text, lines) : null;
    if (opened !== null)
      throw new ConfigError(file, [configProblem("", opened.message, { line: opened.line })]);
    throw new ConfigError(file, [
      configProblem("", `YAML: ${first.message.split("\n")[0]?.replace(/:$/, "")}`, {
        line: first.linePos?.[0]?.line,
      }),
    ]);
  }
  let input: unknown;
  try {
    input = doc.toJS();
  } catch (err) {
    // yaml refuses an alias bomb ("Excessive alias count ...", its maxAliasCount) while building values.
    throw new ConfigError(file, [configProblem("", `YAML: ${(err as Error).message.split("\n")[0]}`)]);
  }
  try {
    const config = validateConfig(input as ConfigInput, file, env, file);
    // Valid, so the input is a mapping and every variable is set.
    const standalone = substituteEnv(input, env, [], []) as Record<string, unknown>;
    if (standalone.deviceProfiles !== undefined)
      standalone.deviceProfiles = inlineProfileEntries(standalone.deviceProfiles, file);
    return { config, input: standalone };
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) if (p.file === undefined) p.line ??= lineOf(doc, lines, p.path);
      throw new ConfigError(file, err.problems);
    }
    throw err;
  }
}
