/**
 * deploy/grafana-dashboard.json and deploy/prometheus-rules.yml against the
 * metrics a real gateway exports: every expression names only metrics the
 * gateway serves (scraped from a running gateway with an upstream and a bus,
 * so the conditional series exist too), plus Prometheus's own `up`. The rules
 * also go through `promtool check rules` and `promtool test rules`
 * (deploy/prometheus-rules.test.yml) where promtool is installed (Debian's
 * prometheus package; .ci/run installs it).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Gateway } from "../gateway/gateway.js";
import { startGateway, testConfig } from "./support/harness.js";

const PROMETHEUS_OWN = new Set(["up"]);
const KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
]);

/** The metric names a PromQL expression reads (functions, labels, strings and ranges left out). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const out: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = m[0];
    const after = bare.slice((m.index ?? 0) + name.length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(name)) continue;
    // A number's exponent ("1e3") is not a name.
    if (/[0-9.]$/.test(bare.slice(0, m.index ?? 0))) continue;
    out.push(name);
  }
  return out;
}

function promtool(): boolean {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("monitoring files in deploy/", () => {
  let gw: Gateway;
  const exported = new Set<string>();

  beforeAll(async () => {
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const port = (free.address() as { port: number }).port;
    await new Promise((r) => free.close(r));
    gw = await startGateway({
      config: testConfig({
        northbound: { upstream: { url: `mqtt://127.0.0.1:${port}`, reconnectInitial: "10s" } },
      }),
    });
    gw.metrics.registerBusStats(() => [
      {
        name: "rs485-1",
        linkState: "up",
        requests: 0,
        replies: 0,
        exceptions: 0,
        timeouts: 0,
        retries: 0,
        crcErrors: 0,
        framingErrors: 0,
        discarded: 0,
        transportErrors: 0,
        reconnects: 0,
        overflows: 0,
        duplicates: 0,
        queueDepth: 0,
        commandQueueDepth: 0,
        utilisation: 0,
      },
    ]);
    gw.metrics.alertRaised("EMERGENCY_CALL", 1);
    const text = await gw.metrics.render();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name, type] = m as unknown as [string, string, string];
      exported.add(name);
      if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) exported.add(name + s);
    }
    // The scrape really is the gateway's (not an empty set that makes every check below vacuous).
    expect(exported.has("linli_upstream_backlog")).toBe(true);
    expect(exported.has("linli_bus_link_up")).toBe(true);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it("the name extraction reads metrics, not functions, labels or ranges", () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (instance, le) (rate(linli_processing_latency_seconds_bucket{lane="p1"}[5m]))) > 0.1',
      ),
    ).toEqual(["linli_processing_latency_seconds_bucket"]);
    expect(metricNames('sum(linli_devices{link="lost"}) / clamp_min(sum(linli_devices), 1) > 1e3')).toEqual([
      "linli_devices",
      "linli_devices",
    ]);
  });

  it("grafana-dashboard.json: valid JSON, every panel queries only exported metrics", () => {
    const dash = JSON.parse(readFileSync("deploy/grafana-dashboard.json", "utf8")) as {
      uid: string;
      panels: Array<{
        id: number;
        type: string;
        title: string;
        targets?: Array<{ expr: string }>;
        panels?: unknown[];
      }>;
      templating: { list: Array<{ definition?: string }> };
    };
    expect(dash.uid).toBe("linli-gateway");
    const panels = dash.panels.flatMap((p) => [p, ...((p.panels ?? []) as typeof dash.panels)]);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queried = new Set<string>();
    for (const p of panels) {
      if (p.type === "row") continue;
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        const names = metricNames(t.expr);
        expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) {
          expect(exported.has(n) || PROMETHEUS_OWN.has(n), `${p.title}: ${n} is not exported`).toBe(true);
          queried.add(n);
        }
      }
    }
    for (const v of dash.templating.list)
      for (const n of metricNames(v.definition?.replace(/^label_values\((\w+),.*$/, "$1") ?? ""))
        expect(exported.has(n), n).toBe(true);
    // The key metrics have a panel.
    for (const key of [
      "linli_alerts_open",
      "linli_alerts_raised_total",
      "linli_processing_latency_seconds_bucket",
      "linli_lane_occupancy",
      "linli_devices",
      "linli_bus_link_up",
      "linli_upstream_backlog",
      "linli_storage_healthy",
      "linli_build_info",
      "up",
    ])
      expect(queried, key).toContain(key);
  });

  it("prometheus-rules.yml: the four required alerts, on exported metrics only", () => {
    const doc = parse(readFileSync("deploy/prometheus-rules.yml", "utf8")) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    for (const a of ["LinliGatewayDown", "LinliDevicesLost", "LinliRingNearFull", "LinliP1LatencyHigh"])
      expect(rules.map((r) => r.alert)).toContain(a);
    for (const r of rules)
      for (const n of metricNames(r.expr))
        expect(exported.has(n) || PROMETHEUS_OWN.has(n), `${r.alert}: ${n} is not exported`).toBe(true);
  });

  const havePromtool = promtool();
  if (!havePromtool)
    console.warn(
      "deploy-monitoring: promtool not installed (Debian: apt-get install prometheus); the rules are not checked by promtool here",
    );
  it.skipIf(!havePromtool)("promtool check rules and promtool test rules pass", () => {
    const check = execFileSync("promtool", ["check", "rules", "deploy/prometheus-rules.yml"], {
      encoding: "utf8",
    });
    expect(check).toMatch(/SUCCESS: \d+ rules found/);
    const test = execFileSync("promtool", ["test", "rules", "prometheus-rules.test.yml"], {
      cwd: "deploy",
      encoding: "utf8",
    });
    expect(test).toContain("SUCCESS");
  });
});
