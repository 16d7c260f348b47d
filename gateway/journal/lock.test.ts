import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCK_FILE } from "./files.js";
import { acquireLock, JournalLockedError } from "./lock.js";

const bootId = (): string => {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "";
  }
};

describe("journal directory lock", () => {
  // Made when the suite runs, not at collection (a -t filter skips the hooks that would remove it).
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "linli-lock-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const lockOf = (pid: number) =>
    writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ pid, bootId: bootId(), at: "x" })}\n`);

  it("a live owner keeps it; a released lock is taken", () => {
    const release = acquireLock(dir);
    expect(() => acquireLock(dir)).toThrow(JournalLockedError);
    release();
    acquireLock(dir)();
  });

  it.skipIf(process.platform !== "linux")(
    "an owner that exited but is not reaped yet (a zombie) holds nothing: its lock is stale",
    async () => {
      // The shell becomes `sleep 5` (exec), which never waits for its first child: that one,
      // once exited, stays a zombie until the sleep ends.
      const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 5"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      try {
        const pid = await new Promise<number>((resolve) =>
          parent.stdout.once("data", (d) => resolve(Number(String(d)))),
        );
        const end = Date.now() + 3_000;
        const state = () => {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        };
        while (state() !== "Z" && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        expect(state()).toBe("Z");
        expect(() => process.kill(pid, 0)).not.toThrow(); // signal 0 alone would call it alive
        lockOf(pid);
        acquireLock(dir)();
        // A live owner, by contrast, still keeps it.
        lockOf(parent.pid as number);
        expect(() => acquireLock(dir)).toThrow(/in use by process/);
      } finally {
        parent.kill("SIGKILL");
        rmSync(join(dir, LOCK_FILE), { force: true });
      }
    },
  );
});
