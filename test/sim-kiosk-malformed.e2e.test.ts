/**
 * Malformed Modbus TCP replies from a scenario file, as an integrator runs them: `linli sim
 * --config site.yaml --scenario kiosks.yaml --gateway-cmd "linli start ..."` serves two GK-3
 * kiosks on loopback and arms one with replies whose transaction id is wrong. The gateway logs
 * the failed poll for that kiosk only ("no matching reply": something came, not the answer), raises
 * nothing, and the run passes. Needs `npm run build`. (What each fault does to the gateway's
 * counters is tcp-malformed.e2e.test.ts.)
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { SimReport } from "../sim/scenario/report.js";
import { freePort } from "./support/free-port.js";
import { suiteTempDir } from "./support/temp-dir.js";

const CLI = (JSON.parse(readFileSync("package.json", "utf8")) as { bin: { linli: string } }).bin.linli;

describe("linli sim: malformed-replies on a kiosk from a scenario file", () => {
  const dir = suiteTempDir("linli-sim-kiosk-malformed-");

  it("the faulty kiosk's poll fails, logged for it alone; no alert; exit 0", async () => {
    expect(existsSync(CLI)).toBe(true);
    const [port, k1, k2] = [await freePort(), await freePort(), await freePort()];
    const site = join(dir, "site.yaml");
    const scenario = join(dir, "kiosks.yaml");
    const json = join(dir, "report.json");
    const log = join(dir, "gateway.log");
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
    const gatewayCmd = `"${process.execPath}" "${CLI}" start --config {config} --data-dir "${join(dir, "data")}" --metrics-port 0 --log-format json`;
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          CLI,
          "sim",
          "--config",
          site,
          "--scenario",
          scenario,
          "--gateway",
          `mqtt://127.0.0.1:${port}`,
          "--gateway-cmd",
          gatewayCmd,
          "--gateway-log",
          log,
          "--json",
          json,
        ],
        { timeout: 60_000 },
        (err, stdout, stderr) => {
          const code = err ? ((err as { code?: number }).code ?? -1) : 0;
          resolve({ code: typeof code === "number" ? code : -1, stdout, stderr });
        },
      );
    });
    const gatewayLog = existsSync(log) ? readFileSync(log, "utf8") : "";
    expect(r.code, `${r.stdout}\n${r.stderr}\n${gatewayLog.slice(-3000)}`).toBe(0);
    const report = JSON.parse(readFileSync(json, "utf8")) as SimReport;
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
