/**
 * File names in a journal directory:
 *   seg-<seq>.log        segment: records appended in order; seq grows by one per roll
 *   snap-<seq>.snap      snapshot of the live map holding every record of the segments < seq
 *   *.tmp                a snapshot being written (removed at open: never renamed, so never valid)
 *   damaged-<time>-<name>.bin   a torn or corrupt tail (or snapshot) moved aside at open
 *   damaged-<time>-rest.bin     the damaged regions a start found beyond those, one after another
 *                               (damaged-rest.ts)
 *   LOCK                 who has the directory open, a lease renewed every 5 s (lock.ts)
 *   LOCK.<token>         a LOCK being written by an opener, linked to LOCK whole
 */
const PAD = 16;

export const LOCK_FILE = "LOCK";

export function segmentName(seq: number): string {
  return `seg-${String(seq).padStart(PAD, "0")}.log`;
}

export function snapshotName(seq: number): string {
  return `snap-${String(seq).padStart(PAD, "0")}.snap`;
}

const SEG_RE = /^seg-(\d{16})\.log$/;
const SNAP_RE = /^snap-(\d{16})\.snap$/;

export interface DirListing {
  segments: number[];
  snapshots: number[];
  tmp: string[];
  damaged: string[];
  other: string[];
}

export function classify(names: string[]): DirListing {
  const out: DirListing = { segments: [], snapshots: [], tmp: [], damaged: [], other: [] };
  for (const name of names) {
    let m = SEG_RE.exec(name);
    if (m) {
      out.segments.push(Number(m[1]));
      continue;
    }
    m = SNAP_RE.exec(name);
    if (m) out.snapshots.push(Number(m[1]));
    else if (name.endsWith(".tmp")) out.tmp.push(name);
    else if (name.startsWith("damaged-")) out.damaged.push(name);
    else out.other.push(name);
  }
  out.segments.sort((a, b) => a - b);
  out.snapshots.sort((a, b) => a - b);
  out.damaged.sort();
  return out;
}

/** ISO time without colons, so the name is portable to backup targets that refuse ':' */
export function damagedName(now: number, source: string): string {
  return `damaged-${new Date(now).toISOString().replace(/:/g, "-")}-${source}.bin`;
}
