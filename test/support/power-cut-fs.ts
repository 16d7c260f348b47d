/**
 * A journal file system (gateway/journal/fs.ts) that remembers what a power cut would leave: per
 * file, its bytes as of its last completed fdatasync/fsync. `cutCopy` writes a data directory
 * holding only that (a power cut), optionally with a random part of the newest file's unsynced
 * tail (a cut torn inside the records written after the last sync): a prefix of it, or (`sectors`)
 * some of its 512-byte sectors and not others, zeros where one never reached the disk (a disk
 * writes back the sectors of an unsynced range in any order, its volatile cache too);
 * `crashCopy` one holding everything written (a SIGKILL: write(2) reached the kernel), and
 * `syncedFiles` what of it the disk held, which the restarted gateway's PowerCutFs starts from:
 * what the killed process wrote and did not sync is still only in the page cache, and a power cut
 * after the restart loses it unless the restarted gateway syncs it. `holdSyncs` keeps syncs from completing (a disk slower than the cut),
 * so what the gateway waits for is not acknowledged; `cutAtNextSync` cuts the power as the next
 * sync handed to the pool starts (during a start, before its first sync).
 *
 * Modelled: file contents at fsync granularity, files created (their entry is synced by the
 * journal's own directory fsync), renames and unlinks as immediate, the sectors of an unsynced
 * tail persisted in any order (`sectors`). Not modelled: a rename or unlink lost for want of a
 * directory fsync.
 */
import fs from "node:fs";
import path from "node:path";
import { type JournalFs, nodeFs } from "../../gateway/journal/fs.js";
import { seededRandom } from "../../sim/mqtt/random.js";

export class PowerCutFs implements JournalFs {
  /** Bytes on the platter, per absolute path. */
  private readonly durable = new Map<string, Buffer>();
  private readonly paths = new Map<number, { path: string; file: boolean }>();
  private held: Array<() => void> | null = null;
  private beforeNextSync: (() => void) | null = null;

  /**
   * `dir`: the journal's directory. What it holds already is on the disk, or, after a crash
   * (`synced`: the killed process's `syncedFiles`, by file name), only what that process synced: a
   * file it never synced is there, empty (its entry was synced when it was created).
   */
  constructor(
    dir: string,
    private readonly base: JournalFs = nodeFs,
    synced?: ReadonlyMap<string, Buffer>,
  ) {
    for (const name of fs.readdirSync(dir)) {
      const bytes = fs.readFileSync(path.join(dir, name));
      const onDisk = synced === undefined ? bytes : (synced.get(name) ?? Buffer.alloc(0));
      if (!bytes.subarray(0, onDisk.length).equals(onDisk))
        throw new Error(`${name}: what was synced is not a prefix of what was written`);
      this.durable.set(path.resolve(dir, name), onDisk);
    }
  }

  /** What the disk holds of each file of `dir` now, by name (for a crash's copy: see the constructor). */
  syncedFiles(dir: string): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const [p, bytes] of this.durable) if (path.dirname(p) === dir) out.set(path.basename(p), bytes);
    return out;
  }

  /** Syncs started from now on complete only at `releaseSyncs` (their data is not durable before). */
  holdSyncs(): void {
    this.held ??= [];
  }

  /** `cut` is called once, as the next sync handed to the pool starts (nothing of it on the disk yet). */
  cutAtNextSync(cut: () => void): void {
    this.beforeNextSync = cut;
  }

  /** A cutAtNextSync's cut, now, if no sync has come yet. */
  cutNow(): void {
    const cut = this.beforeNextSync;
    this.beforeNextSync = null;
    cut?.();
  }

  releaseSyncs(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const done of held) done();
  }

  /**
   * How long each segment of `dir` is now (what was written so far): `covers` says later whether a
   * sync has made all of it durable. Under `interval` an acknowledgement means written, not synced.
   */
  written(dir: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of this.durable.keys())
      if (path.dirname(p) === dir && path.basename(p).startsWith("seg-")) out.set(p, readOr(p).length);
    return out;
  }

  /** Whether the disk holds everything `written` saw (a segment deleted since: a durable snapshot replaced it). */
  covers(written: Map<string, number>): boolean {
    for (const [p, length] of written) {
      const d = this.durable.get(p);
      if (d !== undefined && d.length < length) return false;
    }
    return true;
  }

  /**
   * A power cut: a copy of `dir` in `to` as the disk holds it. `tear` in [0, 1): the file grew by
   * that share of its unsynced tail; `sectors` false: all of it (a prefix), true: each 512-byte sector of
   * it kept or zeroed at random (seeded by `tear`), at least one zeroed when the tail spans two.
   */
  cutCopy(dir: string, to: string, tear: number | null = null, sectors = false): { torn: string | null } {
    fs.mkdirSync(to, { recursive: true });
    let torn: string | null = null;
    for (const [p, bytes] of this.durable) {
      if (path.dirname(p) !== dir || !/^(seg-|snap-)/.test(path.basename(p)) || p.endsWith(".tmp")) continue;
      let out = bytes;
      if (tear !== null && path.basename(p).startsWith("seg-")) {
        const now = readOr(p);
        const unsynced = now.length - bytes.length;
        if (unsynced > 1 && now.subarray(0, bytes.length).equals(bytes)) {
          const keep = 1 + Math.floor(tear * (unsynced - 1));
          out = Buffer.from(now.subarray(0, bytes.length + keep));
          torn = `${path.basename(p)}+${keep}/${unsynced}`;
          if (sectors) torn += ` sectors lost ${zeroSectors(out, bytes.length, tear).join(",") || "none"}`;
        }
      }
      fs.writeFileSync(path.join(to, path.basename(p)), out);
    }
    return { torn };
  }

  /** A crash of the process: everything written to the files of `dir`, but its LOCK. */
  static crashCopy(dir: string, to: string): void {
    fs.mkdirSync(to, { recursive: true });
    for (const name of fs.readdirSync(dir))
      if (/^(seg-|snap-)/.test(name) && !name.endsWith(".tmp"))
        fs.copyFileSync(path.join(dir, name), path.join(to, name));
  }

  private synced(fd: number): (() => void) | null {
    const f = this.paths.get(fd);
    if (!f?.file) return null;
    // What the sync covers: every write completed before it started.
    const bytes = readOr(f.path);
    return () => {
      // A sync that completes after a later one (a segment's roll syncs it on the calling thread
      // while the group sync started before runs on the pool) takes nothing back: the files are
      // appended to, so the longer copy is the later one (ftruncateSync shortens it itself).
      const now = this.durable.get(f.path);
      if (now === undefined || bytes.length >= now.length) this.durable.set(f.path, bytes);
    };
  }

  mkdirSync(p: string, opts: { recursive: true; mode: number }): string | undefined {
    return this.base.mkdirSync(p, opts);
  }
  openSync(p: string, flags: string, mode?: number): number {
    const fd = this.base.openSync(p, flags, mode);
    const file = flags !== "r";
    this.paths.set(fd, { path: path.resolve(p), file });
    if (file && !this.durable.has(path.resolve(p))) this.durable.set(path.resolve(p), Buffer.alloc(0));
    return fd;
  }
  closeSync(fd: number): void {
    this.paths.delete(fd);
    this.base.closeSync(fd);
  }
  readFileSync(p: string): Buffer {
    return this.base.readFileSync(p);
  }
  writeSync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): number {
    return this.base.writeSync(fd, buf, off, len, pos);
  }
  write(
    fd: number,
    buf: Uint8Array,
    off: number,
    len: number,
    pos: number,
    cb: (err: NodeJS.ErrnoException | null, written: number) => void,
  ): void {
    this.base.write(fd, buf, off, len, pos, cb);
  }
  fdatasyncSync(fd: number): void {
    const done = this.synced(fd);
    this.base.fdatasyncSync(fd);
    done?.();
  }
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
    this.cutNow();
    const done = this.synced(fd);
    this.base.fdatasync(fd, (err) => {
      const finish = () => {
        if (!err) done?.();
        cb(err);
      };
      if (this.held) this.held.push(finish);
      else finish();
    });
  }
  fsyncSync(fd: number): void {
    const done = this.synced(fd);
    this.base.fsyncSync(fd);
    done?.();
  }
  ftruncateSync(fd: number, len: number): void {
    this.base.ftruncateSync(fd, len);
    const f = this.paths.get(fd);
    const d = f && this.durable.get(f.path);
    if (f && d && d.length > len) this.durable.set(f.path, d.subarray(0, len));
  }
  renameSync(from: string, to: string): void {
    this.base.renameSync(from, to);
    const d = this.durable.get(path.resolve(from));
    this.durable.delete(path.resolve(from));
    if (d) this.durable.set(path.resolve(to), d);
  }
  unlinkSync(p: string): void {
    this.base.unlinkSync(p);
    this.durable.delete(path.resolve(p));
  }
  readdirSync(p: string): string[] {
    return this.base.readdirSync(p);
  }
  statSync(p: string): { size: number } {
    return this.base.statSync(p);
  }
}

/** The smallest unit a disk writes: a logical sector. */
const SECTOR = 512;

/**
 * Zeroes a random set of the sectors of buf from `from` on (the part of the first one before
 * `from` was synced: it stays), at least one when there are two or more; returns their numbers.
 */
function zeroSectors(buf: Buffer, from: number, seed: number): number[] {
  const first = Math.floor(from / SECTOR);
  const last = Math.floor((buf.length - 1) / SECTOR);
  if (last < first) return [];
  // Seeded from the tear: a seed's walk replays its sectors too.
  const next = seededRandom(Math.floor(seed * 4294967296));
  const lost: number[] = [];
  for (let sector = first; sector <= last; sector++) if (next() < 0.5) lost.push(sector);
  if (lost.length === 0 && last > first) lost.push(first + Math.floor(next() * (last - first)));
  for (const sector of lost)
    buf.fill(0, Math.max(from, sector * SECTOR), Math.min(buf.length, (sector + 1) * SECTOR));
  return lost;
}

function readOr(p: string): Buffer {
  try {
    return fs.readFileSync(p);
  } catch {
    return Buffer.alloc(0);
  }
}
