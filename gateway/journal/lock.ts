/**
 * One process per journal directory (docs/durability.md "The lock"). Node has no flock/fcntl, and
 * a pid alone is not an identity across PID namespaces (containers): a gateway that is pid 1 in a
 * container found its own pid in the LOCK a SIGKILL left and refused forever, and two gateways in
 * different namespaces both saw a dead pid and both took the lock. So the LOCK holds who took it
 * (pid, pid namespace, process start time, boot id, a random token) and is a lease: the holder
 * renews its mtime every LEASE_RENEW_MS. A LOCK is stale when:
 * - it was written before this boot (other boot id, or an mtime older than the boot);
 * - it names a process in our own pid namespace that is gone, a zombie, or another process now
 *   using its pid (start time differs), our own pid included (the restarted pid 1);
 * - it comes from another namespace, or cannot be judged (torn, written by an older version
 *   naming our own pid), and its lease ran out: not renewed for LEASE_EXPIRY_MS.
 * A lease that looks expired is compared on two wall clocks (the holder's, which wrote the mtime,
 * and the opener's), either of which NTP may step: before it is taken over, the opener watches the
 * mtime for LEASE_WATCH_MS on its own monotonic clock, and a LOCK renewed meanwhile is a live
 * holder's, refused whatever its age reads. A lease renewed later than the opener's now (a clock set
 * back) is watched the same way: not renewed meanwhile, it is a dead holder's.
 * Otherwise the opener is refused with JournalLockedError. The holder checks at each renewal that
 * the LOCK is still its own, and reports a LOCK taken over or removed (onLost) so the journal
 * stops writing instead of interleaving records with another gateway.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { uptime } from "node:os";
import path from "node:path";
import { LOCK_FILE } from "./files.js";

/** The holder renews the lease this often. */
export const LEASE_RENEW_MS = 5_000;
/** A LOCK not renewed for this long (six renewals missed: no event-loop stall is that long) is stale. */
export const LEASE_EXPIRY_MS = 30_000;
/**
 * How long an opener watches a LOCK whose lease looks expired, on its monotonic clock, for a renewal
 * before taking it over: two renewals and a margin (a live holder stalled that long is not one the
 * lease protects either).
 */
export const LEASE_WATCH_MS = 2 * LEASE_RENEW_MS + 1_000;
/** How often the watched LOCK is read. */
const WATCH_POLL_MS = 250;

interface LockContent {
  pid: number;
  /** `readlink /proc/self/ns/pid`, e.g. "pid:[4026531836]"; "" where there is none. */
  ns?: string;
  /** /proc/<pid>/stat field 22 (clock ticks after boot): tells a reused pid from its first owner. */
  start?: string;
  bootId: string;
  at: string;
  token?: string;
}

/** What the lock asks of the process table and the clock; tests inject their own. */
export interface LockEnv {
  now(): number;
  /** Monotonic ms: what a step of the wall clock does not move (the lease's watch). */
  monotonic(): number;
  /** Blocks for `ms` (acquireLock is synchronous: the journal opens before anything is served). */
  sleep(ms: number): void;
  /** Wall-clock ms when this boot started (a LOCK older than that is from before a power cut). */
  bootTime(): number;
  self(): { pid: number; ns: string; start: string; bootId: string };
  /** The process exists in our namespace and is not a zombie. */
  alive(pid: number): boolean;
  /** Its start time (stat field 22), or null when it cannot be read. */
  startOf(pid: number): string | null;
}

function readTrim(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}

/** Fields of /proc/<pid>/stat after "pid (comm)": comm may hold spaces and parentheses. */
function statFields(pid: number | "self" | `${number}/task/${string}`): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Whether a thread of `pid` other than an exited one is still there (its main thread exited). */
function threadAlive(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tasks.some((tid) => {
    const state = statFields(`${pid}/task/${tid}`)?.[0];
    return state !== undefined && state !== "Z" && state !== "X";
  });
}

/** Field 22 (starttime) is the 20th after the comm: fields 3.. start at index 0. */
const START_FIELD = 22 - 3;

export const processEnv: LockEnv = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  },
  bootTime: () => Date.now() - uptime() * 1000,
  self: () => {
    let ns = "";
    try {
      ns = fs.readlinkSync("/proc/self/ns/pid");
    } catch {
      // No /proc (not Linux): the lease alone judges other namespaces' locks.
    }
    return {
      pid: process.pid,
      ns,
      start: statFields("self")?.[START_FIELD] ?? "",
      bootId: readTrim("/proc/sys/kernel/random/boot_id"),
    };
  },
  alive: (pid) => {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
    }
    // A process that has exited but is not reaped yet still answers signal 0; it holds no file
    // and writes nothing. (A gateway started by a shell that died first is inherited by init; a
    // restart right after its exit must not be refused while init catches up.) Its main thread
    // shows "Z" while its other threads still exit, though: a pool thread may be finishing a
    // journal write, so the process is alive until every thread has exited.
    const state = statFields(pid)?.[0];
    return (state !== "Z" && state !== "X") || threadAlive(pid);
  },
  startOf: (pid) => statFields(pid)?.[START_FIELD] ?? null,
};

/** The LOCK and its mtime; null when there is none (other read errors too, unless `strict`). */
function readLock(file: string, strict = false): { content: LockContent | null; mtimeMs: number } | null {
  let raw: string;
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(file).mtimeMs;
    raw = fs.readFileSync(file, "utf8");
  } catch (err) {
    if (strict && (err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    return null;
  }
  try {
    const p = JSON.parse(raw) as Partial<LockContent>;
    if (typeof p.pid !== "number") return { content: null, mtimeMs };
    return {
      content: {
        pid: p.pid,
        ...(typeof p.ns === "string" ? { ns: p.ns } : {}),
        ...(typeof p.start === "string" ? { start: p.start } : {}),
        bootId: String(p.bootId ?? ""),
        at: String(p.at ?? ""),
        ...(typeof p.token === "string" ? { token: p.token } : {}),
      },
      mtimeMs,
    };
  } catch {
    return { content: null, mtimeMs };
  }
}

export class JournalLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
    /** Set when the holder is judged by its lease (another pid namespace, or one we cannot judge). */
    readonly lease?: { ns: string; renewedAt: number; expiresInMs: number },
  ) {
    super(
      lease === undefined
        ? `journal directory ${dir} is in use by process ${pid} (lock file ${path.join(dir, LOCK_FILE)}); ` +
            "one gateway per data directory"
        : `journal directory ${dir} is in use by process ${pid} ` +
            (lease.ns === ""
              ? "(a lock file of an older gateway, which records no pid namespace: " +
                `${path.join(dir, LOCK_FILE)}), written `
              : `of another pid namespace (${lease.ns}; lock file ${path.join(dir, LOCK_FILE)}), last renewed `) +
            `${new Date(lease.renewedAt).toISOString()}; taken over if not renewed within ` +
            `${Math.ceil(lease.expiresInMs / 1000)} s; one gateway per data directory`,
    );
    this.name = "JournalLockedError";
  }
}

/** `lease`: judged stale by its lease's age on the wall clock, to be confirmed by a watch. */
type Verdict = { stale: true; why: string; lease?: true } | { stale: false; error: JournalLockedError };

/** Linux's USER_HZ (the unit of /proc/<pid>/stat's start time) on every architecture it runs on. */
const USER_HZ = 100;

/** Whether a LOCK found in dir may be taken over (see the module comment). */
function judge(dir: string, env: LockEnv, held: NonNullable<ReturnType<typeof readLock>>): Verdict {
  const me = env.self();
  const now = env.now();
  const c = held.content;
  if (c !== null && c.bootId !== "" && me.bootId !== "") {
    if (c.bootId !== me.bootId) return { stale: true, why: "written before this boot" };
  } else if (held.mtimeMs < env.bootTime()) {
    // No boot id to compare (torn by a power cut, or no /proc): its time says if it is older.
    return { stale: true, why: "older than this boot" };
  }
  const sameNs = c !== null && c.ns !== undefined && c.ns !== "" && c.ns === me.ns;
  if (sameNs) {
    if (c.pid === me.pid) {
      // Our own pid: this very process (a second open), or a previous one that had it (pid 1 again).
      if (c.start === me.start) return { stale: false, error: new JournalLockedError(dir, c.pid) };
      return { stale: true, why: "an earlier process with this pid (pid 1 of a container started again)" };
    }
    if (!env.alive(c.pid)) return { stale: true, why: "its process is gone" };
    const start = env.startOf(c.pid);
    if (c.start !== undefined && start !== null && start !== c.start)
      return { stale: true, why: "its pid now belongs to another process" };
    return { stale: false, error: new JournalLockedError(dir, c.pid) };
  }
  // Written by an older version (no namespace, no start time, no lease). With our own pid it is
  // not this process (which writes the new format) but may be a live older gateway of another
  // namespace with the same number: it renews nothing, so its age decides (the lease, below).
  if (c !== null && c.ns === undefined && c.pid !== me.pid) {
    if (!env.alive(c.pid)) return { stale: true, why: "an older gateway's, its process gone" };
    // A live pid that started after the LOCK was written is not its writer: the pid was reused.
    const ticks = Number(env.startOf(c.pid));
    if (Number.isFinite(ticks) && env.bootTime() + (ticks * 1000) / USER_HZ > held.mtimeMs + 1000)
      return { stale: true, why: "an older gateway's; its pid now belongs to a process started after it" };
    return { stale: false, error: new JournalLockedError(dir, c.pid) };
  }
  const expiresInMs = held.mtimeMs + LEASE_EXPIRY_MS - now;
  if (expiresInMs <= 0) return { stale: true, why: "its lease expired", lease: true };
  // Renewed later than our now: a wall clock was set back (NTP, a board without a battery-backed
  // clock starting from its last saved time), and its age says nothing. Refused on it, a dead
  // holder's LOCK kept every start refused for as long as the step (an hour back: an hour without
  // a gateway). The watch decides, as for a lease that looks expired: a live holder renews within it.
  if (held.mtimeMs > now + LEASE_RENEW_MS)
    return {
      stale: true,
      why: "its lease was renewed later than this clock reads, and not since",
      lease: true,
    };
  return {
    stale: false,
    error: new JournalLockedError(dir, c?.pid ?? 0, {
      ns: c?.ns ?? "",
      renewedAt: held.mtimeMs,
      expiresInMs,
    }),
  };
}

export interface DirLock {
  /** The stale LOCK this one replaced (whose, and why it was judged stale), or null. */
  readonly tookOver: { pid: number; why: string } | null;
  /** Renews the lease; returns why the lock is no longer ours, or null while it is. */
  renew(): string | null;
  /** Removes the LOCK if it is still ours. */
  release(): void;
}

/** Takes the lock or throws JournalLockedError. */
export function acquireLock(dir: string, env: LockEnv = processEnv): DirLock {
  const file = path.join(dir, LOCK_FILE);
  const me = env.self();
  const mine: LockContent = {
    pid: me.pid,
    ns: me.ns,
    start: me.start,
    bootId: me.bootId,
    at: new Date(env.now()).toISOString(),
    token: randomBytes(8).toString("hex"),
  };
  // Written whole under another name, then linked: a LOCK is never seen half written by a
  // concurrent opener (link fails if LOCK exists). The name does not end in .tmp, which recovery
  // removes.
  const draft = path.join(dir, `${LOCK_FILE}.${mine.token}`);
  fs.writeFileSync(draft, `${JSON.stringify(mine)}\n`, { mode: 0o600 });
  let tookOver: { pid: number; why: string } | null = null;
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.linkSync(draft, file);
        removeDrafts(dir, draft);
        return held(file, mine, env, tookOver);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const found = readLock(file);
      if (found === null) continue; // released meanwhile
      const verdict = judge(dir, env, found);
      if (!verdict.stale) throw verdict.error;
      if (verdict.lease) {
        const seen = watchLease(file, found, env);
        if (seen === null) continue; // released meanwhile
        if (seen !== UNCHANGED) {
          // Another LOCK now: judged afresh.
          if (!sameContent(seen.content, found.content)) continue;
          // Renewed while watched: a live holder, whose lease only looked expired (a step of its
          // wall clock or ours).
          throw new JournalLockedError(dir, found.content?.pid ?? 0, {
            ns: found.content?.ns ?? "",
            renewedAt: seen.mtimeMs,
            expiresInMs: LEASE_EXPIRY_MS,
          });
        }
      }
      // Removed only if it is still the one judged (another opener may have replaced it).
      const again = readLock(file);
      if (again !== null && again.mtimeMs === found.mtimeMs && sameContent(again.content, found.content)) {
        fs.rmSync(file, { force: true });
        tookOver = { pid: found.content?.pid ?? 0, why: verdict.why };
      }
    }
  } finally {
    fs.rmSync(draft, { force: true });
  }
  throw new Error(`journal directory ${dir}: could not take the lock file ${file}`);
}

const UNCHANGED = Symbol("unchanged");

/**
 * Reads the LOCK found until it changes or LEASE_WATCH_MS passed on the monotonic clock: the LOCK
 * as it changed (null: removed), or UNCHANGED.
 */
function watchLease(
  file: string,
  found: NonNullable<ReturnType<typeof readLock>>,
  env: LockEnv,
): ReturnType<typeof readLock> | typeof UNCHANGED {
  const end = env.monotonic() + LEASE_WATCH_MS;
  for (;;) {
    const left = end - env.monotonic();
    if (left <= 0) return UNCHANGED;
    env.sleep(Math.min(WATCH_POLL_MS, left));
    const now = readLock(file);
    if (now === null || now.mtimeMs !== found.mtimeMs || !sameContent(now.content, found.content)) return now;
  }
}

/** Drafts left by openers killed between writing and linking them (ours is removed after). */
function removeDrafts(dir: string, ours: string): void {
  // Only old ones: another opener starting at this moment has a fresh draft (or write probe) here
  // for microseconds, and must meet this LOCK, not lose its file and fail some other way.
  const before = Date.now() - LEASE_EXPIRY_MS;
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (!name.startsWith(`${LOCK_FILE}.`) || file === ours) continue;
    try {
      if (fs.statSync(file).mtimeMs < before) fs.rmSync(file, { force: true });
    } catch {
      // Gone meanwhile (its opener finished with it).
    }
  }
}

function sameContent(a: LockContent | null, b: LockContent | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function held(
  file: string,
  mine: LockContent,
  env: LockEnv,
  tookOver: { pid: number; why: string } | null,
): DirLock {
  let released = false;
  const ours = (): boolean => readLock(file)?.content?.token === mine.token;
  return {
    tookOver,
    renew() {
      // An unreadable disk is not a lost lock: that throws, and the journal's writes report it.
      const cur = readLock(file, true);
      if (cur === null) return `lock file ${file} was removed`;
      if (cur.content?.token !== mine.token) {
        const who =
          cur.content === null
            ? "unreadable content"
            : `process ${cur.content.pid} (${cur.content.ns ?? "?"})`;
        return `lock file ${file} was taken over by ${who}`;
      }
      const t = new Date(env.now());
      fs.utimesSync(file, t, t);
      return null;
    },
    release() {
      if (released) return;
      released = true;
      if (ours()) fs.rmSync(file, { force: true });
    },
  };
}
