/**
 * systemd notifications against a fake NOTIFY_SOCKET: a unix datagram
 * listener (perl, Essential on Debian: its recv() takes no ancillary data, so
 * the fd of systemd-notify's BARRIER=1 is closed at once, as the manager does).
 * The messages go out through the real systemd-notify; the listener prints
 * each datagram as one line. Needs `npm run build` for the CLI case.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../gateway/log.js";
import { SystemdNotifier } from "../gateway/systemd.js";
import { killGroup, spawnGroup } from "./support/process-group.js";

const LISTENER = [
  "socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die qq(socket: $!);",
  "bind($s, pack_sockaddr_un($ARGV[0])) or die qq(bind: $!);",
  '$| = 1; print "listening\\n";',
  'while (defined(recv($s, my $m, 4096, 0))) { $m =~ s/\\n/ /g; print "$m\\n"; }',
].join(" ");

interface Listener {
  path: string;
  lines: string[];
  child: ChildProcess;
}

async function until(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const log = createLogger({ level: "silent" });

describe("systemd notifications (fake NOTIFY_SOCKET, real systemd-notify)", () => {
  let dir = "";
  const children: ChildProcess[] = [];
  const notifiers: SystemdNotifier[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "linli-systemd-"));
  });
  afterEach(async () => {
    for (const n of notifiers.splice(0)) n.close();
    await Promise.all(children.splice(0).map((c) => killGroup(c)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function listen(name: string): Promise<Listener> {
    const path = join(dir, name);
    const child = spawnGroup("perl", ["-MSocket", "-e", LISTENER, path], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const lines: string[] = [];
    let buf = "";
    let err = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (d: string) => {
      buf += d;
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      lines.push(...parts);
    });
    child.stderr?.on("data", (d) => (err += d));
    await until(
      () => lines.includes("listening"),
      10_000,
      () => `listener: ${err}`,
    );
    return { path, lines, child };
  }

  const count = (l: Listener, message: string) =>
    l.lines.filter((x) => x.split(" ").includes(message)).length;

  it("does nothing without NOTIFY_SOCKET; a watchdog meant for another PID is not ours", () => {
    expect(SystemdNotifier.fromEnv({ log, env: {} })).toBeNull();
    const other = SystemdNotifier.fromEnv({
      log,
      env: { NOTIFY_SOCKET: "/nonexistent", WATCHDOG_USEC: "1000000", WATCHDOG_PID: String(process.pid + 1) },
    });
    expect(other?.watchdogIntervalMs).toBeNull();
    const ours = SystemdNotifier.fromEnv({
      log,
      env: { NOTIFY_SOCKET: "/nonexistent", WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(process.pid) },
    });
    expect(ours?.watchdogIntervalMs).toBe(15_000); // half of WatchdogSec
    expect(ours?.maxLoopDelayMs).toBe(2000);
  });

  it("READY=1 and STATUS arrive; WATCHDOG=1 every half period while healthy; none while the loop stalls", async () => {
    const l = await listen("notify-1");
    const n = SystemdNotifier.fromEnv({
      log,
      env: { NOTIFY_SOCKET: l.path, WATCHDOG_USEC: "400000" },
      maxLoopDelayMs: 150,
    }) as SystemdNotifier;
    notifiers.push(n);
    expect(n.watchdogIntervalMs).toBe(200);
    expect(await n.ready("serving 3 devices")).toBe(true);
    expect(l.lines).toContain("READY=1 STATUS=serving 3 devices");

    await until(
      () => count(l, "WATCHDOG=1") >= 3,
      15_000,
      () => JSON.stringify({ lines: l.lines, stats: n.stats() }),
    );

    // A loop that keeps stalling (300 ms blocks, each with a moment to run timers in between):
    // the pings go on firing from their timer, and every one of them is withheld.
    const t0 = performance.now();
    while (performance.now() - t0 < 3000) {
      const blockEnd = performance.now() + 300;
      while (performance.now() < blockEnd) {
        // busy: the event loop is blocked
      }
      await new Promise((r) => setImmediate(r));
    }
    const t1 = performance.now();
    expect(n.stats().withheldStalled).toBeGreaterThanOrEqual(2);
    expect(n.pings.filter((t) => t > t0 && t <= t1)).toEqual([]);

    // Healthy again: the pings resume by themselves.
    const before = count(l, "WATCHDOG=1");
    await until(
      () => count(l, "WATCHDOG=1") > before && n.pings.some((t) => t > t1),
      15_000,
      () => JSON.stringify(n.stats()),
    );
    expect(await n.stopping()).toBe(true);
    expect(l.lines).toContain("STOPPING=1 STATUS=shutting down");
    expect(n.stats().failed).toBe(0);
  }, 60_000);

  it("a systemd-notify that cannot be run is counted and logged, never thrown", async () => {
    const n = SystemdNotifier.fromEnv({
      log,
      env: { NOTIFY_SOCKET: join(dir, "nobody") },
      command: join(dir, "no-such-systemd-notify"),
    }) as SystemdNotifier;
    notifiers.push(n);
    expect(await n.ready()).toBe(false);
    expect(n.stats()).toMatchObject({ sent: 0, failed: 1 });
  });

  it("linli start under a fake systemd: READY=1 once serving, WATCHDOG=1, STOPPING=1 on SIGTERM, exit 0", async () => {
    const l = await listen("notify-cli");
    const cfg = join(dir, "site.yaml");
    writeFileSync(
      cfg,
      [
        "site: { id: sd1 }",
        "mqtt: { listeners: [{ host: 127.0.0.1, port: 0 }] }",
        "metrics: { enabled: false }",
        "log: { level: warn }",
      ].join("\n"),
    );
    const gw = spawnGroup(
      process.execPath,
      ["dist/cli/linli.js", "start", "--config", cfg, "--data-dir", join(dir, "data")],
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, NOTIFY_SOCKET: l.path, WATCHDOG_USEC: "1000000" },
      },
    );
    children.push(gw);
    let err = "";
    gw.stderr?.on("data", (d) => (err += d));
    await until(
      () => count(l, "READY=1") === 1 && count(l, "WATCHDOG=1") >= 1,
      20_000,
      () => `${l.lines.join("\n")}\n${err}`,
    );
    const exited = new Promise<number | null>((r) => gw.once("exit", (code) => r(code)));
    process.kill(gw.pid as number, "SIGTERM");
    expect(await exited).toBe(0);
    expect(count(l, "STOPPING=1")).toBe(1);
    // READY came before any WATCHDOG, and STOPPING last but for pings.
    expect(l.lines.findIndex((x) => x.startsWith("READY=1"))).toBeLessThan(
      l.lines.findIndex((x) => x.startsWith("WATCHDOG=1")),
    );
  }, 60_000);
});
