import { describe, expect, it } from "vitest";
import { zhJoin } from "./zh-join.js";

describe("zhJoin", () => {
  it("spaces an id or Latin word from Chinese characters, never from punctuation or another space", () => {
    expect(zhJoin("住户 hh-1", "的", "燃气报警器 g-1")).toBe("住户 hh-1 的燃气报警器 g-1");
    expect(zhJoin("1号楼 101室 张阿姨", "的", "紧急呼叫")).toBe("1号楼 101室 张阿姨的紧急呼叫");
    expect(zhJoin("住户 hh-1 的", "pump-7")).toBe("住户 hh-1 的 pump-7");
    expect(zhJoin("门磁 d-1（入户门）", "已在使用中")).toBe("门磁 d-1（入户门）已在使用中");
    expect(zhJoin("已确认：", "k-1")).toBe("已确认：k-1");
    expect(zhJoin("", "已设为外出")).toBe("已设为外出");
  });
});
