import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, expect, it } from "vitest";
import { keepPidFile, PID_FILE, readPidFile, writePidFile } from "./pidfile.js";

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
