import { describe, expect, it } from "vitest";
import type { AlertEngine } from "./alerts/engine.js";
import { ListBudget } from "./list-budget.js";
import type { RateLimitedLog } from "./log.js";
import { AlertSummary } from "./northbound/alert-summary.js";
import type { Publisher } from "./northbound/publisher.js";
import { OperatorCommands, type OpsResult } from "./ops.js";
import type { Registry } from "./registry.js";
import type { Counters } from "./stats.js";

/** A shelve refused as too long, with `alerts.shelveMax` at `maxMs`, on a site in `locale`. */
function refusedShelve(maxMs: number, locale: "zh-CN" | "en"): OpsResult {
  const results: OpsResult[] = [];
  const engine = {
    shelveMaxMs: maxMs,
    shelve: () => ({ ok: false, reason: "shelve-too-long" }),
  } as unknown as AlertEngine;
  const publisher = { opsResult: (_op: string, r: OpsResult) => results.push(r) } as unknown as Publisher;
  const counters = { reject: () => {} } as unknown as Counters;
  const log = { warn: () => {} } as unknown as RateLimitedLog;
  const ops = new OperatorCommands(
    engine,
    {} as Registry,
    publisher,
    counters,
    log,
    null,
    null,
    null,
    null,
    () => locale,
  );
  ops.shelve({
    operator: "duty-desk",
    target: "a-1",
    ref: null,
    by: "Wang Li",
    fields: { duration: maxMs + 1000, reason: null },
  });
  expect(results).toHaveLength(1);
  return results[0] as OpsResult;
}

describe("a shelve longer than alerts.shelveMax", () => {
  it("names the bound in its largest whole unit and the next, never '0 minutes'", () => {
    expect(refusedShelve(30_000, "en")).toMatchObject({
      ok: false,
      reason: "shelve-too-long",
      detail: "at most 30 seconds",
      message: "at most 30 seconds",
    });
    expect(refusedShelve(30_000, "zh-CN")).toMatchObject({
      detail: "at most 30 seconds",
      message: "最多搁置 30 秒",
    });
    expect(refusedShelve(90_000, "zh-CN")).toMatchObject({
      detail: "at most 1 minute 30 seconds",
      message: "最多搁置 1 分钟 30 秒",
    });
    expect(refusedShelve(8 * 3_600_000, "zh-CN")).toMatchObject({
      detail: "at most 8 hours",
      message: "最多搁置 8 小时",
    });
  });
});

describe("list: which alert states are open", () => {
  function lister() {
    const results: Record<string, unknown>[] = [];
    const routes: (string | undefined)[] = [];
    const rejected: string[] = [];
    const summary = new AlertSummary(
      () => {},
      () => 0,
    );
    const publisher = {
      summary,
      opsResult: (_op: string, r: Record<string, unknown>, only?: string) => {
        results.push(r);
        routes.push(only);
      },
    } as unknown as Publisher;
    const counters = { reject: (_m: string, r: string) => rejected.push(r) } as unknown as Counters;
    const log = { warn: () => {} } as unknown as RateLimitedLog;
    const registry = { siteTime: { timeZone: "UTC" } } as unknown as Registry;
    const ops = new OperatorCommands({} as AlertEngine, registry, publisher, counters, log);
    return { ops, summary, results, rejected, routes };
  }

  it("answers a viewer with the priority's ids and revs, paged, count and digest beside, in Chinese", () => {
    const { ops, summary, results } = lister();
    for (let i = 0; i < 250; i++)
      summary.set(`linli/s/alerts/p3/CODE/d-${String(i).padStart(3, "0")}`, 3, `a-${i}`, 2);
    ops.handle("wall", "viewer", "list", "p3", null, Buffer.from('{"ref":"sync-1"}'));
    const first = results[0] as Record<string, unknown> & { alerts: unknown[]; next: string };
    expect(first).toMatchObject({
      action: "list",
      target: "p3",
      ok: true,
      result: "listed",
      reason: null,
      ref: "sync-1",
      account: "wall",
      open: 250,
      message: "共 250 条未结束告警，本页 200 条",
    });
    expect(first.alerts).toHaveLength(200);
    expect(first.alerts[0]).toEqual({ topic: "linli/s/alerts/p3/CODE/d-000", id: "a-0", rev: 2 });
    expect(first.next).toBe("linli/s/alerts/p3/CODE/d-199");
    ops.handle("wall", "viewer", "list", "p3", null, Buffer.from(JSON.stringify({ after: first.next })));
    expect(results[1]).toMatchObject({ ok: true, open: 250, next: null });
    expect((results[1] as { alerts: unknown[] }).alerts).toHaveLength(50);
    // An empty payload lists the first page.
    ops.handle("wall", "viewer", "list", "p1", null, Buffer.alloc(0));
    expect(results[2]).toMatchObject({ ok: true, open: 0, alerts: [], next: null });
  });

  it("refuses a target that is no priority and a bad cursor, counted", () => {
    const { ops, results, rejected } = lister();
    ops.handle("wall", "viewer", "list", "p5", null, Buffer.alloc(0));
    ops.handle("wall", "viewer", "list", "p1", null, Buffer.from('{"after":3}'));
    expect(results).toMatchObject([
      { ok: false, reason: "bad-request", message: "目标须为 p1、p2、p3 或 p4" },
      { ok: false, reason: "bad-request" },
    ]);
    expect(rejected).toEqual(["bad-request", "bad-request"]);
  });

  it("answers (and refuses) a list only on the side it came from (0.13.34)", () => {
    const { ops, routes } = lister();
    ops.handle("wall", "viewer", "list", "p1", null, Buffer.alloc(0));
    ops.handle("upstream", "supervisor", "list", "p1", null, Buffer.alloc(0), "upstream");
    ops.handle("upstream", "supervisor", "list", "p9", null, Buffer.alloc(0), "upstream");
    ops.handle("wall", "viewer", "list", "p9", null, Buffer.alloc(0));
    expect(routes).toEqual(["local", "upstream", "upstream", "local"]);
  });

  it("refuses pages beyond the account's bound, rate-limited, counted, with retryAfterMs, in Chinese", () => {
    const { ops, results, rejected } = lister();
    let now = 0;
    ops.listBudget = new ListBudget(2, 3, () => now);
    for (let i = 0; i < 4; i++) ops.handle("wall", "viewer", "list", "p1", null, Buffer.alloc(0));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(results[3]).toMatchObject({
      action: "list",
      reason: "rate-limited",
      retryAfterMs: 500,
      message: "查询未结束告警过于频繁，请 1 秒后再试",
      detail: "too many list requests from this account; ask again in 1 s",
    });
    expect(rejected).toEqual(["rate-limited"]);
    now = 500;
    ops.handle("wall", "viewer", "list", "p1", null, Buffer.alloc(0));
    expect(results[4]?.ok).toBe(true);
  });
});
