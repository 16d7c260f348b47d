/**
 * One thing wrong with a configuration, as `config check`, `start` and reload
 * report it, and where it is: the one refusal shape (core/refusal.ts) with the
 * field path and, from the YAML document, its line (shared by the site file
 * and the device profile files it names).
 */
import { isMap, isScalar, isSeq, type LineCounter, type parseDocument } from "yaml";
import type { Rejection } from "../../core/index.js";

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

type PathKey = string | number;

export function formatPath(path: readonly PathKey[]): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out ? `.${key}` : key;
  return out;
}

/** The line of the deepest node of `path` that exists in the document. */
export function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lines: LineCounter,
  path: string,
): number | undefined {
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
