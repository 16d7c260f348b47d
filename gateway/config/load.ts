/**
 * Loads and validates a site config. A bad file is reported with the file
 * name, the line, the path of the field and what is wrong; the gateway does
 * not start on it (`linli config check FILE` runs the same checks).
 */
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { MODELS, profileFor, profileProblem } from "../../devices/index.js";
import { type Config, type ConfigInput, configSchema } from "./schema.js";

export interface ConfigProblem {
  /** Field path, e.g. `devices[3].heartbeatInterval`. */
  path: string;
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `invalid config ${file}:\n` +
        problems
          .map((p) => `  ${file}${p.line ? `:${p.line}` : ""}: ${p.path || "(top level)"}: ${p.message}`)
          .join("\n"),
    );
    this.name = "ConfigError";
  }
}

type PathKey = string | number;

export function formatPath(path: readonly PathKey[]): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out ? `.${key}` : key;
  return out;
}

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
    // A model the gateway could neither poll nor supervise is refused here, never run silently.
    const profile = profileFor(d.model);
    const problem = profile ? profileProblem(profile) : `device model "${d.model}" is not registered`;
    if (problem) problems.push({ path: `devices[${i}].model`, message: problem });
    if ("bus" in d) {
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

function issuesToProblems(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  return issues.map((issue) => {
    let message = issue.message;
    if (issue.code === "unrecognized_keys") message = `unknown field(s): ${issue.keys.join(", ")}`;
    if (issue.code === "invalid_union" && "discriminator" in issue) {
      message = `unknown device model: expected one of ${MODELS.map((m) => JSON.stringify(m)).join(", ")}`;
    }
    return { path: formatPath(issue.path as PathKey[]), message };
  });
}

/** Validates an already-parsed object (used by the CLI demo and by tests). */
export function validateConfig(
  input: unknown,
  source = "<config>",
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const problems: ConfigProblem[] = [];
  const substituted = substituteEnv(input ?? {}, env, [], problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const result = configSchema.safeParse(substituted);
  if (!result.success) throw new ConfigError(source, issuesToProblems(result.error.issues));
  const refs = checkReferences(result.data);
  if (refs.length > 0) throw new ConfigError(source, refs);
  return result.data;
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
    return validateConfig(input as ConfigInput, file, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) p.line ??= lineOf(doc, lines, p.path);
      throw new ConfigError(file, err.problems);
    }
    throw err;
  }
}

/** The line of the deepest node of `path` that exists in the document. */
function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, path: string): number | undefined {
  const keys: PathKey[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g))
    keys.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  let node: unknown = doc.contents;
  let line: number | undefined;
  for (const key of keys) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (!pair) break;
      const range = (pair.key as { range?: [number, number, number] }).range;
      if (range) line = lines.linePos(range[0]).line;
      node = pair.value;
    } else if (isSeq(node) && typeof key === "number") {
      node = node.items[key];
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range) line = lines.linePos(range[0]).line;
    } else break;
  }
  return line;
}
