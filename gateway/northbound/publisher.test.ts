/** The publisher tells the sink which messages are P1 when the topic cannot (alerts/events). */
import { describe, expect, it } from "vitest";
import type { Alert } from "../alerts/alert.js";
import { fnv1a64, hex64 } from "./alert-summary.js";
import { Publisher } from "./publisher.js";
import type { NorthboundSink } from "./sink.js";

describe("Publisher.alertEvent", () => {
  it("marks a P1 alert's events line urgent, any other priority's not", () => {
    const got: Array<{ topic: string; qos: number; retain: boolean; urgent: boolean | undefined }> = [];
    const sink: NorthboundSink = {
      publish: (topic, _payload, qos, retain, urgent) => got.push({ topic, qos, retain, urgent }),
    };
    const p = new Publisher("s1", sink);
    // As the engine's AlertEvent: more fields than the publisher reads.
    const p1 = { eventId: "a:1", priority: 1 };
    const p3 = { eventId: "b:1", priority: 3 };
    p.alertEvent(p1);
    p.alertEvent(p3);
    expect(got).toEqual([
      { topic: "linli/s1/alerts/events", qos: 1, retain: false, urgent: true },
      { topic: "linli/s1/alerts/events", qos: 1, retain: false, urgent: false },
    ]);
  });
});

describe("Publisher.alert and the alerts summary", () => {
  it("summarises the alert states it leaves retained: an open state counts, a closed one not", () => {
    const got: Array<{ topic: string; payload: string; retain: boolean }> = [];
    const sink: NorthboundSink = {
      publish: (topic, payload, _qos, retain) => got.push({ topic, payload, retain }),
    };
    const p = new Publisher("s1", sink, () => 7);
    const alert = {
      topic: "linli/s1/alerts/p1/EMERGENCY_CALL/p-1",
      id: "a1",
      priority: 1,
      rev: 3,
      state: "active-unacknowledged",
      view: () => ({ id: "a1" }),
    };
    p.alert(alert as unknown as Alert, "raised");
    p.summary.flush();
    const summaries = () => got.filter((m) => m.topic === "linli/s1/alerts/summary");
    const hash: [number, number] = [0, 0];
    fnv1a64("a1:3", hash);
    expect(summaries()).toHaveLength(1);
    expect(summaries()[0]?.retain).toBe(true);
    expect(JSON.parse(summaries()[0]?.payload as string)).toMatchObject({
      open: 1,
      p1: { open: 1, digest: hex64(hash[0], hash[1]) },
      at: 7,
    });
    Object.assign(alert, { state: "closed", rev: 4 });
    p.alert(alert as unknown as Alert, "closed");
    p.summary.stop();
    expect(JSON.parse(summaries()[1]?.payload as string)).toMatchObject({ open: 0, p1: { open: 0 } });
  });
});
