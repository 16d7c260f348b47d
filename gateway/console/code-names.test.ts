/**
 * The console names an alert code as its alert's `message` and the operators' guide do: the
 * page's table (public/i18n.js, plain browser JS) must say what the gateway's catalogues say,
 * or an operator reads "防拆报警" above "设备外壳被打开：…" and looks for neither in the guide.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { en } from "../content/messages.en.js";
import { zhCN } from "../content/messages.zh-CN.js";

type Names = Record<"zh-CN" | "en", Record<string, string>>;

describe("console alert-code names", () => {
  it("are the catalogues' titles, in Chinese and English, for every code", async () => {
    const url = pathToFileURL(path.resolve("gateway/console/public/i18n.js")).href;
    const { CODE_NAMES } = (await import(url)) as { CODE_NAMES: Names };
    for (const [locale, catalogue] of [
      ["zh-CN", zhCN],
      ["en", en],
    ] as const) {
      const titles = Object.fromEntries(Object.entries(catalogue.codes).map(([code, t]) => [code, t.title]));
      expect(CODE_NAMES[locale], locale).toEqual(titles);
    }
  });
});
