/**
 * The config loader, YAML text in (gateway/config/load.ts parseConfigText,
 * what `linli start` and `linli config check` run on a file's text). Every
 * text is a Config or a ConfigError naming the file; anything else thrown is
 * a failure. Valid configs are generated from the schema's rules and the
 * shipped example; they must load.
 */
import { readFileSync } from "node:fs";
import * as fc from "fast-check";
import { stringify } from "yaml";
import { ConfigError, parseConfigText } from "../gateway/config/load.js";
import { anyBytes, mutated } from "./bytes.js";
import { ACCEPTED, type Decoder, type FuzzTarget, invariant, type Outcome, refused } from "./target.js";

const FILE = "fuzz.yaml";
/** The environment the texts see: the example's secrets, nothing else. */
const ENV: NodeJS.ProcessEnv = {
  LINLI_DUTY_DESK_PASSWORD: "a",
  LINLI_NIGHT_SHIFT_PASSWORD: "b",
  LINLI_PW_EC200_0101: "c",
  LINLI_PW_EC200_0203: "d",
  LINLI_PW_DS10_0101: "e",
  LINLI_PW_DS10_0305: "f",
  LINLI_PW_DS10_FIREDOOR_B1: "g",
  LINLI_UPSTREAM_PASSWORD: "h",
};

/** examples/community.yaml, from the source tree or from dist/ (null if neither is there). */
function exampleText(): string | null {
  for (const rel of ["../examples/community.yaml", "../../examples/community.yaml"]) {
    try {
      return readFileSync(new URL(rel, import.meta.url), "utf8");
    } catch {}
  }
  return null;
}
const EXAMPLE = exampleText();

// ---- valid configs -------------------------------------------------------------------------------------

const topicId = fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/);
const durationText = fc.oneof(
  fc.integer({ min: 1, max: 86_400 }),
  fc
    .tuple(fc.integer({ min: 1, max: 999 }), fc.constantFrom("ms", "s", "m", "h", "d"))
    .map(([n, u]) => `${n}${u}`),
);
// `${NAME}` in any string is an environment reference (load.ts): a secret must not look like one.
const secret = fc.string({ minLength: 1, maxLength: 24 }).filter((v) => !/\$\{[A-Za-z_]/.test(v));

type Model = "ec200" | "ds10" | "mfs8" | "gk3";

const validConfig: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    site: topicId,
    // Devices and operators share the broker's username namespace: one set of unique ids for both.
    names: fc.uniqueArray(topicId, { minLength: 0, maxLength: 8 }),
    operators: fc.nat({ max: 3 }),
    households: fc.uniqueArray(topicId, { maxLength: 4 }),
    models: fc.array(fc.constantFrom<Model>("ec200", "ds10", "mfs8", "gk3"), { minLength: 8, maxLength: 8 }),
    hb: durationText,
    hold: durationText,
    // Any port but the metrics endpoint's default (9464): a valid config has no port clash.
    port: fc.integer({ min: 0, max: 65535 }).filter((p) => p !== 9464),
    level: fc.constantFrom("info", "warn", "silent"),
    secrets: fc.array(secret, { minLength: 8, maxLength: 8 }),
    householdOf: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
  })
  .map((r) => {
    const operators = r.names.slice(0, r.operators).map((name, i) => ({ name, password: r.secrets[i] }));
    let unit = 0;
    const devices = r.names.slice(r.operators).map((id, i) => {
      const model = r.models[i] as Model;
      const hh =
        r.households.length > 0
          ? r.households[(r.householdOf[i] as number) % r.households.length]
          : undefined;
      const household = hh === undefined ? {} : { household: hh };
      switch (model) {
        case "ec200":
          return { id, model, password: r.secrets[i], heartbeatInterval: r.hb, ...household };
        case "ds10":
          return { id, model, password: r.secrets[i], holdOpenTime: r.hold, ...household };
        case "mfs8":
          unit++;
          return { id, model, bus: "rs485-1", unit, pollInterval: "2s" };
        default:
          return { id, model, host: "127.0.0.1", port: 502, openingHours: "08:30-17:30" };
      }
    });
    return {
      site: { id: r.site },
      mqtt: { listeners: [{ host: "127.0.0.1", port: r.port }] },
      operators,
      households: r.households.map((id) => ({ id })),
      devices,
      buses: unit > 0 ? [{ id: "rs485-1", type: "rtu", path: "/dev/ttyUSB0", timeout: "200ms" }] : [],
      log: { level: r.level },
    };
  });

/**
 * Block-style YAML for plain config objects, written by hand: yaml's stringify
 * cost more than the parse it feeds (half a millisecond an input). Strings are
 * JSON-quoted (valid YAML double-quoted scalars), numbers and booleans plain.
 */
function toYaml(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return " []";
    return value
      .map((v) => {
        const inner = toYaml(v, `${indent}  `);
        return `\n${indent}-${inner.startsWith("\n") ? inner.replace(/^\n\s*/, " ") : inner}`;
      })
      .join("");
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return " {}";
    return entries.map(([k, v]) => `\n${indent}${k}:${toYaml(v, `${indent}  `)}`).join("");
  }
  return ` ${typeof value === "string" ? JSON.stringify(value) : String(value)}`;
}

const validText: fc.Arbitrary<string> = fc.oneof(
  // The shipped example is 5.6 KB (9 ms of CPU to parse): one text in fifty.
  { arbitrary: validConfig.map((c) => `${toYaml(c).slice(1)}\n`), weight: 42 },
  { arbitrary: validConfig.map((c) => stringify(c)), weight: 6 },
  { arbitrary: validConfig.map((c) => JSON.stringify(c, null, 1)), weight: 1 },
  ...(EXAMPLE === null ? [] : [{ arbitrary: fc.constant(EXAMPLE), weight: 1 }]),
);

// ---- hostile texts -------------------------------------------------------------------------------------

const hostileScalar = fc.constantFrom(
  "-1",
  "0",
  "1e308",
  "-.inf",
  ".nan",
  "~",
  "[]",
  "{}",
  "*undefinedAlias",
  "&anchor value",
  "!!binary aGVsbG8=",
  "!!js/function 'return 1'",
  "!custom tag",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an environment reference in YAML, on purpose.
  '"${NOT_SET}"',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an environment reference in YAML, on purpose.
  "${LINLI_DUTY_DESK_PASSWORD}",
  "0x10",
  "1_000",
  "yes",
  "'",
  '"',
  "|",
  ">-",
  "99999999999999999999999",
  '"-5s"',
  '"1e400s"',
  '"10 m"',
  "2d",
  "65536",
  "__proto__",
  "{ __proto__: { polluted: true } }",
);

/** Replaces, deletes or duplicates whole lines, or a value after a colon. */
function lineEdits(text: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat(),
    op: fc.constantFrom("value", "delete", "duplicate", "indent", "dedent"),
    value: fc.oneof(hostileScalar, fc.string({ maxLength: 20 })),
  });
  return fc.tuple(text, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([t, edits]) => {
    const lines = t.split("\n");
    for (const e of edits) {
      if (lines.length === 0) break;
      const i = e.at % lines.length;
      const line = lines[i] as string;
      if (e.op === "value") {
        const colon = line.indexOf(":");
        lines[i] = colon >= 0 ? `${line.slice(0, colon + 1)} ${e.value}` : `${line} ${e.value}`;
      } else if (e.op === "delete") lines.splice(i, 1);
      else if (e.op === "duplicate") lines.splice(i, 0, line);
      else if (e.op === "indent") lines[i] = `  ${line}`;
      else lines[i] = line.replace(/^ {1,2}/, "");
    }
    return lines.join("\n");
  });
}

/** Billion laughs: each level an anchored list of aliases to the one before (yaml's maxAliasCount must stop it). */
const aliasBomb = fc
  .tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 2, max: 12 }))
  .map(([depth, width]) => {
    const lines = ["l0: &l0 [lol]"];
    for (let d = 1; d < depth; d++)
      lines.push(
        `l${d}: &l${d} [${Array(width)
          .fill(`*l${d - 1}`)
          .join(", ")}]`,
      );
    return `${lines.join("\n")}\nsite: { id: bomb }\n`;
  });

const deepNesting = (max: number) =>
  fc
    .tuple(fc.integer({ min: 1, max }), fc.constantFrom("[", "{a: ", "- "))
    .map(([n, open]) =>
      open === "- " ? Array.from({ length: n }, (_, i) => `${" ".repeat(i)}- `).join("\n") : open.repeat(n),
    );

// Weights per 10,000. An alias bomb costs ~5 ms and nesting deep enough to overflow yaml's recursion
// ~0.3 s (yaml turns the stack overflow into a YAML error): rare here, and each has a case in load.test.ts.
const hostileText: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: lineEdits(validText), weight: 4500 },
  {
    arbitrary: mutated(validText.map((t) => new TextEncoder().encode(t))).map((b) =>
      new TextDecoder().decode(b),
    ),
    weight: 3000,
  },
  { arbitrary: fc.string({ maxLength: 200, unit: "binary" }), weight: 1000 },
  { arbitrary: anyBytes(200).map((b) => new TextDecoder().decode(b)), weight: 500 },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)), weight: 500 },
  { arbitrary: deepNesting(60), weight: 400 },
  { arbitrary: aliasBomb, weight: 20 },
  { arbitrary: deepNesting(5000), weight: 2 },
);

// ---- the decoder ---------------------------------------------------------------------------------------

/** Which check refused the text: YAML syntax, environment, cross-field references, or the schema. */
function category(err: ConfigError): string {
  const m = err.problems[0]?.message ?? "";
  if (m.startsWith("YAML:")) return m.includes("alias") ? "yaml-aliases" : "yaml-syntax";
  if (m.startsWith("environment variable")) return "env";
  if (/duplicate|unknown (bus|household)|is also|is already used/.test(m)) return "references";
  return "schema";
}

class ConfigDecoder implements Decoder<string> {
  run(text: string): Outcome {
    try {
      const config = parseConfigText(text, FILE, ENV);
      invariant(typeof config.site.id === "string", "accepted a config without a site id");
      return ACCEPTED;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      invariant(
        err.file === FILE && err.message.startsWith(`invalid config ${FILE}:`),
        "problem without the file name",
      );
      invariant(err.problems.length > 0, "ConfigError without a problem");
      return refused(category(err));
    }
  }
  reset(): void {}
}

export const configTargets: FuzzTarget<string>[] = [
  { name: "config-yaml", hostile: hostileText, valid: validText, cost: 4, create: () => new ConfigDecoder() },
];
