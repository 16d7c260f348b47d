/**
 * One thing wrong with a configuration, as `config check`, `start` and reload
 * report it, and where it is: the field path and, from the YAML document, its
 * line (shared by the site file and the device profile files it names).
 */
import { isMap, isScalar, isSeq, type LineCounter, type parseDocument } from "yaml";

export interface ConfigProblem {
  /** Field path, e.g. `devices[3].heartbeatInterval`. */
  path: string;
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
  /** The file the problem is in, when not the site file (a device profile file it names). */
  file?: string;
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
