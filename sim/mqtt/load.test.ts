import { decode } from "cbor-x";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LoadGenerator, loadDevices } from "./load.js";
import { startTestBroker, type TestBroker } from "./test-broker.js";

let tb: TestBroker;
let gen: LoadGenerator | undefined;

beforeEach(async () => {
  tb = await startTestBroker({ authenticate: (u, p) => p === `demo-${u}` });
});

afterEach(async () => {
  await gen?.stop();
  gen = undefined;
  await tb.close();
});

const decodePayload = (b: Buffer) =>
  (b[0] === 0x7b ? JSON.parse(b.toString("utf8")) : decode(b)) as Record<string, unknown>;

describe("open-loop load generator", () => {
  it("builds an evenly mixed device table with datasheet ids", () => {
    const devices = loadDevices({ brokerUrl: "mqtt://x", rate: 1, connections: 100 });
    expect(devices).toHaveLength(100);
    expect(devices.filter((d) => d.model === "ds10")).toHaveLength(50);
    expect(devices.filter((d) => d.encoding === "cbor")).toHaveLength(50);
    expect(new Set(devices.map((d) => d.id)).size).toBe(100);
    expect(devices[0]).toEqual({
      id: "load-ec200-0001",
      model: "ec200",
      password: "demo-load-ec200-0001",
      encoding: "json",
    });
  });

  it.each([
    ["mqtt.js", false],
    ["the raw link", true],
  ])(
    "offers exactly rate x duration over 100 connections, and the broker receives them all (%s)",
    async (_, raw) => {
      gen = new LoadGenerator({
        brokerUrl: tb.url,
        connections: 100,
        rate: 2_000,
        alarmFraction: 0.05,
        seed: 7,
        raw,
      });
      const report = await gen.run(1_000);
      expect(report.connections).toBe(100);
      expect(report.offered).toBe(2_000);
      expect(report.sent + report.skippedDisconnected).toBe(2_000);
      expect(report.skippedDisconnected).toBe(0);
      expect(report.errors).toBe(0);
      expect(report.acked + report.written).toBe(report.sent);
      expect(report.perSecond.reduce((a, s) => a + s.offered, 0)).toBe(2_000);
      expect(report.perSecond.reduce((a, s) => a + s.sent, 0)).toBe(2_000);
      // 5 % of 2000 alarms is 100 expected; a seeded draw stays well inside this band.
      expect(report.alarms).toBeGreaterThan(50);
      expect(report.alarms).toBeLessThan(200);
      const got = await tb.waitFor(2_000);
      // Every connection carried its share: 20 each.
      const perClient = new Map<string, number>();
      for (const m of got) perClient.set(m.clientId, (perClient.get(m.clientId) ?? 0) + 1);
      expect(perClient.size).toBe(100);
      expect([...perClient.values()].every((v) => v === 20)).toBe(true);
      // Datasheet shapes, QoS per message kind, and a high-resolution send time per (device, seq).
      let presses = 0;
      for (const m of got) {
        const p = decodePayload(m.payload);
        const [, model, id] = m.topic.split("/");
        if (model === "ec200") {
          expect(m.qos).toBe(1);
          expect(Object.keys(p)).toEqual(
            p.t === "evt" ? ["t", "seq", "ts", "evt", "bat", "rssi"] : ["t", "seq", "ts", "bat", "rssi"],
          );
          if (p.evt === "press") presses++;
        } else {
          expect(m.qos).toBe(p.t === "state" ? 1 : 0);
          expect(Object.keys(p)).toEqual(["t", "seq", "ts", "contact", "tamper", "bat"]);
        }
        const sent = gen.sendTime(id ?? "", Number(p.seq));
        expect(sent).toBeDefined();
        expect(Math.floor(sent ?? 0)).toBe(Number(p.ts));
      }
      expect(presses).toBe(report.alarms);
    },
  );

  it("refuses to run without a positive rate", () => {
    expect(() => new LoadGenerator({ brokerUrl: tb.url, rate: 0 })).toThrow(RangeError);
  });
});
