import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { STARTUP_NODE_FLAGS } from "./heap.js";

const root = new URL("../", import.meta.url);

describe("edge heap settings", () => {
  // V8 reads these only at start-up; every way the gateway is started must pass them.
  it("the CLI's shebang line and `npm start` carry the start-up flags", () => {
    const shebang = readFileSync(new URL("cli/linli.ts", root), "utf8").split("\n")[0];
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
      scripts: { start: string };
    };
    expect(STARTUP_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const flag of STARTUP_NODE_FLAGS) {
      expect(shebang).toContain(flag);
      expect(pkg.scripts.start).toContain(flag);
    }
  });
});
