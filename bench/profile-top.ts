/**
 * Top functions by self time in a V8 .cpuprofile (from `npm run bench -- --profile DIR`):
 *
 *   node dist/bench/profile-top.js DIR/CPU.*.cpuprofile [--top 25]
 *
 * Also sums self time by package (node_modules/<name>, node: internals, linli's own folders),
 * which is usually the first question: is the time in aedes, in mqtt-packet, or in our code?
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (url === "") return "(v8/native)";
  if (url.startsWith("node:")) return "node:internals";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const m = /\/dist\/([^/]+)\//.exec(url);
  return m ? `linli/${m[1]}` : url;
}

export function topOfProfile(file: string, top = 25): string {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const byPkg = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i] as number);
    const dt = p.timeDeltas[i] ?? 0;
    if (!node) continue;
    total += dt;
    const f = node.callFrame;
    const short = f.url.replace(/^.*\/(node_modules|dist)\//, "");
    const key = `${f.functionName || "(anonymous)"}  ${short}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const pkg = f.functionName === "(idle)" ? "(idle)" : where(f.url);
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + dt);
  }
  const pct = (v: number) => `${((100 * v) / total).toFixed(1).padStart(5)}%`;
  const lines = [`${file}: ${(total / 1e6).toFixed(2)} s sampled`, "", "self time by package:"];
  for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`  ${pct(v)}  ${k}`);
  lines.push("", `top ${top} functions by self time:`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(v)}  ${k}`);
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    options: { top: { type: "string", default: "25" } },
    allowPositionals: true,
  });
  for (const f of positionals) process.stdout.write(`${topOfProfile(f, Number(values.top))}\n\n`);
}
