/**
 * The consume step behind the real pipeline: each drain handles P1 before the alert lane, so an
 * older alert-lane entry of a device can run after a newer P1 one. Rules that read a whole state
 * (a poll, a declared snapshot) must not be moved back by it; GD-2 keeps its messages in one lane.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY } from "../core/index.js";
import { deviceSchema } from "../devices/config.js";
import { compileProfile, type DeclaredSettings } from "../devices/declared/compile.js";
import { declaredProfileSchema } from "../devices/declared/schema.js";
import { type Ds10Sample, type Ds10Settings, ds10 } from "../devices/ds10.js";
import { type Ec200Sample, ec200 } from "../devices/ec200.js";
import { type Gd2Settings, type Gd2State, gd2 } from "../devices/gd2.js";
import { type Lv4Settings, lv4 } from "../devices/lv4.js";
import { type Mfs8Sample, type Mfs8Settings, mfs8, STATUS } from "../devices/mfs8.js";
import type { AnyProfile, DeviceSettings, MqttDeviceProfile } from "../devices/profile.js";
import { isRejection } from "../devices/profile.js";
import { lv4Sample, siteSettings } from "../devices/test-fixtures.js";
import type { Transition } from "./alerts/alert.js";
import { AlertEngine } from "./alerts/engine.js";
import { SampleConsumer, type SampleConsumerParts } from "./consume.js";
import { GatewayMetrics, type MetricsSource } from "./metrics/metrics.js";
import { PriorityPipeline } from "./pipeline/lanes.js";
import type { DeviceEntry } from "./registry.js";
import { DeviceRuleContext } from "./rule-context.js";
import { Counters } from "./stats.js";
import { TimerWheel } from "./time/timer-wheel.js";

const tick = () => new Promise((r) => setImmediate(r));
const site: DeviceSettings = siteSettings({ pollIntervalMs: 2000, timezone: "Asia/Shanghai" });

/** A device of `profile` behind a real pipeline, SampleConsumer and alert engine. */
function gateway(profile: AnyProfile, settings: DeviceSettings) {
  const clock = new FakeClock();
  const transitions: Array<{ code: string; t: Transition }> = [];
  const engine = new AlertEngine("s", clock, new TimerWheel(clock), {
    alertChanged: (a, t) => transitions.push({ code: a.code, t }),
  });
  // The real metrics: its counters read the source only at scrape, and the superseded one not at all.
  const metrics = new GatewayMetrics({} as MetricsSource);
  /** `linli_pipeline_superseded_total` as a scrape reads it, by lane name. */
  const superseded = async () => {
    const m = await metrics.registry.getSingleMetric("linli_pipeline_superseded_total")?.get();
    return Object.fromEntries((m?.values ?? []).map((v) => [v.labels.lane, v.value]));
  };
  const device = {
    id: "dev-1",
    model: profile.model,
    household: null,
    householdEntry: null,
    profile,
    settings,
    ruleState: profile.initialState(),
    lastRulesSeq: 0,
    lastRulesMono: Number.NEGATIVE_INFINITY,
    queuedTelemetry: null,
    p1Queued: 0,
    lastPolled: null,
    removed: false,
  } as unknown as DeviceEntry;
  /** Activity reported to welfare supervision, and the telemetry published (metrics JSON). */
  let activities = 0;
  const published: string[] = [];
  const parts = {
    clock,
    counters: new Counters(),
    supervisor: { seen: () => {}, activity: () => activities++ },
    engine,
    ruleContext: new DeviceRuleContext<DeviceEntry>(() => false),
    rateLog: { warn: () => {} },
    publisher: { telemetry: (...a: unknown[]) => published.push(a[4] as string) },
    metrics,
    recorder: null,
    clockSkewToleranceMs: 60_000,
  } as unknown as SampleConsumerParts;
  const consumer = new SampleConsumer(parts);
  const pipeline = new PriorityPipeline(
    {
      p1LaneSize: 8,
      alertLaneSize: 8,
      telemetryLaneSize: 8,
      telemetryBatch: 4,
      monotonic: () => clock.monotonic(),
    },
    consumer.consume,
  );
  /** Queued, not yet drained (the drain is a microtask away): offers in a row share one drain. */
  const offer = (lane: number, sample: unknown) => {
    clock.advance(2000);
    expect(pipeline.offer(lane as 0, device, sample, clock.now(), clock.monotonic(), () => {})).toBe(
      "queued",
    );
  };
  /** Queued now, received at `receivedMono` (a sample parked or held enters its lane late). */
  const offerReceived = (lane: number, sample: unknown, receivedMono: number) => {
    expect(pipeline.offer(lane as 0, device, sample, clock.now(), receivedMono, () => {})).toBe("queued");
  };
  const active = (code: string) => transitions.filter((x) => x.code === code).at(-1)?.t === "raised";
  return {
    device,
    offer,
    offerReceived,
    clock,
    active,
    transitions,
    superseded,
    published,
    activities: () => activities,
  };
}

describe("an older alert-lane entry drained after a newer P1 entry of the same device", () => {
  const mfs8Settings = { minPressureMpa: 0.15, extinguisherGraceMs: 120_000 } as DeviceSettings &
    Mfs8Settings;
  const poll = (status: number): Mfs8Sample => ({
    firmware: "2.3",
    uptime: 1,
    status,
    smoke: status & (1 << STATUS.smoke) ? 0.4 : 0,
    temperature: 21.5,
    pressure: 0.32,
    present: 0x1f,
    slots: 5,
    faultCode: 0,
    events: 0,
  });

  it("MFS-8: a P2 status poll queued behind the next poll's fire does not clear FIRE_ALARM", async () => {
    const { device, offer, active, superseded } = gateway(mfs8, mfs8Settings);
    const laned = (s: Mfs8Sample) => {
      const lane = mfs8.lane(s, device.lastPolled as Mfs8Sample | null);
      device.lastPolled = s;
      return lane;
    };
    const calm = poll(0);
    offer(laned(calm), calm);
    await tick();
    // The pipeline is behind: poll N (pump fault, a P2 change) and poll N+1 (smoke) share a drain.
    const pumpFault = poll(1 << STATUS.pumpFault);
    const fire = poll((1 << STATUS.pumpFault) | (1 << STATUS.smoke));
    expect(laned(pumpFault)).toBe(LANE_ALERT);
    expect(laned(fire)).toBe(LANE_P1);
    offer(LANE_ALERT, pumpFault);
    offer(LANE_P1, fire);
    await tick();
    expect(active("FIRE_ALARM")).toBe(true);
    expect(active("FAULT")).toBe(true);
    // The skipped poll is counted, in its lane.
    expect(await superseded()).toEqual({ p1: 0, alert: 1, telemetry: 0 });
    // The newer state still moves it: the next poll without smoke clears it.
    const quiet = poll(1 << STATUS.pumpFault);
    offer(laned(quiet), quiet);
    await tick();
    expect(active("FIRE_ALARM")).toBe(false);
  });

  it("GD-2: a troubled heartbeat (valve open) before a `valve: closed` leaves the valve closed", async () => {
    const settings: DeviceSettings & Gd2Settings = {
      ...site,
      ...gd2.settings(deviceSchema(gd2).parse({ id: "k1", model: "gd2", password: "pw" })),
    };
    const { device, offer } = gateway(gd2, settings);
    const parse = (json: string) => {
      const s = gd2.parse(JSON.parse(json));
      if (isRejection(s)) throw new Error(s.detail);
      return s;
    };
    const hb = parse('{"t":"hb","seq":1,"ts":1,"lel":0,"valve":"open","mains":false,"fault":0}');
    const closed = parse('{"t":"valve","seq":2,"ts":1,"valve":"closed","cause":"remote"}');
    offer(gd2.lane(hb), hb);
    offer(gd2.lane(closed), closed);
    await tick();
    expect((device.ruleState as Gd2State).valve).toBe("closed");
  });

  const declared = (alarmRequired: boolean) =>
    compileProfile(
      declaredProfileSchema.parse({
        model: "acme-panel",
        transport: "mqtt",
        mqtt: {
          uplink: "acme/{id}/up",
          fields: [
            { name: "fire", path: "fire", type: "boolean", required: alarmRequired },
            { name: "fault", path: "fault", type: "boolean" },
          ],
        },
        alarms: [
          { code: "FIRE_ALARM", priority: 1, when: { point: "fire", equals: true } },
          { code: "FAULT", priority: 3, when: { point: "fault", equals: true } },
        ],
      }),
    ) as MqttDeviceProfile;
  const declaredSettings: DeviceSettings & DeclaredSettings = { ...site, params: {} };

  it("declared MQTT, every alarm's point required: a snapshot, the older fault message is superseded", async () => {
    const profile = declared(true);
    expect(profile.snapshot).toBe(true);
    const { offer, active } = gateway(profile, declaredSettings);
    const faultOnly = profile.parse({ fire: false, fault: true });
    const fire = profile.parse({ fire: true, fault: true });
    expect(profile.lane(faultOnly)).toBe(LANE_ALERT);
    expect(profile.lane(fire)).toBe(LANE_P1);
    offer(LANE_ALERT, faultOnly);
    offer(LANE_P1, fire);
    await tick();
    expect(active("FIRE_ALARM")).toBe(true);
    expect(active("FAULT")).toBe(true);
  });

  it("older is judged by receipt: a raise parked and queued after its device's newer calm message does not outlive it", async () => {
    const profile = declared(true);
    const { offer, offerReceived, clock, active } = gateway(profile, declaredSettings);
    const fire = profile.parse({ fire: true, fault: false });
    const calm = profile.parse({ fire: false, fault: false });
    // The fire message arrives while the P1 lane is full and waits in the ingest parking; the
    // device's next message (calm, telemetry) goes straight into its lane, so it gets the smaller
    // ingestSeq; the parked fire enters the P1 lane after it, with the receipt time it had.
    clock.advance(2000);
    const fireReceived = clock.monotonic();
    offer(LANE_TELEMETRY, calm);
    offerReceived(LANE_P1, fire, fireReceived);
    await tick();
    // The device's last word was calm: the alarm is raised (P1 drained first) and then cleared.
    expect(active("FIRE_ALARM")).toBe(false);
  });

  it("declared MQTT, an alarm's point optional: with a P1 alarm its alert-lane messages take P1, in order", async () => {
    const profile = declared(false);
    expect(profile.snapshot).toBe(false);
    const { offer, active } = gateway(profile, declaredSettings);
    const faultOnly = profile.parse({ fire: false, fault: true });
    const fire = profile.parse({ fire: true, fault: true });
    expect(profile.lane(faultOnly)).toBe(LANE_P1);
    expect(profile.lane(profile.parse({ fire: false, fault: false }))).toBe(LANE_TELEMETRY);
    offer(profile.lane(faultOnly), faultOnly);
    offer(profile.lane(fire), fire);
    await tick();
    expect(active("FIRE_ALARM")).toBe(true);
    expect(active("FAULT")).toBe(true);
  });
});

describe("EC-200: a `low_battery` (alert lane) and a newer press (P1) drained first", () => {
  const parse = (json: string): Ec200Sample => {
    const s = ec200.parse(JSON.parse(json));
    if (isRejection(s)) throw new Error(s.detail);
    return s;
  };
  let seq = 0;
  const msg = (evt: string | null, bat: number) =>
    parse(
      JSON.stringify({
        t: evt === null ? "hb" : "evt",
        seq: ++seq,
        ts: 0,
        bat,
        rssi: -70,
        ...(evt ? { evt } : {}),
      }),
    );
  const pendant = () => {
    const g = gateway(ec200, site);
    // In a household: the stale event still counts as the resident's activity.
    (g.device as { householdEntry: unknown }).householdEntry = {};
    return g;
  };
  const battery = (g: ReturnType<typeof gateway>) => g.transitions.filter((x) => x.code === "BATTERY_LOW");

  it("the older low_battery does not raise BATTERY_LOW over the press's newer `bat` 90", async () => {
    const g = pendant();
    const low = msg("low_battery", 12);
    const press = msg("press", 90);
    expect(ec200.lane(low)).toBe(LANE_ALERT);
    expect(ec200.lane(press)).toBe(LANE_P1);
    // Received in this order, one drain: P1 first, so the press's rules run before the event's.
    g.offer(LANE_ALERT, low);
    g.offer(LANE_P1, press);
    await tick();
    expect(g.active("EMERGENCY_CALL")).toBe(true);
    expect(battery(g)).toEqual([]);
    // Still an event of the pendant: the resident's activity, and published as telemetry.
    expect(g.activities()).toBe(2);
    expect(g.published.map((j) => (JSON.parse(j) as { event?: { value: string } }).event?.value)).toEqual([
      "press",
      "low_battery",
    ]);
    // Its rules ran (a press in it would count): not skipped as superseded.
    expect(await g.superseded()).toEqual({ p1: 0, alert: 0, telemetry: 0 });
  });

  it("BATTERY_LOW cleared by the newer press stays cleared", async () => {
    const g = pendant();
    g.offer(LANE_TELEMETRY, msg(null, 10));
    await tick();
    expect(g.active("BATTERY_LOW")).toBe(true);
    // Batteries changed: the pendant's low_battery from before is still queued behind the press.
    g.offer(LANE_ALERT, msg("low_battery", 11));
    g.offer(LANE_P1, msg("press", 90));
    await tick();
    expect(battery(g).map((x) => x.t)).toEqual(["raised", "cleared"]);
    expect(g.active("BATTERY_LOW")).toBe(false);
  });

  it("a press parked behind a newer heartbeat does not overrule its `bat` either", async () => {
    const g = pendant();
    g.clock.advance(2000);
    const pressReceived = g.clock.monotonic();
    g.offer(LANE_TELEMETRY, msg(null, 10));
    await tick();
    expect(g.active("BATTERY_LOW")).toBe(true);
    // The press was received first but waited in the P1 parking: it enters its lane afterwards.
    g.offerReceived(LANE_P1, msg("press", 90), pressReceived);
    await tick();
    expect(g.active("EMERGENCY_CALL")).toBe(true);
    expect(g.active("BATTERY_LOW")).toBe(true);
  });

  it("in order of receipt the low_battery still raises it, and a newer reading still clears it", async () => {
    const g = pendant();
    // The press first, then the event: drained in the order received.
    g.offer(LANE_P1, msg("press", 90));
    g.offer(LANE_ALERT, msg("low_battery", 12));
    await tick();
    expect(g.active("BATTERY_LOW")).toBe(true);
    expect(battery(g)[0]?.t).toBe("raised");
    g.offer(LANE_TELEMETRY, msg(null, 95));
    await tick();
    expect(g.active("BATTERY_LOW")).toBe(false);
  });
});

describe("DS-10: a `state` parked while the alert lane was full, its newer heartbeat drained first", () => {
  const settings: DeviceSettings & Ds10Settings = { ...site, holdOpenMs: 600_000 };
  let seq = 0;
  const msg = (t: "state" | "hb", contact: "open" | "closed", tamper: boolean, bat: number): Ds10Sample => {
    const s = ds10.parse({ t, seq: ++seq, ts: 0, contact, tamper, bat });
    if (isRejection(s)) throw new Error(s.detail);
    return s;
  };
  /** The state message received first, the heartbeat (telemetry) next and drained first. */
  const reordered = async (g: ReturnType<typeof gateway>, state: Ds10Sample, hb: Ds10Sample) => {
    expect(ds10.lane(state)).toBe(LANE_ALERT);
    expect(ds10.lane(hb)).toBe(LANE_TELEMETRY);
    g.clock.advance(2000);
    const stateReceived = g.clock.monotonic();
    g.offer(LANE_TELEMETRY, hb);
    await tick();
    g.offerReceived(LANE_ALERT, state, stateReceived);
    await tick();
  };

  it("an older `open` does not reopen a door the newer heartbeat says is closed (no DOOR_HELD_OPEN)", async () => {
    const g = gateway(ds10, settings);
    g.offer(LANE_ALERT, msg("state", "closed", false, 80));
    await tick();
    await reordered(g, msg("state", "open", false, 80), msg("hb", "closed", false, 80));
    g.clock.advance(settings.holdOpenMs + 60_000);
    expect(g.transitions.filter((x) => x.code === "DOOR_HELD_OPEN")).toEqual([]);
  });

  it("an older low `bat` does not raise BATTERY_LOW over the newer reading", async () => {
    const g = gateway(ds10, settings);
    await reordered(g, msg("state", "open", false, 9), msg("hb", "open", false, 90));
    expect(g.transitions.filter((x) => x.code === "BATTERY_LOW")).toEqual([]);
  });

  it("an older `tamper` with the cover back on by the newer heartbeat: raised and cleared, as in order", async () => {
    const g = gateway(ds10, settings);
    await reordered(g, msg("state", "closed", true, 80), msg("hb", "closed", false, 80));
    expect(g.transitions.filter((x) => x.code === "TAMPER").map((x) => x.t)).toEqual(["raised", "cleared"]);
    expect(g.active("TAMPER")).toBe(false);
  });

  it("in the order received the same messages still raise DOOR_HELD_OPEN and TAMPER", async () => {
    const g = gateway(ds10, settings);
    g.offer(LANE_ALERT, msg("state", "open", true, 9));
    await tick();
    expect(g.active("TAMPER")).toBe(true);
    expect(g.active("BATTERY_LOW")).toBe(true);
    g.clock.advance(settings.holdOpenMs + 1000);
    expect(g.active("DOOR_HELD_OPEN")).toBe(true);
  });
});

describe("the rules see when a sample was read, not when it was drained (`ctx.readAt`)", () => {
  const tank = (level: number) => lv4Sample(level);

  it("LV-4: two polls a second apart drained in the same instant are a second apart for the jump filter", async () => {
    const g = gateway(lv4, { ...site, reserve: null } as DeviceSettings & Lv4Settings);
    const read = g.clock.monotonic();
    g.offerReceived(LANE_TELEMETRY, tank(3600), read);
    await tick();
    // 700 mm in the second between the polls: under the datasheet's 20 % of 4000 mm.
    g.offerReceived(LANE_TELEMETRY, tank(2900), read + 1000);
    await tick();
    expect(g.published.map((m) => JSON.parse(m).levelSuspect.value)).toEqual([false, false]);
  });
});
