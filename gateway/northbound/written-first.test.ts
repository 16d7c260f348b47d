/** Northbound messages leave only once the journal records behind them are written, in order. */
import { describe, expect, it } from "vitest";
import { type WriteBarrier, WrittenFirstSink } from "./written-first.js";

/**
 * A barrier whose writes complete when the test says so; writeNow() writes at once unless the
 * disk is `stuck` (a write that cannot complete now, as on a failing disk).
 */
function barrier(stuck = false) {
  let pending = false;
  const waiters: Array<() => void> = [];
  const b: WriteBarrier & { put(): void; writeDone(): void; writesNow: number } = {
    writesNow: 0,
    writeNow() {
      b.writesNow++;
      if (!stuck) pending = false;
    },
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
  it("passes a message's urgent flag on, held or not (the upstream bridge's P1 queue)", () => {
    const out: Array<[string, boolean | undefined]> = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t, _p, _q, _r, u) => out.push([t, u]) }, b);
    sink.publish("events", "p1", 1, false, true);
    b.put();
    sink.publish("events", "p1", 1, false, true);
    sink.publish("events", "p3", 1, false, false);
    b.writeDone();
    expect(out).toEqual([
      ["events", true],
      ["events", true],
      ["events", false],
    ]);
  });

  it("publishes at once when nothing is unwritten, otherwise after the write, keeping the order", () => {
    const out: string[] = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b);
    sink.publish("a", "", 1, false);
    expect(out).toEqual(["a"]);
    b.put();
    sink.publish("b", "", 1, true);
    sink.publish("c", "", 1, false);
    expect(out).toEqual(["a"]);
    b.writeDone();
    expect(out).toEqual(["a", "b", "c"]);
  });

  it("drained() resolves once everything held has been handed on (a start paces its republish on it)", async () => {
    const out: string[] = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b);
    let drained = false;
    await sink.drained();
    b.put();
    sink.publish("a", "", 1, true);
    sink.publish("b", "", 1, true);
    expect(sink.holding).toBe(2);
    const wait = sink.drained().then(() => {
      drained = true;
    });
    await Promise.resolve();
    expect(drained).toBe(false);
    b.writeDone();
    await wait;
    expect(drained).toBe(true);
    expect(out).toEqual(["a", "b"]);
  });

  it("never holds QoS 0 telemetry: it stands for no journaled state and must not delay what follows", () => {
    const out: string[] = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b);
    b.put();
    sink.publish("alert", "", 1, true);
    sink.publish("telemetry", "", 0, false);
    expect(out).toEqual(["telemetry"]);
    b.writeDone();
    expect(out).toEqual(["telemetry", "alert"]);
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

  it("releases P1 messages first when the write completes, keeping each topic's order", () => {
    const out: string[] = [];
    const b = barrier(true);
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b, (t) => t.startsWith("p1/"));
    b.put();
    sink.publish("p3/a", "", 1, true);
    sink.publish("p1/x", "", 1, true);
    sink.publish("p3/a", "", 1, true);
    sink.publish("p1/y", "", 1, true);
    b.writeDone();
    expect(out).toEqual(["p1/x", "p1/y", "p3/a", "p3/a"]);
  });

  it("a P1 does not wait for the pool: its records are written at once and it leaves with all held, P1 first", () => {
    const out: string[] = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b, (t) => t.startsWith("p1/"));
    b.put();
    sink.publish("p3/a", "", 1, true);
    expect(out).toEqual([]);
    expect(b.writesNow).toBe(0);
    sink.publish("p1/x", "", 1, true);
    expect(b.writesNow).toBe(1);
    expect(out).toEqual(["p1/x", "p3/a"]);
    // Later messages behind a new record wait for its write again; the pool's completion releases them.
    b.put();
    sink.publish("p3/b", "", 1, true);
    expect(out).toEqual(["p1/x", "p3/a"]);
    b.writeDone();
    expect(out).toEqual(["p1/x", "p3/a", "p3/b"]);
  });

  it("a P1 with nothing unwritten goes at once without a write", () => {
    const out: string[] = [];
    const b = barrier();
    const sink = new WrittenFirstSink({ publish: (t) => out.push(t) }, b, (t) => t.startsWith("p1/"));
    sink.publish("p1/x", "", 1, true);
    expect(out).toEqual(["p1/x"]);
    expect(b.writesNow).toBe(0);
  });
});
