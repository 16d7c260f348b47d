/**
 * `linli sim` with more devices than `ulimit -n` lets it open: refused before anything connects
 * (exit 2, the limit to raise), not attached by half with EMFILE for the rest.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const CLI = join(import.meta.dirname, "..", "dist", "cli", "linli.js");
const linux =
  existsSync("/proc/self/limits") &&
  !readFileSync("/proc/self/limits", "utf8").includes("Max open files            unlimited");

describe.skipIf(!linux)("linli sim under a small open-file limit", () => {
  it("--scale 400 (800 sockets) under ulimit -n 512: exit 2 naming --scale and the limit", () => {
    expect(existsSync(CLI)).toBe(true);
    // Port 1: nothing listens there; without the check the run ends 3 (no device could connect).
    const r = spawnSync(
      "sh",
      [
        "-c",
        `ulimit -n 512 && exec "${process.execPath}" "${CLI}" sim --scale 400 --gateway mqtt://127.0.0.1:1 --duration 1`,
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /linli sim: --scale 400: 800 MQTT devices need about 864 open files .* may open 512 \(ulimit -n\)/,
    );
  }, 30_000);
});
