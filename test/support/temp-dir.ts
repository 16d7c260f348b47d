import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";

/**
 * A suite's own temporary directory: its path at once, the directory made when the suite starts
 * (beforeAll) and removed when it ends (afterAll, after the suite's own hooks). Not made at
 * collection: a run filtered with -t collects a file without running the hooks of a suite it
 * skips, and a directory made then was never removed.
 */
export function suiteTempDir(prefix: string): string {
  const dir = join(tmpdir(), `${prefix}${process.pid}-${randomBytes(4).toString("hex")}`);
  beforeAll(() => {
    mkdirSync(dir, { mode: 0o700 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
