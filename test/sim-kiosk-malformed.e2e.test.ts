/**
 * Malformed Modbus TCP replies from a scenario file, as an integrator runs them: `linli sim
 * --config site.yaml --scenario kiosks.yaml --gateway-cmd "linli start ..."` serves two GK-3
 * kiosks on loopback and arms one with replies whose transaction id is wrong. The gateway logs
 * the failed poll for that kiosk only ("no matching reply": something came, not the answer), raises
 * nothing, and the run passes. Needs `npm run build`. (What each fault does to the gateway's
 * counters is tcp-malformed.e2e.test.ts.)
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "./support/free-port.js";
import { CLI, runSim } from "./support/sim-run.js";
import { suiteTempDir } from "./support/temp-dir.js";

describe("linli sim: malformed-replies on a kiosk from a scenario file", () => {
  const dir = suiteTempDir("linli-sim-kiosk-malformed-");

  it("the faulty kiosk's poll fails, logged for it alone; no alert; exit 0", async () => {
    expect(existsSync(CLI)).toBe(true);
    const [port, k1, k2] = [await freePort(), await freePort(), await freePort()];
    const site = join(dir, "site.yaml");
    const scenario = join(dir, "kiosks.yaml");
    const kiosk = (id: string, p: number) =>
      `  - { id: ${id}, model: gk3, host: 127.0.0.1, port: ${p}, pollInterval: 500ms, timeout: 300ms, openingHours: "00:00-23:59" }`;
    writeFileSync(
      site,
      [
        "site: { id: kiosk-test }",
        `mqtt: { listeners: [{ host: 127.0.0.1, port: ${port} }] }`,
        "operators: [{ name: desk, password: desk-password-1 }]",
        "devices:",
        kiosk("kiosk-1", k1),
        kiosk("kiosk-2", k2),
        "",
      ].join("\n"),
    );
    writeFileSync(
      scenario,
      [
        "name: kiosk-malformed",
        "description: a kiosk answers two polls with another transaction id",
        "settle: 4s",
        "phases:",
        "  - { at: 2s, do: malformed-replies, targets: [kiosk-1], frame: wrong-transaction, replies: 2 }",
        "",
      ].join("\n"),
    );
    const r = await runSim(dir, port, ["--config", site, "--scenario", scenario], 60_000);
    const gatewayLog = r.gatewayLog;
    expect(r.code, r.explain()).toBe(0);
    const report = r.report();
    expect(report.passed).toBe(true);
    expect(report.unexpected).toEqual([]);
    expect(report.run.incidents).toBe(1);
    const lines = gatewayLog
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const polls = lines.filter((l) => l.failure !== undefined);
    expect(
      polls.some((l) => l.deviceId === "kiosk-1" && l.failure === "timeout" && l.heard === "mismatched"),
    ).toBe(true);
    expect(polls.filter((l) => l.deviceId === "kiosk-2")).toEqual([]);
  }, 70_000);
});
