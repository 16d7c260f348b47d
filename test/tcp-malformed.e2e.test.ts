/**
 * The simulator's malformed Modbus TCP replies (MBAP framing) against the gateway, on loopback:
 * each malformed reply one GK-3 kiosk sends is a counted rejection in its bus metrics (and, when
 * it fails a poll, a log line naming that kiosk and the failure), never a decoded reading, and
 * the other kiosk keeps being polled meanwhile. The RTU analogue is rtu-malformed.e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { runSimCli, type SimHandle } from "../sim/modbus/cli.js";
import { SITE, type TestClient } from "./support/harness.js";
import {
  busCounters,
  expectLoggedSince,
  type LogLine,
  type PollingGateway,
  startPollingGateway,
  until,
} from "./support/modbus-malformed.js";

type BusCounters = Record<
  "replies" | "exceptions" | "timeouts" | "framingErrors" | "discarded" | "reconnects" | "transportErrors",
  number
>;

describe("malformed Modbus TCP replies are counted rejections; the other kiosks keep being polled", () => {
  let sim: SimHandle;
  let rig: PollingGateway;
  let gw: Gateway;
  let ops: TestClient;
  let log: LogLine[];
  let faultyPort: number;
  let otherPort: number;

  beforeAll(async () => {
    sim = await runSimCli(["tcp", "--port", "0", "--count", "2"]);
    [faultyPort, otherPort] = sim.ports as [number, number];
    const kiosk = (id: string, port: number) => ({
      id,
      model: "gk3",
      host: "127.0.0.1",
      port,
      pollInterval: "200ms",
      timeout: "300ms",
      openingHours: "00:00-23:59",
    });
    rig = await startPollingGateway(
      { devices: [kiosk("kiosk-a", faultyPort), kiosk("kiosk-b", otherPort)] },
      `linli/${SITE}/#`,
    );
    ({ gw, ops, log } = rig);
    await until(
      "both kiosks polled",
      () => counters("kiosk-a").replies >= 2 && counters("kiosk-b").replies >= 2,
    );
  }, 30_000);

  afterAll(async () => {
    await rig?.stop();
    await sim?.stop();
  });

  const counters = (device: string) => busCounters<keyof BusCounters>(gw, device);
  const rejected = (reason: string) => gw.stats().counters.rejections.gk3?.[reason] ?? 0;
  const queueOf = (id: string) => (m: { topic: string; json(): unknown }) =>
    m.topic === `linli/${SITE}/telemetry/gk3/${id}`
      ? (m.json() as { metrics: { queue: { value: number } } }).metrics.queue.value
      : undefined;

  let nextQueue = 10;
  /** The other kiosk's queue changes now: the gateway must publish it while the fault lasts. */
  async function otherKioskStillPolled(): Promise<void> {
    const q = ++nextQueue;
    sim.kiosks.get(otherPort)?.setQueue(q);
    await ops.waitFor((m) => queueOf("kiosk-b")(m) === q, 5_000);
  }

  // [fault, bus counters of the faulty kiosk that must grow by at least this much, the poll
  // failure logged (and counted per model), what its line says came instead of the reply]
  const cases: Array<[string, Partial<BusCounters>, string | null, string | undefined]> = [
    ["wrong-transaction 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
    ["wrong-protocol 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
    ["wrong-length 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
    ["truncate 2", { timeouts: 2, discarded: 2 }, "timeout", "incomplete"],
    ["trailing-garbage 2", { discarded: 2 }, null, undefined],
    ["wrong-unit 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
    ["wrong-function 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
    ["wrong-byte-count 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
    ["exception 4", { exceptions: 1 }, "exception", undefined],
  ];
  const sameLine = (l: LogLine, failure: string, heard: string | undefined) =>
    l.deviceId === "kiosk-a" && l.failure === failure && l.heard === heard;

  it.each(cases)(
    "%s",
    async (fault, grows, failure, heard) => {
      const kiosk = sim.kiosks.get(faultyPort);
      if (!kiosk) throw new Error("no faulty kiosk");
      const before = counters("kiosk-a");
      const otherBefore = counters("kiosk-b");
      const rejectedBefore = failure ? rejected(`poll-${failure}`) : 0;
      const logBefore = log.length;
      sim.script(`${faultyPort} ${fault}`);
      await otherKioskStillPolled();
      if (fault.startsWith("exception")) {
        await until("an exception reply", () => counters("kiosk-a").exceptions > before.exceptions);
        sim.script(`${faultyPort} exception off`);
      } else {
        await until("the fault spent", () => Object.values(kiosk.faults.malformed).every((n) => n === 0));
      }
      // Recovered: the faulty kiosk's next reading is published again, and the other one's still.
      const q = ++nextQueue;
      kiosk.setQueue(q);
      await ops.waitFor((m) => queueOf("kiosk-a")(m) === q, 5_000);
      await otherKioskStillPolled();

      const after = counters("kiosk-a");
      for (const [name, n] of Object.entries(grows) as Array<[keyof BusCounters, number]>)
        expect(after[name] - before[name], name).toBeGreaterThanOrEqual(n);
      // The other kiosk's bus saw nothing of it.
      // A well-delimited malformed reply never costs the faulty kiosk its connection.
      expect(after.reconnects - before.reconnects, "reconnects").toBe(0);
      expect(after.transportErrors - before.transportErrors, "transportErrors").toBe(0);
      const otherAfter = counters("kiosk-b");
      for (const name of ["exceptions", "timeouts", "framingErrors", "discarded", "reconnects"] as const)
        expect(otherAfter[name] - otherBefore[name], `kiosk-b ${name}`).toBe(0);
      const lines = log.slice(logBefore);
      // Nothing about the other kiosk: none of its polls failed, its link never went.
      expect(
        lines.filter((l) => l.deviceId === "kiosk-b" || String(l.bus ?? "").endsWith(`:${otherPort}`)),
      ).toEqual([]);
      if (failure) {
        expect(rejected(`poll-${failure}`)).toBeGreaterThan(rejectedBefore);
        expectLoggedSince(log, logBefore, (l) => sameLine(l, failure, heard));
      }
      // Never a reading decoded from a malformed reply: every queue length published is one the kiosk had.
      for (const m of ops.on(`linli/${SITE}/telemetry/gk3/kiosk-a`)) {
        const v = queueOf("kiosk-a")(m);
        expect(v === 0 || (v !== undefined && v > 10 && v <= nextQueue), String(v)).toBe(true);
      }
      // Nor an alert from one: a malformed reply is no tamper, no fault, no lost kiosk.
      expect(ops.on("/alerts/").filter((m) => m.topic.endsWith("/kiosk-a"))).toEqual([]);
    },
    20_000,
  );

  // A kiosk whose controller slips now and then, answering correctly in between: one reply with
  // another protocol id every third poll. Before, each dropped the connection (a framing error,
  // the link reopened after a backoff, polls meanwhile missed), two in a row risked DEVICE_LOST.
  it("one malformed reply every 3 polls: kiosk-a stays connected, is never lost, and keeps publishing", async () => {
    const kiosk = sim.kiosks.get(faultyPort);
    if (!kiosk) throw new Error("no faulty kiosk");
    const before = counters("kiosk-a");
    const alertsBefore = ops.on("/alerts/").length;
    for (let round = 0; round < 6; round++) {
      const replies = counters("kiosk-a").replies;
      sim.script(`${faultyPort} wrong-protocol 1`);
      await until("the malformed reply sent", () => kiosk.faults.malformed["wrong-protocol"] === 0);
      // Two more polls answered correctly before the next slip.
      await until("3 replies since", () => counters("kiosk-a").replies >= replies + 3);
    }
    const q = ++nextQueue;
    kiosk.setQueue(q);
    await ops.waitFor((m) => queueOf("kiosk-a")(m) === q, 5_000);
    const after = counters("kiosk-a");
    expect(after.discarded - before.discarded).toBeGreaterThanOrEqual(6);
    expect(after.reconnects - before.reconnects, "reconnects").toBe(0);
    expect(after.transportErrors - before.transportErrors, "transportErrors").toBe(0);
    const bus = gw.stats().buses.find((b) => b.devices.includes("kiosk-a"))?.bus;
    expect(bus?.linkState).toBe("up");
    // Each slip cost an attempt, not a poll (the retry was answered): nothing logged, nothing raised.
    expect(ops.on("/alerts/").slice(alertsBefore)).toEqual([]);
    expect(gw.registry.devices.get("kiosk-a")?.missedPolls).toBe(0);
  }, 30_000);
});
