import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { alertCodesTable, regenerate } from "./docs.js";
import { PROFILES } from "./models.js";

const TOPICS = "docs/topics.md";

describe("docs/topics.md device tables", () => {
  it("are the registered profiles' alert codes and commands (regenerate with `npm run docs`)", () => {
    const text = readFileSync(TOPICS, "utf8");
    const fresh = regenerate(text, PROFILES);
    // `npm run docs` sets this to rewrite the file instead of failing.
    if (process.env.LINLI_WRITE_DOCS === "1" && fresh !== text) writeFileSync(TOPICS, fresh);
    else expect(text).toBe(fresh);
  });

  it("list every code with its priority, model and DEVICE_LOST per model", () => {
    const t = alertCodesTable(PROFILES);
    expect(t).toMatch(/\| `GAS_LEAK` +\| P1 +\| GD-2 /);
    expect(t).toMatch(/\| `FAULT` +\| P2, P3 +\| MFS-8 /);
    for (const p of PROFILES)
      expect(t).toMatch(new RegExp(`\\| \`DEVICE_LOST\` +\\| P${p.lostPriority} +\\| ${p.label} `));
  });

  it("refuse a file whose markers are gone", () => {
    expect(() => regenerate("# nothing here\n", PROFILES)).toThrow(/markers/);
  });
});
