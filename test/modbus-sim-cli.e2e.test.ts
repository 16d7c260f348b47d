/**
 * The Modbus simulator's command line (dist/sim/modbus/cli.js) refusing an option: exit 2 with
 * the reason, and no socat left behind (it used to open the pty pair first and leak it). Each run
 * is a process group of its own, so whatever it started is visible to the test, and killed.
 * Needs `npm run build`.
 */
import type { ChildProcess } from "node:child_process";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { socatMissingReason } from "../sim/modbus/pty.js";
import { groupAlive, killGroup, spawnGroup } from "./support/process-group.js";
import { suiteTempDir } from "./support/temp-dir.js";

const CLI = "dist/sim/modbus/cli.js";

describe.skipIf(socatMissingReason() !== undefined)("modbus sim CLI: a refused option", () => {
  const children: ChildProcess[] = [];
  const termDir = suiteTempDir("linli-modbus-sim-term-");
  afterEach(async () => {
    for (const c of children.splice(0)) await killGroup(c, 500);
  });

  async function run(
    args: string[],
  ): Promise<{ code: number | null; stdout: string; stderr: string; child: ChildProcess }> {
    const child = spawnGroup(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    children.push(child);
    let stderr = "";
    let stdout = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (t: string) => {
      stderr += t;
    });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (t: string) => {
      stdout += t;
    });
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    return { code, stdout, stderr, child };
  }

  /** Anything of the run's group still alive (socat, orphaned when the CLI exits)? Polled briefly. */
  async function survivors(child: ChildProcess): Promise<boolean> {
    const deadline = Date.now() + 1_000;
    while (groupAlive(child) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return groupAlive(child);
  }

  it.each([
    [["rtu", "--socat", "--units", "0"], /--units 0: unit 0 not in 1\.\.247/],
    [["rtu", "--socat", "--lv4-units", "9,300"], /--lv4-units 9,300: unit 300 not in 1\.\.247/],
    [["serial"], /unknown mode serial: give rtu or tcp\nusage: /],
    [["rtu", "--socat", "--units", "1", "--lv4-units", "1"], /unit 1 is both an MFS-8 and an LV-4/],
    [["rtu", "--socat", "--baud", "fast"], /--baud fast: give a positive whole number/],
    [["rtu", "--socat", "--stop-bits", "3"], /--stop-bits must be 1 or 2/],
    [["tcp", "--count", "abc"], /--count abc: give a positive whole number/],
  ])("%j: exit 2, the reason, and no socat survives", async (args, reason) => {
    expect(existsSync(CLI)).toBe(true);
    const { code, stderr, child } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(reason);
    expect(await survivors(child)).toBe(false);
  });

  it("--help prints every option of both modes and exits 0 (it used to exit 2: got --help)", async () => {
    const { code, stdout, child } = await run(["--help"]);
    expect(code).toBe(0);
    for (const option of [
      "--socat",
      "--pty-link",
      "--units",
      "--lv4-units",
      "--baud",
      "--pace",
      "--port",
      "--count",
    ])
      expect(stdout).toContain(option);
    expect(await survivors(child)).toBe(false);
  });

  it("SIGTERM while socat is still starting: the simulator waits for it, stops it and exits 0", async () => {
    // A socat slow to start (a loaded machine): the signal lands before the line is open. It used
    // to kill the CLI by default, before its handlers were set, and leave socat orphaned.
    const dir = termDir;
    const marker = join(dir, "socat-started");
    const wrapper = join(dir, "socat");
    const real = spawnSync("sh", ["-c", "command -v socat"], { encoding: "utf8" }).stdout.trim();
    writeFileSync(wrapper, `#!/bin/sh\n: > "${marker}"\nsleep 0.5\nexec "${real}" "$@"\n`);
    chmodSync(wrapper, 0o755);
    const child = spawnGroup(process.execPath, [CLI, "rtu", "--socat", "--units", "1"], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` },
    });
    children.push(child);
    const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    const deadline = Date.now() + 10_000;
    while (!existsSync(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(marker)).toBe(true);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await survivors(child)).toBe(false);
  }, 20_000);
});
