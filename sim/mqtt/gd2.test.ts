import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { GD2_FAULT, Gd2 } from "./gd2.js";
import { type Received, startTestBroker, type TestBroker } from "./test-broker.js";

const EXAMPLE = '{"t":"alarm","seq":311,"ts":1763798400789,"lel":18.5,"level":"low","valve":"closed"}';
const UP = "devices/gd2/kitchen-01/up";
const DOWN = "devices/gd2/kitchen-01/down";

let tb: TestBroker;
const devices: Gd2[] = [];

function detector(opts: Partial<ConstructorParameters<typeof Gd2>[0]> = {}): Gd2 {
  const d = new Gd2({
    deviceId: "kitchen-01",
    brokerUrl: tb.url,
    password: "demo-kitchen-01",
    heartbeatIntervalMs: 0,
    ...opts,
  });
  devices.push(d);
  return d;
}

const json = (m: Received | undefined) =>
  JSON.parse(m?.payload.toString("utf8") ?? "{}") as Record<string, unknown>;
/** Lets socket and broker callbacks run (FakeClock does not move real time). */
const settle = () => new Promise((r) => setTimeout(r, 30));

beforeEach(async () => {
  tb = await startTestBroker({ authenticate: (u, p) => p === `demo-${u}` });
});

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.stop()));
  await tb.close();
});

describe("GD-2 emulator", () => {
  it("connects as the datasheet says and publishes the example alarm byte for byte, QoS 1", async () => {
    const clock = new FakeClock(1763798400789);
    const d = detector({ clock, initialSeq: 311, valve: "closed" });
    await d.start();
    expect(tb.usernames.get("gd2-kitchen-01")).toBe("kitchen-01");
    expect(await d.setLel(18.5)).toMatchObject({ seq: 311, status: "acked" });
    const [msg] = await tb.waitFor(1);
    expect(msg).toMatchObject({ topic: UP, qos: 1, clientId: "gd2-kitchen-01" });
    expect(msg?.payload.toString("utf8")).toBe(EXAMPLE);
  });

  it("heartbeat: QoS 0, the datasheet's fields in order, lel with one decimal", async () => {
    const clock = new FakeClock(1763798400000);
    const d = detector({ clock, initialSeq: 7 });
    await d.start();
    d.setLel(3);
    d.setFault(GD2_FAULT.sensorEndOfLife);
    await d.heartbeat();
    const [hb] = await tb.waitFor(1);
    expect(hb?.qos).toBe(0);
    expect(hb?.payload.toString()).toBe(
      '{"t":"hb","seq":7,"ts":1763798400000,"lel":3.0,"valve":"open","mains":true,"fault":1}',
    );
  });

  it("a real leak: 2 %LEL/s to 40, alarms at low and high, the detector closes the valve itself", async () => {
    const clock = new FakeClock();
    const d = detector({ clock, valveTravelMs: 6_000 });
    await d.start();
    d.leak();
    for (let i = 0; i < 25; i++) {
      clock.advance(1000);
      await settle();
    }
    const got = (await tb.waitFor(3)).map(json);
    expect(got.map((m) => [m.t, m.lel, m.level ?? m.cause, m.valve])).toEqual([
      ["alarm", 10, "low", "moving"],
      ["valve", undefined, "local", "closed"],
      ["alarm", 26, "high", "closed"],
    ]);
    expect(d.lel).toBe(40);
    expect(Object.keys(got[1]!)).toEqual(["t", "seq", "ts", "valve", "cause"]);
    d.ventilate();
    for (let i = 0; i < 25; i++) clock.advance(1000);
    const back = (await tb.waitFor(5)).map(json).slice(3);
    expect(back.map((m) => [m.level, m.lel])).toEqual([
      ["low", 24],
      ["none", 8],
    ]);
  });

  it("cooking creeps to 3-6 %LEL and back without an alarm", async () => {
    const clock = new FakeClock();
    const d = detector({ clock });
    await d.start();
    d.cooking(5.5, 60_000);
    clock.advance(61_000);
    expect(d.lel).toBe(5.5);
    clock.advance(130_000);
    expect(d.lel).toBe(0);
    await settle();
    expect(tb.received).toHaveLength(0);
  });

  it("valve_close: reply with the same id, then a valve message (remote) once it has moved", async () => {
    const clock = new FakeClock();
    const d = detector({ clock, valveTravelMs: 5_000 });
    await d.start();
    const cmd = new Promise((r) => d.once("command", r));
    await tb.publish(DOWN, '{"cmd":"valve_close","id":"c-1"}');
    await cmd;
    const [reply] = (await tb.waitFor(1)).map(json);
    expect(reply).toMatchObject({ t: "reply", id: "c-1", cmd: "valve_close", result: "ok" });
    expect(Object.keys(reply!)).toEqual(["t", "seq", "ts", "id", "cmd", "result"]);
    expect(d.valve).toBe("moving");
    clock.advance(5_000);
    expect(json((await tb.waitFor(2))[1])).toMatchObject({ t: "valve", valve: "closed", cause: "remote" });
  });

  it("valve_open is busy while lel is 5 %LEL or more; unknown commands are answered unknown", async () => {
    const clock = new FakeClock();
    const d = detector({ clock, valve: "closed", autoClose: false });
    await d.start();
    d.setLel(5);
    await tb.publish(DOWN, '{"cmd":"valve_open","id":"o-1"}');
    await tb.publish(DOWN, '{"cmd":"reboot","id":"x-1"}');
    const replies = (await tb.waitFor(2)).map(json);
    expect(replies.map((r) => [r.id, r.result])).toEqual([
      ["o-1", "busy"],
      ["x-1", "unknown"],
    ]);
    expect(d.valve).toBe("closed");
  });

  it("self_test: reply then hb; a valve motor fault answers valve commands fault", async () => {
    const clock = new FakeClock();
    const d = detector({ clock });
    await d.start();
    await tb.publish(DOWN, '{"cmd":"self_test","id":"t-1"}');
    const [r, hb] = (await tb.waitFor(2)).map(json);
    expect([r?.t, r?.result, hb?.t]).toEqual(["reply", "ok", "hb"]);
    d.setFault(GD2_FAULT.valveMotor);
    await tb.publish(DOWN, '{"cmd":"valve_close","id":"c-2"}');
    expect(json((await tb.waitFor(3))[2])).toMatchObject({ id: "c-2", result: "fault" });
  });

  it("a jammed valve: valve_close answered ok, no valve message follows", async () => {
    const clock = new FakeClock();
    const d = detector({ clock });
    await d.start();
    d.jamValve();
    await tb.publish(DOWN, '{"cmd":"valve_close","id":"c-3"}');
    expect(json((await tb.waitFor(1))[0])).toMatchObject({ id: "c-3", result: "ok" });
    clock.advance(20_000);
    await settle();
    expect(tb.received).toHaveLength(1);
    expect(d.valve).toBe("moving");
  });

  it("a downlink without an id, or whose reply would exceed 384 bytes, is refused without a reply", async () => {
    const d = detector();
    await d.start();
    const bad = new Promise<Buffer>((r) => d.once("bad-downlink", ({ payload }) => r(payload)));
    await tb.publish(DOWN, '{"cmd":"valve_close"}');
    expect((await bad).toString()).toBe('{"cmd":"valve_close"}');
    const long = new Promise<Buffer>((r) => d.once("bad-downlink", ({ payload }) => r(payload)));
    await tb.publish(DOWN, JSON.stringify({ cmd: "valve_close", id: "x".repeat(400) }));
    await long;
    await settle();
    expect(tb.received).toHaveLength(0);
  });

  it("a power cut: a minute of silence, then hb with ts 0 and mains false until resynced", async () => {
    const clock = new FakeClock(1763798400000);
    const d = detector({ clock, heartbeatIntervalMs: 60_000 });
    await d.start();
    const back = d.powerCut();
    await settle();
    clock.advance(59_000);
    await settle();
    expect(tb.received).toHaveLength(0);
    clock.advance(1_000);
    await back;
    const [hb] = (await tb.waitFor(1)).map(json);
    expect(hb).toMatchObject({ t: "hb", ts: 0, mains: false });
    d.timeServerReached();
    d.mainsRestored();
    await d.heartbeat();
    expect(json((await tb.waitFor(2))[1])).toMatchObject({ t: "hb", ts: clock.now(), mains: true });
  });

  it("refuses CBOR: the GD-2 speaks JSON only", () => {
    expect(() => detector({ encoding: "cbor" })).toThrow(RangeError);
  });
});
