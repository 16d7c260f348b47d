/** Northbound messages leave only once the journal records behind them are written, in order. */
import { describe, expect, it } from "vitest";
import { type WriteBarrier, WrittenFirstSink } from "./written-first.js";

/** A barrier whose writes complete when the test says so. */
function barrier() {
  let pending = false;
  const waiters: Array<() => void> = [];
  const b: WriteBarrier & { put(): void; writeDone(): void } = {
    get writePending() {
      return pending;
    },
    afterWrite(done) {
      if (!pending) done();
      else waiters.push(done);
    },
    put() {
      pending = true;
    },
    writeDone() {
      pending = false;
      for (const w of waiters.splice(0)) w();
    },
  };
  return b;
}

describe("WrittenFirstSink", () => {
  it("publishes at once when nothing is unwritten, otherwise after the write, keeping the order", () => {
    const out: string[] = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b);
    sink.publish("a", "", 1, false);
    expect(out).toEqual(["a"]);
    b.put();
    sink.publish("b", "", 1, true);
    sink.publish("c", "", 0, false);
    expect(out).toEqual(["a"]);
    b.writeDone();
    expect(out).toEqual(["a", "b", "c"]);
  });

  it("each message waits for the write of the records put before it, not for an earlier one only", () => {
    const out: string[] = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b);
    b.put();
    sink.publish("first", "", 1, false);
    b.writeDone();
    b.put();
    sink.publish("second", "", 1, false);
    expect(out).toEqual(["first"]);
    b.writeDone();
    expect(out).toEqual(["first", "second"]);
  });
});
