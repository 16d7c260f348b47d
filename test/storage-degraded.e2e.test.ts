/**
 * A journal that cannot keep its promise (here: its directory cannot be
 * created, a path that is a file) must not stop the site: alerts flow live,
 * /readyz says 503 and why, linli_storage_healthy is 0, and a P2
 * STORAGE_DEGRADED about the gateway itself asks somebody to fix the disk.
 * (Disk-full, read-only and quota failures of a running journal are tested
 * in gateway/journal with an injected file system.)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { connect, OPS, pendantMsg, SITE, type TestClient, testConfig } from "./support/harness.js";

function get(gw: Gateway, p: string): Promise<{ status: number; body: string }> {
  const addr = gw.metricsAddress;
  if (!addr) throw new Error("no metrics server");
  return new Promise((resolve, reject) => {
    const req = request({ host: addr.host, port: addr.port, path: p, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("degraded storage", () => {
  const clients: TestClient[] = [];
  let gw: Gateway | null = null;
  let scratch = "";

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw?.stop();
    gw = null;
    rmSync(scratch, { recursive: true, force: true });
  });

  it("keeps delivering alerts live, answers /readyz 503 with the reason and raises STORAGE_DEGRADED", async () => {
    scratch = mkdtempSync(path.join(tmpdir(), "linli-degraded-"));
    const notADir = path.join(scratch, "file");
    writeFileSync(notADir, "not a directory");
    gw = await Gateway.start({
      config: validateConfig(testConfig(), "test"),
      logger: createLogger({ level: "silent" }),
      dataDir: path.join(notADir, "journal"),
    });
    const ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    await ops.subscribe(`linli/${SITE}/alerts/#`);
    const degraded = (await ops.waitFor((m) => m.topic.endsWith("/STORAGE_DEGRADED/gateway"))).json();
    expect(degraded).toMatchObject({ priority: 2, state: "active-unacknowledged", deviceId: "gateway" });
    expect(String((degraded.detail as Record<string, unknown>).problem)).toContain("cannot open");

    const ready = await get(gw, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toContain("degraded: journal");
    expect((await get(gw, "/healthz")).status).toBe(200);
    expect((await get(gw, "/metrics")).body).toMatch(/^linli_storage_healthy 0$/m);

    const pendant = await connect(gw, "p-1", "pw-p1");
    clients.push(pendant);
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const call = (await ops.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-1"))).json();
    expect(call.state).toBe("active-unacknowledged");
  });
});
