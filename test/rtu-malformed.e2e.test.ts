/**
 * The simulator's malformed-reply faults against the gateway, on a real pseudo-terminal pair
 * (socat): each malformed reply one panel sends is a counted rejection in the gateway's bus
 * metrics (and, when it fails a poll, a log line naming the device and the failure), never a
 * decoded sample, and the other panel on the same bus keeps being polled meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/gateway.js";
import { runSimCli, type SimHandle } from "../sim/modbus/cli.js";
import { socatMissingReason } from "../sim/modbus/pty.js";
import { SITE, type TestClient } from "./support/harness.js";
import {
  busCounters,
  expectLoggedSince,
  type LogLine,
  type PollingGateway,
  startPollingGateway,
  until,
} from "./support/modbus-malformed.js";

const noSocat = socatMissingReason();

type BusCounters = Record<
  "replies" | "exceptions" | "timeouts" | "crcErrors" | "framingErrors" | "discarded",
  number
>;

describe.skipIf(noSocat)(
  "malformed RTU replies are counted rejections; the bus keeps serving the others",
  () => {
    let sim: SimHandle;
    let rig: PollingGateway;
    let gw: Gateway;
    let ops: TestClient;
    let log: LogLine[];

    beforeAll(async () => {
      sim = await runSimCli(["rtu", "--socat", "--units", "1,5"]);
      rig = await startPollingGateway(
        {
          buses: [
            {
              id: "rs485-1",
              type: "rtu",
              path: sim.gatewayPath,
              baudRate: 9600,
              turnaround: "5ms",
              timeout: "300ms",
            },
          ],
          devices: [
            { id: "fire-a", model: "mfs8", bus: "rs485-1", unit: 1, pollInterval: "200ms" },
            { id: "fire-b", model: "mfs8", bus: "rs485-1", unit: 5, pollInterval: "200ms" },
          ],
        },
        `linli/${SITE}/telemetry/#`,
      );
      ({ gw, ops, log } = rig);
      await until("both panels polled", () => counters().replies >= 4);
    }, 30_000);

    afterAll(async () => {
      await rig?.stop();
      await sim?.stop();
    });

    /** The line both panels hang on (fire-a's bus is fire-b's). */
    const counters = () => busCounters<keyof BusCounters>(gw, "fire-a");
    const rejected = (reason: string) => gw.stats().counters.rejections.mfs8?.[reason] ?? 0;
    const pressureOf = (id: string) => (m: { topic: string; json(): unknown }) =>
      m.topic === `linli/${SITE}/telemetry/mfs8/${id}`
        ? (m.json() as { metrics: { hydrantPressure: { value: number } } }).metrics.hydrantPressure.value
        : undefined;

    let nextPressure = 0.4;
    /** The other panel's reading changes now: the gateway must publish it while the fault lasts. */
    async function otherPanelStillPolled(): Promise<void> {
      const p = Math.round((nextPressure += 0.01) * 100) / 100;
      sim.panels.get(5)?.setPressure(p);
      await ops.waitFor((m) => pressureOf("fire-b")(m) === p, 5_000);
    }

    // [script line, bus counters that must grow by at least this much, the poll failure logged,
    // what its line says came instead of the reply]
    const cases: Array<[string, Partial<BusCounters>, string | null, string | undefined]> = [
      ["1 truncate 2", { timeouts: 2, discarded: 2 }, "timeout", "incomplete"],
      ["1 trailing-garbage 2", { discarded: 2 }, null, undefined],
      ["1 wrong-unit 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
      ["1 wrong-function 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
      ["1 wrong-byte-count 2", { discarded: 2, timeouts: 2 }, "timeout", "mismatched"],
      ["1 noise 2", { framingErrors: 2 }, null, undefined],
      ["1 corrupt-crc 2", { crcErrors: 2 }, "crc", undefined],
      ["1 exception 4", { exceptions: 1 }, "exception", undefined],
    ];
    const sameLine = (l: LogLine, failure: string, heard: string | undefined) =>
      l.deviceId === "fire-a" && l.failure === failure && l.heard === heard;

    it.each(cases)(
      "%s",
      async (line, grows, failure, heard) => {
        const before = counters();
        const rejectedBefore = failure ? rejected(`poll-${failure}`) : 0;
        const logBefore = log.length;
        const panel = sim.panels.get(1);
        if (!panel) throw new Error("no panel 1");
        sim.script(line);
        await otherPanelStillPolled();
        if (line.includes("exception")) {
          await until("an exception reply", () => counters().exceptions > before.exceptions);
          sim.script("1 exception off");
        } else {
          await until("the fault spent", () => Object.values(panel.faults.malformed).every((n) => n === 0));
          await until("the fault spent", () => panel.faults.corruptCrc === 0);
        }
        // Recovered: the faulty panel's next reading is published again, and the other one's still.
        const p = Math.round((nextPressure += 0.01) * 100) / 100;
        panel.setPressure(p);
        await ops.waitFor((m) => pressureOf("fire-a")(m) === p, 5_000);
        await otherPanelStillPolled();

        const after = counters();
        for (const [name, n] of Object.entries(grows) as Array<[keyof BusCounters, number]>)
          expect(after[name] - before[name], name).toBeGreaterThanOrEqual(n);
        const lines = log.slice(logBefore);
        // Nothing about the other panel: none of its polls failed.
        expect(lines.filter((l) => l.deviceId === "fire-b")).toEqual([]);
        if (failure) {
          expect(rejected(`poll-${failure}`)).toBeGreaterThan(rejectedBefore);
          // Logged naming the panel's unit (the line is rate-limited per device, failure and kind
          // of timeout: silence, a reply cut short, replies that answer something else).
          expectLoggedSince(log, logBefore, (l) => sameLine(l, failure, heard) && l.unit === 1);
        }
        // Never a sample decoded from a malformed reply: every fire-a reading published is one the panel had.
        for (const m of ops.on(`linli/${SITE}/telemetry/mfs8/fire-a`)) {
          const v = pressureOf("fire-a")(m);
          expect(v === 0.32 || (v !== undefined && v >= 0.4 && v <= nextPressure + 1e-9), String(v)).toBe(
            true,
          );
        }
      },
      20_000,
    );
  },
);
