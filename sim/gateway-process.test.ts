import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GatewayProcess, groupRunning } from "./gateway-process.js";

/**
 * A free port below the kernel's ephemeral range. The stand-in gateway binds it after this
 * returns, and again after a restart: a port from the ephemeral range (listen(0)) could meanwhile
 * be handed to another test's listen(0) or be a connection's own source port, and the readiness
 * check would then see a listener that is not the stand-in (seen once, in a loaded suite run).
 */
async function freePort(): Promise<number> {
  const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  const floor = 10_000;
  for (;;) {
    const port = floor + Math.floor(Math.random() * Math.max(1, low - floor));
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/**
 * A stand-in gateway under `sh -c` (dash keeps the shell as its parent): it
 * listens, and on SIGTERM takes `stopMs` to shut down cleanly, then writes
 * `clean` to a file and exits. Its pid goes to `pidFile`.
 */
function fakeGateway(port: number, dir: string, stopMs: number): string {
  const script = [
    `require("fs").writeFileSync(${JSON.stringify(join(dir, "pid"))}, String(process.pid));`,
    `require("net").createServer().listen(${port}, "127.0.0.1");`,
    `process.on("SIGTERM", () => setTimeout(() => {`,
    `  require("fs").appendFileSync(${JSON.stringify(join(dir, "stops"))}, "clean\\n");`,
    "  process.exit(0);",
    `}, ${stopMs}));`,
  ].join(" ");
  return `"${process.execPath}" -e '${script}'`;
}

/** Running: it exists and is not a zombie waiting for whoever inherited it to reap it. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

describe.skipIf(process.platform !== "linux")("a gateway the simulator starts and restarts", () => {
  const dir = mkdtempSync(join(tmpdir(), "linli-gwproc-"));
  const started: GatewayProcess[] = [];
  // A failed assertion must not leave a stand-in gateway behind.
  afterAll(async () => {
    for (const gw of started) await gw.stop(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("stop waits for the gateway under the shell to finish its clean shutdown, not only for the shell", async () => {
    const port = await freePort();
    const gw = new GatewayProcess({ command: fakeGateway(port, dir, 700), host: "127.0.0.1", port });
    started.push(gw);
    await gw.start();
    const pid = Number(readFileSync(join(dir, "pid"), "utf8"));
    const t0 = Date.now();
    await gw.restart();
    // The first one stopped cleanly (not SIGKILLed when its shell died) before the second started.
    expect(readFileSync(join(dir, "stops"), "utf8")).toBe("clean\n");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    expect(running(pid)).toBe(false);
    const second = Number(readFileSync(join(dir, "pid"), "utf8"));
    expect(second).not.toBe(pid);
    await gw.close();
    expect(readFileSync(join(dir, "stops"), "utf8")).toBe("clean\nclean\n");
    expect(running(second)).toBe(false);
  }, 15_000);

  it("a gateway that does not stop within the grace time is killed, group and all", async () => {
    const port = await freePort();
    const gw = new GatewayProcess({ command: fakeGateway(port, dir, 60_000), host: "127.0.0.1", port });
    started.push(gw);
    await gw.start();
    const pid = Number(readFileSync(join(dir, "pid"), "utf8"));
    const t0 = Date.now();
    await gw.stop(300);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(running(pid)).toBe(false);
    expect(groupRunning(pid)).toBe(false);
  }, 15_000);
});
