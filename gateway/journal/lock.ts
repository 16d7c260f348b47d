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
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
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
