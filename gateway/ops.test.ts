import { describe, expect, it } from "vitest";
import type { AlertEngine } from "./alerts/engine.js";
import type { RateLimitedLog } from "./log.js";
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
