/**
 * A data directory written by a newer journal format (a downgrade) is refused, untouched; real
 * corruption is still set aside as damage (docs/durability.md "A directory of a newer format").
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encode } from "cbor-x";
import { describe, expect, it } from "vitest";
import { journalScratch } from "../../test/support/journal-scratch.js";
import { segmentName, snapshotName } from "./files.js";
import { JournalFormatError, SNAPSHOT_FORMAT } from "./format.js";
import { Journal } from "./journal.js";
import { frame, OP_PUT, OP_SNAP_BEGIN, OP_SNAP_END } from "./record.js";

const { tempDir, open } = journalScratch("linli-journal-format-");

function snapshot(v: unknown, seq: number, entries: Array<[string, unknown]>): Buffer {
  return Buffer.concat([
    frame(OP_SNAP_BEGIN, "", encode({ v, seq })),
    ...entries.map(([k, val]) => frame(OP_PUT, k, encode(val))),
    frame(OP_SNAP_END, "", encode({ records: entries.length })),
  ]);
}

/** Every file's bytes (the LOCK aside: an open takes and gives it back). */
function contents(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of readdirSync(dir).sort())
    if (f !== "LOCK") m.set(f, readFileSync(join(dir, f)).toString("base64"));
  return m;
}

function openIt(dir: string): Journal {
  const j = Journal.open({ dir, sync: "batch", whenUnwritable: "degrade" });
  open.push(j);
  return j;
}

describe("journal format: a newer format's directory is refused, not set aside", () => {
  it("a snapshot of a newer format: the open throws naming the directory, the file and both formats; nothing changed", () => {
    const dir = tempDir();
    writeFileSync(join(dir, snapshotName(3)), snapshot(SNAPSHOT_FORMAT + 1, 3, [["alert/a1", { rev: 4 }]]));
    writeFileSync(join(dir, segmentName(3)), frame(OP_PUT, "alert/a2", encode({ rev: 1 })));
    const before = contents(dir);
    let err: unknown;
    try {
      openIt(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JournalFormatError);
    const msg = (err as Error).message;
    expect(msg).toContain(dir);
    expect(msg).toContain(`${snapshotName(3)} is in snapshot format ${SNAPSHOT_FORMAT + 1}`);
    expect(msg).toContain(`snapshot formats up to ${SNAPSHOT_FORMAT}`);
    expect(msg).toContain("Backup and restore");
    expect(contents(dir)).toEqual(before);
    expect(readdirSync(dir)).not.toContain("LOCK");
  });

  it("a snapshot of format 1 (written before 2026-12-06) is read as before", () => {
    const dir = tempDir();
    writeFileSync(join(dir, snapshotName(3)), snapshot(1, 3, [["alert/a1", { rev: 4 }]]));
    writeFileSync(join(dir, segmentName(3)), frame(OP_PUT, "alert/a2", encode({ rev: 1 })));
    const j = openIt(dir);
    expect(j.get("alert/a1")).toEqual({ rev: 4 });
    expect(j.get("alert/a2")).toEqual({ rev: 1 });
    expect(j.recovery.damaged).toBe(0);
  });

  it("a segment holding a whole record of a kind this version does not know: refused, nothing changed", () => {
    const dir = tempDir();
    const seg = Buffer.concat([
      frame(OP_PUT, "alert/a1", encode({ rev: 1 })),
      frame(9, "alert/a1", encode({ rev: 2, newField: true })),
      frame(OP_PUT, "alert/a2", encode({ rev: 1 })),
    ]);
    writeFileSync(join(dir, segmentName(1)), seg);
    const before = contents(dir);
    expect(() => openIt(dir)).toThrow(/record kind 9/);
    expect(contents(dir)).toEqual(before);
  });

  it("real corruption is still damage: a snapshot with a bad CRC and a record whose kind byte flipped are set aside", () => {
    const dir = tempDir();
    const snap = snapshot(SNAPSHOT_FORMAT, 2, [["alert/a1", { rev: 4 }]]);
    snap[snap.length - 3] = (snap[snap.length - 3] as number) ^ 0xff;
    writeFileSync(join(dir, snapshotName(2)), snap);
    const bad = frame(OP_PUT, "alert/a2", encode({ rev: 2 }));
    bad[8] = 9; // the kind byte of a put, flipped: its CRC no longer holds
    writeFileSync(
      join(dir, segmentName(1)),
      Buffer.concat([
        frame(OP_PUT, "alert/a2", encode({ rev: 1 })),
        bad,
        frame(OP_PUT, "alert/a3", encode({ rev: 1 })),
      ]),
    );
    writeFileSync(join(dir, segmentName(2)), frame(OP_PUT, "alert/a4", encode({ rev: 1 })));
    const j = openIt(dir);
    expect(j.recovery.damageByKind.snapshot.count).toBe(1);
    expect(j.recovery.damageByKind["corrupt-record"].count).toBe(1);
    expect(j.get("alert/a2")).toEqual({ rev: 1 });
    expect(j.get("alert/a3")).toEqual({ rev: 1 });
  });

  it("a snapshot whose format is not a number this version could be behind is damage too", () => {
    const dir = tempDir();
    writeFileSync(join(dir, snapshotName(2)), snapshot("two", 2, [["alert/a1", { rev: 4 }]]));
    writeFileSync(join(dir, segmentName(1)), frame(OP_PUT, "alert/a1", encode({ rev: 3 })));
    writeFileSync(join(dir, segmentName(2)), frame(OP_PUT, "alert/a2", encode({ rev: 1 })));
    const j = openIt(dir);
    expect(j.recovery.damageByKind.snapshot.count).toBe(1);
    expect(j.get("alert/a1")).toEqual({ rev: 3 });
  });
});
