/**
 * A restored persistent session gets each open alert's state once after a restart (docs/durability.md
 * "Operators' sessions", "Each state once after a restart") also when the disk stalls during the
 * start: the republished states wait for their records' write (written-first) longer than the
 * pacing's 2 s, and the duplicate check must last until they are through, not end on a timer.
 * Before, it ended after 2 s, and the republished copy, let go by the write at 2.5 s, was queued
 * behind the restored one: the console got the same id and rev twice.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { MemoryStore } from "../gateway/state/store.js";
import {
  connect,
  OPS,
  pendantMsg,
  SITE,
  sleep,
  startGateway,
  type TestClient,
  testConfig,
} from "./support/harness.js";

const STALL_MS = 2_500;

/** A store whose writes stall until `until` (performance.now()): afterWrite waits for then. */
class StallingStore extends MemoryStore {
  until = 0;
  constructor() {
    super();
    Object.defineProperty(this, "writePending", { get: () => performance.now() < this.until });
  }
  override afterWrite(done: () => void): void {
    const wait = this.until - performance.now();
    if (wait <= 0) done();
    else setTimeout(done, wait);
  }
}

describe("a restored session's duplicate check outlasts a stalled disk", () => {
  it("gets the restored state once when the republished copy waits 2.5 s for its write", async () => {
    const store = new StallingStore();
    const clock = new FakeClock();
    const config = testConfig({ alerts: { escalation: { p1: "10m", p2: "10m" } } });
    const clients: TestClient[] = [];
    const consoleOpts = { clientId: "ops-console-slow", clean: false };
    let gw = await startGateway({ clock, boottime: () => clock.boottime(), store, config });
    try {
      let ops = await connect(gw, OPS.name, OPS.password, consoleOpts);
      await ops.subscribe(`linli/${SITE}/alerts/#`);
      await ops.end();
      const p1 = await connect(gw, "p-1", "pw-p1");
      clients.push(p1);
      await p1.publish("devices/ec200/p-1/up", pendantMsg(7, "press"));
      const watcher = await connect(gw, "ops2", "ops2-pw");
      clients.push(watcher);
      await watcher.subscribe(`linli/${SITE}/alerts/#`);
      await watcher.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-1"));
      await sleep(100);
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();

      // The disk stalls from the start on: the republication is held for its records' write.
      store.until = performance.now() + STALL_MS;
      gw = await startGateway({ clock, boottime: () => clock.boottime(), store, config });
      await sleep(STALL_MS + 500);
      ops = await connect(gw, OPS.name, OPS.password, consoleOpts);
      clients.push(ops);
      await ops.waitFor((m) => m.topic.endsWith("/EMERGENCY_CALL/p-1"), 5000);
      await sleep(300); // a second copy, if any
      const states = ops
        .on(`linli/${SITE}/alerts/p1/EMERGENCY_CALL/p-1`)
        .filter((m) => m.payload.length > 0)
        .map((m) => `${m.json().id}:${m.json().rev}`);
      expect(states.length).toBeGreaterThan(0);
      expect(states).toEqual([...new Set(states)]);
      // The republished copy was left out as a repeat of the restored one.
      expect(gw.broker.sessionStats()?.restoredDuplicates).toBeGreaterThanOrEqual(1);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.end()));
      await gw.stop();
    }
  }, 20_000);
});
