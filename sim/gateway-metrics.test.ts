import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { metricSum, parseRefusals, readRefusals, refusalsBetween } from "./gateway-metrics.js";

const exposition = (rateLimited: number) =>
  [
    "# HELP linli_rejections_total Refusals",
    "# TYPE linli_rejections_total counter",
    `linli_rejections_total{model="ec200",reason="rate-limited"} ${rateLimited}`,
    'linli_rejections_total{reason="rate-limited",model="ds10"} 4',
    'linli_rejections_total{model="ec200",reason="duplicate-seq"} 9',
    'linli_rejections_total{model="gd2",reason="deferred-to-device"} 2',
    'linli_messages_total{model="ec200"} 1000',
    "",
  ].join("\n");

describe("the gateway's refusals, from its /metrics (docs/metrics.md linli_rejections_total)", () => {
  it("takes the rate and lane-share reasons by model, whatever the labels' order, and nothing else", () => {
    expect(parseRefusals(exposition(17))).toEqual({
      "rate-limited": { ec200: 17, ds10: 4 },
      "p1-device-limit": {},
      "deferred-to-device": { gd2: 2 },
    });
  });

  it("a run's refusals are the counters' growth (a counter lower after: the gateway restarted)", () => {
    const before = parseRefusals(exposition(17));
    const after = parseRefusals(exposition(117));
    expect(refusalsBetween(before, after)).toEqual({
      "rate-limited": { ec200: 100 },
      "p1-device-limit": {},
      "deferred-to-device": {},
    });
    expect(refusalsBetween(after, before)["rate-limited"]).toEqual({ ec200: 17 });
  });

  it("reads a live endpoint, and says why when it cannot", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/metrics") res.end(exposition(3));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await readRefusals(`http://127.0.0.1:${port}/metrics`)).toMatchObject({
        "rate-limited": { ec200: 3 },
      });
      expect(await readRefusals(`http://127.0.0.1:${port}/nope`)).toEqual({
        error: `http://127.0.0.1:${port}/nope: HTTP 404`,
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await readRefusals(`http://127.0.0.1:${port}/metrics`)).toEqual({
      error: `http://127.0.0.1:${port}/metrics: ECONNREFUSED`,
    });
  });

  it("refuses an answer over its bound instead of buffering it whole (a URL that is not a gateway's)", async () => {
    let sent = 0;
    const server = createServer((_req, res) => {
      // An endless stream: the reader must stop it.
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const more = () => {
        while (!res.destroyed && sent < 64 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed && sent < 64 * 1024 * 1024) res.once("drain", more);
        else res.end();
      };
      res.on("error", () => {});
      more();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await readRefusals(`http://127.0.0.1:${port}/metrics`, 5_000, 1024 * 1024)).toEqual({
        error: `http://127.0.0.1:${port}/metrics: answer over 1048576 bytes, not a linli /metrics`,
      });
      expect(sent).toBeLessThan(64 * 1024 * 1024);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe("metricSum", () => {
  it("sums a metric over its label sets, and no metric whose name only starts with it", () => {
    const text = [
      "# TYPE linli_alerts_open gauge",
      'linli_alerts_open{state="active-unacknowledged",priority="1"} 3',
      'linli_alerts_open{state="cleared-unacknowledged",priority="1"} 2',
      "linli_alerts_open_total 100",
      "nodejs_heap_size_used_bytes 12345678",
      "",
    ].join("\n");
    expect(metricSum(text, "linli_alerts_open")).toBe(5);
    expect(metricSum(text, "nodejs_heap_size_used_bytes")).toBe(12_345_678);
    expect(metricSum(text, "linli_journal_bytes")).toBeNull();
  });
});
