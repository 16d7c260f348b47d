import { describe, expect, it } from "vitest";
import { SiteTime } from "../../core/index.js";
import { LOCALES } from "./codes.js";
import { type OpsOutcome, opsOutcomeText } from "./ops-text.js";

const OUTCOMES: OpsOutcome[] = [
  "acknowledged",
  "closed",
  "already-acknowledged",
  "shelved",
  "unshelved",
  "out-of-service",
  "in-service",
  "away",
  "monitored",
  "listed",
];

describe("operator result texts", () => {
  const shanghai = new SiteTime("Asia/Shanghai");
  // 23:15 UTC on 5 December is 07:15 on the 6th in Shanghai: the date is the local one.
  const until = Date.parse("2026-12-05T23:15:21.012Z");

  it("name times on the site's clock, with the local date", () => {
    expect(opsOutcomeText("zh-CN", "shelved", { until }, shanghai)).toBe("已搁置至 2026-12-06 07:15");
    expect(opsOutcomeText("en", "shelved", { until }, shanghai)).toBe("shelved until 2026-12-06 07:15");
    expect(opsOutcomeText("zh-CN", "away", { until }, shanghai)).toBe(
      "已设为外出，关怀检查暂停至 2026-12-06 07:15",
    );
    expect(opsOutcomeText("zh-CN", "shelved", { until }, new SiteTime("UTC"))).toBe(
      "已搁置至 2026-12-05 23:15",
    );
  });

  it("every outcome has a line in every locale: Chinese for zh-CN, none for en", () => {
    for (const locale of LOCALES)
      for (const outcome of OUTCOMES)
        for (const args of [{}, { until, alerts: 2 }]) {
          const text = opsOutcomeText(locale, outcome, args, shanghai);
          expect(text, `${locale} ${outcome}`).not.toMatch(/^\s*$|undefined|null|NaN|Z\b/);
          if (locale === "zh-CN") expect(text, outcome).toMatch(/[\u4e00-\u9fff]/);
          else expect(text, outcome).not.toMatch(/[\u4e00-\u9fff]/);
        }
    expect(opsOutcomeText("en", "out-of-service", { alerts: 1 }, shanghai)).toBe(
      "device out of service (1 open alert)",
    );
  });
});
