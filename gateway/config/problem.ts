/**
 * One thing wrong with a configuration, as `config check`, `start` and reload
 * report it, and where it is: the one refusal shape (core/refusal.ts) with the
 * field path and, from the YAML document, its line (shared by the site file
 * and the device profile files it names).
 */
import type { LineCounter, parseDocument } from "yaml";
import { formatPath, type PathKey, type Rejection, yamlLine } from "../../core/index.js";

export { formatPath };

/**
 * A configuration problem is a `Rejection` (core/refusal.ts): `reason`,
 * `path`, the words (`detail`, which config errors have always called
 * `message`), `file` and `line`. Its own fields are the config's, as
 * before (what a problem serialises to and compares as is unchanged); the
 * refusal's `rejected`, `reason` and `detail` are read through getters.
 */
export class ConfigProblem implements Rejection {
  /** 1-based line in the file, when known. */
  declare line?: number;
  /** The file the problem is in, when not the site file (a device profile file it names). */
  declare file?: string;
  readonly #reason: string;

  constructor(
    /** Field path, e.g. `devices[3].heartbeatInterval`. */
    readonly path: string,
    readonly message: string,
    reason: string,
  ) {
    this.#reason = reason;
  }

  get rejected(): true {
    return true;
  }

  get reason(): string {
    return this.#reason;
  }

  get detail(): string {
    return this.message;
  }
}

/**
 * A problem at `path` (of the site file, or of `where.file`); `reason` is
 * `invalid` unless a caller needs to tell kinds apart.
 */
export function configProblem(
  path: string,
  message: string,
  where: { file?: string; line?: number } = {},
  reason = "invalid",
): ConfigProblem {
  const problem = new ConfigProblem(path, message, reason);
  if (where.file !== undefined) problem.file = where.file;
  if (where.line !== undefined) problem.line = where.line;
  return problem;
}

/** The line of the deepest node of `path` (as `formatPath` writes it) that exists in the document. */
export function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lines: LineCounter,
  path: string,
): number | undefined {
  const keys: PathKey[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g))
    keys.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  return yamlLine(doc, lines, keys);
}
