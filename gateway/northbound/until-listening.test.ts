import { describe, expect, it } from "vitest";
import type { NorthboundSink } from "./sink.js";
import { UntilListening } from "./until-listening.js";

function recorder(): NorthboundSink & { got: string[] } {
  const got: string[] = [];
  return { got, publish: (topic, payload) => void got.push(`${topic}=${payload}`) };
}

describe("UntilListening", () => {
  it("hands what waits to the broker in order, in the attach call, before anything published after", () => {
    const sink = new UntilListening();
    sink.publish("status", "old", 1, true);
    sink.publish("events", "e1", 1, false);
    const broker = recorder();
    sink.attach(broker);
    expect(broker.got).toEqual(["status=old", "events=e1"]);
    sink.publish("status", "new", 1, true);
    expect(broker.got).toEqual(["status=old", "events=e1", "status=new"]);
    expect(sink.waiting).toBe(0);
  });

  it("a message published while the held ones are handed over goes after them", () => {
    const sink = new UntilListening();
    sink.publish("a", "1", 1, false);
    sink.publish("a", "2", 1, false);
    const got: string[] = [];
    sink.attach({
      publish: (topic, payload) => {
        got.push(`${topic}=${payload}`);
        if (payload === "1") sink.publish("a", "3", 1, false); // the broker's delivery publishes in turn
      },
    });
    expect(got).toEqual(["a=1", "a=2", "a=3"]);
  });

  it("beyond its bound drops the oldest and counts them", () => {
    const sink = new UntilListening(3);
    for (let i = 1; i <= 5; i++) sink.publish("t", String(i), 0, false);
    expect(sink.waiting).toBe(3);
    expect(sink.dropped).toBe(2);
    const broker = recorder();
    sink.attach(broker);
    expect(broker.got).toEqual(["t=3", "t=4", "t=5"]);
  });

  it("never drops a P1 message while another waits: the oldest other one goes, the order is kept", () => {
    const sink = new UntilListening(3, ["s/escalations/p1/"]);
    sink.publish("s/escalations/p1/X/d1", "p1a", 1, false);
    sink.publish("s/alerts/events", "e1", 1, false);
    sink.publish("s/alerts/events", "p1b", 1, false, true); // a P1 alert's line: urgent
    sink.publish("s/escalations/p2/X/d2", "p2", 1, false); // drops e1
    sink.publish("s/escalations/p1/X/d3", "p1c", 1, false); // drops p2
    sink.publish("s/alerts/events", "e2", 1, false); // only P1 waits: e2 itself is dropped
    expect(sink.dropped).toBe(3);
    expect(sink.droppedUrgent).toBe(0);
    const broker = recorder();
    sink.attach(broker);
    expect(broker.got.map((g) => g.split("=")[1])).toEqual(["p1a", "p1b", "p1c"]);
  });

  it("P1 alone is held up to twice its bound, then the oldest P1 goes (counted apart)", () => {
    const sink = new UntilListening(2, ["p1/"]);
    for (let i = 1; i <= 5; i++) sink.publish("p1/t", String(i), 1, false);
    expect(sink.waiting).toBe(4);
    expect(sink.dropped).toBe(1);
    expect(sink.droppedUrgent).toBe(1);
    const broker = recorder();
    sink.attach(broker);
    expect(broker.got).toEqual(["p1/t=2", "p1/t=3", "p1/t=4", "p1/t=5"]);
  });
});
