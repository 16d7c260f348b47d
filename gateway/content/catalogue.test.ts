/**
 * Every alert the gateway can raise has a message and an action in every
 * shipped locale: the codes are read from the sources that raise them (device
 * rules, supervision, the gateway itself), not only from the type.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type AlertCode, GATEWAY_ALERT_CODES } from "../../core/index.js";
import { type AlertSpec, PROFILES } from "../../devices/index.js";
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
  "changed",
];

describe("message catalogues", () => {
  it("the operator guide (docs/operator-guide.zh-CN.md) explains every code under its zh-CN title", () => {
    const guide = readFileSync("docs/operator-guide.zh-CN.md", "utf8");
    for (const code of ALERT_CODES) {
      const row = guide.split("\n").find((l) => l.startsWith(`| \`${code}\``));
      expect(row, code).toBeDefined();
      expect(row, code).toContain(CATALOGUES["zh-CN"].codes[code].title);
    }
    // A model's own words for a shared code (GD-2 FAULT) are what its alerts read: its section says them.
    for (const p of PROFILES)
      for (const [code, spec] of Object.entries(p.alerts as Record<string, AlertSpec>)) {
        const title = spec.text?.["zh-CN"].title;
        if (title === undefined) continue;
        const rows = guide.split("\n").filter((l) => l.startsWith(`| \`${code}\``));
        expect(
          rows.some((r) => r.includes(title)),
          `${p.model} ${code}`,
        ).toBe(true);
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
      const args = { by: "duty-desk", until: "22:30", count: 2, level: 1, unacknowledgedMs: 3 * 60_000 };
      expect(Object.keys(cat.transitions).sort()).toEqual([...TRANSITIONS].sort());
      for (const tr of TRANSITIONS) {
        const phrase = cat.transitions[tr](args);
        expect(phrase, tr).not.toMatch(/[\n\r]|undefined|null|NaN/);
        if (tr !== "raised") expect(phrase, tr).not.toBe("");
      }
    });
});

describe("where the words live", () => {
  /** Codes the shipped catalogues spell out themselves (their `own` entries). */
  const ownCodes = (file: string) =>
    new Set(
      [...readFileSync(file, "utf8").matchAll(/^ {4}([A-Z][A-Z0-9_]+): \{/gm)].map((m) => m[1] as string),
    );

  it("a code only one model raises brings its words in its profile, in every locale", () => {
    const models = new Map<string, string[]>();
    for (const p of PROFILES)
      for (const code of Object.keys(p.alerts)) models.set(code, [...(models.get(code) ?? []), p.model]);
    const own = [
      ownCodes("gateway/content/messages.zh-CN.ts"),
      ownCodes("gateway/content/messages.en.ts"),
    ] as const;
    // The scan finds the catalogues' entries (else the next lines pass vacuously).
    expect(own[0].has("DEVICE_LOST") && own[1].has("DEVICE_LOST")).toBe(true);
    let single = 0;
    for (const [code, byModels] of models) {
      if (byModels.length > 1) continue;
      single++;
      const profile = PROFILES.find((p) => p.model === byModels[0]);
      const text = (profile?.alerts as Record<string, AlertSpec> | undefined)?.[code]?.text;
      for (const locale of LOCALES) {
        expect(text?.[locale]?.title, `${code} ${locale}`).toBeTruthy();
        expect(CATALOGUES[locale].codes[code as AlertCode].title).toBe(text?.[locale]?.title);
      }
      expect(own[0].has(code) || own[1].has(code), code).toBe(false);
    }
    expect(single).toBeGreaterThanOrEqual(15);
  });

  it("the catalogues keep only the gateway's codes and the codes several models share", () => {
    const shared = new Set(
      PROFILES.flatMap((p) => Object.keys(p.alerts)).filter(
        (code, _i, all) => all.indexOf(code) !== all.lastIndexOf(code),
      ),
    );
    for (const file of ["gateway/content/messages.zh-CN.ts", "gateway/content/messages.en.ts"])
      for (const code of ownCodes(file))
        expect(
          (GATEWAY_ALERT_CODES as readonly string[]).includes(code) || shared.has(code),
          `${file}: ${code}`,
        ).toBe(true);
  });
});

describe("spans of time in alert texts", () => {
  const S = 1000;
  const MIN = 60 * S;
  const HOUR = 60 * MIN;
  const lost = (locale: "zh-CN" | "en", silentForMs: number) =>
    CATALOGUES[locale].codes.DEVICE_LOST.detail?.({ silentForMs }, []);
  const welfare = (locale: "zh-CN" | "en", periodMs: number) =>
    CATALOGUES[locale].codes.WELFARE_CHECK.detail?.({ periodMs }, []);

  it("short spans are never '0 minutes' or '0 hours': a 5 s heartbeat, a 30 s welfare period", () => {
    // heartbeatInterval 5s: lost after 2 x 5 s + 60 s.
    expect(lost("zh-CN", 70 * S)).toBe("已 1 分钟 10 秒无信号");
    expect(lost("en", 70 * S)).toBe("silent for 1 minute 10 seconds");
    expect(lost("zh-CN", 10 * S)).toBe("已 10 秒无信号");
    expect(welfare("zh-CN", 30 * S)).toBe("超过 30 秒无活动");
    expect(welfare("en", 30 * S)).toBe("nothing for over 30 seconds");
  });

  it("the largest unit with a whole number, then the next unit when it is not 0", () => {
    expect(welfare("zh-CN", 24 * HOUR)).toBe("超过 1 天无活动");
    expect(welfare("zh-CN", 12 * HOUR)).toBe("超过 12 小时无活动");
    expect(welfare("zh-CN", 90 * MIN)).toBe("超过 1 小时 30 分钟无活动");
    expect(welfare("en", 36 * HOUR)).toBe("nothing for over 1 day 12 hours");
    // A DS-10 (heartbeat 1 h) lost after 2 h + 60 s, seen a few seconds late: truncated, not rounded up.
    expect(lost("zh-CN", 2 * HOUR + MIN + 7 * S)).toBe("已 2 小时 1 分钟无信号");
    expect(lost("en", 2 * HOUR)).toBe("silent for 2 hours");
    expect(lost("en", 1 * MIN)).toBe("silent for 1 minute");
  });

  it("an operator's name is spaced from Chinese only when it is a Latin name or id", () => {
    const zh = CATALOGUES["zh-CN"].transitions;
    const args = { count: 1, level: 0, unacknowledgedMs: 0 };
    expect(zh.acknowledged({ ...args, by: "duty-desk", until: null })).toBe("已由 duty-desk 确认");
    expect(zh.acknowledged({ ...args, by: "王明", until: null })).toBe("已由王明确认");
    expect(zh.acknowledged({ ...args, by: null, until: null })).toBe("已由值班员确认");
    expect(zh.shelved({ ...args, by: "王明", until: "17:30" })).toBe("已由王明搁置至 17:30");
    expect(zh.shelved({ ...args, by: "op-2", until: null })).toBe("已由 op-2 搁置");
  });

  it("an escalation says how long nobody acknowledged in the same words", () => {
    const args = { by: null, until: null, count: 1, level: 2 };
    expect(CATALOGUES["zh-CN"].transitions.escalated({ ...args, unacknowledgedMs: 30 * S })).toBe(
      "30 秒无人确认，第 2 次升级",
    );
    expect(CATALOGUES.en.transitions.escalated({ ...args, unacknowledgedMs: 3 * MIN + 200 })).toBe(
      "not acknowledged for 3 minutes, escalation 2",
    );
  });
});
