import { describe, expect, it } from "vitest";
import { isRejection, type Rejection } from "../core/index.js";
import { modbusWrite } from "../devices/commands.js";
import { lv4 } from "../devices/lv4.js";
import { mfs8 } from "../devices/mfs8.js";
import { commandResultFields } from "./device-commands.js";
import { noDevice } from "./operator-actions.js";

/** The refusal a check gave (the test fails if it let the command through). */
function refusal(x: object): Rejection {
  if (!isRejection(x)) throw new Error("not refused");
  return x;
}

describe("a command's result from the one refusal shape (docs/topics.md)", () => {
  it("keeps the published fields (`error`, `known`, `expected`) and adds `message` in the site's language", () => {
    const badValue = refusal(modbusWrite(lv4, "set_low", 5));
    expect(commandResultFields(badValue, lv4, "en")).toEqual({
      ok: false,
      error: "bad-value",
      expected: 'an integer 100..65535 as "value"',
      message: 'an integer 100..65535 as "value"',
    });
    expect(commandResultFields(badValue, lv4, "zh-CN")).toMatchObject({
      message: '"value" 须为 100 到 65535 的整数',
    });
    expect(commandResultFields(refusal(modbusWrite(mfs8, "launch", undefined)), mfs8, "zh-CN")).toEqual({
      ok: false,
      error: "unknown-command",
      known: ["silence", "reset", "test_on", "test_off"],
      message: "MFS-8 没有 launch 命令；可用：silence、reset、test_on、test_off",
    });
    expect(commandResultFields(noDevice("d-9"), undefined, "en")).toEqual({
      ok: false,
      error: "unknown-device",
      message: "no device d-9",
    });
  });

  it("passes what the bus made of a command through as it is", () => {
    const timeout = { ok: false, error: "timeout" } as const;
    expect(commandResultFields(timeout, mfs8, "zh-CN")).toBe(timeout);
    expect(commandResultFields({ ok: true }, mfs8, "en")).toEqual({ ok: true });
  });
});
