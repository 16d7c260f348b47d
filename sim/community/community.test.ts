import { decode } from "cbor-x";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { startTestBroker, type TestBroker } from "../mqtt/test-broker.js";
import {
  type Activity,
  type Community,
  communityDevices,
  createCommunity,
  demoCredentials,
} from "./community.js";

describe("community table", () => {
  it("is deterministic per seed, differs between seeds", () => {
    expect(communityDevices({ seed: 42 })).toEqual(communityDevices({ seed: 42 }));
    const a = communityDevices({ seed: 1 }).devices.map((d) => [d.encoding, d.clockSkewMs]);
    const b = communityDevices({ seed: 2 }).devices.map((d) => [d.encoding, d.clockSkewMs]);
    expect(a).not.toEqual(b);
  });

  it("has at least 20 households, each with a pendant and a door sensor, one silent resident", () => {
    const { households, devices } = communityDevices({ seed: 7 });
    expect(households.length).toBeGreaterThanOrEqual(20);
    expect(households).toHaveLength(24);
    for (const h of households) {
      const mine = devices.filter((d) => d.household === h.id);
      expect(mine.map((d) => d.model).sort()).toEqual(["ds10", "ec200"]);
      expect(mine.map((d) => d.id).sort()).toEqual([h.door, h.pendant].sort());
    }
    expect(households[0]).toMatchObject({
      id: "hh-01",
      pendant: "pendant-01",
      door: "door-01",
      silent: false,
    });
    expect(households.filter((h) => h.silent)).toHaveLength(1);
    expect(new Set(devices.map((d) => d.encoding))).toEqual(new Set(["json", "cbor"]));
    for (const d of devices) {
      expect(d.password).toBe(`demo-${d.id}`);
      expect(d.firmware.startsWith(d.encoding === "json" ? "1." : "2.")).toBe(true);
      expect(d.heartbeatIntervalS).toBe(d.model === "ec200" ? 30 : 360);
    }
    expect(demoCredentials("pendant-01")).toBe("demo-pendant-01");
    expect(communityDevices({ households: 120 }).households[0]?.id).toBe("hh-001");
  });

  it("keeps excluded devices in the table but does not emulate them", () => {
    const c = createCommunity({ brokerUrl: "mqtt://127.0.0.1:1", households: 20, exclude: ["pendant-01"] });
    expect(c.devices.some((d) => d.id === "pendant-01")).toBe(true);
    expect(c.emulators.has("pendant-01")).toBe(false);
    expect(c.emulators.size).toBe(39);
  });
});

describe("community run", () => {
  let tb: TestBroker;
  let community: Community | undefined;

  beforeEach(async () => {
    tb = await startTestBroker({ authenticate: (u, p) => u !== undefined && p === demoCredentials(u) });
  });

  afterEach(async () => {
    await community?.stop();
    community = undefined;
    await tb.close();
  });

  it("connects every device and produces datasheet-shaped activity; the silent household only beats", async () => {
    const activity: Activity[] = [];
    community = createCommunity({
      brokerUrl: tb.url,
      households: 20,
      seed: 3,
      heartbeatScale: 0.002, // 0.6 s pendants, 7.2 s doors
      eventRate: 120, // one alarm every ~0.5 s
      dayLengthMs: 20_000,
      onActivity: (a) => activity.push(a),
    });
    const { connected, failed } = await community.start();
    expect(failed).toEqual([]);
    expect(connected).toBe(40);
    expect(tb.usernames.size).toBe(40);
    await tb.waitFor(3, (m) => {
      const p = (m.payload[0] === 0x7b ? JSON.parse(m.payload.toString()) : decode(m.payload)) as {
        t: string;
      };
      return p.t === "evt";
    });
    await tb.waitFor(1, (m) => m.topic.startsWith("devices/ds10/") && m.qos === 1);
    await community.stop();
    const count = tb.received.length;

    const silent = community.households.find((h) => h.silent);
    expect(silent).toBeDefined();
    for (const m of tb.received) {
      const [, model, id] = m.topic.split("/");
      const def = community.devices.find((d) => d.id === id);
      expect(def?.model).toBe(model);
      expect(m.clientId).toBe(`${model}-${id}`);
      const first = m.payload[0] ?? 0;
      if (def?.encoding === "json") expect(first).toBe(0x7b);
      else expect(first >= 0xa0 && first <= 0xbf).toBe(true);
      const p = (def?.encoding === "json" ? JSON.parse(m.payload.toString()) : decode(m.payload)) as Record<
        string,
        unknown
      >;
      if (model === "ec200") {
        expect(Object.keys(p).slice(0, 3)).toEqual(["t", "seq", "ts"]);
        expect(["evt", "hb"]).toContain(p.t);
      } else {
        expect(Object.keys(p)).toEqual(["t", "seq", "ts", "contact", "tamper", "bat"]);
      }
      if (id === silent?.pendant || id === silent?.door) {
        // Heartbeats, battery and tamper incidents only: the door never opens, the button is never pressed.
        if (p.t === "evt") expect(p.evt).toBe("low_battery");
        if (model === "ds10") expect(p.contact).toBe("closed");
      }
    }
    expect(activity.some((a) => /pressed|fall|held/.test(a.action))).toBe(true);
    expect(activity.every((a) => a.household !== silent?.id || /battery|cover|clock/.test(a.action))).toBe(
      true,
    );

    // Stopped means silent.
    await new Promise((r) => setTimeout(r, 300));
    expect(tb.received.length).toBe(count);
  });

  it("by default a believable pace: a call every 5 min, the cover, battery and uplink incidents about 1.5 an hour, each first within 30 min", async () => {
    // Before December 2026 the defaults were 2 calls a minute and 3 + 3 + 3 (outages with a press)
    // alerting incidents an hour: 1.5 in every 10 minutes on top of the calls.
    const clock = new FakeClock();
    const activity: Activity[] = [];
    community = createCommunity({
      brokerUrl: tb.url,
      households: 24,
      seed: 451,
      clock,
      heartbeatScale: 1, // the datasheets' 300 s and 3600 s: few messages over the hours run
      rates: { doorOutingsPerDay: 0 },
      onActivity: (a) => activity.push(a),
    });
    const { failed } = await community.start();
    expect(failed).toEqual([]);
    const HOURS = 6;
    const t0 = clock.now();
    for (let t = 0; t < HOURS * 3_600_000; t += 10_000) {
      clock.advance(10_000);
      await new Promise<void>((r) => setImmediate(r));
    }
    const of = (re: RegExp) => activity.filter((a) => re.test(a.action));
    const per10Min = (n: number) => n / (HOURS * 6);
    const calls = of(/^(button pressed|button held|fall detected)$/);
    const tampers = of(/^sensor cover removed$/);
    const lowBattery = of(/^battery low$/);
    const outages = of(/^base station loses its uplink$/);
    const backlogPresses = of(/^button pressed while the uplink is down$/);
    const figures = JSON.stringify({
      calls: calls.length,
      tampers: tampers.length,
      lowBattery: lowBattery.length,
      outages: outages.length,
      backlogPresses: backlogPresses.length,
    });
    // 0.2 a minute: 2 in 10 minutes on average (before: 20).
    expect(per10Min(calls.length), figures).toBeLessThanOrEqual(3);
    expect(per10Min(calls.length), figures).toBeGreaterThanOrEqual(1);
    // TAMPER, BATTERY_LOW and the late EMERGENCY_CALL of an outage: under 0.5 in 10 minutes (before: 1.5).
    const alerting = tampers.length + lowBattery.length + backlogPresses.length;
    expect(per10Min(alerting), figures).toBeLessThan(0.5);
    // Each kind still shows within the first 30 minutes, an outage with its late call.
    for (const kind of [tampers, lowBattery, outages, backlogPresses]) {
      expect(kind.length, figures).toBeGreaterThan(0);
      expect((kind[0] as Activity).at - t0, figures).toBeLessThanOrEqual(30 * 60_000 + 10_000);
    }
  }, 120_000);
});
