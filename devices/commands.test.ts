import { describe, expect, it } from "vitest";
import { isRejection } from "../core/index.js";
import { modbusWrite, unknownCommand } from "./commands.js";
import { gd2 } from "./gd2.js";
import { lv4 } from "./lv4.js";
import { mfs8 } from "./mfs8.js";

describe("a command checked against its model", () => {
  it("a fixed write, and a set-point within the command's range", () => {
    expect(modbusWrite(mfs8, "reset", undefined)).toEqual({ fn: 5, address: 1, value: 0xff00 });
    expect(modbusWrite(lv4, "set_low", 2000)).toEqual({ fn: 6, address: 0, value: 2000 });
  });

  it("an LV-4 set-point out of range, or not an integer, is refused before anything is sent", () => {
    for (const value of [50, 2000.5, "2000", undefined, 70_000]) {
      const r = modbusWrite(lv4, "set_low", value);
      expect(isRejection(r) && r, String(value)).toMatchObject({
        reason: "bad-value",
        path: "value",
        detail: 'an integer 100..65535 as "value"',
      });
      expect(isRejection(r) && r.zh).toMatch(/100 到 65535/);
    }
  });

  it("a name the model does not know (nor one of Object.prototype's) is unknown-command", () => {
    for (const name of ["launch", "toString", "__proto__"]) {
      const r = modbusWrite(mfs8, name, undefined);
      expect(isRejection(r) && r.reason, name).toBe("unknown-command");
    }
    expect(unknownCommand(gd2, "x")).toMatchObject({
      reason: "unknown-command",
      path: "command",
      detail: "GD-2 has no command x; known: valve_close, valve_open, self_test",
    });
  });
});
