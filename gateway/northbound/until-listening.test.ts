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
});
