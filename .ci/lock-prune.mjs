// The npm registry reachable from this project's machines serves only the linux-x64 builds of
// platform-specific optional packages (biome's CLI, cbor-extract). npm writes every platform's
// optional edge into package-lock.json but cannot record the missing packages, and `npm ci`
// then refuses the lock ("Missing: @biomejs/cli-darwin-x64 from lock file"). This drops the
// optional edges that have no package entry in the lock. Run after `npm install`:
//   node .ci/lock-prune.mjs
import { readFileSync, writeFileSync } from "node:fs";

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const names = Object.keys(lock.packages);
const pruned = [];
for (const [name, entry] of Object.entries(lock.packages)) {
  const optional = entry.optionalDependencies;
  if (!optional) continue;
  for (const dep of Object.keys(optional)) {
    if (!names.some((n) => n.endsWith(`node_modules/${dep}`))) {
      delete optional[dep];
      pruned.push(`${name} -> ${dep}`);
    }
  }
  if (Object.keys(optional).length === 0) delete entry.optionalDependencies;
}
writeFileSync("package-lock.json", `${JSON.stringify(lock, null, 2)}\n`);
console.log(pruned.length ? `pruned ${pruned.length} unresolvable optional edges` : "lock already clean");
