/**
 * Snapshots: the live map (key -> encoded value) as a file of framed records,
 *   BEGIN {v, seq} | PUT key value ... | END {records}
 * written as <name>.tmp, fdatasync'd, renamed, and the directory fsync'd: a snapshot file either
 * exists complete or not at all. It is valid only with its END record and a matching count.
 *
 * The async writer frames CHUNK_BYTES at a time between awaits, so the event loop is never held
 * for more than one chunk's framing (measured by bench/journal-startup.ts: see docs/durability.md).
 */
import path from "node:path";
import { decode, encode } from "cbor-x";
import { JournalFormatError, SNAPSHOT_FORMAT } from "./format.js";
import { fdatasyncAsync, fsyncDir, type JournalFs, writeFully, writeFullyAsync } from "./fs.js";
import { framedSize, frameInto, OP_PUT, OP_SNAP_BEGIN, OP_SNAP_END, scan } from "./record.js";

const CHUNK_BYTES = 64 * 1024;

/** key -> encoded value, its bytes as a one-byte (latin1) string (the journal's live map). */
export type Image = Array<[string, string]>;

/** The snapshot as a sequence of buffers of about CHUNK_BYTES, framed in place. */
function* chunks(seq: number, image: Image): Generator<Buffer> {
  let buf = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  let pos = 0;
  const put = function* (op: number, key: string, value: Uint8Array | string): Generator<Buffer> {
    const keyLen = Buffer.byteLength(key, "utf8");
    const size = framedSize(keyLen, value.length);
    if (pos + size > buf.length && pos > 0) {
      yield buf.subarray(0, pos);
      buf = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, size));
      pos = 0;
    } else if (size > buf.length) buf = Buffer.allocUnsafeSlow(size);
    pos = frameInto(buf, pos, op, key, keyLen, value);
  };
  yield* put(OP_SNAP_BEGIN, "", encode({ v: SNAPSHOT_FORMAT, seq }));
  for (const [key, value] of image) yield* put(OP_PUT, key, value);
  yield* put(OP_SNAP_END, "", encode({ records: image.length }));
  yield buf.subarray(0, pos);
}

export interface SnapshotWrite {
  bytes: number;
  /** Longest synchronous stretch (framing one 64 KiB chunk), ms. */
  maxSliceMs: number;
}

/**
 * Writes the snapshot without holding the event loop. `aborted()` is checked between chunks and
 * before the rename: an aborted write leaves only its .tmp file (removed here, or at next open).
 */
export async function writeSnapshot(
  fsx: JournalFs,
  dir: string,
  name: string,
  seq: number,
  image: Image,
  aborted: () => boolean,
): Promise<SnapshotWrite | null> {
  const tmp = path.join(dir, `${name}.tmp`);
  const fd = fsx.openSync(tmp, "w", 0o600);
  let pos = 0;
  let maxSliceMs = 0;
  let ok = false;
  try {
    const it = chunks(seq, image);
    for (;;) {
      const t0 = performance.now();
      const next = it.next();
      maxSliceMs = Math.max(maxSliceMs, performance.now() - t0);
      if (next.done) break;
      await writeFullyAsync(fsx, fd, next.value, pos);
      pos += next.value.length;
      if (aborted()) return null;
    }
    await fdatasyncAsync(fsx, fd);
    if (aborted()) return null;
    ok = true;
  } finally {
    try {
      fsx.closeSync(fd);
    } catch {
      // The data is synced or abandoned; a failing close changes neither.
    }
    if (!ok) {
      try {
        fsx.unlinkSync(tmp);
      } catch {
        // Removed at the next open.
      }
    }
  }
  // Synchronous from here: no await between the last abort check and the rename.
  fsx.renameSync(tmp, path.join(dir, name));
  fsyncDir(fsx, dir);
  return { bytes: pos, maxSliceMs };
}

/** Same file, written synchronously (clean shutdown while degraded: the last chance to persist). */
export function writeSnapshotSync(
  fsx: JournalFs,
  dir: string,
  name: string,
  seq: number,
  image: Image,
): number {
  const tmp = path.join(dir, `${name}.tmp`);
  const fd = fsx.openSync(tmp, "w", 0o600);
  let pos = 0;
  try {
    for (const chunk of chunks(seq, image)) {
      writeFully(fsx, fd, chunk, pos);
      pos += chunk.length;
    }
    fsx.fdatasyncSync(fd);
  } catch (err) {
    try {
      fsx.closeSync(fd);
      fsx.unlinkSync(tmp);
    } catch {
      // Removed at the next open.
    }
    throw err;
  }
  fsx.closeSync(fd);
  fsx.renameSync(tmp, path.join(dir, name));
  fsyncDir(fsx, dir);
  return pos;
}

export interface LoadedSnapshot {
  entries: Map<string, Buffer>;
  records: number;
  bytes: number;
}

/**
 * Reads and validates a snapshot; returns the reason it is unusable instead of throwing, but throws
 * JournalFormatError for a snapshot of a newer format (not damage: the start is refused).
 */
export function readSnapshot(fsx: JournalFs, file: string, seq: number): LoadedSnapshot | string {
  let buf: Buffer;
  try {
    buf = fsx.readFileSync(file);
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
  const entries = new Map<string, Buffer>();
  let begun = false;
  let ended = false;
  let endCount = -1;
  let problem: string | null = null;
  /** Written by a newer format (format.ts): refused, not set aside. */
  let newer: string | null = null;
  let res: ReturnType<typeof scan>;
  try {
    res = scan(buf, (op, key, value) => {
      if (problem !== null || ended) {
        problem ??= "record after END";
        return;
      }
      if (!begun) {
        if (op !== OP_SNAP_BEGIN) problem = "no BEGIN record";
        else {
          const meta = decode(value) as { v?: unknown; seq?: unknown };
          if (typeof meta.v === "number" && Number.isInteger(meta.v) && meta.v > SNAPSHOT_FORMAT)
            newer = `snapshot format ${meta.v}`;
          else if (meta.v !== SNAPSHOT_FORMAT && meta.v !== 1)
            problem = `unknown snapshot format ${String(meta.v)}`;
          else if (meta.seq !== seq) problem = `BEGIN names segment ${String(meta.seq)}, file name ${seq}`;
        }
        begun = true;
      } else if (op === OP_PUT) entries.set(key, value);
      else if (op === OP_SNAP_END) {
        ended = true;
        endCount = Number((decode(value) as { records?: unknown }).records);
      } else problem = `unexpected op ${op}`;
    });
  } catch (err) {
    return `undecodable: ${(err as Error).message}`;
  }
  if (res.newerOp !== undefined && problem === null) newer ??= `record kind ${res.newerOp}`;
  if (newer !== null) throw new JournalFormatError(path.dirname(file), path.basename(file), newer);
  if (res.damage !== null) return `${res.damage} at byte ${res.validEnd} of ${buf.length}`;
  if (problem !== null) return problem;
  if (!ended) return "no END record (incomplete)";
  if (endCount !== entries.size) return `END counts ${endCount} records, found ${entries.size}`;
  return { entries, records: entries.size, bytes: buf.length };
}
