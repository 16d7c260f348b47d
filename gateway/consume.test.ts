/**
 * The consume step behind the real pipeline: each drain handles P1 before the alert lane, so an
 * older alert-lane entry of a device can run after a newer P1 one. Rules that read a whole state
 * (a poll, a declared snapshot) must not be moved back by it; GD-2 keeps its messages in one lane.
 */
import { describe, expect, it } from "vitest";
import { FakeClock } from "../core/clock.js";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY, SiteTime } from "../core/index.js";
import { deviceSchema } from "../devices/config.js";
import { compileProfile, type DeclaredSettings } from "../devices/declared/compile.js";
import { declaredProfileSchema } from "../devices/declared/schema.js";
import { type Gd2Settings, type Gd2State, gd2 } from "../devices/gd2.js";
import { type Mfs8Sample, type Mfs8Settings, mfs8, STATUS } from "../devices/mfs8.js";
import type { AnyProfile, DeviceSettings, MqttDeviceProfile } from "../devices/profile.js";
import { isRejection } from "../devices/profile.js";
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
const site: DeviceSettings = {
  heartbeatIntervalMs: 0,
  pollIntervalMs: 2000,
  emergencyCallWindowMs: 60_000,
  batteryLowPercent: 15,
  batteryClearPercent: 20,
  contactDebounceMs: 200,
  siteTime: new SiteTime("Asia/Shanghai"),
};

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
  const parts = {
    clock,
    counters: new Counters(),
    supervisor: { seen: () => {}, activity: () => {} },
    engine,
    ruleContext: new DeviceRuleContext<DeviceEntry>(() => false),
    rateLog: { warn: () => {} },
    publisher: { telemetry: () => {} },
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
  return { device, offer, offerReceived, clock, active, transitions, superseded };
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
