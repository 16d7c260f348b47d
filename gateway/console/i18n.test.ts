/**
 * The console's own words for an alert's escalation and count read as a sentence in both
 * languages, in the operators' guide's terms ("第 2 次升级"): before, "升级: 3 级" and
 * "Escalation: 3 level", "count: 3".
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

interface I18n {
  STRINGS: Record<"zh-CN" | "en", Record<string, unknown>>;
  textWith: (lang: string, key: string, n: number) => string;
}

describe("console alert meta texts", () => {
  it("escalation level and count", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { STRINGS, textWith } = (await import(url)) as I18n;
    expect(textWith("zh-CN", "escalationLevel", 3)).toBe("第 3 次升级");
    expect(textWith("en", "escalationLevel", 3)).toBe("Escalation level 3");
    expect(STRINGS["zh-CN"].count).toBe("次数");
    expect(STRINGS.en.count).toBe("Count");
  });
});
