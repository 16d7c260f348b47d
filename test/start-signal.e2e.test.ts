/**
 * A SIGTERM that comes while `linli start` is still starting: systemd's stop during a long restore,
 * a supervisor's restart right after "gateway started". The demo's start goes on after that line
 * (its simulated community connects), which gives the signal a moment inside the start.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { killGroup, spawnGroup } from "./support/process-group.js";

describe("linli start and SIGTERM", () => {
  const dirs: string[] = [];
  const groups: ReturnType<typeof spawnGroup>[] = [];
  afterEach(async () => {
    for (const g of groups.splice(0)) await killGroup(g);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('a SIGTERM right after "gateway started", before the start is done, stops the gateway cleanly once started', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "linli-start-signal-"));
    dirs.push(dataDir);
    const gw = spawnGroup(
      process.execPath,
      [
        "dist/cli/linli.js",
        "start",
        "--demo",
        ...["--mqtt-port", "0", "--metrics-port", "0", "--console-port", "0"],
        ...["--data-dir", dataDir, "--log-format", "json"],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    groups.push(gw);
    let out = "";
    gw.stdout?.on("data", (d) => {
      out += d;
      // At once, from the data handler: inside the demo's start, before its banner.
      if (out.includes('"msg":"gateway started"') && !gw.killed && gw.pid !== undefined) gw.kill("SIGTERM");
    });
    gw.stderr?.on("data", (d) => (out += d));
    const code = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      gw.once("exit", (c, s) => r({ code: c, signal: s })),
    );
    // Before, SIGTERM's default action ended the process there: no clean stop, journal unmarked.
    expect(code, out).toEqual({ code: 0, signal: null });
    expect(out).toContain('"msg":"stop asked while starting: the gateway stops once started"');
    expect(out.indexOf('"msg":"shutting down"')).toBeGreaterThan(out.indexOf('"msg":"gateway started"'));
    expect(out).toContain('"msg":"gateway stopped"');
  }, 60_000);
});
