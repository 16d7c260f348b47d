/**
 * Bus benchmark, TCP side: 500 GK-3 kiosks on Modbus TCP polled
 * once a second by the whole gateway (buses, pollers, profiles, pipeline,
 * alert engine, telemetry). The kiosk simulators run in one child process,
 * the gateway in another, so the gateway's CPU and timing are its own.
 *
 * Poll lateness = when the first request of a poll went on the wire minus
 * its deadline; the p99 is over every poll of every kiosk in the window.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";

export interface KioskResult {
  kiosks: number;
  online: number;
  seconds: number;
  pollsOk: number;
  pollsFailed: number;
  achievedPollsPerSec: number;
  latenessMs: { p50: number; p99: number; max: number; samples: number };
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  cpuPctOfOneCore: number;
  rssMb: number;
}

function lines(child: ChildProcess): Interface {
  return createInterface({ input: child.stdout as NodeJS.ReadableStream });
}

function nextLine(
  rl: Interface,
  match: (l: string) => boolean,
  timeoutMs: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      rl.off("line", on);
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const on = (l: string) => {
      if (!match(l)) return;
      clearTimeout(timer);
      rl.off("line", on);
      resolve(l);
    };
    rl.on("line", on);
  });
}

export async function runKiosks(count: number, seconds: number, warmupS = 5): Promise<KioskResult> {
  const sim = spawn(
    process.execPath,
    ["dist/sim/modbus/cli.js", "tcp", "--port", "0", "--count", String(count)],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  let gw: ChildProcess | undefined;
  let dir: string | undefined;
  try {
    const simOut = lines(sim);
    const portsLine = await nextLine(
      simOut,
      (l) => l.startsWith("GK-3 kiosks on ports"),
      30_000,
      "the kiosk simulators",
    );
    const ports = portsLine.replace("GK-3 kiosks on ports ", "").split(",").map(Number);
    dir = mkdtempSync(join(tmpdir(), "linli-kiosks-"));
    const file = join(dir, "ports.json");
    writeFileSync(file, JSON.stringify(ports));
    gw = spawn(process.execPath, ["dist/bench/kiosk-gateway.js", file], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const out = lines(gw);
    await nextLine(out, (l) => l === "ready", 30_000, "the gateway");
    await new Promise((r) => setTimeout(r, warmupS * 1000));
    gw.stdin?.write("mark\n");
    await nextLine(out, (l) => l === "marked", 5000, "mark");
    await new Promise((r) => setTimeout(r, seconds * 1000));
    gw.stdin?.write("report\n");
    const report = await nextLine(out, (l) => l.startsWith("{"), 10_000, "the report");
    gw.stdin?.write("stop\n");
    return JSON.parse(report) as KioskResult;
  } finally {
    gw?.kill("SIGTERM");
    sim.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
