/**
 * A journal that cannot keep its promise (here: its directory cannot be
 * created, a path that is a file) must not stop the site: alerts flow live,
 * /readyz says 503 and why, linli_storage_healthy is 0, and a P2
 * STORAGE_DEGRADED about the gateway itself asks somebody to fix the disk.
 * (Disk-full, read-only and quota failures of a running journal are tested
 * in gateway/journal with an injected file system.)
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { type JournalFs, nodeFs } from "../gateway/journal/fs.js";
import { createLogger } from "../gateway/log.js";
import {
  connect,
  metricsGet as get,
  OPS,
  pendantMsg,
  SITE,
  type TestClient,
  testConfig,
} from "./support/harness.js";

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

  it("a read-only data directory at start: open P1 alerts restored, degraded, durable again after a remount rw", async () => {
    scratch = mkdtempSync(path.join(tmpdir(), "linli-degraded-"));
    const dataDir = path.join(scratch, "data");
    const config = validateConfig(testConfig(), "test");
    const logger = createLogger({ level: "silent" });
    gw = await Gateway.start({ config, logger, dataDir });
    const pendant = await connect(gw, "p-1", "pw-p1");
    clients.push(pendant);
    const ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    await ops.subscribe(`linli/${SITE}/alerts/#`);
    await pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
    const call = (await ops.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-1"))).json();
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw.stop();

    // The disk went read-only (ext4 errors=remount-ro): every change refused, reads work.
    const mount = { ro: true };
    const refusing =
      <A extends unknown[], R>(f: (...a: A) => R) =>
      (...a: A): R => {
        if (mount.ro) throw Object.assign(new Error("EROFS: read-only file system"), { code: "EROFS" });
        return f(...a);
      };
    const readOnly: JournalFs = {
      ...nodeFs,
      openSync: (p, f, m) => (f === "r" ? nodeFs.openSync(p, f, m) : refusing(nodeFs.openSync)(p, f, m)),
      writeSync: refusing(nodeFs.writeSync),
      write: (fd, b, o, l, p, cb) =>
        mount.ro
          ? setImmediate(() => cb(Object.assign(new Error("EROFS"), { code: "EROFS" }), 0))
          : nodeFs.write(fd, b, o, l, p, cb),
      renameSync: refusing(nodeFs.renameSync),
      unlinkSync: refusing(nodeFs.unlinkSync),
      ftruncateSync: refusing(nodeFs.ftruncateSync),
    };
    gw = await Gateway.start({ config, logger, dataDir, journalFs: readOnly });
    expect(existsSync(path.join(dataDir, "LOCK"))).toBe(false);
    const ops2 = await connect(gw, OPS.name, OPS.password);
    clients.push(ops2);
    await ops2.subscribe(`linli/${SITE}/alerts/#`);
    const restored = (await ops2.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-1") && m.retain)).json();
    expect(restored).toMatchObject({ id: call.id, state: "active-unacknowledged" });
    const degraded = (await ops2.waitFor((m) => m.topic.endsWith("/STORAGE_DEGRADED/gateway"))).json();
    expect(String((degraded.detail as Record<string, unknown>).problem)).toContain("EROFS");
    expect(String((degraded.detail as Record<string, unknown>).problem)).toContain("restored");
    const ready = await get(gw, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toContain("read-only");

    mount.ro = false; // mount -o remount,rw: the journal's retry (every 5 s) opens it fully
    const deadline = Date.now() + 20_000;
    while ((await get(gw, "/readyz")).status !== 200) {
      if (Date.now() > deadline) throw new Error("/readyz still 503 after the remount");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(existsSync(path.join(dataDir, "LOCK"))).toBe(true);
    expect((await get(gw, "/metrics")).body).toMatch(/^linli_storage_healthy 1$/m);
  }, 40_000);
});
