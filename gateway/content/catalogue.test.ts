/**
 * Every alert the gateway can raise has a message and an action in every
 * shipped locale: the codes are read from the sources that raise them (device
 * rules, supervision, the gateway itself), not only from the type.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Transition } from "../alerts/alert.js";
import { CATALOGUES } from "./alert-content.js";
import { ALERT_CODES, LOCALES } from "./codes.js";

/** Non-test TypeScript files under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [p] : [];
  });
}

/** Codes passed to `raise("X"` or `condition("X"` anywhere in the gateway and the device profiles. */
function raisedInSource(): Set<string> {
  const out = new Set<string>();
  for (const file of [...sources("devices"), ...sources("gateway")]) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/\.(?:raise|condition)\(\s*"([A-Z][A-Z0-9_]+)"/g)) out.add(m[1] as string);
  }
  return out;
}

const TRANSITIONS: readonly Transition[] = [
  "raised",
  "repeated",
  "reactivated",
  "acknowledged",
  "cleared",
  "closed",
  "cancelled-by-resident",
  "delivered",
  "shelved",
  "unshelved",
  "shelve-expired",
  "out-of-service",
  "in-service",
  "chattering",
  "chattering-ended",
  "flood-released",
  "escalated",
];

describe("message catalogues", () => {
  it("the operator guide (docs/operator-guide.zh-CN.md) explains every code under its zh-CN title", () => {
    const guide = readFileSync("docs/operator-guide.zh-CN.md", "utf8");
    for (const code of ALERT_CODES) {
      const row = guide.split("\n").find((l) => l.startsWith(`| \`${code}\``));
      expect(row, code).toBeDefined();
      expect(row, code).toContain(CATALOGUES["zh-CN"].codes[code].title);
    }
  });

  it("the sources raise only known codes, and every known code is raised somewhere", () => {
    const raised = raisedInSource();
    // The scan finds the codes (a broken regex would make the next lines pass vacuously).
    expect(raised.size).toBeGreaterThanOrEqual(15);
    for (const code of raised) expect(ALERT_CODES).toContain(code);
    for (const code of ALERT_CODES) expect(raised, code).toContain(code);
  });

  for (const locale of LOCALES)
    it(`${locale}: every code has a title and an action, every transition a phrase`, () => {
      const cat = CATALOGUES[locale];
      expect(Object.keys(cat.codes).sort()).toEqual([...ALERT_CODES].sort());
      for (const code of ALERT_CODES) {
        const t = cat.codes[code];
        expect(t.title.trim(), code).not.toBe("");
        expect(t.action.trim().length, code).toBeGreaterThan(5);
        expect(`${t.title}${t.action}`, code).not.toMatch(/[\n\r]/);
        // zh-CN text is Chinese (not an English string left in by mistake); en text is not.
        if (locale === "zh-CN") expect(`${t.title}${t.action}`, code).toMatch(/[\u4e00-\u9fff]/);
        else expect(`${t.title}${t.action}`, code).not.toMatch(/[\u4e00-\u9fff]/);
      }
      const args = { by: "duty-desk", until: "22:30", count: 2, level: 1, minutes: 3 };
      expect(Object.keys(cat.transitions).sort()).toEqual([...TRANSITIONS].sort());
      for (const tr of TRANSITIONS) {
        const phrase = cat.transitions[tr](args);
        expect(phrase, tr).not.toMatch(/[\n\r]|undefined|null|NaN/);
        if (tr !== "raised") expect(phrase, tr).not.toBe("");
      }
    });
});
