/**
 * The README's operator lines, copied as they are, against `linli start --demo`:
 * the mosquitto_sub line must show an EMERGENCY_CALL when the mosquitto_pub line presses the demo pendant.
 * The README says port 1883 (checked); the run uses a free port instead (`--mqtt-port 0`, the
 * README's own advice when 1883 is taken), so it works beside a mosquitto service or another run.
 * Needs mosquitto-clients (.ci/run installs them) and `npm run build`.
 *
 * Every process runs in a process group of its own and the group is killed: the sub line runs
 * under `sh -c`, and the demo gateway starts socat.
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { groupAlive, killGroup, spawnGroup } from "./support/process-group.js";
import { suiteTempDir } from "./support/temp-dir.js";

const readme = readFileSync("README.md", "utf8");
const line = (prefix: string) =>
  readme.split("\n").find((l) => l.startsWith(prefix) && !l.includes("<")) ?? "";
const subLine = line("mosquitto_sub ");
const pubLine = line("mosquitto_pub ");

function installed(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const haveClients = installed("mosquitto_sub") && installed("mosquitto_pub");
if (!haveClients && !process.env.CI) {
  console.warn(
    "readme.e2e: mosquitto-clients not installed; the README lines are not checked here (CI installs them)",
  );
}

async function waitFor(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!haveClients && !process.env.CI)("README operator lines against npm start's demo", () => {
  const children: ChildProcess[] = [];
  // The demo's journal goes to a directory of its own: tests run in parallel (one gateway per directory).
  const dataDir = suiteTempDir("linli-readme-");
  afterAll(async () => {
    await Promise.all(children.map((c) => killGroup(c)));
  });

  it("the README has both lines, on the demo's port", () => {
    expect(subLine).toMatch(/^mosquitto_sub -h 127\.0\.0\.1 -p 1883 /);
    expect(pubLine).toMatch(/^mosquitto_pub -h 127\.0\.0\.1 -p 1883 .*"evt":"press"/);
  });

  it("copied as they are, they show an EMERGENCY_CALL arriving", async () => {
    expect(existsSync("dist/cli/linli.js")).toBe(true);
    const gw = spawnGroup(
      process.execPath,
      [
        "dist/cli/linli.js",
        "start",
        "--demo",
        "--mqtt-port",
        "0",
        "--metrics-port",
        "0",
        "--console-port",
        "0",
        "--data-dir",
        dataDir,
        "--log-format",
        "json",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(gw);
    let gwOut = "";
    gw.stdout?.on("data", (d) => (gwOut += d));
    gw.stderr?.on("data", (d) => (gwOut += d));
    await waitFor(
      () => gwOut.includes("Ctrl-C stops"),
      15_000,
      () => gwOut,
    );
    const port = /on mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(gwOut)?.[1];
    expect(port).toMatch(/^\d+$/);
    const onPort = (l: string) => l.replace(" -p 1883 ", ` -p ${port} `);

    const sub = spawnGroup("sh", ["-c", onPort(subLine)], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(sub);
    let subOut = "";
    sub.stdout?.on("data", (d) => (subOut += d));
    sub.stderr?.on("data", (d) => (subOut += d));
    await new Promise((r) => setTimeout(r, 500));

    execFileSync("sh", ["-c", onPort(pubLine)], { timeout: 5000 });
    await waitFor(
      () => subOut.includes("linli/demo/alerts/p1/EMERGENCY_CALL/demo-pendant "),
      10_000,
      () => subOut,
    );
    const msg = subOut
      .split("\n")
      .find((l) => l.startsWith("linli/demo/alerts/p1/EMERGENCY_CALL/demo-pendant "));
    const alert = JSON.parse((msg as string).slice((msg as string).indexOf(" ") + 1));
    expect(alert).toMatchObject({
      code: "EMERGENCY_CALL",
      priority: 1,
      deviceId: "demo-pendant",
      state: "active-unacknowledged",
      // The demo is a zh-CN site in Shanghai: the operator reads who, where and when.
      householdName: "1号楼 101室",
      residentName: "张阿姨",
      locale: "zh-CN",
    });
    expect(alert.message).toBe("紧急呼叫：1号楼 101室 张阿姨，演示呼叫器（随身佩戴）");
    expect(alert.raisedAtLocal).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$/);
    expect(Date.parse(alert.raisedAtLocal)).toBe(alert.raisedAt);

    // The banner says where the metrics are (--metrics-port 0: a free port), and they are there.
    const metricsUrl = /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(gwOut)?.[1];
    expect(metricsUrl).toBeDefined();
    const scrape = await fetch(metricsUrl as string);
    expect(scrape.status).toBe(200);
    // ... and where the operators' console is: its page is served there.
    const consoleUrl = /运营控制台\): (http:\/\/127\.0\.0\.1:\d+\/)/.exec(gwOut)?.[1];
    expect(consoleUrl).toBeDefined();
    const page = await fetch(consoleUrl as string);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("邻里");
    expect(await scrape.text()).toMatch(
      /^linli_alerts_raised_total\{code="EMERGENCY_CALL",priority="1"\} [1-9]/m,
    );

    // SIGTERM: clean shutdown, offline status, exit 0.
    const exited = new Promise<number | null>((r) => gw.once("exit", (code) => r(code)));
    gw.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(gwOut).toContain("gateway stopped");
    // Nothing the test started is left: not the shell, not mosquitto_sub under it, not socat.
    await killGroup(sub);
    await killGroup(gw);
    expect(groupAlive(sub)).toBe(false);
    expect(groupAlive(gw)).toBe(false);
  });
});
