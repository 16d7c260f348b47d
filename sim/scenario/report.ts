/**
 * The run's verdict: per alert code expected / received / missing /
 * duplicated / unexpected, latency from incident to alert, and every failed
 * expectation said in words. One JSON shape (`--json FILE`) and one table.
 */
import type { MalformedInput } from "../fleet.js";
import { RATE_REASONS, type Refusals } from "../gateway-metrics.js";
import type { AlertMatcher, CodeRow, LatencySummary } from "./matcher.js";
import type { RunStats } from "./runner.js";
import type { Scenario } from "./schema.js";

export interface SimReport {
  scenario: string;
  description: string;
  site: string;
  source: string;
  gateway: string;
  seed: number;
  startedAt: string;
  durationS: number;
  /** `closedByGateway`: connections that were up and closed from the gateway's end during the run (Fleet). */
  devices: {
    mqtt: number;
    connected: number;
    failed: number;
    rtuSlaves: number;
    kiosks: number;
    closedByGateway: number;
  };
  run: RunStats;
  /** Malformed requests the simulated devices received from the gateway (formatMalformedInput). */
  malformedInput: MalformedInput;
  /**
   * What the gateway says it did not carry during the run, from its /metrics read before and after
   * (`linli_rejections_total`: `rate-limited` dropped over the device's rate, `p1-device-limit` and
   * `deferred-to-device` left with the device), by reason and model. `byReason` null: not read
   * (`error` says why); `metrics` the URL read, null when none was known.
   */
  gatewayRefusals: { metrics: string | null; error: string | null; byReason: Refusals | null };
  /** The operator connection the alerts were read on: reconnections (a gateway restart) and its last error. */
  operator: { reconnects: number; lastError: string | null };
  codes: CodeRow[];
  latency: LatencySummary;
  limits: { p50Ms: number | null; p99Ms: number | null; maxMs: number };
  missing: Array<{ incident: string; code: string; key: string }>;
  duplicated: Array<{ code: string; key: string; alertId: string }>;
  unexpected: Array<{ code: string; key: string; alertId: string; transition: string }>;
  late: Array<{ incident: string; code: string; key: string; latencyMs: number; limitMs: number }>;
  /**
   * Readings the gateway had to accept and publish (a GD-2 back from a power cut with `ts` 0):
   * `afterMs` from the earliest time it could come (null: not seen in time).
   */
  readings: Array<{ incident: string; key: string; what: string; seen: boolean; afterMs: number | null }>;
  /**
   * The gateway's alert flood (`alerts/flood`) seen during the run; `newAlerts10m`: its count as the flood
   * began (the topic is published when the state changes, not at each new alert), the highest if several; null: none.
   */
  flood: { newAlerts10m: number; ongoing: boolean } | null;
  failures: string[];
  passed: boolean;
}

export function buildReport(
  base: Omit<
    SimReport,
    | "codes"
    | "latency"
    | "limits"
    | "missing"
    | "duplicated"
    | "unexpected"
    | "late"
    | "readings"
    | "flood"
    | "failures"
    | "passed"
  >,
  scenario: Scenario,
  matcher: AlertMatcher,
  extraFailures: string[] = [],
): SimReport {
  const codes = matcher.rows();
  const latency = matcher.latency();
  const missing = matcher.missingList().map((e) => ({ incident: e.incident, code: e.code, key: e.key }));
  const duplicated = matcher.duplicateList().map((d) => ({ code: d.code, key: d.key, alertId: d.id }));
  const unexpected = matcher
    .unexpectedList()
    .map((u) => ({ code: u.code, key: u.key, alertId: u.id, transition: u.transition }));
  const late: SimReport["late"] = matcher.lateList().map((e) => ({
    incident: e.incident,
    code: e.code,
    key: e.key,
    latencyMs: e.matched?.latencyMs ?? 0,
    limitMs: e.latencyMaxMs,
  }));
  const readings: SimReport["readings"] = matcher.readingList().map((r) => {
    const seen = r.seenAt !== undefined && r.seenAt <= r.dueBy;
    return {
      incident: r.incident,
      key: r.key,
      what: r.what,
      seen,
      afterMs: seen ? (r.seenAt as number) - r.after : null,
    };
  });
  const failures = [...extraFailures];
  const unseen = readings.filter((r) => !r.seen);
  if (unseen.length > 0)
    failures.push(
      `${unseen.length} reading(s) not published in time: ${unseen
        .slice(0, 5)
        .map((r) => `${r.key} (${r.what})`)
        .join(", ")}`,
    );
  for (const row of codes)
    if (row.late > 0) failures.push(`${row.code}: ${row.late} alert(s) later than allowed`);
  if (missing.length > 0)
    failures.push(
      `${missing.length} expected alert(s) missing: ${missing
        .slice(0, 5)
        .map((m) => `${m.code} ${m.key}`)
        .join(", ")}${missing.length > 5 ? ", ..." : ""}${floodNote(matcher.floodSeen())}`,
    );
  if (duplicated.length > 0) failures.push(`${duplicated.length} duplicated alert(s)`);
  if (unexpected.length > 0)
    failures.push(
      `${unexpected.length} unexpected alert(s): ${unexpected
        .slice(0, 5)
        .map((u) => `${u.code} ${u.key}`)
        .join(", ")}`,
    );
  const limits = {
    p50Ms: scenario.latency.p50 ?? null,
    p99Ms: scenario.latency.p99 ?? null,
    maxMs: scenario.latency.max,
  };
  if (limits.p50Ms !== null && latency.p50Ms !== null && latency.p50Ms > limits.p50Ms)
    failures.push(`latency p50 ${latency.p50Ms} ms over ${limits.p50Ms} ms`);
  if (limits.p99Ms !== null && latency.p99Ms !== null && latency.p99Ms > limits.p99Ms)
    failures.push(`latency p99 ${latency.p99Ms} ms over ${limits.p99Ms} ms`);
  return {
    ...base,
    codes,
    latency,
    limits,
    missing,
    duplicated,
    unexpected,
    late,
    readings,
    flood: matcher.floodSeen(),
    failures,
    passed: failures.length === 0,
  };
}

/** Why a P3 or P4 alert may be missing: the gateway holds them during an alert flood (docs/topics.md "Flood state"). */
function floodNote(flood: { newAlerts10m: number } | null): string {
  if (flood === null) return "";
  return ` (the gateway was in an alert flood${flood.newAlerts10m > 0 ? `, ${flood.newAlerts10m} new alerts in 10 minutes` : ""}: it holds new P3 and P4 alerts until the flood ends)`;
}

const ms = (v: number | null) => (v === null ? "-" : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);

/**
 * `malformed requests to the simulator: ...`: what the devices' servers counted, for the transports
 * the site has (a gateway under test that frames its requests wrongly shows here), or undefined.
 */
export function formatMalformedInput(
  m: MalformedInput,
  has: { mqtt: number; rtuSlaves: number; kiosks: number },
): string | undefined {
  const parts: string[] = [];
  if (has.kiosks > 0)
    parts.push(
      `Modbus TCP ${m.modbusTcp.foreignProtocol} foreign protocol id, ${m.modbusTcp.framingErrors} framing errors`,
    );
  if (has.rtuSlaves > 0)
    parts.push(`Modbus RTU ${m.modbusRtu.crcErrors} bad CRC, ${m.modbusRtu.incompleteFrames} cut off`);
  if (has.mqtt > 0) parts.push(`MQTT ${m.mqtt.badDownlinks} bad downlinks`);
  return parts.length > 0 ? `malformed requests to the simulator: ${parts.join("; ")}` : undefined;
}

const optional = (line: string | undefined): string[] => (line === undefined ? [] : [line]);

const sum = (byModel: Record<string, number>) => Object.values(byModel).reduce((a, b) => a + b, 0);
const byModel = (m: Record<string, number>) =>
  Object.entries(m)
    .map(([model, n]) => `${model} ${n}`)
    .join(", ");

/**
 * `gateway refused: ...`: what the gateway dropped over devices' rates and left with devices over
 * their shares during the run (its own counters), or why they could not be read.
 */
export function formatGatewayRefusals(g: SimReport["gatewayRefusals"]): string {
  if (g.byReason === null)
    return `gateway refused: not read (${g.error ?? "no metrics endpoint known"}; --metrics URL names the gateway's /metrics)`;
  const r = g.byReason;
  const dropped = sum(r["rate-limited"]);
  const left = sum(r["p1-device-limit"]) + sum(r["deferred-to-device"]);
  const parts = [
    `${dropped} message(s) dropped over their device's rate${dropped ? ` (${byModel(r["rate-limited"])}; acknowledged, so the devices could not tell)` : ""}`,
    `${left} left with their device over its lane share${
      left
        ? ` (${RATE_REASONS.slice(1)
            .filter((k) => sum(r[k]) > 0)
            .map((k) => `${k}: ${byModel(r[k])}`)
            .join("; ")}; sent again)`
        : ""
    }`,
  ];
  return `gateway refused: ${parts.join(", ")} (${g.metrics}, whole gateway)`;
}

/** `alert flood: ...`: whether the gateway was in an alert flood during the run, and what that holds back. */
export function formatFlood(f: SimReport["flood"]): string {
  if (f === null) return "alert flood: none seen";
  return `alert flood: seen${f.newAlerts10m > 0 ? ` (${f.newAlerts10m} new alerts in 10 minutes when it began)` : ""}, ${f.ongoing ? "still on at the end" : "ended during the run"}: meanwhile the gateway holds new P3 and P4 alerts until it ends`;
}

export function formatReport(r: SimReport): string {
  const head = ["code", "expected", "received", "missing", "duplicated", "unexpected", "late", "p50", "max"];
  const rows = r.codes.map((c) => [
    c.code,
    String(c.expected),
    String(c.received),
    String(c.missing),
    String(c.duplicated),
    String(c.unexpected),
    String(c.late),
    ms(c.p50Ms),
    ms(c.maxMs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  const out = [
    `scenario ${r.scenario} on site ${r.site} (${r.source}) via ${r.gateway}, seed ${r.seed}, ${r.durationS.toFixed(1)} s`,
    `devices: ${r.devices.connected}/${r.devices.mqtt} MQTT connected${r.devices.failed ? ` (${r.devices.failed} failed)` : ""}, ${r.devices.rtuSlaves} RTU slaves, ${r.devices.kiosks} kiosks${r.devices.closedByGateway ? `; ${r.devices.closedByGateway} MQTT connection(s) closed by the gateway during the run (the devices reconnected; load due meanwhile was skipped)` : ""}`,
    `injected: ${r.run.incidents} incidents${r.run.quietIncidents ? ` (${r.run.quietIncidents} of them to cause no alert)` : ""}, ${r.run.loadSent}/${r.run.loadOffered} load messages sent (${r.run.malformedSent} malformed${r.run.loadSkippedOffline ? `, ${r.run.loadSkippedOffline} skipped: device offline` : ""}), ${r.run.churned} reconnections, ${r.run.skewed} clocks skewed, ${r.run.restarts} gateway restarts${r.run.awayAtIncident ? `; ${r.run.awayAtIncident} incidents on a disconnected device (latency from its return)` : ""}`,
    ...optional(formatMalformedInput(r.malformedInput, r.devices)),
    formatGatewayRefusals(r.gatewayRefusals),
    formatFlood(r.flood),
    "",
    line(head),
    line(head.map((_, i) => "-".repeat(widths[i] as number))),
    ...rows.map(line),
    "",
    `latency incident -> alert: p50 ${ms(r.latency.p50Ms)}, p99 ${ms(r.latency.p99Ms)}, max ${ms(r.latency.maxMs)} (${r.latency.count} alerts; limits${r.limits.p50Ms !== null ? ` p50 ${ms(r.limits.p50Ms)}` : ""}${r.limits.p99Ms !== null ? ` p99 ${ms(r.limits.p99Ms)}` : ""} max ${ms(r.limits.maxMs)})`,
  ];
  if (r.readings.length > 0) {
    const whats = [...new Set(r.readings.map((x) => x.what))].join("; ");
    out.push(
      `readings: ${r.readings.filter((x) => x.seen).length}/${r.readings.length} published (${whats})`,
    );
  }
  if (r.passed) out.push("PASS");
  else out.push(...r.failures.map((f) => `FAIL ${f}`));
  return `${out.join("\n")}\n`;
}
