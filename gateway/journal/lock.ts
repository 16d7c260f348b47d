/**
 * One process per journal directory. The LOCK file holds the owner's pid and the kernel boot id:
 * a lock left by a process that is gone, or written before the last reboot (after a power cut
 * the pid may belong to someone else), is stale and taken over, so the gateway starts every time.
 */
import fs from "node:fs";
import path from "node:path";
import { LOCK_FILE } from "./files.js";

interface LockContent {
  pid: number;
  bootId: string;
  at: string;
}

function bootId(): string {
  try {
    return fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  return !zombie(pid);
}

/**
 * A process that has exited but not yet been reaped by whoever inherited it
 * still answers signal 0; it holds no file and writes nothing, so its lock is
 * stale. (A gateway started by a shell that died first is inherited by init;
 * a restart right after its exit must not be refused while init catches up.)
 */
function zombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ...": comm may hold spaces and parentheses, so after the last ")".
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state === "Z" || state === "X";
  } catch {
    return false; // no /proc (not Linux): signal 0 is all there is
  }
}

function readLock(file: string): LockContent | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<LockContent>;
    if (typeof parsed.pid !== "number") return null;
    return { pid: parsed.pid, bootId: String(parsed.bootId ?? ""), at: String(parsed.at ?? "") };
  } catch {
    return null;
  }
}

export class JournalLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `journal directory ${dir} is in use by process ${pid} (lock file ${path.join(dir, LOCK_FILE)}); ` +
        "one gateway per data directory",
    );
    this.name = "JournalLockedError";
  }
}

/** Takes the lock or throws JournalLockedError; returns the release function. */
export function acquireLock(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const mine: LockContent = { pid: process.pid, bootId: bootId(), at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(mine)}\n`, { flag: "wx", mode: 0o600 });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const cur = readLock(file);
        if (cur !== null && cur.pid === mine.pid && cur.at === mine.at) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const held = readLock(file);
    // Unreadable (torn by a power cut while being written), other boot, or dead owner: stale.
    if (held !== null && held.bootId === mine.bootId && alive(held.pid)) {
      throw new JournalLockedError(dir, held.pid);
    }
    fs.rmSync(file, { force: true });
  }
  throw new Error(`journal directory ${dir}: could not take the lock file ${file}`);
}
