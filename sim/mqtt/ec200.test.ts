import { decode } from "cbor-x";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Clock } from "../../core/clock.js";
import { Ec200 } from "./ec200.js";
import { startTestBroker, startTestBrokerOn, type TestBroker } from "./test-broker.js";

/** Wall clock pinned to `now` (settable); timers are real. */
function pinnedClock(now: number): Clock & { set(ms: number): void } {
  let t = now;
  return {
    now: () => t,
    monotonic: () => performance.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
    set: (ms) => {
      t = ms;
    },
  };
}

const EXAMPLE = '{"t":"evt","seq":1042,"ts":1763798400123,"evt":"press","bat":87,"rssi":-71}';
const UP = "devices/ec200/pendant-01/up";

let tb: TestBroker;
const devices: Ec200[] = [];

function pendant(opts: Partial<ConstructorParameters<typeof Ec200>[0]> = {}): Ec200 {
  const d = new Ec200({
    deviceId: "pendant-01",
    brokerUrl: tb.url,
    password: "demo-pendant-01",
    heartbeatIntervalMs: 0,
    ...opts,
  });
  devices.push(d);
  return d;
}

beforeEach(async () => {
  tb = await startTestBroker({ authenticate: (u, p) => p === `demo-${u}` });
});

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.stop()));
  await tb.close();
});

describe("EC-200 emulator", () => {
  it("connects as the datasheet says and publishes the example press byte for byte, QoS 1", async () => {
    const d = pendant({ clock: pinnedClock(1763798400123), initialSeq: 1042, battery: 87, rssi: -71 });
    await d.start();
    expect(tb.usernames.get("ec200-pendant-01")).toBe("pendant-01");
    const r = await d.press();
    expect(r).toMatchObject({ seq: 1042, status: "acked", resent: false });
    const [msg] = await tb.waitFor(1);
    expect(msg?.topic).toBe(UP);
    expect(msg?.qos).toBe(1);
    expect(msg?.clientId).toBe("ec200-pendant-01");
    expect(msg?.payload.toString("utf8")).toBe(EXAMPLE);
  });

  it("encodes every event and the heartbeat with exactly the datasheet's fields, in order", async () => {
    const d = pendant({ clockSkewMs: -5_000 });
    await d.start();
    const before = Date.now();
    for (const r of await Promise.all([d.press(), d.longPress(), d.fall(), d.cancel(), d.lowBattery()])) {
      expect(r.status).toBe("acked");
    }
    await d.heartbeat();
    const got = await tb.waitFor(6);
    const parsed = got.map((m) => JSON.parse(m.payload.toString("utf8")) as Record<string, unknown>);
    expect(parsed.slice(0, 5).map((p) => p.evt)).toEqual([
      "press",
      "long_press",
      "fall",
      "cancel",
      "low_battery",
    ]);
    for (const p of parsed.slice(0, 5))
      expect(Object.keys(p)).toEqual(["t", "seq", "ts", "evt", "bat", "rssi"]);
    expect(Object.keys(parsed[5] ?? {})).toEqual(["t", "seq", "ts", "bat", "rssi"]);
    expect(parsed[5]?.t).toBe("hb");
    expect(parsed.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const p of parsed) {
      expect(Number.isInteger(p.ts)).toBe(true);
      // Skewed 5 s behind the wall clock.
      expect(p.ts as number).toBeLessThan(before);
      expect(p.ts as number).toBeGreaterThan(before - 10_000);
      expect(p.rssi as number).toBeGreaterThanOrEqual(-120);
      expect(p.rssi as number).toBeLessThanOrEqual(0);
    }
    expect(parsed[4]?.bat as number).toBeLessThan(15);
  });

  it("CBOR firmware sends a 6-pair map (0xA6) with ts as uint64, same fields", async () => {
    const d = pendant({
      encoding: "cbor",
      clock: pinnedClock(1763798400123),
      initialSeq: 1042,
      battery: 87,
      rssi: -71,
    });
    await d.start();
    await d.press();
    const [msg] = await tb.waitFor(1);
    const bytes = msg?.payload ?? Buffer.alloc(0);
    expect(bytes[0]).toBe(0xa6);
    // ts is major type 0 with an 8-byte argument (0x1B), not a float (0xFB).
    expect(bytes.includes(Buffer.from([0x62, 0x74, 0x73, 0x1b]))).toBe(true);
    const decoded = decode(bytes) as Record<string, unknown>;
    expect(Object.keys(decoded)).toEqual(["t", "seq", "ts", "evt", "bat", "rssi"]);
    expect({ ...decoded, ts: Number(decoded.ts) }).toEqual({
      t: "evt",
      seq: 1042,
      ts: 1763798400123,
      evt: "press",
      bat: 87,
      rssi: -71,
    });
  });

  it("handles ack_call: the event fires and only the next uplink carries ackd", async () => {
    const d = pendant();
    await d.start();
    const ack = d.nextAck();
    await tb.publish("devices/ec200/pendant-01/down", '{"cmd":"ack_call","alertId":"a-123"}');
    expect(await ack).toBe("a-123");
    await d.heartbeat();
    await d.press();
    const [hb, press] = (await tb.waitFor(2)).map(
      (m) => JSON.parse(m.payload.toString()) as Record<string, unknown>,
    );
    expect(hb).toMatchObject({ t: "hb", ackd: "a-123" });
    expect(Object.keys(hb ?? {})).toEqual(["t", "seq", "ts", "bat", "rssi", "ackd"]);
    expect(press && "ackd" in press).toBe(false);
    expect(d.acksReceived).toEqual(["a-123"]);
  });

  it("handles locate by beeping, and reports a malformed downlink", async () => {
    const d = pendant();
    await d.start();
    const located = new Promise<void>((resolve) => d.once("locate", resolve));
    await tb.publish("devices/ec200/pendant-01/down", '{"cmd":"locate"}');
    await located;
    expect(d.beeping).toBe(true);
    const bad = new Promise<Buffer>((resolve) => d.once("bad-downlink", ({ payload }) => resolve(payload)));
    await tb.publish("devices/ec200/pendant-01/down", "not json");
    expect((await bad).toString()).toBe("not json");
  });

  it("re-sends its backlog after an outage with the original seq and ts", async () => {
    const clock = pinnedClock(1_763_798_400_000);
    const d = pendant({ clock });
    await d.start();
    await d.press();
    await d.goOffline();
    expect(d.online).toBe(false);
    const queued = [d.press(), d.fall(), d.heartbeat()];
    clock.set(1_763_798_460_000); // a minute passes before the uplink returns
    await new Promise((r) => setTimeout(r, 50));
    expect(tb.received).toHaveLength(1);
    expect(d.backlogStats().size).toBe(3);
    await d.goOnline();
    const results = await Promise.all(queued);
    expect(results.map((r) => r.status)).toEqual(["acked", "acked", "acked"]);
    const got = (await tb.waitFor(4)).map((m) => JSON.parse(m.payload.toString()) as Record<string, unknown>);
    expect(got.map((p) => p.seq)).toEqual([1, 2, 3, 4]);
    expect(got.slice(1).map((p) => p.ts)).toEqual([1_763_798_400_000, 1_763_798_400_000, 1_763_798_400_000]);
    await d.press();
    const [after] = (await tb.waitFor(5))
      .slice(4)
      .map((m) => JSON.parse(m.payload.toString()) as { ts: number });
    expect(after?.ts).toBe(1_763_798_460_000);
  });

  it("a lost PUBACK makes the base station send the same seq again after reconnecting", async () => {
    const d = pendant();
    await d.start();
    await d.press();
    await d.goOffline({ lostAck: true });
    await d.goOnline();
    const got = await tb.waitFor(2);
    expect(got[1]?.payload.equals(got[0]?.payload ?? Buffer.alloc(0))).toBe(true);
  });

  it("resend(seq) repeats a message byte for byte; unknown seqs are reported", async () => {
    const d = pendant();
    await d.start();
    await d.press();
    await d.heartbeat();
    const again = await d.resend(1);
    expect(again).toMatchObject({ seq: 1, status: "acked", resent: true });
    const got = await tb.waitFor(3);
    expect(got[2]?.payload.equals(got[0]?.payload ?? Buffer.alloc(0))).toBe(true);
    expect((await d.resend(999)).status).toBe("unknown-seq");
  });

  it("battery change resets the device clock until resync, and seq wraps at 2^32", async () => {
    const clock = pinnedClock(1_763_798_400_000);
    const d = pendant({ clock, initialSeq: 0xffffffff, battery: 40 });
    await d.start();
    await d.batteryChange("zero");
    clock.set(1_763_798_401_500);
    await d.press();
    await d.batteryChange("far-past");
    d.resync();
    await d.heartbeat();
    const got = (await tb.waitFor(4)).map((m) => JSON.parse(m.payload.toString()) as Record<string, number>);
    expect(got.map((p) => p.seq)).toEqual([0xffffffff, 0, 1, 2]);
    expect(got.map((p) => p.ts)).toEqual([0, 1_500, Date.UTC(2000, 0, 1), 1_763_798_401_500]);
    expect(got[0]?.bat).toBe(100);
  });

  it("refuses a wrong password: start() rejects", async () => {
    const d = pendant({ password: "wrong", reconnectPeriodMs: 60_000 });
    await expect(d.start()).rejects.toThrow();
  });

  it("survives the broker going away: sends queue, reconnect flushes them, stop abandons the rest", async () => {
    const own = await startTestBroker();
    const port = own.port;
    const d = new Ec200({
      deviceId: "pendant-09",
      brokerUrl: own.url,
      password: "x",
      heartbeatIntervalMs: 0,
      reconnectPeriodMs: 50,
    });
    devices.push(d);
    await d.start();
    await own.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(d.online).toBe(false);
    const queued = d.press();
    // A new broker on the same port: mqtt.js reconnects by itself and the backlog goes out.
    const back = await startTestBrokerOn(port);
    expect(await queued).toMatchObject({ status: "acked" });
    const [m] = await back.waitFor(1);
    expect(JSON.parse(m?.payload.toString() ?? "{}")).toMatchObject({ evt: "press", seq: 1 });
    await back.close();
    await new Promise((r) => setTimeout(r, 50));
    const abandoned = d.fall();
    await d.stop();
    expect(await abandoned).toMatchObject({ status: "abandoned" });
  });

  it("sends heartbeats on its timer", async () => {
    const d = pendant({ heartbeatIntervalMs: 30, heartbeatPhaseMs: 10 });
    await d.start();
    const got = await tb.waitFor(3, (m) => (JSON.parse(m.payload.toString()) as { t: string }).t === "hb");
    expect(got.length).toBeGreaterThanOrEqual(3);
  });
});
