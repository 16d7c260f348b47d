/**
 * Keeping the journal directory ours, and folding what a later open finds into the first one.
 *
 * JournalLock holds the directory's LOCK (lock.ts) for the journal's life: taken at open (after a
 * probe write, so a read-only directory leaves no trace), its lease renewed every lockRenewMs, and
 * its loss (another gateway took the directory over, or the LOCK was removed) reported once to the
 * journal, which stops writing for good. The open sequence itself (journal.ts open, openReadOnly,
 * finishOpen, load) composes this lock, recovery.ts, the live map and the generations.
 *
 * A directory first opened read-only, or not at all (whenUnwritable "degrade"), is opened fully
 * later and read again: mergeReport keeps each damage counted once, filesChanged tells whether
 * another gateway used the directory meanwhile.
 */
import path from "node:path";
import type { Logger } from "pino";
import { LOCK_FILE, segmentName, snapshotName } from "./files.js";
import { fsyncDir, type JournalFs } from "./fs.js";
import { acquireLock, type DirLock, JournalLockedError, type LockEnv } from "./lock.js";
import {
  addTotals,
  DAMAGE_KINDS,
  type Damage,
  MAX_LISTED_DAMAGE,
  noDamage,
  type Recovered,
  type RecoveryReport,
} from "./recovery.js";

export class JournalLock {
  /** Why the LOCK is no longer ours (taken over, removed): nothing is written any more. */
  lostReason: string | null = null;
  private lock: DirLock | null = null;
  private timer: NodeJS.Timeout | null = null;
  private onLost: (reason: string) => void = () => {};
  /** The last renewal failed (logged once per episode). */
  private leaseFailing = false;
  private refusedLogged = false;

  constructor(
    private readonly fsx: JournalFs,
    private readonly dir: string,
    private readonly env: LockEnv | undefined,
    private readonly log: Logger | undefined,
  ) {}

  /** Creates the directory and takes the LOCK; throws when the directory takes no writes. */
  take(): void {
    const created = this.fsx.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // A directory created here (a first start) is an entry in its parent: unsynced, a power cut
    // soon after could take the directory, and the records synced in it, away. Best effort: a
    // parent this process may not read (fsync needs it open) leaves it as before.
    if (created !== undefined) {
      const top = path.dirname(created);
      for (let d = this.dir; d !== top && d !== path.dirname(d); d = path.dirname(d)) {
        try {
          fsyncDir(this.fsx, path.dirname(d));
        } catch {
          break;
        }
      }
    }
    // Through the seam, before the LOCK is written: a read-only directory leaves no trace.
    // Per pid: two gateways started at once must still meet at the LOCK (JournalLockedError).
    const probe = path.join(this.dir, `${LOCK_FILE}.probe.${process.pid}.tmp`);
    this.fsx.closeSync(this.fsx.openSync(probe, "w", 0o600));
    try {
      this.fsx.unlinkSync(probe);
    } catch (err) {
      // Swept by a gateway that opened the directory meanwhile (its start removes *.tmp): the
      // directory took the write; that gateway's LOCK is met next.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    this.lock = acquireLock(this.dir, this.env);
    const before = this.lock.tookOver;
    // Said after the fact: which holder was judged gone, and why (a crash, a reused pid, a lease).
    if (before !== null)
      this.log?.warn(
        { dir: this.dir, previousPid: before.pid, why: before.why },
        "journal lock: a stale LOCK was taken over",
      );
  }

  /** take() for a retry: false when refused (another process holding it is logged once). */
  tryTake(): boolean {
    try {
      this.take();
    } catch (err) {
      if (err instanceof JournalLockedError && !this.refusedLogged) {
        this.refusedLogged = true;
        this.log?.error({ err: err.message }, "journal retry: another process took the directory meanwhile");
      }
      return false;
    }
    return true;
  }

  /**
   * Still ours after the directory was read (a large directory takes seconds): else the files just
   * read may be another gateway's to change; the lock is dropped and the next retry starts over.
   */
  confirm(): boolean {
    let lost: string | null;
    try {
      lost = this.lock === null ? "no lock" : this.lock.renew();
    } catch (err) {
      lost = (err as Error).message;
    }
    if (lost === null) return true;
    this.log?.error(
      { dir: this.dir, reason: lost },
      "journal retry: the lock was lost while reading the directory",
    );
    this.drop();
    return false;
  }

  /** Gives the LOCK back (an open that failed after taking it). */
  drop(): void {
    this.lock?.release();
    this.lock = null;
  }

  /** At close: removes the LOCK, only if it is still ours. */
  release(): void {
    this.lock?.release();
  }

  /** Renews the lease every `ms`; onLost once if the LOCK stops being ours. */
  startRenewing(ms: number, onLost: (reason: string) => void): void {
    this.onLost = onLost;
    this.timer = setInterval(this.renew, ms);
    this.timer.unref();
  }

  stopRenewing(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Renews the lock's lease and checks the LOCK is still ours. Taken over (another gateway judged
   * the lease expired) or removed: the journal stops writing at once, for good, and says so loudly,
   * rather than interleave its records with the other's.
   */
  private readonly renew = (): void => {
    if (this.lock === null || this.lostReason !== null) return;
    let lost: string | null;
    try {
      lost = this.lock.renew();
    } catch (err) {
      // The disk refuses even a utimes: the journal's own writes report that; the lease runs on.
      if (!this.leaseFailing)
        this.log?.warn({ err: (err as Error).message }, "journal could not renew its lock's lease");
      this.leaseFailing = true;
      return;
    }
    this.leaseFailing = false;
    if (lost === null) return;
    this.lostReason = lost;
    this.stopRenewing();
    this.onLost(lost);
  };
}

/** Damage found by an open: the first MAX_LISTED_DAMAGE listed, all of it counted. */
export type FoundDamage = Pick<RecoveryReport, "damaged" | "damage" | "damageByKind">;

/**
 * Merges a later open's findings into `into`. Damage is known by its group (kind and file, with a
 * digest of every damage in it: recovery.ts damageGroups), so every damage counts once also
 * beyond the listed ones: a group `seen` before is the same damage found again, now moved aside
 * (a listed one keeps its entry, updated with where it was moved); a group not seen (a new file,
 * or one whose damage changed: another gateway used the directory meanwhile) is new. Returns the
 * new damage, counted; `into` and `seen` are updated. Counts only grow (they feed a counter).
 */
export function mergeReport(into: RecoveryReport, found: Recovered, seen: Set<string>): FoundDamage {
  const report = found.report;
  const fresh: FoundDamage = { damaged: 0, damage: [], damageByKind: noDamage() };
  const freshGroups = new Set<string>();
  for (const [key, g] of found.damageGroups) {
    const id = `${key} ${g.digest}`;
    if (seen.has(id)) continue;
    seen.add(id);
    freshGroups.add(key);
    fresh.damaged += g.totals.count;
    addTotals(fresh.damageByKind[g.kind], g.totals);
  }
  const id = (d: Damage) => `${d.kind} ${d.file} ${d.offset ?? ""}`;
  const damage = [...into.damage];
  const at = new Map(damage.map((d, i) => [id(d), i]));
  for (const d of report.damage) {
    const i = at.get(id(d));
    if (i !== undefined) damage[i] = d;
    if (!freshGroups.has(`${d.kind} ${d.file}`)) continue;
    fresh.damage.push(d);
    if (i === undefined && damage.length < MAX_LISTED_DAMAGE) damage.push(d);
  }
  const byKind = into.damageByKind;
  for (const k of DAMAGE_KINDS) addTotals(byKind[k], fresh.damageByKind[k]);
  Object.assign(into, report, {
    damage,
    damaged: into.damaged + fresh.damaged,
    damageByKind: byKind,
    lost: into.lost || report.lost,
    quarantined: [...new Set([...into.quarantined, ...report.quarantined])],
    ms: into.ms,
  });
  return fresh;
}

/** The directory holds other segments or snapshots than the ones listed when it was read at start. */
export function filesChanged(
  found: Recovered,
  segments: Map<number, number>,
  snapshots: Map<number, number>,
): boolean {
  // A segment whose damage was cut off now is not a change: the same damage was read at start.
  const cut = new Set([...found.damageGroups.values()].map((g) => g.file));
  const same = (a: Map<number, number>, b: Map<number, number>, name: (n: number) => string) =>
    a.size === b.size && [...a].every(([n, size]) => b.has(n) && (b.get(n) === size || cut.has(name(n))));
  return !same(found.segments, segments, segmentName) || !same(found.snapshots, snapshots, snapshotName);
}
