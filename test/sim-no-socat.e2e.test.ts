/**
 * `linli sim --stations` (or `--tanks`) on a machine without socat: refused before anything
 * starts, exit 2 with what to install, not "spawn socat ENOENT" and exit 3 (which says the
 * gateway could not be reached). Runs dist/ (npm run build first).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const CLI = join(import.meta.dirname, "..", "dist", "cli", "linli.js");

describe("linli sim without socat", () => {
  it.each([["--stations"], ["--tanks"]])(
    "%s 1: exit 2, naming the option and socat",
    (option) => {
      expect(existsSync(CLI)).toBe(true);
      // No socat on this PATH (node is started by its full path); port 1: nothing listens there.
      const r = spawnSync(
        process.execPath,
        [CLI, "sim", "--scale", "1", option, "1", "--gateway", "mqtt://127.0.0.1:1", "--duration", "1"],
        { encoding: "utf8", timeout: 20_000, env: { ...process.env, PATH: "/nonexistent" } },
      );
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(
          `linli sim: ${option} need a socat pty bus: socat not found on PATH .*apt-get install socat`,
        ),
      );
    },
    30_000,
  );
});
