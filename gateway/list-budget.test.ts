import { describe, expect, it } from "vitest";
import { LIST_BURST, LIST_PER_SECOND, ListBudget } from "./list-budget.js";

describe("list budget (pages of `list` per account)", () => {
  it("gives a burst, then pages at its rate, and says how long to wait; per account", () => {
    let now = 1000;
    const b = new ListBudget(LIST_PER_SECOND, LIST_BURST, () => now);
    for (let i = 0; i < LIST_BURST; i++) expect(b.take("duty")).toBe(0);
    const wait = b.take("duty");
    expect(wait).toBe(1000 / LIST_PER_SECOND);
    expect(b.take("wall")).toBe(0);
    now += wait - 1;
    expect(b.take("duty")).toBeGreaterThan(0);
    now += 1;
    expect(b.take("duty")).toBe(0);
    expect(b.take("duty")).toBe(1000 / LIST_PER_SECOND);
  });

  it("keeps at most 1,000 accounts, forgetting full buckets (they carry nothing) first", () => {
    let now = 0;
    const b = new ListBudget(1, 2, () => now);
    b.take("busy");
    b.take("busy");
    for (let i = 0; i < 999; i++) b.take(`a${i}`);
    expect(b.tracked).toBe(1000);
    // A second later the others are full again, "busy" (the oldest) is not: they go, it stays.
    now = 1000;
    expect(b.take("new")).toBe(0);
    expect(b.tracked).toBe(2);
    expect(b.take("busy")).toBe(0);
    expect(b.take("busy")).toBeGreaterThan(0);
  });
});
