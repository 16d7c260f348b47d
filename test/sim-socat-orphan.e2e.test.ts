/**
 * A simulator that exits without stopping its socat pair (a second Ctrl-C exits at once with 130,
 * an uncaught error) must not leave socat running: it does not die with its parent, and kept both
 * ptys open. Runs dist/ (npm run build first).
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { socatMissingReason } from "../sim/modbus/pty.js";
import { sleep } from "./support/harness.js";

const PTY_JS = pathToFileURL(resolve("dist/sim/modbus/pty.js")).href;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const left: number[] = [];
afterEach(() => {
  for (const pid of left.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
});

describe.skipIf(socatMissingReason())("the socat pair of a simulator that exits", () => {
  it("goes with it", async () => {
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { openPtyPair } = await import(${JSON.stringify(PTY_JS)});
         const pair = await openPtyPair();
         process.stdout.write(pair.process.pid + "\\n");
         process.exit(130);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    expect(code).toBe(130);
    const socat = Number(out.trim());
    expect(socat).toBeGreaterThan(0);
    left.push(socat);
    const until = Date.now() + 3_000;
    while (alive(socat) && Date.now() < until) await sleep(20);
    expect(alive(socat)).toBe(false);
  });
});
