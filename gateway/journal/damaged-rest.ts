/**
 * The overflow file of damaged regions (docs/durability.md "Damage"): a start that finds more
 * damaged regions than it may keep damaged-* files for copies the rest into one file,
 * `damaged-<time>-rest.bin`, so every region it finds is on disk aside, not one file per region.
 *
 * Layout, one entry per region in the order copied: a line of JSON
 * `{"file":"seg-….log","offset":N,"bytes":B,"kind":"corrupt-record","reason":"bad CRC"}`, then
 * exactly B raw bytes (what `file` held from `offset`), then "\n". Read it back by taking a line,
 * then B bytes, then skipping the newline, to the end of the file.
 *
 * Bounded: at most `capBytes` bytes, headers included (the journal passes its segment size, so it
 * is no larger than a damaged-* file of one segment's damage). A region that does not fit whole is
 * not copied (the caller counts it); a later, smaller one still may be.
 */
import path from "node:path";
import { type JournalFs, tryUnlink, writeFully } from "./fs.js";

/** What the header line of a region says. */
export interface RestRegion {
  file: string;
  offset: number;
  bytes: number;
  kind: string;
  reason: string;
}

const NEWLINE = Buffer.from("\n");

export class DamagedRest {
  /** Bytes written, headers included. */
  size = 0;
  /** Regions written whole. */
  regions = 0;
  /**
   * The first region was refused and the file, holding none whole, could not be removed either:
   * it is on disk all the same, and the caller counts it against the bound of damaged-* files.
   */
  leftBehind = false;
  private fd: number | null = null;

  constructor(
    private readonly fsx: JournalFs,
    private readonly dir: string,
    readonly name: string,
    private readonly capBytes: number,
  ) {}

  /** The region's header line when header and bytes fit under the cap, else null. */
  fit(region: RestRegion): Buffer | null {
    const header = Buffer.from(`${JSON.stringify(region)}\n`);
    return this.size + header.length + region.bytes + NEWLINE.length <= this.capBytes ? header : null;
  }

  /**
   * Appends a region (the file is created with the first). Throws when the disk refuses; the file
   * is then cut back to its last whole region when it can be, so a reader never meets half a one,
   * or, refused its first region, removed (leftBehind when the disk refuses that too): an empty or
   * partial file is no copy, and the caller does not count it as one.
   */
  append(header: Buffer, bytes: Buffer): void {
    if (this.fd === null) this.fd = this.fsx.openSync(path.join(this.dir, this.name), "wx", 0o600);
    const at = this.size;
    const entry = Buffer.concat([header, bytes, NEWLINE]);
    try {
      writeFully(this.fsx, this.fd, entry, at);
    } catch (err) {
      if (this.regions === 0) this.discard();
      else
        try {
          this.fsx.ftruncateSync(this.fd, at);
        } catch {
          // The disk refuses that too: the reader stops at the half region (bytes short of B).
        }
      throw err;
    }
    this.size = at + entry.length;
    this.regions++;
  }

  /** Closes and removes the file, which holds no whole region. */
  private discard(): void {
    const fd = this.fd;
    this.fd = null;
    try {
      if (fd !== null) this.fsx.closeSync(fd);
    } catch {
      // Removed all the same: an unlinked file's blocks are freed once its fd goes.
    }
    this.leftBehind = !tryUnlink(this.fsx, this.dir, this.name);
  }

  /** Makes what was appended durable (before a segment's tail copied here is cut off). */
  sync(): void {
    if (this.fd !== null) this.fsx.fdatasyncSync(this.fd);
  }

  /** Syncs and closes; closed even when the sync throws. */
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      this.fsx.fdatasyncSync(fd);
    } finally {
      this.fsx.closeSync(fd);
    }
  }
}
