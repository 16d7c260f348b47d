import { describe, expect, it } from "vitest";
import { crcOk } from "../../protocols/modbus/crc.js";
import { encodeRtuRequest } from "../../protocols/modbus/rtu.js";
import { drive, elapse, flush, rtuRig } from "./helpers.js";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0").toUpperCase()).join(" ");
const READ_ALL = { fn: 3, unit: 1, address: 0, count: 14 } as const;

describe("RTU bus over the in-memory line (fake clock)", () => {
  it("sends the datasheet's request frame and returns the panel's 14 registers", async () => {
    const { clock, line, bus } = await rtuRig([1]);
    const r = await drive(clock, bus.request(READ_ALL));
    expect(hex(line.a.written[0]!)).toBe("01 03 00 00 00 0E C4 0E");
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.words?.[0]).toBe(0x4d38);
    expect(r.words?.[1]).toBe(0x0201);
    expect(bus.stats()).toMatchObject({ requests: 1, replies: 1, timeouts: 0, discarded: 0 });
  });

  it("frames a reply that arrives one byte at a time", async () => {
    const { clock, line, bus } = await rtuRig([5]);
    line.a.readChunkSize = 1;
    const r = await drive(clock, bus.request({ ...READ_ALL, unit: 5 }));
    expect(r.ok).toBe(true);
  });

  it("discards a stale reply merged with the real one in a single chunk, and counts it", async () => {
    const { clock, line, bus } = await rtuRig([1, 2]);
    // A reply from unit 2 that nobody asked for, glued to the front of unit 1's reply.
    const stale = encodeRtuRequest({ fn: 5, unit: 2, address: 0, value: true });
    line.a.cork();
    const p = bus.request(READ_ALL);
    await elapse(clock, 10);
    line.b.write(stale);
    await flush();
    line.a.uncork();
    const r = await drive(clock, p);
    expect(r.ok).toBe(true);
    expect(bus.stats().discarded).toBe(1);
  });

  it("classifies a bad CRC, flushes the line, and retries", async () => {
    const { clock, bus, panel } = await rtuRig([1], { retries: 0 });
    panel(1).faults.corruptCrc = 1;
    const bad = await drive(clock, bus.request(READ_ALL));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.failure.kind).toBe("crc");
    expect(bus.stats().crcErrors).toBe(1);
    panel(1).faults.corruptCrc = 1;
    const retried = await drive(clock, bus.request(READ_ALL, { retries: 1 }));
    expect(retried.ok).toBe(true);
    expect(retried.attempts).toBe(2);
  });

  it("returns every exception code 0x01-0x0B by name, without retrying", async () => {
    const { clock, bus, panel } = await rtuRig([1]);
    const names: string[] = [];
    for (let code = 1; code <= 0x0b; code++) {
      panel(1).faults.exception = code;
      const r = await drive(clock, bus.request(READ_ALL));
      if (r.ok || r.failure.kind !== "exception") throw new Error("expected an exception");
      expect(r.failure.code).toBe(code);
      expect(r.attempts).toBe(1);
      names.push(r.failure.name);
    }
    expect(names[0]).toBe("ILLEGAL_FUNCTION");
    expect(names[1]).toBe("ILLEGAL_DATA_ADDRESS");
    expect(names[10]).toBe("GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND");
    expect(bus.stats().exceptions).toBe(11);
  });

  it("gets the panel's own exceptions: 0x01 for an unsupported function, 0x02 outside 0-13", async () => {
    const { clock, bus } = await rtuRig([5]);
    const fn4 = await drive(clock, bus.request({ fn: 4, unit: 5, address: 0, count: 1 }));
    expect(fn4.ok ? "ok" : fn4.failure).toEqual({ kind: "exception", code: 1, name: "ILLEGAL_FUNCTION" });
    const outside = await drive(clock, bus.request({ fn: 3, unit: 5, address: 10, count: 5 }));
    expect(outside.ok ? "ok" : outside.failure).toEqual({
      kind: "exception",
      code: 2,
      name: "ILLEGAL_DATA_ADDRESS",
    });
  });

  it("times out on a silent slave after bounded retries, and carries on with the others", async () => {
    const { clock, bus, panel } = await rtuRig([1, 2], { retries: 2 });
    panel(1).faults.silent = true;
    const dead = await drive(clock, bus.request(READ_ALL));
    expect(dead.ok ? "ok" : dead.failure).toEqual({ kind: "timeout", attempts: 3 });
    expect(bus.stats().timeouts).toBe(3);
    const live = await drive(clock, bus.request({ ...READ_ALL, unit: 2 }));
    expect(live.ok).toBe(true);
  });

  it("discards a late reply that arrives after its request timed out, and counts it", async () => {
    const { clock, bus, panel, line } = await rtuRig([1, 2], { retries: 0, timeoutMs: 100 });
    panel(1).faults.lateMs = 180; // answers after the bus gave up (100 ms + wire time)
    const first = await drive(clock, bus.request(READ_ALL));
    expect(first.ok ? "ok" : first.failure.kind).toBe("timeout");
    panel(1).faults.lateMs = 0;
    // Unit 2's reply is delayed so that unit 1's late reply lands while unit 2's read is outstanding.
    panel(2).faults.lateMs = 100;
    const second = await drive(clock, bus.request({ ...READ_ALL, unit: 2 }));
    expect(second.ok).toBe(true);
    if (second.ok) expect(second.words?.[1]).toBe(0x0202); // unit 2's firmware, not unit 1's
    expect(bus.stats().discarded).toBe(1);
    expect(line.a.written).toHaveLength(2);
  });

  it("a command goes ahead of queued polls", async () => {
    const { clock, line, bus } = await rtuRig([1, 2, 3]);
    const polls = [1, 2, 3].map((unit) => bus.request({ ...READ_ALL, unit }));
    await flush(); // poll 1 is on the wire, polls 2 and 3 wait
    const cmd = bus.request({ fn: 5, unit: 3, address: 0, value: true }, { priority: "command" });
    const results = await drive(clock, Promise.all([...polls, cmd]));
    expect(results.every((r) => r.ok)).toBe(true);
    const order = line.a.written.map((f) => `${f[0]}:${f[1]}`);
    // Poll 1 was already on the wire; the command overtakes polls 2 and 3.
    expect(order).toEqual(["1:3", "3:5", "2:3", "3:3"]);
  });

  it("admission control: the same key is never queued twice while pending", async () => {
    const { clock, bus } = await rtuRig([1]);
    const a = bus.request(READ_ALL, { key: "panel-1" });
    const b = await bus.request(READ_ALL, { key: "panel-1" });
    expect(b.ok ? "ok" : b.failure.kind).toBe("duplicate");
    expect(bus.isPending("panel-1")).toBe(true);
    expect((await drive(clock, a)).ok).toBe(true);
    expect(bus.isPending("panel-1")).toBe(false);
    expect(bus.stats().duplicates).toBe(1);
  });

  it("refuses requests beyond the queue bound (overflow policy: refuse the newcomer)", async () => {
    const { clock, bus } = await rtuRig([1], { queueLimit: 2 });
    // Submitted in one go: the bus has not taken the first yet, so two fit and two are refused.
    const ps = [1, 2, 3, 4].map(() => bus.request(READ_ALL));
    const results = await drive(clock, Promise.all(ps));
    expect(results.map((r) => (r.ok ? "ok" : r.failure.kind))).toEqual(["ok", "ok", "overflow", "overflow"]);
    expect(bus.stats().overflows).toBe(2);
  });

  it("a dropped line settles the request, fails fast while down, and reconnects with capped backoff", async () => {
    const { clock, line, bus } = await rtuRig([1], { backoff: { initialMs: 100, maxMs: 400, factor: 2 } });
    const opens: number[] = [];
    const open = line.a.open.bind(line.a);
    line.a.open = () => {
      opens.push(clock.monotonic());
      return open();
    };
    const inflight = bus.request(READ_ALL);
    await flush();
    line.drop();
    const r = await inflight;
    expect(r.ok ? "ok" : r.failure.kind).toBe("transport");
    expect(bus.linkPhase).toBe("backoff");
    const whileDown = await bus.request(READ_ALL);
    expect(whileDown.ok ? "ok" : whileDown.failure.kind).toBe("transport");
    await elapse(clock, 100 + 200 + 400 + 400 + 5);
    const gaps = opens.slice(1).map((t, i) => t - opens[i]!);
    expect(gaps).toEqual([200, 400, 400]);
    line.plug();
    await line.b.open(); // the panels' side of the cable is back too
    await elapse(clock, 401);
    expect(bus.linkPhase).toBe("up");
    expect(bus.stats().reconnects).toBe(1);
    const after = await drive(clock, bus.request(READ_ALL));
    expect(after.ok).toBe(true);
  });

  it("close() settles every queued and in-flight request and refuses new ones", async () => {
    const { bus } = await rtuRig([1]);
    const ps = [1, 2, 3, 4, 5].map(() => bus.request(READ_ALL));
    await flush();
    await bus.close();
    const results = await Promise.all(ps);
    expect(results.map((r) => (r.ok ? "ok" : r.failure.kind))).toEqual(Array(5).fill("closed"));
    const late = await bus.request(READ_ALL);
    expect(late.ok ? "ok" : late.failure.kind).toBe("closed");
    expect(bus.stats().queueDepth).toBe(0);
  });

  it("a broadcast write gets no reply and settles after the turnaround delay", async () => {
    const { clock, bus, panel, line } = await rtuRig([1, 2]);
    const r = await drive(
      clock,
      bus.request({ fn: 5, unit: 0, address: 2, value: true }, { priority: "command" }),
    );
    expect(r.ok).toBe(true);
    expect(panel(1).status() & 0x8000).toBe(0x8000);
    expect(panel(2).status() & 0x8000).toBe(0x8000);
    expect(crcOk(line.a.written[0]!, 0, 8)).toBe(true);
  });

  it("reports utilisation and queue depth", async () => {
    const { clock, bus } = await rtuRig([1]);
    await drive(clock, bus.request(READ_ALL));
    await elapse(clock, 50);
    const s = bus.stats();
    expect(s.utilisation).toBeGreaterThan(0);
    expect(s.utilisation).toBeLessThan(1);
    expect(s.queueDepth).toBe(0);
  });
});

describe("loss and return, many times over", () => {
  it("hundreds of drop/plug cycles: every request settles, timers and queues stay bounded", async () => {
    const { clock, line, bus } = await rtuRig([1], { backoff: { initialMs: 10, maxMs: 10 } });
    for (let i = 0; i < 200; i++) {
      const p = bus.request(READ_ALL);
      await flush();
      line.drop();
      const r = await p;
      expect(r.ok ? "ok" : r.failure.kind).toBe("transport");
      line.plug();
      await line.b.open();
      await elapse(clock, 11);
      expect(bus.linkPhase).toBe("up");
      expect(clock.pendingCount()).toBeLessThanOrEqual(1);
    }
    const ok = await drive(clock, bus.request(READ_ALL));
    expect(ok.ok).toBe(true);
    expect(bus.stats()).toMatchObject({ reconnects: 200, transportErrors: 200, queueDepth: 0 });
  });

  it("one bus losing its line does not hold up another bus", async () => {
    const a = await rtuRig([1]);
    const b = await rtuRig([1]);
    a.line.drop();
    await flush();
    expect(a.bus.linkPhase).toBe("backoff");
    const r = await drive(b.clock, b.bus.request(READ_ALL));
    expect(r.ok).toBe(true);
  });
});
