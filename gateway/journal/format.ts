/**
 * The journal's on-disk format, and the refusal of a directory a newer format wrote. A snapshot
 * names its format in its BEGIN record; a segment's records name their kind (op) in their body.
 * A snapshot of a higher format, or a record whose CRC holds but whose kind this version does not
 * know, was written by a newer Linli (a downgrade), not damaged: set aside as damage, the state
 * in it would be silently lost. The start is refused instead, nothing in the directory touched.
 */
import path from "node:path";

/**
 * The snapshot format this version writes (snapshot.ts, BEGIN `{v}`); it reads this one and every
 * earlier one. 2 (since 2026-12-06): the layout is format 1's, but values may be in the positional
 * layouts of a press's pair record (gateway/state: alert and device records), which a version
 * before it would take for damaged records and drop: it refuses a format 2 snapshot instead.
 */
export const SNAPSHOT_FORMAT = 2;
/**
 * The highest record kind (op) this version knows (record.ts: put, delete, snapshot begin, end,
 * since 2026-12-06 the pair, 5, and since 2026-12-07 synced, 6: a version before one refuses a
 * directory holding it).
 */
export const MAX_KNOWN_OP = 6;

export class JournalFormatError extends Error {
  constructor(
    readonly dir: string,
    readonly file: string,
    /** What the file is in, e.g. `snapshot format 2`, `record kind 7`. */
    readonly found: string,
  ) {
    super(
      `journal directory ${path.resolve(dir)} was written by a newer version of Linli: ${file} is in ` +
        `${found}, this version reads snapshot formats up to ${SNAPSHOT_FORMAT} and record kinds 1-${MAX_KNOWN_OP}. ` +
        "Nothing in it was changed. Start the newer version again, or stop, replace the directory with " +
        'a backup this version wrote and start (docs/durability.md, "Backup and restore")',
    );
    this.name = "JournalFormatError";
  }
}
