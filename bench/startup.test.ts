/**
 * The start-up benchmark's data path, as behaviour (never time): a journal written by the
 * alert engine and state recorder with no snapshot (bench/startup-data.ts), smaller than the
 * benchmark's, and a Gateway started on it restores every open alert with its id and state.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { Gateway } from "../gateway/gateway.js";
import { REPUBLISH_CHUNK } from "../gateway/startup.js";
import { buildStartupJournal, type StartupData, startupConfig } from "./startup-data.js";

const ALERTS = 1_000;
const RECORDS = 50_000;
/** Devices of the aged start: 2,000 P1 calls, 1,000 P2 tampers due, 2,000 call windows ended. */
const AGED = 4_000;
let dir: string;
let data: StartupData;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "linli-startup-test-"));
  data = buildStartupJournal({ dir, devices: ALERTS, records: RECORDS });
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("start-up benchmark journal", () => {
  it("holds one open alert per device in exactly the asked number of records, no snapshot", () => {
    expect(data.alerts).toHaveLength(ALERTS);
    expect(new Set(data.alerts.map((a) => a.subject)).size).toBe(ALERTS);
    expect(data.records).toBe(RECORDS);
    expect(data.snapshots).toBe(0);
    // Both kinds of state, and alerts updated after they were raised.
    const states = new Set(data.alerts.map((a) => a.state));
    expect(states).toContain("active-unacknowledged");
    expect(states).toContain("active-acknowledged");
    expect(data.alerts.some((a) => a.count > 1)).toBe(true);
  });

  it("a gateway started on it restores every alert with its id and state", async () => {
    // Gateway time stands still: no call window ends and nothing escalates while the test runs,
    // however slow the machine.
    const clock = new FakeClock(Date.now());
    const gw = await Gateway.start({
      config: startupConfig(ALERTS, { logLevel: "silent", metrics: false }),
      dataDir: dir,
      clock,
    });
    try {
      const rec = gw.journalRecovery();
      expect(rec).toMatchObject({ records: RECORDS, snapshotRecords: 0, damaged: 0 });
      expect(gw.recovered?.report).toMatchObject({ alerts: ALERTS, orphanAlerts: 0, skipped: 0 });
      expect(gw.engine.openCount).toBe(ALERTS);
      for (const want of data.alerts) {
        const got = gw.engine.byAlertId(want.id);
        expect(got, want.id).toBeDefined();
        expect({
          id: got?.id,
          subject: got?.subject.id,
          state: got?.state,
          rev: got?.rev,
          count: got?.count,
        }).toEqual(want);
      }
    } finally {
      await gw.stop();
    }
  }, 120_000);
});

describe("a start on an aged journal (escalations due, their records written before they leave)", () => {
  it("hands the republished alerts and the overdue escalations to aedes a slice at a time", async () => {
    const aged = mkdtempSync(join(tmpdir(), "linli-startup-aged-test-"));
    try {
      const d = buildStartupJournal({ dir: aged, devices: AGED, records: AGED * 3, ageMs: 16 * 60_000 });
      // Gateway time stands still after the start: only the start's own messages are counted.
      const clock = new FakeClock(Date.now());
      const gw = await Gateway.start({
        config: startupConfig(AGED, { logLevel: "silent", metrics: false }),
        dataDir: aged,
        clock,
      });
      try {
        expect(gw.engine.openCount).toBe(d.alerts.length);
        // Unpaced, the start returned with thousands still held for their records' write.
        await new Promise((r) => setTimeout(r, 1_000));
        // 17,000 messages (states, statuses, 3,000 escalations with their states and events), held
        // for their records' write and released together: 3,002 inside aedes at once before
        // (docs/performance.md, "Memory, eighth pass"). Paced, a slice of REPUBLISH_CHUNK alerts
        // at a time, up to three messages each.
        expect(gw.broker.inFlightPeak).toBeGreaterThan(0);
        expect(gw.broker.inFlightPeak).toBeLessThanOrEqual(4 * REPUBLISH_CHUNK);
      } finally {
        await gw.stop();
      }
    } finally {
      rmSync(aged, { recursive: true, force: true });
    }
  }, 120_000);
});
