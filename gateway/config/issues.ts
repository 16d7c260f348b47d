/**
 * The schema validator's findings in the words of the other config messages:
 * what the field must be and what the file has (`mqtt.listeners[0].port: must
 * be a number, got the string "abc"`), a required field as required, and each
 * unknown key at its own path with the closest known field.
 */
import type { z } from "zod";
import { type ConfigProblem, configProblem, formatPath } from "./problem.js";

type PathKey = string | number;

/** The zod internals read here (`_zod.def`), kept to what the walk needs. */
interface SchemaDef {
  type: string;
  innerType?: Node;
  in?: Node;
  getter?: () => Node;
  shape?: Record<string, Node>;
  element?: Node;
  valueType?: Node;
  keyType?: Node;
  entries?: Record<string, unknown>;
  options?: Node[];
  discriminator?: string;
  values?: unknown[];
}
interface Node {
  _zod: { def: SchemaDef };
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function unwrap(node: Node | undefined): Node | undefined {
  for (let n = node, i = 0; n && i < 32; i++) {
    const def = n._zod.def;
    if (def.innerType) n = def.innerType;
    else if (def.type === "pipe" && def.in) n = def.in;
    else if (def.type === "lazy" && def.getter) n = def.getter();
    else return n;
  }
  return undefined;
}

/** The option of a discriminated union that `value` names (by its discriminator). */
function choose(node: Node | undefined, value: unknown): Node | undefined {
  const def = node?._zod.def;
  if (def?.type !== "union") return node;
  if (def.discriminator === undefined || !isMapping(value)) return undefined;
  const wanted = value[def.discriminator];
  return def.options
    ?.map(unwrap)
    .find((o) => unwrap(o?._zod.def.shape?.[def.discriminator as string])?._zod.def.values?.includes(wanted));
}

/** The fields the object at `path` may have, or undefined when the schema there is not one object. */
export function knownFields(
  schema: z.ZodType,
  input: unknown,
  path: readonly PathKey[],
): string[] | undefined {
  let node = unwrap(schema as unknown as Node);
  let value = input;
  for (const key of path) {
    const def = choose(node, value)?._zod.def;
    if (def?.type === "object" && typeof key === "string") node = def.shape?.[key];
    else if (def?.type === "array" && typeof key === "number") node = def.element;
    else if (def?.type === "record") node = def.valueType;
    else return undefined;
    node = unwrap(node);
    value = (value as Record<PathKey, unknown> | undefined)?.[key];
  }
  const def = choose(node, value)?._zod.def;
  if (def?.shape) return Object.keys(def.shape);
  // A record keyed by an enum (alerts.actions: one text per alert code).
  const keys = unwrap(def?.type === "record" ? def.keyType : undefined)?._zod.def.entries;
  return keys ? Object.keys(keys) : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = row;
  }
  return prev[b.length] as number;
}

/** The known field a typo most likely meant: a case slip, or two edits at most (one for short names). */
export function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const same = known.find((k) => k.toLowerCase() === lower);
  if (same) return same;
  let best: { k: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d <= (Math.min(key.length, k.length) <= 4 ? 1 : 2) && (!best || d < best.d)) best = { k, d };
  }
  return best?.k;
}

const KIND: Record<string, string> = {
  number: "a number",
  int: "a whole number",
  string: "a string",
  boolean: "true or false",
  array: "a list",
  object: "a mapping (field: value)",
  literal: "a fixed value",
};

/** What the file has, as a reader of the YAML would call it. */
export function describeValue(v: unknown): string {
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (typeof v === "number") return `the number ${v}`;
  return String(v);
}

/** Fields whose value is a secret: a refusal names its kind, never the value (it is logged and reported). */
const SECRET_FIELDS = new Set<PathKey>(["password"]);

/** describeValue, unless `path` is a secret's: then only what kind of value it is. */
function describeAt(path: readonly PathKey[], v: unknown): string {
  if (!SECRET_FIELDS.has(path[path.length - 1] as PathKey)) return describeValue(v);
  const kind =
    v === null
      ? "an empty value"
      : Array.isArray(v)
        ? "a list"
        : typeof v === "object"
          ? "a mapping"
          : `a ${typeof v}`;
  return `${kind} (not shown)`;
}

const ID = "1 to 32 characters of A-Z a-z 0-9 _ -";
/** What a required field holds, for the fields a newcomer leaves out first. */
function requiredHint(path: string): string | undefined {
  if (path === "site.id") return `a short id for the site, used in every topic, e.g. "sunny-garden": ${ID}`;
  if (/^(devices|households|buses)\[\d+\]\.id$/.test(path) || /^operators\[\d+\]\.name$/.test(path))
    return ID;
  return undefined;
}

function valueAt(input: unknown, path: readonly PathKey[]): unknown {
  let v = input;
  for (const key of path) v = (v as Record<PathKey, unknown> | null | undefined)?.[key];
  return v;
}

const list = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(", ");

export interface IssueContext {
  schema: z.ZodType;
  input: unknown;
  /** Where the validated value sits in the site file (a profile inside `deviceProfiles[i]`). */
  prefix?: readonly PathKey[];
  /** The site file: a device's `model` may also name a profile of `deviceProfiles`. */
  siteDevices?: boolean;
}

/** The validator's issues as config problems, one per field. */
export function issueProblems(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): ConfigProblem[] {
  const prefix = ctx.prefix ?? [];
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = issue.path as PathKey[];
    const at = (p: readonly PathKey[]) => formatPath([...prefix, ...p]);
    const value = valueAt(ctx.input, path);
    if (issue.code === "unrecognized_keys") {
      const known = knownFields(ctx.schema, ctx.input, path) ?? [];
      for (const key of issue.keys) {
        const guess = closest(key, known);
        problems.push(
          configProblem(at([...path, key]), `unknown field${guess ? ` (did you mean ${guess}?)` : ""}`),
        );
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_union" && "discriminator" in issue && issue.discriminator !== undefined) {
      const known = list([...new Set((issue as { options?: unknown[] }).options ?? [])]);
      const declared = ctx.siteDevices ? "or a model of deviceProfiles" : "";
      message =
        value === undefined
          ? `required (one of ${known}${declared ? `, ${declared}` : ""})`
          : `unknown ${ctx.siteDevices ? "device model" : issue.discriminator} ${typeof value === "string" ? JSON.stringify(value) : describeAt(path, value)}: expected one of ${known}${declared ? ` (${declared})` : ""}`;
    } else if (issue.code === "invalid_union") {
      // A field of several types (a duration: a string or a number) given none of them.
      const kinds = issue.errors.map((alternative) => {
        const first = alternative[0];
        return alternative.length === 1 && first?.code === "invalid_type" && first.path.length === 0
          ? first.expected
          : undefined;
      });
      if (kinds.length > 0 && kinds.every((k) => k !== undefined))
        message = `must be ${[...new Set(kinds)].map((k) => KIND[k] ?? k).join(" or ")}, got ${describeAt(path, value)}`;
    } else if (issue.code === "invalid_type") {
      const hint = requiredHint(at(path));
      message =
        value === undefined
          ? `required (${hint ?? KIND[issue.expected] ?? issue.expected})`
          : `must be ${KIND[issue.expected] ?? issue.expected}, got ${describeAt(path, value)}`;
    } else if (issue.code === "invalid_value") {
      message =
        issue.values.length === 1
          ? `must be ${JSON.stringify(issue.values[0])}, got ${describeAt(path, value)}`
          : `must be one of ${list(issue.values)}, got ${describeAt(path, value)}`;
    } else if (issue.code === "too_small" && (issue.origin === "number" || issue.origin === "int")) {
      message = `must be ${issue.inclusive ? "at least" : "more than"} ${issue.minimum}, got ${describeAt(path, value)}`;
    } else if (issue.code === "too_big" && (issue.origin === "number" || issue.origin === "int")) {
      message = `must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}, got ${describeAt(path, value)}`;
    } else if (issue.code === "too_small" && issue.origin === "array") {
      message = `needs at least ${issue.minimum} item(s)`;
    }
    problems.push(configProblem(at(path), message));
  }
  return problems;
}
