import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import {
  awaitReloadReport,
  keepPidFile,
  PID_FILE,
  readPidFile,
  readReloadReport,
  writePidFile,
  writeReloadReport,
} from "./pidfile.js";

const dirs: string[] = [];
const stops: Array<() => void> = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function captureLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: "info" }, stream), lines };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

it("a pid file the disk refuses leaves no temporary file and is written once the disk takes it", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "linli-pidfile-"));
  dirs.push(dataDir);
  writePidFile(dataDir, { pid: 999_999_999, config: null, startedAt: "before" }); // the dead gateway's
  // The rename over linli.pid fails (a non-empty directory stands in its place): the write fails
  // after the temporary file was written, as a disk that fills up mid-write leaves it.
  rmSync(join(dataDir, PID_FILE));
  mkdirSync(join(dataDir, PID_FILE, "x"), { recursive: true });
  const { log, lines } = captureLog();
  const keeper = keepPidFile(
    dataDir,
    { pid: process.pid, config: null, startedAt: "now" },
    { log, retryMs: 20 },
  );
  stops.push(() => keeper.stop());
  expect(keeper.written).toBe(false);
  expect(readdirSync(dataDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  await new Promise((r) => setTimeout(r, 100)); // several failing retries
  expect(readdirSync(dataDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  expect(lines.filter((l) => l.msg.startsWith("cannot write the pid file")).length).toBe(1);

  rmSync(join(dataDir, PID_FILE), { recursive: true }); // space again
  await until(() => keeper.written, "the pid file written by a retry");
  expect(readPidFile(dataDir)?.pid).toBe(process.pid);
  expect(lines.some((l) => l.msg.startsWith("pid file written at last"))).toBe(true);
  expect(readdirSync(dataDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
});

it("written at once when the disk takes it; stop() ends the retries", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "linli-pidfile-"));
  dirs.push(dataDir);
  const { log, lines } = captureLog();
  const keeper = keepPidFile(dataDir, { pid: process.pid, config: null, startedAt: "now" }, { log });
  keeper.stop();
  expect(keeper.written).toBe(true);
  expect(readPidFile(dataDir)?.pid).toBe(process.pid);
  expect(lines).toEqual([]);
});

describe("linli reload's wait for the gateway's report, across a step of the wall clock", () => {
  /** A wall clock and a monotonic one; `onSleep` is what happens while the CLI sleeps. */
  function clocks(wall: number, onSleep: (c: { wall: number; mono: number }) => void) {
    const c = { wall, mono: 0 };
    return {
      c,
      clock: {
        now: () => c.wall,
        monotonic: () => c.mono,
        sleep: async (ms: number) => {
          c.wall += ms;
          c.mono += ms;
          onSleep(c);
        },
      },
    };
  }
  const T = Date.parse("2026-12-06T05:00:00Z");

  it("a report written after the clock was set back an hour is this SIGHUP's", async () => {
    const dir = mkdtempSync(join(tmpdir(), "linli-reload-wait-"));
    try {
      writeReloadReport(dir, { pid: 42, config: "/x", result: "applied", at: T - 7_200_000 });
      const before = readReloadReport(dir);
      const { c, clock } = clocks(T, (c) => {
        if (c.mono === 100) {
          c.wall -= 3_600_000; // NTP steps the clock back; the gateway then handles the SIGHUP
          writeReloadReport(dir, { pid: 42, config: "/x", result: "applied", at: c.wall });
        }
      });
      const r = await awaitReloadReport(dir, 42, before, 10_000, clock);
      expect(r?.at).toBe(T + 100 - 3_600_000);
      expect(c.mono).toBeLessThan(1_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a clock set forward does not end the wait early; the deadline is on the monotonic clock", async () => {
    const dir = mkdtempSync(join(tmpdir(), "linli-reload-wait-"));
    try {
      const { c, clock } = clocks(T, (c) => {
        if (c.mono === 100) c.wall += 3_600_000;
        if (c.mono === 2_000)
          writeReloadReport(dir, { pid: 42, config: "/x", result: "refused", at: c.wall });
      });
      const r = await awaitReloadReport(dir, 42, null, 10_000, clock);
      expect(r?.result).toBe("refused");
      expect(c.mono).toBe(2_000);
      // No report at all: null after the timeout, on the monotonic clock.
      const none = clocks(T, () => {});
      expect(await awaitReloadReport(dir, 43, null, 1_000, none.clock)).toBeNull();
      expect(none.c.mono).toBeGreaterThan(1_000);
      expect(none.c.mono).toBeLessThan(1_100);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
