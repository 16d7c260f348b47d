/**
 * The file-system seam of the journal: every call the journal makes to the disk goes through
 * a JournalFs, so tests can inject failures (ENOSPC, EROFS, EIO) that cannot be produced on
 * the real disk. The default is node:fs.
 */
import fs from "node:fs";
import path from "node:path";

export interface JournalFs {
  /** Returns the first directory it created (none: undefined), as node:fs does. */
  mkdirSync(path: string, opts: { recursive: true; mode: number }): string | undefined;
  openSync(path: string, flags: string, mode?: number): number;
  closeSync(fd: number): void;
  readFileSync(path: string): Buffer;
  writeSync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): number;
  write(
    fd: number,
    buf: Uint8Array,
    off: number,
    len: number,
    pos: number,
    cb: (err: NodeJS.ErrnoException | null, written: number) => void,
  ): void;
  fdatasyncSync(fd: number): void;
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  fsyncSync(fd: number): void;
  ftruncateSync(fd: number, len: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  readdirSync(path: string): string[];
  statSync(path: string): { size: number };
}

export const nodeFs: JournalFs = {
  mkdirSync: (p, o) => fs.mkdirSync(p, o),
  openSync: (p, f, m) => fs.openSync(p, f, m),
  closeSync: (fd) => fs.closeSync(fd),
  readFileSync: (p) => fs.readFileSync(p),
  writeSync: (fd, b, o, l, p) => fs.writeSync(fd, b, o, l, p),
  write: (fd, b, o, l, p, cb) => fs.write(fd, b, o, l, p, cb),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  fdatasync: (fd, cb) => fs.fdatasync(fd, cb),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  ftruncateSync: (fd, l) => fs.ftruncateSync(fd, l),
  renameSync: (a, b) => fs.renameSync(a, b),
  unlinkSync: (p) => fs.unlinkSync(p),
  readdirSync: (p) => fs.readdirSync(p),
  statSync: (p) => fs.statSync(p),
};

/**
 * The same file system refusing every change with EROFS: what a journal opened read-only reads
 * through, so recovery restores the state exactly as a normal open would and writes nothing
 * (the torn tails and *.tmp files it would move or remove are left for the full open).
 */
export function readOnlyFs(fsx: JournalFs): JournalFs {
  const erofs = () => Object.assign(new Error("EROFS: journal opened read-only"), { code: "EROFS" });
  const refuse = (): never => {
    throw erofs();
  };
  return {
    ...fsx,
    mkdirSync: refuse,
    openSync: (p, flags, mode) => (flags === "r" ? fsx.openSync(p, flags, mode) : refuse()),
    writeSync: refuse,
    write: (_fd, _b, _o, _l, _p, cb) => setImmediate(() => cb(erofs(), 0)),
    fdatasyncSync: refuse,
    fdatasync: (_fd, cb) => setImmediate(() => cb(erofs())),
    fsyncSync: refuse,
    ftruncateSync: refuse,
    renameSync: refuse,
    unlinkSync: refuse,
  };
}

/** fsync a directory so a created, renamed or removed entry survives a power cut. */
export function fsyncDir(fsx: JournalFs, dir: string): void {
  const fd = fsx.openSync(dir, "r");
  try {
    fsx.fsyncSync(fd);
  } finally {
    fsx.closeSync(fd);
  }
}

/** Writes all of buf at pos (a short write is continued, as write(2) allows it). */
export function writeFully(fsx: JournalFs, fd: number, buf: Uint8Array, pos: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = fsx.writeSync(fd, buf, off, buf.length - off, pos + off);
    if (n <= 0) throw Object.assign(new Error("write returned 0 bytes"), { code: "EIO" });
    off += n;
  }
}

export function writeFullyAsync(fsx: JournalFs, fd: number, buf: Uint8Array, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number): void => {
      fsx.write(fd, buf, off, buf.length - off, pos + off, (err, n) => {
        if (err) return reject(err);
        if (n <= 0) return reject(Object.assign(new Error("write returned 0 bytes"), { code: "EIO" }));
        if (off + n >= buf.length) return resolve();
        step(off + n);
      });
    };
    step(0);
  });
}

export function fdatasyncAsync(fsx: JournalFs, fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsx.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** The size of a file in dir, 0 when it cannot be read (gone, or the disk refuses). */
export function sizeOf(fsx: JournalFs, dir: string, name: string): number {
  try {
    return fsx.statSync(path.join(dir, name)).size;
  } catch {
    return 0;
  }
}

/** Removes a file from dir; true when it is gone (also when it was gone already). */
export function tryUnlink(fsx: JournalFs, dir: string, name: string): boolean {
  try {
    fsx.unlinkSync(path.join(dir, name));
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT";
  }
}
