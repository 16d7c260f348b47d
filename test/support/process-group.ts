/**
 * Child processes for tests, each in a process group of its own, stopped by
 * signalling the group. A line run through `sh -c` is a shell AND the
 * program (killing the shell's PID left the README's mosquitto_sub running
 * after every `npm test`), and `linli start --demo` starts socat: the group
 * reaches every process the test started, and only those.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";

const live = new Set<number>();
let exitHooked = false;

/** spawn() in a new process group (detached: the child leads it; its PID is the group id). */
export function spawnGroup(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  if (!exitHooked) {
    exitHooked = true;
    // A worker that ends without running its afterAll still takes its groups with it.
    process.on("exit", () => {
      for (const pgid of live) signal(pgid, "SIGKILL");
    });
  }
  const child = spawn(command, args, { ...options, detached: true });
  if (child.pid !== undefined) live.add(child.pid);
  return child;
}

function signal(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

/** True while any process of the child's group is alive (zombies of this process excepted once reaped). */
export function groupAlive(child: ChildProcess): boolean {
  return child.pid !== undefined && signal(child.pid, 0);
}

/**
 * `first` (SIGTERM) to the whole group, up to `graceMs` for it to go, then
 * SIGKILL to whatever is left (a grandchild that outlived its parent included).
 */
export async function killGroup(
  child: ChildProcess,
  graceMs = 3000,
  first: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once("exit", () => resolve()));
  signal(pgid, first);
  const deadline = Date.now() + graceMs;
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  while (signal(pgid, 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  signal(pgid, "SIGKILL");
  await exited;
  live.delete(pgid);
}
