import { describe, expect, it } from "vitest";
import { z } from "zod";
import { closest, issueProblems, knownFields } from "./issues.js";
import { configSchema } from "./schema.js";

describe("schema issues in the config's words", () => {
  it("suggests the known field a typo meant: a case slip or two edits, one for short names", () => {
    const known = ["heartbeatInterval", "holdOpenTime", "id", "name"];
    expect(closest("heartbeatIntervall", known)).toBe("heartbeatInterval");
    expect(closest("HoldOpenTime", known)).toBe("holdOpenTime");
    expect(closest("idd", known)).toBe("id");
    expect(closest("nm", known)).toBeUndefined();
    expect(closest("colour", known)).toBeUndefined();
  });

  it("knows the fields of an object through defaults, lists and a device's model", () => {
    const input = { devices: [{ model: "ds10" }, { model: "nope" }] };
    expect(knownFields(configSchema, input, ["devices", 0])).toContain("holdOpenTime");
    expect(knownFields(configSchema, input, ["devices", 1])).toBeUndefined();
    expect(knownFields(configSchema, {}, ["alerts", "actions"])).toContain("FIRE_ALARM");
    expect(knownFields(configSchema, {}, ["alerts", "escalation"])).toEqual(
      expect.arrayContaining(["p1", "p2", "factor", "maxInterval"]),
    );
  });

  it("a field of several types given none of them says which it takes", () => {
    const schema = z.strictObject({ every: z.union([z.string(), z.number()]) });
    const input = { every: true };
    const r = schema.safeParse(input);
    expect(r.success).toBe(false);
    const [p] = issueProblems(r.error?.issues ?? [], { schema, input });
    expect(p).toMatchObject({ path: "every", message: "must be a string or a number, got true" });
  });
});
