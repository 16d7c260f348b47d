/**
 * `deviceProfiles:` in the site file: integrators' devices written as data
 * (devices/declared/schema.ts, docs/devices.md), inline or as a path to a
 * profile file relative to the site file. Problems name the file they are in
 * (the profile file for its own content), the line and the field path.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import {
  type AnyProfile,
  compileProfile,
  type DeclaredProfileDoc,
  declaredProfileSchema,
  profileFor,
} from "../../devices/index.js";
import { issueProblems } from "./issues.js";
import { type ConfigProblem, configProblem, lineOf } from "./problem.js";
import type { Config, DeviceConfig } from "./schema.js";
import { unclosedQuote } from "./yaml-quote.js";

type PathKey = string | number;

const MAX_PROFILE_BYTES = 1 << 20;

/** A profile file's text -> its validated document, or problems naming `file`. */
/**
 * The profiles of a valid site as inline profiles (files read in): what the last good copy keeps,
 * so it stands alone (config/last-good.ts). Their entries were just read and checked by
 * loadDeviceProfiles; a file changed in between is checked again when the copy is read.
 */
export function inlineProfileEntries(entries: unknown, siteFile: string | null): unknown[] {
  if (!Array.isArray(entries)) return [];
  return entries.map((entry) =>
    typeof entry === "string"
      ? parseDocument(
          readFileSync(siteFile === null ? resolve(entry) : resolve(dirname(siteFile), entry), "utf8"),
        ).toJS()
      : entry,
  );
}

export function parseProfileText(
  text: string,
  file: string,
): { doc: DeclaredProfileDoc; problems: [] } | { doc: null; problems: ConfigProblem[] } {
  const lines = new LineCounter();
  const yaml = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (yaml.errors.length > 0) {
    const opened = yaml.errors.some((e) => e.code === "MISSING_CHAR") ? unclosedQuote(text, lines) : null;
    return {
      doc: null,
      problems:
        opened !== null
          ? [configProblem("", opened.message, { file, line: opened.line })]
          : yaml.errors.map((e) =>
              configProblem("", `YAML: ${e.message.split("\n")[0]}`, { file, line: e.linePos?.[0]?.line }),
            ),
    };
  }
  let value: unknown;
  try {
    value = yaml.toJS();
  } catch (err) {
    return {
      doc: null,
      problems: [configProblem("", `YAML: ${(err as Error).message.split("\n")[0]}`, { file })],
    };
  }
  const r = validateProfile(value, []);
  if (r.doc) return r;
  for (const p of r.problems) {
    p.file = file;
    p.line ??= lineOf(yaml, lines, p.path);
  }
  return r;
}

function validateProfile(
  value: unknown,
  prefix: PathKey[],
): { doc: DeclaredProfileDoc; problems: [] } | { doc: null; problems: ConfigProblem[] } {
  const r = declaredProfileSchema.safeParse(value);
  if (r.success) return { doc: r.data, problems: [] };
  return {
    doc: null,
    problems: issueProblems(r.error.issues, { schema: declaredProfileSchema, input: value, prefix }),
  };
}

/**
 * Resolves and validates `deviceProfiles` entries: a string is a profile file
 * (relative to the site file's directory, or to the working directory when the
 * config did not come from a file); an object is a profile written inline.
 */
export function loadDeviceProfiles(
  entries: unknown,
  siteFile: string | null,
): { docs: DeclaredProfileDoc[]; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const docs: DeclaredProfileDoc[] = [];
  if (entries === undefined) return { docs, problems };
  if (!Array.isArray(entries)) {
    problems.push(configProblem("deviceProfiles", "expected a list of profile files or profiles"));
    return { docs, problems };
  }
  const seen = new Map<string, string>();
  entries.forEach((entry, i) => {
    const where = `deviceProfiles[${i}]`;
    let r: ReturnType<typeof validateProfile>;
    if (typeof entry === "string") {
      const file = siteFile === null ? resolve(entry) : resolve(dirname(siteFile), entry);
      let text: string;
      try {
        // A profile is a few kilobytes: a device node, a directory or a huge file is a wrong path.
        const st = statSync(file);
        if (!st.isFile() || st.size > MAX_PROFILE_BYTES)
          throw new Error(st.isFile() ? `larger than ${MAX_PROFILE_BYTES} bytes` : "not a regular file");
        text = readFileSync(file, "utf8");
      } catch (err) {
        problems.push(configProblem(where, `cannot read profile file ${entry}: ${(err as Error).message}`));
        return;
      }
      r = parseProfileText(text, entry);
    } else r = validateProfile(entry, ["deviceProfiles", i]);
    if (!r.doc) {
      problems.push(...r.problems);
      return;
    }
    const model = r.doc.model;
    if (profileFor(model) !== undefined)
      problems.push(configProblem(`${where}.model`, `"${model}" is a built-in model; choose another name`));
    else if (seen.has(model))
      problems.push(
        configProblem(`${where}.model`, `model "${model}" is also declared by ${seen.get(model)}`),
      );
    seen.set(model, where);
    docs.push(r.doc);
  });
  return { docs, problems };
}

const compiled = new WeakMap<DeclaredProfileDoc, AnyProfile>();

/** The compiled profile of a declared document (compiled once per document). */
export function compiledProfile(doc: DeclaredProfileDoc): AnyProfile {
  let p = compiled.get(doc);
  if (!p) {
    p = compileProfile(doc);
    compiled.set(doc, p);
  }
  return p;
}

/**
 * The profile of a device entry: a registered one, or the compiled profile of
 * the declared document of its model (devices described as data).
 */
export function deviceProfile(
  d: Pick<DeviceConfig, "id" | "model">,
  config: Pick<Config, "deviceProfiles">,
): AnyProfile {
  const registered = profileFor(d.model);
  if (registered) return registered;
  const doc = config.deviceProfiles.find((p) => p.model === d.model);
  // The loader checked every reference; a caller holding another config's device is a bug.
  if (!doc) throw new Error(`${d.id}: no device profile "${d.model}"`);
  return compiledProfile(doc);
}
