/**
 * Smoke test of the benchmark itself: a quick run at a low rate, end to end
 * (child server, open-loop load, subscriber, accounting, JSON report).
 * It checks behaviour, never timing: at 500 msg/s every message is accounted for.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDeviceTime, readSeq } from "./peek.js";

const root = join(import.meta.dirname, "..");
let dir: string;

interface Acc {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  unexpected: number;
}
interface Point {
  messages: Acc & { conflated: number; unexplainedLoss: number };
  alerts: Acc;
  latency: { messages: { count: number; p99Ms: number }; p1: { count: number } };
  server: {
    cpuPct: number;
    rssMb: number;
    loopPreemptedPerS: number | null;
    gateway?: { registered: number; journal: { records: number; syncs: number; degraded: boolean } | null };
  };
}
interface Report {
  gatewayMaxSustainedRate: number;
  points: Array<{
    rate: number;
    baselineP99Ms: number;
    gatewayP99Ms: number;
    gatewayMaxSustainedRate: number;
    baseline: Point;
    gateway: Point;
    journal: Point | null;
  }>;
  journal: {
    points: Array<{ rate: number; p1P99Ratio: number | null; records: number; syncs: number }>;
    maxSustainedOff: number;
    maxSustainedOn: number;
  } | null;
  overloadAlertsLost: number | null;
  overloadP1P99Ms: number | null;
  targets: Array<{ name: string; pass: boolean | null }>;
}

/** Whether any built source (tsconfig.build.json's folders) is newer than dist/bench/run.js. */
function distIsStale(): boolean {
  const built = join(root, "dist/bench/run.js");
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  const folders = ["core", "protocols", "devices", "gateway", "sim", "cli", "bench", "fuzz"];
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return newer(p);
      return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && statSync(p).mtimeMs > builtAt;
    });
  return folders.some((f) => newer(join(root, f)));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "linli-bench-"));
  // The runner forks dist/bench/server.js: build what it runs, but only when a source is newer
  // than dist. Under `npm test` dist was just built, and rebuilding here rewrote files that other
  // test files were loading into their child processes at that moment (a half-written module is
  // a SyntaxError in someone else's gateway). tsc emits even when some other module of the tree
  // has a type error (typecheck reports those); the run below needs only the output.
  if (distIsStale())
    spawnSync(
      process.execPath,
      [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"],
      {
        cwd: root,
        stdio: "ignore",
      },
    );
  expect(existsSync(join(root, "dist/bench/run.js"))).toBe(true);
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("payload peeking", () => {
  it("reads seq from JSON and CBOR uplinks and deviceTime from telemetry", () => {
    expect(readSeq(Buffer.from('{"t":"hb","seq":4711,"ts":1,"bat":90,"rssi":-70}'))).toBe(4711);
    // CBOR map {t: "hb", seq: 300}: a2 61 74 62 68 62 63 73 65 71 19 01 2c
    expect(readSeq(Buffer.from("a261746268626373657119012c", "hex"))).toBe(300);
    expect(readSeq(Buffer.from("a1637365710a", "hex"))).toBe(10);
    expect(readDeviceTime(Buffer.from('{"deviceId":"a","deviceTime":1700000000123,"quality":"good"}'))).toBe(
      1700000000123,
    );
    expect(readDeviceTime(Buffer.from('{"deviceTime":null}'))).toBe(-1);
  });
});

describe("npm run bench -- --quick", () => {
  it("accounts for every message at 500 msg/s and writes the JSON report", () => {
    const file = join(dir, "bench.json");
    execFileSync(
      process.execPath,
      [
        "dist/bench/run.js",
        "--quick",
        "--suite",
        "pipeline",
        "--rates",
        "500",
        "--duration",
        "2",
        "--json",
        file,
        // vitest runs other suites beside this one: do not wait for a quiet machine.
        "--max-other-load",
        "1000",
        // The start-up benchmark's data path has its own test (bench/startup.test.ts).
        "--no-startup",
      ],
      { cwd: root, stdio: ["ignore", "ignore", "inherit"], timeout: 150_000 },
    );
    const r = JSON.parse(readFileSync(file, "utf8")) as Report;
    expect(r.points).toHaveLength(1);
    const p = r.points[0]!;
    expect(p.rate).toBe(500);
    for (const key of ["baselineP99Ms", "gatewayP99Ms", "gatewayMaxSustainedRate"] as const)
      expect(typeof p[key]).toBe("number");
    expect(r).toHaveProperty("overloadAlertsLost");
    expect(r).toHaveProperty("overloadP1P99Ms");
    expect(typeof r.overloadAlertsLost).toBe("number");

    // Baseline: every device message through the broker exactly once.
    expect(p.baseline.messages.sent).toBe(1000);
    expect(p.baseline.messages).toMatchObject({ delivered: 1000, lost: 0, duplicated: 0, unexpected: 0 });
    expect(p.baseline.alerts.lost).toBe(0);

    // Gateway: one telemetry publish per message (only conflation may replace one), one alert update per press.
    const g = p.gateway;
    expect(g.messages.sent).toBe(1000);
    expect(g.messages.duplicated).toBe(0);
    expect(g.messages.unexpected).toBe(0);
    expect(g.messages.unexplainedLoss).toBe(0);
    expect(g.messages.delivered + g.messages.conflated).toBe(1000);
    expect(g.alerts).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0 });
    expect(g.alerts.delivered).toBe(g.alerts.sent);
    expect(g.latency.messages.count).toBeGreaterThan(0);
    expect(g.server.gateway?.registered).toBe(10_000);
    expect(g.server.cpuPct).toBeGreaterThan(0);
    // How often the event-loop thread lost its core (Linux /proc): a count, read over the load.
    if (process.platform === "linux") expect(g.server.loopPreemptedPerS).toBeGreaterThanOrEqual(0);
    else expect(g.server.loopPreemptedPerS).toBeNull();
    expect(r.overloadAlertsLost).toBe(0);
    expect(g.server.gateway?.journal).toBeNull();

    // Journal on: the same accounting, and the journal really wrote and synced.
    const j = p.journal;
    expect(j).not.toBeNull();
    expect(j?.messages.sent).toBe(1000);
    expect(j?.messages.unexplainedLoss).toBe(0);
    expect(j?.alerts).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0 });
    const js = j?.server.gateway?.journal;
    expect(js?.degraded).toBe(false);
    // At least one record per press (its seq and its alert), each batch synced before its PUBACKs.
    expect(js?.records).toBeGreaterThanOrEqual(j?.alerts.sent ?? 1);
    expect(js?.syncs).toBeGreaterThan(0);
    expect(r.journal?.points).toHaveLength(1);
    expect(r.journal?.points[0]).toMatchObject({ rate: 500, records: js?.records, syncs: js?.syncs });
    // The pipeline's four targets and the journal's two (start-up skipped here).
    expect(r.targets.length).toBeGreaterThanOrEqual(6);
  }, 180_000);
});
