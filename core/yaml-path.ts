/**
 * Where a field is in a YAML file, for messages that name the file, the line and the field
 * (`site.yaml:26: devices[0].heartbeatIntervall: ...`): the gateway's configuration and the
 * simulator's site and scenario files say it the same way.
 */
import { isMap, isScalar, isSeq, type LineCounter, type parseDocument } from "yaml";

export type PathKey = string | number;

/** `devices[0].heartbeatInterval`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out;
}

/** The line of the deepest node of `path` that exists in the document. */
export function yamlLine(
  doc: ReturnType<typeof parseDocument>,
  lines: LineCounter,
  path: readonly PropertyKey[],
): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  const at = (range: unknown) => {
    if (Array.isArray(range)) line = lines.linePos(range[0] as number).line;
  };
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (!pair) break;
      at((pair.key as { range?: unknown }).range);
      node = pair.value;
    } else if (isSeq(node) && typeof key === "number") {
      node = node.items[key];
      at((node as { range?: unknown } | undefined)?.range);
    } else break;
  }
  return line;
}
