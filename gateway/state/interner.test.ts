import { describe, expect, it } from "vitest";
import { Interner } from "./recovery.js";

describe("Interner (recovery's shared strings)", () => {
  it("gives back an equal string, passes other values and long strings through, and is bounded", () => {
    const s = new Interner();
    const first = ["active-", "acknowledged"].join("");
    expect(s.intern(first)).toBe("active-acknowledged");
    expect(s.intern(["active-ack", "nowledged"].join(""))).toBe("active-acknowledged");
    expect(s.intern(null)).toBeNull();
    expect(s.intern(42)).toBe(42);
    const long = "x".repeat(65);
    expect(s.intern(long)).toBe(long);
    // Past the bound, strings are still given back as they are.
    for (let i = 0; i < 5_000; i++) expect(s.intern(`v-${i}`)).toBe(`v-${i}`);
    expect((s as unknown as { table: Map<string, string> }).table.size).toBe(4096);
  });

  it("interns an alert record's repeated fields in place, leaving its values as they were", () => {
    const s = new Interner();
    const r = {
      code: "TAMPER",
      model: "ds10",
      household: "hh-1",
      state: "active-acknowledged",
      causes: ["cover removed"],
      ackedBy: "wang",
      ackedByAccount: null,
      ackNote: "on site",
      suppressedFor: null,
      shelvedBy: null,
      shelvedByAccount: null,
      shelveReason: null,
      outOfServiceBy: null,
      outOfServiceByAccount: null,
      lastIsa: "active-acknowledged",
      lastTransition: "acknowledged",
    };
    const copy = structuredClone(r);
    s.alertRecord(r as never);
    expect(r).toEqual(copy);
  });
});
