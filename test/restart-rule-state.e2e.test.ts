/**
 * What a device's rules keep that decides alerts survives a restart (docs/durability.md,
 * `rule/<device>`): a GD-2 whose sensor is in fault (`fault` 2) before the restart still has its
 * `lel` judged suspect after it, so a reading over the threshold in a message without `fault` (an
 * `alarm` with level `none`) raises no GAS_LEAK. Before, the restarted gateway judged it as if no
 * fault were active and raised a P1 on a reading the detector itself calls unreliable.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { validateConfig } from "../gateway/config/load.js";
import { Gateway } from "../gateway/gateway.js";
import { createLogger } from "../gateway/log.js";
import { KEY } from "../gateway/state/keys.js";
import { MemoryStore } from "../gateway/state/store.js";
import { connect, gatewaysInTurn, gd2Config, OPS, SITE, sleep, type TestClient } from "./support/harness.js";

let seq = 100;
const hb = (lel: number, fault: number) =>
  JSON.stringify({ t: "hb", seq: ++seq, ts: Date.now(), lel, valve: "open", mains: true, fault });
const alarm = (lel: number, level: string) =>
  JSON.stringify({ t: "alarm", seq: ++seq, ts: Date.now(), lel, level, valve: "open" });

const UP = "devices/gd2/k-1/up";
const TELEMETRY = `linli/${SITE}/telemetry/gd2/k-1`;
const GAS_LEAK = `linli/${SITE}/alerts/p1/GAS_LEAK/k-1`;

describe("restart: a GD-2's sensor fault is remembered", () => {
  const { start, client, stop } = gatewaysInTurn(gd2Config);

  /** A gateway that saw the detector report `fault` 2; the store as a crash (SIGKILL) or a clean stop left it. */
  async function inFault(crash: boolean): Promise<{ store: MemoryStore; clock: FakeClock }> {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const a = await start(store, clock);
    const ops = await client(a, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    const k1 = await client(a, "k-1", "pw-k1");
    await k1.publish(UP, hb(0, 2));
    await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/FAULT/k-1` && m.payload.length > 0);
    if (!crash) {
      await stop(a);
      return { store, clock };
    }
    // What a SIGKILL leaves: every record put so far, no clean stop's records.
    const copy = new MemoryStore();
    for (const [k, v] of store.map) copy.map.set(k, structuredClone(v));
    await stop(a);
    return { store: copy, clock };
  }

  /** The restarted gateway gets an `alarm` (no `fault`) reading 60 %LEL, level `none`. */
  async function afterRestart(store: MemoryStore, clock: FakeClock): Promise<TestClient> {
    const b = await start(store, clock);
    const ops = await client(b, OPS.name, OPS.password);
    await ops.subscribe(`linli/${SITE}/#`);
    const k1 = await client(b, "k-1", "pw-k1");
    await k1.publish(UP, alarm(60, "none"));
    await ops.waitFor((m) => m.topic === TELEMETRY && m.json().metrics !== undefined);
    await sleep(100);
    return ops;
  }

  for (const crash of [true, false])
    it(`after a ${crash ? "crash" : "clean stop"}: lel 60 without fault raises no GAS_LEAK, its reading is suspect`, async () => {
      const { store, clock } = await inFault(crash);
      expect(store.map.get(KEY.rule("k-1"))).toEqual([
        1,
        "gd2",
        2,
        "none",
        0,
        false,
        false,
        null,
        null,
        false,
      ]);
      const ops = await afterRestart(store, clock);
      expect(ops.messages.filter((m) => m.topic === GAS_LEAK && m.payload.length > 0)).toEqual([]);
      expect(ops.messages.find((m) => m.topic === TELEMETRY)?.json().quality).toBe("suspect");
    });

  it("a journal without rule records (an older version's) starts, fresh", async () => {
    const { store, clock } = await inFault(false);
    store.map.delete(KEY.rule("k-1"));
    const ops = await afterRestart(store, clock);
    // Fresh rules: the fault is not known, so the reading is believed (as before this record existed).
    await ops.waitFor((m) => m.topic === GAS_LEAK && m.payload.length > 0);
  });

  it("a record of another layout version is skipped: fresh rules", async () => {
    const { store, clock } = await inFault(false);
    store.map.set(KEY.rule("k-1"), [99, "gd2", 2, "none", 0, false, false, null, null, false]);
    const ops = await afterRestart(store, clock);
    await ops.waitFor((m) => m.topic === GAS_LEAK && m.payload.length > 0);
  });
});

describe("restart: a GD-2's sensor fault is remembered (real journal)", () => {
  it("through the journal's files: lel 60 without fault after the restart raises no GAS_LEAK", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "linli-rule-"));
    const start = () =>
      Gateway.start({
        config: validateConfig(gd2Config(), "test"),
        logger: createLogger({ level: "silent" }),
        dataDir: dir,
      });
    const clients: TestClient[] = [];
    let gw = await start();
    try {
      let ops = await connect(gw, OPS.name, OPS.password);
      clients.push(ops);
      await ops.subscribe(`linli/${SITE}/#`);
      let k1 = await connect(gw, "k-1", "pw-k1");
      clients.push(k1);
      await k1.publish(UP, hb(0, 2));
      await ops.waitFor((m) => m.topic === `linli/${SITE}/alerts/p2/FAULT/k-1` && m.payload.length > 0);
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();

      gw = await start();
      ops = await connect(gw, OPS.name, OPS.password);
      clients.push(ops);
      await ops.subscribe(`linli/${SITE}/#`);
      k1 = await connect(gw, "k-1", "pw-k1");
      clients.push(k1);
      await k1.publish(UP, alarm(60, "none"));
      await ops.waitFor((m) => m.topic === TELEMETRY);
      await sleep(100);
      expect(ops.messages.filter((m) => m.topic === GAS_LEAK && m.payload.length > 0)).toEqual([]);
      expect(ops.messages.find((m) => m.topic === TELEMETRY)?.json().quality).toBe("suspect");
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
