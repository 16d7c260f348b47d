/** The publisher tells the sink which messages are P1 when the topic cannot (alerts/events). */
import { describe, expect, it } from "vitest";
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
