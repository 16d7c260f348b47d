/**
 * Scratch data directories for the journal's unit tests, and the journals opened on them: every one
 * closed and removed after each test of the file that calls `journalScratch` (at its top level).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { Journal, type JournalOptions } from "../../gateway/journal/journal.js";

export interface JournalScratch {
  tempDir(): string;
  /** Journals closed after each test. */
  open: Journal[];
  /** Opens a journal closed after the test. */
  openJ(opts: JournalOptions): Journal;
  /** Closes a journal openJ opened now (so it is not closed twice after the test). */
  closeJ(j: Journal): void;
}

export function journalScratch(prefix: string): JournalScratch {
  const dirs: string[] = [];
  const open: Journal[] = [];
  afterEach(() => {
    for (const j of open.splice(0)) j.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return {
    tempDir() {
      const d = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    open,
    openJ(opts) {
      const j = Journal.open(opts);
      open.push(j);
      return j;
    },
    closeJ(j) {
      j.close();
      open.splice(open.indexOf(j), 1);
    },
  };
}
