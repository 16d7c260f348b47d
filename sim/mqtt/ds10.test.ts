import { decode } from "cbor-x";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Clock } from "../../core/clock.js";
import { FakeClock } from "../../core/clock.js";
import { Ds10 } from "./ds10.js";
import { startTestBroker, type TestBroker } from "./test-broker.js";

const EXAMPLE = '{"t":"state","seq":77,"ts":1763798400456,"contact":"open","tamper":false,"bat":64}';

let tb: TestBroker;
const devices: Ds10[] = [];

function door(opts: Partial<ConstructorParameters<typeof Ds10>[0]> = {}): Ds10 {
  const d = new Ds10({
    deviceId: "door-01",
    brokerUrl: tb.url,
    password: "demo-door-01",
    heartbeatIntervalMs: 0,
    ...opts,
  });
  devices.push(d);
  return d;
}

const parse = (b: Buffer) => JSON.parse(b.toString("utf8")) as Record<string, unknown>;

beforeEach(async () => {
  tb = await startTestBroker({ authenticate: (u, p) => p === `demo-${u}` });
});

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.stop()));
  await tb.close();
});

describe("DS-10 emulator", () => {
  it("reproduces the datasheet example byte for byte, as a QoS 1 state change", async () => {
    const fixed: Clock = {
      now: () => 1763798400456,
      monotonic: () => performance.now(),
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
    };
    const d = door({ clock: fixed, initialSeq: 77, battery: 64 });
    await d.start();
    expect(tb.usernames.get("ds10-door-01")).toBe("door-01");
    expect((await d.open()).status).toBe("acked");
    const [msg] = await tb.waitFor(1);
    expect(msg).toMatchObject({ topic: "devices/ds10/door-01/up", qos: 1, clientId: "ds10-door-01" });
    expect(msg?.payload.toString("utf8")).toBe(EXAMPLE);
  });

  it("heartbeats are QoS 0 and carry the current contact and tamper state", async () => {
    const d = door();
    await d.start();
    await d.open();
    await d.tamper(true);
    expect((await d.heartbeat()).status).toBe("written");
    const got = await tb.waitFor(3);
    expect(got.map((m) => m.qos)).toEqual([1, 1, 0]);
    const hb = parse(got[2]?.payload ?? Buffer.alloc(0));
    expect(Object.keys(hb)).toEqual(["t", "seq", "ts", "contact", "tamper", "bat"]);
    expect(hb).toMatchObject({ t: "hb", seq: 3, contact: "open", tamper: true });
    expect(parse(got[1]?.payload ?? Buffer.alloc(0))).toMatchObject({
      t: "state",
      tamper: true,
      contact: "open",
    });
  });

  it("CBOR firmware: 6-pair map with the same fields", async () => {
    const d = door({ encoding: "cbor" });
    await d.start();
    await d.close();
    const [msg] = await tb.waitFor(1);
    expect(msg?.payload[0]).toBe(0xa6);
    const m = decode(msg?.payload ?? Buffer.alloc(0)) as Record<string, unknown>;
    expect(Object.keys(m)).toEqual(["t", "seq", "ts", "contact", "tamper", "bat"]);
    expect(m).toMatchObject({ t: "state", seq: 1, contact: "closed", tamper: false, bat: 100 });
    expect(typeof m.ts).toBe("bigint");
  });

  it("a bouncing contact sends open, closed, open within 200 ms of device time", async () => {
    // Device time on a FakeClock: real timers on a loaded machine stretched the 80 ms past 200.
    const clock = new FakeClock(1763798400000);
    const d = door({ clock });
    await d.start();
    const bouncing = d.bounce();
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      clock.advance(40);
    }
    const results = await bouncing;
    expect(results.map((r) => r.status)).toEqual(["acked", "acked", "acked"]);
    const got = (await tb.waitFor(3)).map((m) => parse(m.payload));
    expect(got.map((p) => p.contact)).toEqual(["open", "closed", "open"]);
    expect(got.map((p) => p.seq)).toEqual([1, 2, 3]);
    const ts = got.map((p) => p.ts as number);
    expect(ts[1]).toBeGreaterThanOrEqual(ts[0] ?? 0);
    expect(ts[2]).toBeGreaterThanOrEqual(ts[1] ?? 0);
    expect((ts[2] ?? 0) - (ts[0] ?? 0)).toBe(80);
    expect(d.contact).toBe("open");
    await expect(d.bounce(100)).rejects.toThrow(RangeError);
  });

  it("low battery shows in bat of a heartbeat sent at once", async () => {
    const d = door({ battery: 50 });
    await d.start();
    await d.lowBattery();
    const [msg] = await tb.waitFor(1);
    expect(parse(msg?.payload ?? Buffer.alloc(0))).toMatchObject({ t: "hb", bat: 12 });
  });

  it("while offline, old heartbeats make way for new ones and state changes are kept", async () => {
    const d = door({ backlogCapacity: 3 });
    await d.start();
    await d.goOffline();
    const hb1 = d.heartbeat();
    const hb2 = d.heartbeat();
    const open = d.open();
    const close = d.close(); // full: evicts hb1
    const hb3 = d.heartbeat(); // full: evicts hb2
    expect((await hb1).status).toBe("dropped");
    expect((await hb2).status).toBe("dropped");
    await d.goOnline();
    expect((await Promise.all([open, close, hb3])).map((r) => r.status)).toEqual([
      "acked",
      "acked",
      "written",
    ]);
    // aedes reports a QoS 0 publish before QoS 1 ones it is still persisting: compare by seq.
    const got = (await tb.waitFor(3))
      .map((m) => parse(m.payload))
      .sort((a, b) => Number(a.seq) - Number(b.seq));
    expect(got.map((p) => [p.t, p.seq])).toEqual([
      ["state", 3],
      ["state", 4],
      ["hb", 5],
    ]);
    expect(d.backlogStats()).toMatchObject({ evictedHeartbeats: 2, refusedEvents: 0, highWater: 3 });
  });
});
