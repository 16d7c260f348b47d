/**
 * What grew between two V8 heap snapshots: self size and count by node type
 * and constructor name, largest growth first.
 *
 *   node dist/bench/heap-diff.js before.heapsnapshot after.heapsnapshot [--top 30] [--per N]
 *
 * `--per N` divides the growth by N (e.g. the connections opened in between).
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per "type:name" (closures and contexts by type, objects by constructor name). */
export function aggregate(file: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const type = types[snap.nodes[i + typeAt] as number] as string;
    let name = snap.strings[snap.nodes[i + nameAt] as number] as string;
    if (type === "string" || type === "concatenated string" || type === "sliced string") name = "";
    if (type === "number" || type === "hidden") name = name.slice(0, 40);
    const key = `${type}:${name.slice(0, 60)}`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + sizeAt] as number;
    e.count++;
    out.set(key, e);
  }
  return out;
}

function main(): void {
  const [before, after] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  if (!before || !after)
    throw new Error("usage: heap-diff before.heapsnapshot after.heapsnapshot [--top N] [--per N]");
  const opt = (name: string, d: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : d;
  };
  const top = opt("top", 30);
  const per = opt("per", 1);
  const a = aggregate(before);
  const b = aggregate(after);
  const rows = [...b.entries()].map(([k, v]) => {
    const o = a.get(k) ?? { size: 0, count: 0 };
    return { key: k, size: v.size - o.size, count: v.count - o.count };
  });
  rows.sort((x, y) => y.size - x.size);
  const total = rows.reduce((s, r) => s + r.size, 0);
  process.stdout.write(`growth ${(total / per).toFixed(0)} B${per > 1 ? " per unit" : ""}\n`);
  for (const r of rows.slice(0, top))
    process.stdout.write(
      `${(r.size / per).toFixed(0).padStart(8)} B  ${(r.count / per).toFixed(2).padStart(7)} x  ${r.key}\n`,
    );
}

main();
