/**
 * Scratch data directories for the journal's unit tests, and the journals opened on them: every one
 * closed and removed after each test of the file that calls `journalScratch` (at its top level).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import type { Journal } from "../../gateway/journal/journal.js";

export function journalScratch(prefix: string): { tempDir(): string; open: Journal[] } {
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
  };
}
