/**
 * Data lost at start is not reported by one log line only (docs/durability.md "Damage"): the
 * gateway counts what its journal found by kind (linli_journal_recovery_damaged_total) and, for
 * anything that may have lost acknowledged state, raises a P2 STORAGE_DAMAGED_AT_START about
 * itself. A torn tail (a power cut mid-write, nothing acknowledged lost) is counted, not alerted.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { segmentName } from "../gateway/journal/files.js";
import { type JournalFs, nodeFs } from "../gateway/journal/fs.js";
import { Journal } from "../gateway/journal/journal.js";
import { createLogger } from "../gateway/log.js";
import { connect, metricsGet as get, OPS, SITE, type TestClient, testConfig } from "./support/harness.js";

const damaged = (body: string, kind: string): number => {
  const m = new RegExp(`^linli_journal_recovery_damaged_total\\{kind="${kind}"\\} (\\d+)$`, "m").exec(body);
  return m === null ? Number.NaN : Number(m[1]);
};

describe("damage found at start", () => {
  const clients: TestClient[] = [];
  let gw: Gateway | null = null;
  let dir = "";

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await gw?.stop();
    gw = null;
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () =>
    Gateway.start({
      config: validateConfig(testConfig(), "test"),
      logger: createLogger({ level: "silent" }),
      dataDir: dir,
    });

  it("missing segments: counted, a P2 STORAGE_DAMAGED_AT_START about the gateway, /readyz still ready", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "linli-damaged-"));
    const j = Journal.open({ dir, segmentBytes: 4096 });
    for (let i = 0; j.stats().segments < 3; i++) j.put(`x/${i}`, { pad: "p".repeat(200) });
    j.close();
    unlinkSync(path.join(dir, segmentName(1)));

    gw = await start();
    const ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    await ops.subscribe(`linli/${SITE}/alerts/#`);
    const alert = (
      await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/STORAGE_DAMAGED_AT_START/gateway`)
    ).json();
    expect(alert).toMatchObject({ priority: 2, deviceId: "gateway", code: "STORAGE_DAMAGED_AT_START" });
    expect(alert.detail).toMatchObject({ kinds: "missing-segments", missingSegments: 1 });
    expect(String((alert.causes as string[])[0])).toContain(segmentName(1));

    const metrics = (await get(gw, "/metrics")).body;
    expect(damaged(metrics, "missing-segments")).toBe(1);
    expect(damaged(metrics, "corrupt-record")).toBe(0);
    expect(damaged(metrics, "torn-tail")).toBe(0);
    expect((await get(gw, "/readyz")).status).toBe(200);
  });

  it("a segment of 1,000 damaged regions: the P2 names 10 and counts the rest, its detail and the metric count every one", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "linli-damaged-"));
    const j = Journal.open({ dir });
    for (let i = 0; i <= 2000; i++) j.put(`x/${i}`, { pad: "p".repeat(80) });
    j.close();
    const seg = path.join(dir, segmentName(1));
    const buf = readFileSync(seg);
    // Every other record's last byte flipped (its CRC fails, its length intact): 1,000 regions.
    let at = 0;
    let bytes = 0;
    for (let i = 0; i <= 2000; i++) {
      const len = 8 + buf.readUInt32LE(at);
      if (i % 2 === 0 && i < 2000) {
        buf.writeUInt8(buf.readUInt8(at + len - 1) ^ 0xff, at + len - 1);
        bytes += len;
      }
      at += len;
    }
    writeFileSync(seg, buf);

    gw = await start();
    const ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    await ops.subscribe(`linli/${SITE}/alerts/#`);
    const alert = (
      await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/STORAGE_DAMAGED_AT_START/gateway`)
    ).json();
    expect(alert.detail).toMatchObject({ kinds: "corrupt-record", bytes, missingSegments: 0 });
    const causes = alert.causes as string[];
    expect(causes).toHaveLength(11);
    expect(causes[10]).toBe("and 990 more");
    expect(damaged((await get(gw, "/metrics")).body, "corrupt-record")).toBe(1000);
    expect(gw.journalRecovery()).toMatchObject({ damaged: 1000, damage: { length: 20 } });
  });

  it("damage found by the delayed full open of a directory unreadable at start: the same P2, raised once, closed by an acknowledgement", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "linli-damaged-"));
    const j = Journal.open({ dir });
    for (let i = 0; i < 10; i++) j.put(`x/${i}`, { pad: "p".repeat(80) });
    j.close();
    const seg = path.join(dir, segmentName(1));
    const buf = readFileSync(seg);
    const mid = Math.floor(buf.length / 2);
    buf.writeUInt8(buf.readUInt8(mid) ^ 0xff, mid); // one record's CRC fails: a corrupt record
    writeFileSync(seg, buf);

    // Unreadable at start (permissions): nothing found then; the retry (every 5 s) reads it.
    const mount = { denied: true };
    const denied = () => Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    const fs: JournalFs = {
      ...nodeFs,
      readdirSync: (p) => {
        if (mount.denied) throw denied();
        return nodeFs.readdirSync(p);
      },
      openSync: (p, f, m) => {
        if (mount.denied) throw denied();
        return nodeFs.openSync(p, f, m);
      },
    };
    gw = await Gateway.start({
      config: validateConfig(testConfig(), "test"),
      logger: createLogger({ level: "silent" }),
      dataDir: dir,
      journalFs: fs,
    });
    expect(gw.engine.find("gateway", "STORAGE_DAMAGED_AT_START")).toBeUndefined();
    const ops = await connect(gw, OPS.name, OPS.password);
    clients.push(ops);
    await ops.subscribe(`linli/${SITE}/alerts/#`);

    mount.denied = false;
    const alert = (
      await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/STORAGE_DAMAGED_AT_START/gateway`, 20_000)
    ).json();
    expect(alert).toMatchObject({ priority: 2, deviceId: "gateway", code: "STORAGE_DAMAGED_AT_START" });
    expect(alert.detail).toMatchObject({ kinds: "corrupt-record", missingSegments: 0 });
    expect(alert.causes).toHaveLength(1);
    expect(String((alert.causes as string[])[0])).toMatch(
      new RegExp(`^corrupt-record: ${segmentName(1)} at \\d+ `),
    );
    expect(damaged((await get(gw, "/metrics")).body, "corrupt-record")).toBe(1);

    // Durable again; the retries that follow do not raise it again.
    const deadline = Date.now() + 20_000;
    while ((await get(gw, "/readyz")).status !== 200) {
      if (Date.now() > deadline) throw new Error("/readyz still 503 after the directory opened");
      await new Promise((r) => setTimeout(r, 100));
    }
    const open = gw.engine.find("gateway", "STORAGE_DAMAGED_AT_START");
    expect(open?.count).toBe(1);
    expect(gw.engine.acknowledge(open!.id, "ops", null)).toMatchObject({ ok: true });
    // Closed by the acknowledgement once its (zero) window has ended, as at a normal start.
    const closing = Date.now() + 5_000;
    while (gw.engine.find("gateway", "STORAGE_DAMAGED_AT_START") !== undefined) {
      if (Date.now() > closing) throw new Error(`still open: ${open?.state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const closed = await ops.waitFor(
      (m) =>
        m.topic === `linli/${SITE}/alerts/p2/STORAGE_DAMAGED_AT_START/gateway` && m.json().state === "closed",
    );
    expect(closed.json()).toMatchObject({ id: open?.id, count: 1 });
  }, 40_000);

  it("a torn tail of the newest segment: counted, no alert", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "linli-damaged-"));
    const j = Journal.open({ dir });
    j.put("x/1", { a: 1 });
    j.close();
    appendFileSync(path.join(dir, segmentName(1)), Buffer.from([40, 0, 0, 0, 1, 2]));

    gw = await start();
    expect(damaged((await get(gw, "/metrics")).body, "torn-tail")).toBe(1);
    expect(gw.engine.find("gateway", "STORAGE_DAMAGED_AT_START")).toBeUndefined();
    expect((await get(gw, "/readyz")).status).toBe(200);
  });
});
