import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LOCK_FILE } from "./files.js";
import {
  acquireLock,
  JournalLockedError,
  LEASE_EXPIRY_MS,
  LEASE_RENEW_MS,
  LEASE_WATCH_MS,
  type LockEnv,
  processEnv,
} from "./lock.js";

const bootId = (): string => {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "";
  }
};

// Made when the suite runs, not at collection (a -t filter skips the hooks that would remove it).
let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "linli-lock-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => rmSync(join(dir, LOCK_FILE), { force: true }));

const lockFile = () => join(dir, LOCK_FILE);

describe("journal directory lock", () => {
  const lockOf = (pid: number) =>
    writeFileSync(lockFile(), `${JSON.stringify({ pid, bootId: bootId(), at: "x" })}\n`);

  it("a live owner keeps it; a released lock is taken; no draft file is left", () => {
    // An opener killed before linking, long ago; a draft younger than the lease may be another
    // opener's at this very moment, and is left to it.
    const killed = join(dir, `${LOCK_FILE}.0123456789abcdef`);
    writeFileSync(killed, "{}");
    const old = new Date(Date.now() - LEASE_EXPIRY_MS - 1_000);
    utimesSync(killed, old, old);
    const lock = acquireLock(dir);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    expect(() => acquireLock(dir)).toThrow(JournalLockedError);
    expect(() => acquireLock(dir)).toThrow(`in use by process ${process.pid} (lock file`);
    lock.release();
    acquireLock(dir).release();
    expect(readdirSync(dir)).toEqual([]);
    const racing = join(dir, `${LOCK_FILE}.fedcba9876543210`);
    writeFileSync(racing, "{}");
    acquireLock(dir).release();
    expect(readdirSync(dir)).toEqual([`${LOCK_FILE}.fedcba9876543210`]);
  });

  it.skipIf(process.platform !== "linux")(
    "an owner that exited but is not reaped yet (a zombie) holds nothing: its lock is stale",
    async () => {
      // The shell becomes `sleep 8` (exec), which never waits for its first child: that one,
      // once exited, stays a zombie until the sleep ends. The child outlives the exec by a second:
      // a `sleep 0` could exit while the shell was still there to reap it (loaded machine: ENOENT).
      const parent = spawn("sh", ["-c", "sleep 1 & echo $!; exec sleep 8"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      try {
        const pid = await new Promise<number>((resolve) =>
          parent.stdout.once("data", (d) => resolve(Number(String(d)))),
        );
        const end = Date.now() + 6_000;
        const state = () => {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        };
        while (state() !== "Z" && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        expect(state()).toBe("Z");
        expect(() => process.kill(pid, 0)).not.toThrow(); // signal 0 alone would call it alive
        lockOf(pid);
        acquireLock(dir).release();
        // A live owner, by contrast, still keeps it.
        lockOf(parent.pid as number);
        expect(() => acquireLock(dir)).toThrow(/in use by process/);
      } finally {
        parent.kill("SIGKILL");
      }
    },
  );

  it.skipIf(process.platform !== "linux")("records pid, pid namespace, start time and boot id", () => {
    const lock = acquireLock(dir);
    const content = JSON.parse(readFileSync(lockFile(), "utf8"));
    expect(content).toMatchObject({ pid: process.pid, bootId: bootId() });
    expect(content.ns).toMatch(/^pid:\[\d+\]$/);
    expect(content.start).toMatch(/^\d+$/);
    expect(content.start).toBe(processEnv.self().start);
    lock.release();
  });
});

describe("journal directory lock across pid namespaces (injected process table and clock)", () => {
  const T0 = Date.parse("2026-12-05T10:00:00Z");
  /** A process as the lock sees it: its identity, the clock, and the pids alive in its namespace. */
  function env(
    self: { pid: number; ns: string; start: string },
    clock: { now: number; mono?: number; slept?: (ms: number) => void },
    alive: Record<number, string> = {},
  ): LockEnv {
    return {
      now: () => clock.now,
      monotonic: () => clock.mono ?? 0,
      // Fake time: a watch of the lease passes at once, with what the test makes happen meanwhile.
      sleep: (ms) => {
        clock.mono = (clock.mono ?? 0) + ms;
        clock.slept?.(ms);
      },
      bootTime: () => T0 - 3_600_000,
      self: () => ({ ...self, bootId: "boot-1" }),
      alive: (pid) => pid in alive,
      startOf: (pid) => alive[pid] ?? null,
    };
  }
  const writeLock = (content: object, mtime: number) => {
    writeFileSync(lockFile(), `${JSON.stringify({ bootId: "boot-1", at: "x", ...content })}\n`);
    utimesSync(lockFile(), new Date(mtime), new Date(mtime));
  };

  it("pid 1 in a container, SIGKILLed and started again, takes its own stale lock (the restart loop)", () => {
    const clock = { now: T0 };
    // The LOCK the killed incarnation left: pid 1, same namespace, an earlier start time.
    writeLock({ pid: 1, ns: "pid:[4026532500]", start: "1200" }, T0 - 1_000);
    const lock = acquireLock(dir, env({ pid: 1, ns: "pid:[4026532500]", start: "98765" }, clock));
    expect(JSON.parse(readFileSync(lockFile(), "utf8"))).toMatchObject({ pid: 1, start: "98765" });
    // The same process opening the directory a second time is still refused.
    expect(() => acquireLock(dir, env({ pid: 1, ns: "pid:[4026532500]", start: "98765" }, clock))).toThrow(
      "in use by process 1 (lock file",
    );
    lock.release();
  });

  it("a holder in another namespace is judged by its lease: refused while renewed, taken once expired", () => {
    const clock = { now: T0 };
    const a = acquireLock(dir, env({ pid: 1, ns: "pid:[111]", start: "50" }, clock));
    // The LOCK's mtime is the real clock's: the fake one reads the same (a LOCK renewed later than
    // the opener's clock reads is watched, not refused at once).
    clock.now = statSync(lockFile()).mtimeMs;
    // B sees pid 1 in the LOCK; in its own namespace pid 1 is itself, or dead: neither may decide.
    const b = env({ pid: 1, ns: "pid:[222]", start: "70" }, clock);
    let err: unknown;
    try {
      acquireLock(dir, b);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JournalLockedError);
    expect(String(err)).toMatch(/in use by process 1 of another pid namespace \(pid:\[111\]; .*last renewed/);
    expect((err as JournalLockedError).lease?.renewedAt).toBe(statSync(lockFile()).mtimeMs);

    // A renews (its mtime is the lease); B's clock runs past the lease from the last renewal only.
    clock.now = statSync(lockFile()).mtimeMs + LEASE_EXPIRY_MS - 1_000;
    expect(() => acquireLock(dir, b)).toThrow(JournalLockedError);
    expect(a.renew()).toBeNull();
    const renewed = statSync(lockFile()).mtimeMs;
    clock.now = renewed + LEASE_EXPIRY_MS - 1;
    expect(() => acquireLock(dir, b)).toThrow(JournalLockedError);

    // A stops renewing (killed, or its container paused): once the lease ran out B takes over ...
    clock.now = renewed + LEASE_EXPIRY_MS + 1;
    const lockB = acquireLock(dir, b);
    expect(JSON.parse(readFileSync(lockFile(), "utf8"))).toMatchObject({ ns: "pid:[222]" });
    // ... and A, should it run again, learns at its next renewal that it no longer holds it.
    expect(a.renew()).toMatch(/taken over by process 1 \(pid:\[222\]\)/);
    a.release(); // not A's any more: stays
    expect(JSON.parse(readFileSync(lockFile(), "utf8"))).toMatchObject({ ns: "pid:[222]" });
    lockB.release();
    expect(a.renew()).toMatch(/was removed/);
  });

  it("a live holder's lease that looks expired after a step of the wall clock is watched, and kept while renewed", () => {
    // A renews every 5 s on its own wall clock; B's wall clock was stepped a day forward (NTP), so
    // A's last renewal looks a day old to B.
    const clockA = { now: T0 };
    const a = acquireLock(dir, env({ pid: 1, ns: "pid:[111]", start: "50" }, clockA));
    let sinceRenewal = 0;
    const clockB = {
      now: T0 + 86_400_000,
      mono: 0,
      slept: (ms: number) => {
        clockA.now += ms;
        sinceRenewal += ms;
        if (sinceRenewal >= LEASE_RENEW_MS) {
          sinceRenewal = 0;
          expect(a.renew()).toBeNull();
        }
      },
    };
    const b = env({ pid: 1, ns: "pid:[222]", start: "70" }, clockB);
    expect(() => acquireLock(dir, b)).toThrow(/of another pid namespace \(pid:\[111\]; .*last renewed/);
    expect(clockB.mono).toBeLessThanOrEqual(LEASE_RENEW_MS + 250);
    expect(JSON.parse(readFileSync(lockFile(), "utf8"))).toMatchObject({ ns: "pid:[111]" });
    expect(a.renew()).toBeNull();

    // A dies: no renewal while B watches, which takes it over after LEASE_WATCH_MS of its own time.
    clockB.slept = () => {};
    clockB.mono = 0;
    const lockB = acquireLock(dir, b);
    expect(lockB.tookOver).toEqual({ pid: 1, why: "its lease expired" });
    expect(clockB.mono).toBeGreaterThanOrEqual(LEASE_WATCH_MS);
    expect(a.renew()).toMatch(/taken over by process 1 \(pid:\[222\]\)/);
    lockB.release();
  });

  it("a dead holder's lease renewed later than the opener's clock (a clock set back) is watched and taken over", () => {
    // A (another namespace) renewed at T0 + 1 h, then died; the clock was set back an hour (NTP, a
    // board without a battery-backed clock). Judged on its age, the LOCK looked alive for an hour.
    writeLock({ pid: 1, ns: "pid:[111]", start: "50" }, T0 + 3_600_000);
    const clockB = { now: T0, mono: 0 };
    const lockB = acquireLock(dir, env({ pid: 1, ns: "pid:[222]", start: "70" }, clockB));
    expect(lockB.tookOver).toMatchObject({
      pid: 1,
      why: expect.stringMatching(/renewed later than this clock/),
    });
    expect(clockB.mono).toBeGreaterThanOrEqual(LEASE_WATCH_MS);
    lockB.release();

    // A live holder whose clock was set back renews on it while watched: refused.
    const clockA = { now: T0 + 3_600_000 };
    const a = acquireLock(dir, env({ pid: 1, ns: "pid:[111]", start: "50" }, clockA));
    clockA.now = T0;
    const clockC = { now: T0, mono: 0, slept: () => expect(a.renew()).toBeNull() };
    expect(() => acquireLock(dir, env({ pid: 1, ns: "pid:[222]", start: "70" }, clockC))).toThrow(
      /of another pid namespace \(pid:\[111\]; .*last renewed/,
    );
    expect(JSON.parse(readFileSync(lockFile(), "utf8"))).toMatchObject({ ns: "pid:[111]" });
    a.release();
  });

  it("a live holder in the same namespace keeps it; its pid reused by another process does not", () => {
    const clock = { now: T0 };
    writeLock({ pid: 4242, ns: "pid:[111]", start: "300" }, T0 - 10 * LEASE_EXPIRY_MS);
    const me = { pid: 77, ns: "pid:[111]", start: "900" };
    expect(() => acquireLock(dir, env(me, clock, { 4242: "300" }))).toThrow(
      `journal directory ${dir} is in use by process 4242 (lock file`,
    );
    acquireLock(dir, env(me, clock, { 4242: "555" })).release(); // another process has pid 4242 now
    writeLock({ pid: 4242, ns: "pid:[111]", start: "300" }, T0);
    acquireLock(dir, env(me, clock, {})).release(); // gone
  });

  it("a LOCK of an older version (pid only): judged by its pid, except our own pid, judged by its lease", () => {
    const clock = { now: T0 };
    const me = { pid: 1, ns: "pid:[111]", start: "900" };
    writeLock({ pid: 4242 }, T0);
    expect(() => acquireLock(dir, env(me, clock, { 4242: "1" }))).toThrow(
      "in use by process 4242 (lock file",
    );
    acquireLock(dir, env(me, clock, {})).release();
    // Its pid alive, but that process started a minute after the LOCK was written: a reused pid.
    writeLock({ pid: 4242 }, T0);
    const reused = acquireLock(dir, env(me, clock, { 4242: String((3_600 + 60) * 100) }));
    expect(reused.tookOver).toEqual({ pid: 4242, why: expect.stringContaining("started after it") });
    reused.release();
    writeLock({ pid: 1 }, T0 - 1_000);
    expect(() => acquireLock(dir, env(me, clock))).toThrow(/a lock file of an older gateway/);
    clock.now = T0 + LEASE_EXPIRY_MS;
    const aged = acquireLock(dir, env(me, clock));
    expect(aged.tookOver).toEqual({ pid: 1, why: "its lease expired" });
    aged.release();
  });

  it("an unreadable LOCK is stale when older than this boot, else once its lease ran out", () => {
    const clock = { now: T0 };
    const me = { pid: 1, ns: "pid:[111]", start: "900" };
    writeFileSync(lockFile(), "");
    utimesSync(lockFile(), new Date(T0 - 7_200_000), new Date(T0 - 7_200_000)); // before the boot
    acquireLock(dir, env(me, clock)).release();
    writeFileSync(lockFile(), '{"pi');
    utimesSync(lockFile(), new Date(T0 - 1_000), new Date(T0 - 1_000));
    expect(() => acquireLock(dir, env(me, clock))).toThrow(JournalLockedError);
    clock.now = T0 + LEASE_EXPIRY_MS;
    acquireLock(dir, env(me, clock)).release();
  });

  it("a LOCK of another boot is stale whatever it names", () => {
    writeLock({ pid: 1, ns: "pid:[111]", start: "900", bootId: "boot-0" }, T0);
    acquireLock(dir, env({ pid: 1, ns: "pid:[111]", start: "900" }, { now: T0 })).release();
  });
});
