/**
 * The layers hold: every import of every .ts file points down, never up or
 * sideways, and no import cycle runs between or within the top folders.
 *
 *   core       the clock, site calendar, normalised model, lane ids: imports nothing of ours
 *   protocols  links, Modbus master, payload codec: core
 *   devices    one profile per model: protocols, core
 *   sim        the simulated community: protocols, core (never a gateway or devices table,
 *              so a test against the simulator checks the datasheet, not our own decoding)
 *   gateway    broker, pipeline, alerts, journal: devices, protocols, core
 *   cli        the `linli` command: composes gateway and sim; nothing imports it
 *
 * Production code reaches another layer only through that layer's index.ts (its public
 * surface), or core/threads.ts (core's surface for code in a worker thread: the ring alone). Tests in
 * test/, bench/, fuzz/, gateway/ and cli/ sit on top: they may import any file of any layer but cli.
 * A test beside the code of a lower layer (core, protocols, devices, sim) keeps its layer's direction,
 * though it may import any file of the layers below: one that needs an upper layer is a test of
 * that layer, and sits there or in test/. `npm run check:cycles` runs madge over the same folders.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const LAYERS = ["core", "protocols", "devices", "sim", "gateway", "cli"] as const;
type Layer = (typeof LAYERS)[number];
const ON_TOP = ["bench", "fuzz", "test"] as const;

const MAY_IMPORT: Readonly<Record<Layer, readonly Layer[]>> = {
  core: [],
  protocols: ["core"],
  devices: ["core", "protocols"],
  sim: ["core", "protocols"],
  gateway: ["core", "protocols", "devices"],
  cli: ["core", "protocols", "devices", "gateway", "sim"],
};

/** Layers whose tests sit on top (they may import any layer but cli); the others' tests keep their direction. */
const TESTS_ON_TOP: readonly Layer[] = ["gateway", "cli"];

/** Public surfaces other than index.ts: core's for worker threads, which load nothing else. */
const SURFACES: Partial<Record<Layer, readonly string[]>> = {
  core: ["core/index.ts", "core/threads.ts"],
  protocols: ["protocols/index.ts", "protocols/threads.ts"],
  devices: ["devices/index.ts", "devices/threads.ts"],
};

interface Import {
  file: string;
  line: number;
  spec: string;
  /** Repository-relative .ts path for a relative import; null for a package (node:, npm). */
  target: string | null;
}

function isLayer(folder: string): folder is Layer {
  return (LAYERS as readonly string[]).includes(folder);
}

const topOf = (path: string) => path.split("/")[0] as string;

/** Every import, export-from and dynamic import() of one file, with its line. */
function importsOf(file: string, source: string): Import[] {
  const info = ts.preProcessFile(source, true, true);
  return info.importedFiles.map((ref) => {
    const line = source.slice(0, ref.pos).split("\n").length;
    const relative = ref.fileName.startsWith(".");
    const target = relative ? normalize(join(dirname(file), ref.fileName)).replace(/\.js$/, ".ts") : null;
    return { file, line, spec: ref.fileName, target };
  });
}

/** The rule an import breaks, or null when it points the right way. */
function violation(imp: Import): string | null {
  if (imp.target === null) return null;
  const from = topOf(imp.file);
  const to = topOf(imp.target);
  if (from === to) return null;
  if (to === "cli") return "nothing imports cli/ (it is the top: it composes gateway and sim)";
  if (!isLayer(from)) return null;
  if (imp.file.endsWith(".test.ts")) {
    if (TESTS_ON_TOP.includes(from) || (isLayer(to) && MAY_IMPORT[from].includes(to))) return null;
    return `a test in ${from}/ may import only ${from}/ and ${MAY_IMPORT[from].join(", ") || "nothing else of ours"}, not ${to}/ (move it up: test/ or the layer it needs)`;
  }
  if (!isLayer(to)) return `${from}/ may not import ${to}/ (tests, bench and fuzz sit on top)`;
  if (!MAY_IMPORT[from].includes(to)) {
    const allowed = MAY_IMPORT[from].length > 0 ? MAY_IMPORT[from].join(", ") : "nothing of ours";
    return `${from}/ may import only ${allowed}, not ${to}/`;
  }
  if (!(SURFACES[to] ?? [`${to}/index.ts`]).includes(imp.target))
    return `${from}/ reaches ${to}/ only through ${to}/index.ts`;
  return null;
}

/** One cycle per strongly connected group of files (Tarjan), as a path a -> b -> ... -> a. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1 || (graph.get(v) ?? []).includes(v))
      found.push(pathWithin(graph, new Set(group), v));
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** A shortest way from `start` back to itself inside one group (breadth first). */
function pathWithin(
  graph: ReadonlyMap<string, readonly string[]>,
  group: Set<string>,
  start: string,
): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!group.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = parent.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

function sourceFiles(): string[] {
  const files: string[] = [];
  for (const folder of [...LAYERS, ...ON_TOP]) {
    for (const entry of readdirSync(folder, { recursive: true, encoding: "utf8" })) {
      if (entry.endsWith(".ts")) files.push(join(folder, entry));
    }
  }
  return files.sort();
}

describe("layers", () => {
  const files = sourceFiles();
  const imports = files.flatMap((f) => importsOf(f, readFileSync(f, "utf8")));

  it("every layer has an index.ts, its public surface", () => {
    for (const layer of LAYERS) expect(files).toContain(`${layer}/index.ts`);
  });

  it("every import points down the layers, through the layer's index.ts", () => {
    expect(imports.length).toBeGreaterThan(500);
    const wrong = imports.flatMap((imp) => {
      const rule = violation(imp);
      return rule === null ? [] : [`${imp.file}:${imp.line} imports "${imp.spec}": ${rule}`];
    });
    expect(wrong).toEqual([]);
  });

  it("no import cycle, between or within the top folders", () => {
    const graph = new Map<string, string[]>(files.map((f) => [f, []]));
    for (const imp of imports) if (imp.target !== null) graph.get(imp.file)!.push(imp.target);
    expect(cycles(graph).map((c) => c.join(" -> "))).toEqual([]);
  });

  // The checks themselves can fail: wrong imports written the ways the code base writes imports.
  it("names the file, the import and the rule of a wrong import", () => {
    const src = [
      'import type { Clock } from "../../gateway/time/timer-wheel.js";',
      'export { x } from "../../devices/index.js";',
      'const later = () => import("../../gateway/gateway.js");',
      'import { crc16 } from "../../protocols/modbus/crc.js";',
      'import { systemClock } from "../../core/index.js";',
      'import { EventEmitter } from "node:events";',
    ].join("\n");
    const rules = importsOf("sim/modbus/x.ts", src).map((imp) => [imp.line, imp.spec, violation(imp)]);
    expect(rules).toEqual([
      [1, "../../gateway/time/timer-wheel.js", "sim/ may import only core, protocols, not gateway/"],
      [2, "../../devices/index.js", "sim/ may import only core, protocols, not devices/"],
      [3, "../../gateway/gateway.js", "sim/ may import only core, protocols, not gateway/"],
      [4, "../../protocols/modbus/crc.js", "sim/ reaches protocols/ only through protocols/index.ts"],
      [5, "../../core/index.js", null],
      [6, "node:events", null],
    ]);
    expect(violation(importsOf("core/clock.ts", 'import "../protocols/index.js";')[0]!)).toBe(
      "core/ may import only nothing of ours, not protocols/",
    );
    expect(violation(importsOf("test/x.test.ts", 'import "../cli/linli.js";')[0]!)).toMatch(
      /nothing imports cli/,
    );
    expect(violation(importsOf("gateway/x.test.ts", 'import "../sim/mqtt/ec200.js";')[0]!)).toBeNull();
    // A test beside lower-layer code: any file of the layers below, nothing above.
    expect(violation(importsOf("devices/x.test.ts", 'import "../core/clock.js";')[0]!)).toBeNull();
    expect(violation(importsOf("devices/x.test.ts", 'import "../gateway/alerts/engine.js";')[0]!)).toBe(
      "a test in devices/ may import only devices/ and core, protocols, not gateway/ (move it up: test/ or the layer it needs)",
    );
    expect(violation(importsOf("core/x.test.ts", 'import "../gateway/registry.js";')[0]!)).toMatch(
      /^a test in core\/ may import only core\/ and nothing else of ours, not gateway\//,
    );
    expect(violation(importsOf("sim/x.test.ts", 'import "../test/support/net.js";')[0]!)).toMatch(
      /not test\//,
    );
    expect(violation(importsOf("gateway/x.ts", 'import "../bench/harness.js";')[0]!)).toMatch(/sit on top/);
  });

  it("finds a cycle and shows its path", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts", "d.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", []],
    ]);
    expect(cycles(graph)).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
    expect(
      cycles(
        new Map([
          ["a.ts", ["b.ts"]],
          ["b.ts", []],
        ]),
      ),
    ).toEqual([]);
  });
});
