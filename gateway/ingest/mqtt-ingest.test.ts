/** Device uplink ingest: a re-send is never acknowledged before its original is kept. */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { LANE_ALERT, LANE_P1, LANE_TELEMETRY, type LaneId } from "../../core/index.js";
import { DeviceRateLimiter, type Misbehaviour, OVER_ALERT_SHARE, OVER_P1_SHARE } from "../broker/rate.js";
import { validateConfig } from "../config/load.js";
import { gateIngest } from "../device-rate.js";
import { RateLimitedLog } from "../log.js";
import { type Completion, type PipelineEntry, PriorityPipeline } from "../pipeline/lanes.js";
import { type DeviceEntry, Registry } from "../registry.js";
import { Counters } from "../stats.js";
import {
  LanesFullError,
  MAX_ALERT_PARKED_PER_DEVICE,
  MAX_P1_HELD_PER_DEVICE,
  MqttIngest,
} from "./mqtt-ingest.js";

function setup(opts: { maxParked?: number; log?: RateLimitedLog } = {}) {
  const config = validateConfig(
    { site: { id: "s" }, devices: [{ id: "p-1", model: "ec200", password: "x" }] },
    "test",
    {},
  );
  const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
  const device = registry.devices.get("p-1") as DeviceEntry;
  // The committer holds the batch, like the journal's group sync in progress.
  const held: Array<[Completion[], number]> = [];
  const processed: unknown[] = [];
  const pipeline = new PriorityPipeline(
    { p1LaneSize: 8, alertLaneSize: 8, telemetryLaneSize: 8, telemetryBatch: 4 },
    (e: PipelineEntry) => processed.push(e.sample),
    (completions, count) => held.push([completions.slice(0, count), count]),
  );
  const clock = new FakeClock();
  const ingest = new MqttIngest(
    pipeline,
    new Counters(),
    opts.log ?? new RateLimitedLog(pino({ level: "silent" })),
    clock,
    opts.maxParked,
  );
  const press = (seq: number) =>
    Buffer.from(JSON.stringify({ t: "evt", evt: "press", seq, ts: 1_700_000_000, bat: 90, rssi: -60 }));
  const commitAll = () => {
    for (const [batch] of held.splice(0)) for (const done of batch) done(null);
  };
  return { ingest, device, press, processed, held, commitAll, pipeline };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("MqttIngest", () => {
  it("a re-send of an alert waiting for its commit is acknowledged only with the original", async () => {
    const { ingest, device, press, processed, held, commitAll } = setup();
    const acks: string[] = [];
    ingest.uplink(device, press(7), undefined, (err) => acks.push(err ? "error" : "original"));
    await tick();
    expect(processed).toHaveLength(1);
    expect(held).toHaveLength(1); // the commit of the batch is in progress
    ingest.uplink(device, press(7), undefined, (err) => acks.push(err ? "error" : "re-send"));
    await tick();
    expect(processed).toHaveLength(1); // not processed twice
    expect(acks).toEqual([]); // the re-send waits too
    commitAll();
    expect(acks).toEqual(["original", "re-send"]);
    // Once committed, a later re-send is acknowledged at once.
    ingest.uplink(device, press(7), undefined, (err) => acks.push(err ? "error" : "late re-send"));
    expect(acks).toEqual(["original", "re-send", "late re-send"]);
  });

  it("a re-send of a telemetry sample is acknowledged at once (telemetry does not wait for a commit)", () => {
    const { ingest, device } = setup();
    const hb = Buffer.from(JSON.stringify({ t: "hb", seq: 3, ts: 1_700_000_000, bat: 90, rssi: -60 }));
    const acks: string[] = [];
    ingest.uplink(device, hb, undefined, () => acks.push("hb"));
    ingest.uplink(device, hb, undefined, () => acks.push("hb again"));
    expect(acks).toEqual(["hb", "hb again"]);
  });

  it("under sustained overload the parking stays within its storage and keeps every alert, in order", async () => {
    const maxParked = 16;
    const { ingest, device, press, processed, commitAll, pipeline } = setup({ maxParked });
    const acks: number[] = [];
    const refused: number[] = [];
    let seq = 0;
    const send = () => {
      const s = ++seq;
      ingest.uplink(device, press(s), undefined, (err) => (err ? refused : acks).push(s));
    };
    // Fill the P1 lane (8) and part of the parking, then each turn send as many as a drain takes,
    // so the parking is never emptied: 2,000 turns put 16,000 alerts through it.
    for (let i = 0; i < 8 + 12; i++) send();
    for (let turn = 0; turn < 2_000; turn++) {
      // One drain of the lane (synchronous, so input and drain interleave turn by turn):
      // the parking refills the lane and is left with 4.
      pipeline.drainAll();
      commitAll();
      expect(ingest.parkedCount).toBeGreaterThan(0);
      // One parking per lane (P1, alert), each of maxParked.
      expect(ingest.parkedStorageSlots).toBeLessThanOrEqual(2 * maxParked);
      for (let i = 0; i < 8; i++) send();
    }
    for (let i = 0; i < 10 && processed.length < seq; i++) {
      await tick();
      commitAll();
    }
    expect(refused).toEqual([]);
    expect(ingest.parkedCount).toBe(0);
    const sent = Array.from({ length: seq }, (_, i) => i + 1);
    expect((processed as Array<{ seq: number }>).map((p) => p.seq)).toEqual(sent);
    expect(acks).toEqual(sent);
  });

  it("past the parking's bound an alert is refused (left with the device), not queued", async () => {
    const { ingest, device, press, processed, commitAll } = setup({ maxParked: 4 });
    const outcome = new Map<number, string>();
    for (let s = 1; s <= 14; s++)
      ingest.uplink(device, press(s), undefined, (err) => outcome.set(s, err ? err.name : "kept"));
    // 8 in the lane, 4 parked, 2 refused at once.
    expect(ingest.parkedCount).toBe(4);
    expect([outcome.get(13), outcome.get(14)]).toEqual(["Error", "Error"]);
    for (let i = 0; i < 5; i++) {
      await tick();
      commitAll();
    }
    expect(processed).toHaveLength(12);
    expect([...outcome.values()].filter((o) => o === "kept")).toHaveLength(12);
  });

  it("a flood of refused messages builds a log line only for the lines written", () => {
    class CountingLog extends RateLimitedLog {
      built = 0;
      override warn(key: string, reason: string, obj: object, msg: string): boolean {
        this.built++;
        return super.warn(key, reason, obj, msg);
      }
    }
    const log = new CountingLog(pino({ level: "silent" }));
    const { ingest, device } = setup({ log });
    const acks: Array<Error | null> = [];
    for (let i = 0; i < 1_000; i++)
      ingest.uplink(device, Buffer.from("{not json"), undefined, (e) => acks.push(e));
    expect(acks).toHaveLength(1_000);
    expect(acks.every((e) => e === null)).toBe(true); // refused, still acknowledged
    expect(log.built).toBe(1); // one line a minute per device and reason; 999 suppressed
  });
});

/**
 * Two EC-200s over a pipeline whose lanes say "full" on demand: which lane each sample is
 * offered to, and in what order.
 */
function twoPendants(maxParked = 4096) {
  const config = validateConfig(
    {
      site: { id: "s" },
      devices: [
        { id: "p-1", model: "ec200", password: "x" },
        { id: "p-2", model: "ec200", password: "x" },
      ],
    },
    "test",
    {},
  );
  const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
  const p1 = registry.devices.get("p-1") as DeviceEntry;
  const p2 = registry.devices.get("p-2") as DeviceEntry;
  const full = new Set<LaneId>();
  const offers: Array<{ lane: LaneId; device: string; evt: string; result: string }> = [];
  let onSpace = () => {};
  const pipeline = {
    offer(lane: LaneId, device: DeviceEntry, sample: { evt: string }) {
      const result = full.has(lane) ? "full" : "queued";
      offers.push({ lane, device: device.id, evt: sample.evt, result });
      return result;
    },
    onSpace(listener: () => void) {
      onSpace = listener;
    },
  } as unknown as PriorityPipeline;
  const ingest = new MqttIngest(
    pipeline,
    new Counters(),
    new RateLimitedLog(pino({ level: "silent" })),
    new FakeClock(),
    maxParked,
  );
  let seq = 0;
  const outcomes: Array<{ device: string; evt: string; err: string | null }> = [];
  const send = (device: DeviceEntry, evt: string) => {
    const payload = Buffer.from(
      JSON.stringify({ t: "evt", evt, seq: ++seq, ts: 1_700_000_000, bat: 90, rssi: -60 }),
    );
    ingest.uplink(device, payload, undefined, (err) =>
      outcomes.push({ device: device.id, evt, err: err ? err.constructor.name : null }),
    );
  };
  const queued = () => offers.filter((o) => o.result === "queued").map((o) => [o.lane, o.device, o.evt]);
  return { ingest, p1, p2, full, offers, outcomes, send, queued, space: () => onSpace() };
}

/** twoPendants' lanes, each sample sent with its own seq: what is offered and what is left, as `device/seq`. */
function seqPendants(maxParked: number) {
  const t = twoPendants(maxParked);
  const offered: Array<{ lane: LaneId; key: string; result: string }> = [];
  const pipeline = (t.ingest as unknown as { pipeline: PriorityPipeline }).pipeline;
  const offer = pipeline.offer.bind(pipeline);
  pipeline.offer = (lane, device, sample, ...rest) => {
    const result = offer(lane, device, sample, ...rest);
    offered.push({ lane, key: `${(device as DeviceEntry).id}/${(sample as { seq: number }).seq}`, result });
    return result;
  };
  const left: string[] = [];
  const sendSeq = (device: DeviceEntry, evt: string, seq: number) =>
    t.ingest.uplink(
      device,
      Buffer.from(JSON.stringify({ t: "evt", evt, seq, ts: 1_700_000_000, bat: 90, rssi: -60 })),
      undefined,
      (err) => {
        if (err) left.push(`${device.id}/${seq}`);
      },
    );
  const queuedSeqs = () => offered.filter((o) => o.result === "queued").map((o) => o.key);
  return { ...t, sendSeq, left, queuedSeqs };
}

describe("MqttIngest parking, one per lane", () => {
  it("a press goes to the P1 lane at once while P2 samples wait in the alert parking", () => {
    const { ingest, p1, p2, full, offers, send } = twoPendants();
    full.add(LANE_ALERT);
    send(p2, "low_battery");
    send(p1, "press");
    expect(offers.map((o) => [o.lane, o.evt, o.result])).toEqual([
      [LANE_ALERT, "low_battery", "full"],
      [LANE_P1, "press", "queued"],
    ]);
    expect(ingest.parkedCount).toBe(1);
    expect(ingest.parkedIn(LANE_ALERT)).toBe(1);
  });

  it("when the lanes gain space the P1 parking is drained first, the alert parking on its own", () => {
    const { ingest, p1, p2, full, send, queued, space } = twoPendants();
    full.add(LANE_ALERT);
    full.add(LANE_P1);
    send(p2, "low_battery");
    send(p2, "low_battery");
    send(p1, "press");
    expect([ingest.parkedIn(LANE_P1), ingest.parkedIn(LANE_ALERT)]).toEqual([1, 2]);
    // Space in the alert lane only: the alert parking goes on although P1 is still full.
    full.delete(LANE_ALERT);
    space();
    expect(queued()).toEqual([
      [LANE_ALERT, "p-2", "low_battery"],
      [LANE_ALERT, "p-2", "low_battery"],
    ]);
    full.add(LANE_ALERT);
    send(p2, "low_battery");
    // Space in both: the press, parked after the low battery, is offered first.
    full.clear();
    space();
    expect(queued().slice(2)).toEqual([
      [LANE_P1, "p-1", "press"],
      [LANE_ALERT, "p-2", "low_battery"],
    ]);
    expect(ingest.parkedCount).toBe(0);
  });

  it("a full alert parking never refuses a P1", () => {
    const { ingest, p1, p2, full, outcomes, send } = twoPendants(2);
    full.add(LANE_ALERT);
    for (let i = 0; i < 3; i++) send(p2, "low_battery");
    expect(outcomes).toEqual([{ device: "p-2", evt: "low_battery", err: LanesFullError.name }]);
    send(p1, "press"); // P1 lane has room: queued
    full.add(LANE_P1);
    send(p1, "fall"); // P1 lane full: parked in the P1 parking, not refused
    expect(outcomes).toHaveLength(1);
    expect([ingest.parkedIn(LANE_P1), ingest.parkedIn(LANE_ALERT)]).toEqual([1, 2]);
  });

  it("one device parks at most MAX_ALERT_PARKED_PER_DEVICE alert samples: its P1 cannot take more along into the P1 parking", () => {
    const { ingest, p1, p2, full, outcomes, send } = twoPendants();
    full.add(LANE_ALERT);
    full.add(LANE_P1);
    for (let i = 0; i < MAX_ALERT_PARKED_PER_DEVICE + 10; i++) send(p2, "low_battery");
    expect(ingest.parkedIn(LANE_ALERT)).toBe(MAX_ALERT_PARKED_PER_DEVICE);
    expect(outcomes).toHaveLength(10);
    expect(outcomes.every((o) => o.device === "p-2" && o.err === LanesFullError.name)).toBe(true);
    // Its press takes the capped backlog along; another pendant's press still parks beside it.
    send(p2, "press");
    send(p1, "press");
    expect(ingest.parkedIn(LANE_P1)).toBe(MAX_ALERT_PARKED_PER_DEVICE + 2);
    expect(outcomes).toHaveLength(10);
  });

  it("a device's P1 takes its own parked P2 samples along, ahead of it, and nobody else's", () => {
    const { ingest, p1, p2, full, send, queued, space } = twoPendants();
    full.add(LANE_ALERT);
    send(p2, "low_battery");
    send(p1, "low_battery");
    send(p1, "press");
    expect(queued()).toEqual([
      [LANE_P1, "p-1", "low_battery"],
      [LANE_P1, "p-1", "press"],
    ]);
    expect(ingest.parkedCount).toBe(1);
    full.clear();
    space();
    // The copy left behind in the alert parking is not offered a second time.
    expect(queued().slice(2)).toEqual([[LANE_ALERT, "p-2", "low_battery"]]);
    expect(ingest.parkedCount).toBe(0);
  });

  it("a device's P2 sample waits behind its own P1 samples parked in the P1 parking", () => {
    const { ingest, p1, p2, full, send, queued, space } = twoPendants();
    full.add(LANE_P1);
    send(p1, "press");
    send(p1, "low_battery"); // the alert lane has room, but p-1's press is parked
    send(p2, "low_battery"); // another device's P2 is not held
    expect(queued()).toEqual([[LANE_ALERT, "p-2", "low_battery"]]);
    full.clear();
    space();
    expect(queued().slice(1)).toEqual([
      [LANE_P1, "p-1", "press"],
      [LANE_P1, "p-1", "low_battery"],
    ]);
    expect(ingest.parkedCount).toBe(0);
  });

  it("a P1 taking its device's parked samples along into a P1 parking that fills: none of them is overtaken by it", () => {
    // Parkings of 4; the P1 lane and the alert lane full. p-1's presses hold 3 of the P1 parking.
    const { ingest, p1, p2, full, space, sendSeq, left, queuedSeqs } = seqPendants(4);
    full.add(LANE_P1);
    full.add(LANE_ALERT);
    for (let seq = 1; seq <= 3; seq++) sendSeq(p1, "press", seq);
    for (let seq = 1; seq <= 3; seq++) sendSeq(p2, "low_battery", seq);
    expect([ingest.parkedIn(LANE_P1), ingest.parkedIn(LANE_ALERT)]).toEqual([3, 3]);
    // p-2's press takes its three along: the first takes the last slot, the other two are left with
    // p-2, and so is the press (the parking still full). Had the press gone in, the rules would see
    // it before p-2's low batteries 2 and 3, sent again later and then taken in as new (the
    // consumer's ctx.stale/superseded cannot tell: a re-send is a new receipt).
    sendSeq(p2, "press", 4);
    expect(left).toEqual(["p-2/2", "p-2/3", "p-2/4"]);
    full.clear();
    space();
    expect(queuedSeqs()).toEqual(["p-1/1", "p-1/2", "p-1/3", "p-2/1"]);
    // p-2 sends again what was left with it, in its order: behind what was kept, in that order.
    for (let seq = 2; seq <= 3; seq++) sendSeq(p2, "low_battery", seq);
    sendSeq(p2, "press", 4);
    expect(queuedSeqs().slice(4)).toEqual(["p-2/2", "p-2/3", "p-2/4"]);
  });

  it("a P1 whose device's parked samples find the P1 parking already full is left with them", () => {
    const { ingest, p1, p2, full, sendSeq, left } = seqPendants(2);
    full.add(LANE_P1);
    full.add(LANE_ALERT);
    sendSeq(p1, "press", 1);
    sendSeq(p1, "press", 2);
    sendSeq(p2, "low_battery", 1);
    sendSeq(p2, "press", 2);
    expect(left).toEqual(["p-2/1", "p-2/2"]);
    expect([ingest.parkedIn(LANE_P1), ingest.parkedIn(LANE_ALERT)]).toEqual([2, 0]);
  });

  it("slots held by samples taken along to P1 are freed when the alert parking fills", () => {
    const { ingest, p1, p2, full, outcomes, send } = twoPendants(2);
    full.add(LANE_ALERT);
    send(p1, "low_battery");
    send(p1, "press"); // takes the low battery along: its slot in the alert parking is dead
    send(p2, "low_battery");
    send(p2, "low_battery");
    expect(outcomes).toEqual([]);
    expect(ingest.parkedIn(LANE_ALERT)).toBe(2);
  });
});

/**
 * EC-200s over a real pipeline whose P1 lane (64) holds two devices' shares and whose committer
 * holds every batch (a group sync in progress) until drain().
 */
function floodAndPress() {
  const ids = ["flood", "press", "other"];
  const config = validateConfig(
    { site: { id: "s" }, devices: ids.map((id) => ({ id, model: "ec200", password: "x" })) },
    "test",
    {},
  );
  const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
  const [flooder, presser, other] = ids.map((id) => registry.devices.get(id) as DeviceEntry) as [
    DeviceEntry,
    DeviceEntry,
    DeviceEntry,
  ];
  const held: Completion[] = [];
  const processed: Array<{ device: string; seq: number }> = [];
  const pipeline = new PriorityPipeline(
    { p1LaneSize: 64, alertLaneSize: 64, telemetryLaneSize: 64, telemetryBatch: 4 },
    (e: PipelineEntry) =>
      processed.push({ device: (e.device as DeviceEntry).id, seq: (e.sample as { seq: number }).seq }),
    (completions, count) => held.push(...completions.slice(0, count)),
  );
  const counters = new Counters();
  const clock = new FakeClock();
  const ingest = new MqttIngest(pipeline, counters, new RateLimitedLog(pino({ level: "silent" })), clock, 64);
  /** Per device and seq, what each sending got: "acked", or the error's class (left with the device). */
  const outcomes = new Map<string, string[]>();
  const send = (device: DeviceEntry, seq: number, evt = "press") => {
    const payload = Buffer.from(
      JSON.stringify({ t: "evt", evt, seq, ts: 1_700_000_000, bat: 90, rssi: -60 }),
    );
    const key = `${device.id}/${seq}`;
    ingest.uplink(device, payload, undefined, (err) => {
      const list = outcomes.get(key) ?? [];
      list.push(err ? err.constructor.name : "acked");
      outcomes.set(key, list);
    });
  };
  const acked = (device: DeviceEntry, seq: number) => outcomes.get(`${device.id}/${seq}`)?.includes("acked");
  const drain = async () => {
    await tick();
    for (const done of held.splice(0)) done(null);
  };
  return {
    ingest,
    pipeline,
    counters,
    clock,
    flooder,
    presser,
    other,
    processed,
    outcomes,
    send,
    acked,
    drain,
  };
}

describe("MqttIngest: one device's share of the P1 path", () => {
  it("a device flooding P1 holds at most MAX_P1_HELD_PER_DEVICE; another device's press is taken in at once, ahead of the flood's rest, and nothing is lost", async () => {
    const { ingest, pipeline, counters, flooder, presser, processed, outcomes, send, acked, drain } =
      floodAndPress();
    // A fire panel in alarm gone wrong: 200 P1 messages in one socket read, more than the P1 lane
    // (64) and its parking (64) together, before the consumer runs.
    const flood = 200;
    for (let seq = 1; seq <= flood; seq++) send(flooder, seq);
    // Meanwhile another pendant's press: straight into the P1 lane, not parked, not refused.
    send(presser, 1);
    expect(outcomes.get("press/1")).toBeUndefined(); // waiting for its commit
    expect(ingest.parkedCount).toBe(0);
    expect(pipeline.stats().p1.occupancy).toBe(MAX_P1_HELD_PER_DEVICE + 1);
    expect(flooder.p1Queued).toBe(MAX_P1_HELD_PER_DEVICE);
    // The rest is left with the device: not acknowledged (its connection is closed), re-sent later.
    const deferred = flood - MAX_P1_HELD_PER_DEVICE;
    expect(counters.rejected("ec200", "p1-device-limit")).toBe(deferred);
    // What linli_rejections_total{model="ec200"} exports.
    expect(counters.snapshot().rejections.ec200).toEqual({ "p1-device-limit": deferred });
    expect([...outcomes.values()].filter((o) => o[0] === LanesFullError.name)).toHaveLength(deferred);
    await drain();
    expect(outcomes.get("press/1")).toEqual(["acked"]);
    expect(flooder.p1Queued).toBe(0);

    // The flooder's connection comes back and re-sends what was not acknowledged, in order, each
    // time as much as it sent (the bound takes its share again) until all are acknowledged.
    for (let round = 0; round < 20; round++) {
      const unacked = Array.from({ length: flood }, (_, i) => i + 1).filter((seq) => !acked(flooder, seq));
      if (unacked.length === 0) break;
      for (const seq of unacked) send(flooder, seq);
      await drain();
    }
    // Nothing lost, nothing twice, the flooder's messages in its order, and the press ahead of
    // every message of the flood that had to be re-sent.
    const flooded = processed.filter((p) => p.device === "flood").map((p) => p.seq);
    expect(flooded).toEqual(Array.from({ length: flood }, (_, i) => i + 1));
    const pressAt = processed.findIndex((p) => p.device === "press");
    expect(pressAt).toBe(MAX_P1_HELD_PER_DEVICE);
    expect(processed.slice(pressAt + 1).map((p) => p.seq)).toEqual(
      Array.from({ length: deferred }, (_, i) => MAX_P1_HELD_PER_DEVICE + 1 + i),
    );
    for (let seq = 1; seq <= flood; seq++) expect(acked(flooder, seq)).toBe(true);
    expect(counters.rejected("ec200", "duplicate-seq")).toBe(0);
    expect(ingest.parkedCount).toBe(0);
  });

  it("the flood's refused messages do not push those kept out of the device's seq window: when it sends all again, each is handled once", async () => {
    const { counters, flooder, processed, send, acked, drain } = floodAndPress();
    for (let seq = 1; seq <= 200; seq++) send(flooder, seq);
    await drain();
    // Its connection was closed by the first refusal, before the commit of those kept: no PUBACK
    // reached it, so it sends everything again (the seq window is 32, the share 32).
    for (let round = 0; round < 20 && processed.length < 200; round++) {
      for (let seq = 1; seq <= 200; seq++) if (round === 0 || !acked(flooder, seq)) send(flooder, seq);
      await drain();
    }
    expect(processed.map((p) => p.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(counters.rejected("ec200", "duplicate-seq")).toBe(MAX_P1_HELD_PER_DEVICE);
  });

  it("the share counts the device's P1 parking too, and an alert sample that would wait there", async () => {
    const { ingest, pipeline, counters, flooder, presser, other, outcomes, send, acked, drain } =
      floodAndPress();
    // Two devices at their share fill the P1 lane (64), so the flooder's presses are parked.
    for (let seq = 1; seq <= MAX_P1_HELD_PER_DEVICE; seq++) send(presser, seq);
    for (let seq = 1; seq <= MAX_P1_HELD_PER_DEVICE; seq++) send(other, seq);
    expect(pipeline.stats().p1.occupancy).toBe(64);
    for (let seq = 1; seq <= 40; seq++) send(flooder, seq);
    expect(ingest.parkedIn(LANE_P1)).toBe(MAX_P1_HELD_PER_DEVICE);
    expect(counters.rejected("ec200", "p1-device-limit")).toBe(40 - MAX_P1_HELD_PER_DEVICE);
    // Its low battery would wait behind its parked presses in the P1 parking: left with it too.
    send(flooder, 41, "low_battery");
    expect(outcomes.get("flood/41")).toEqual([LanesFullError.name]);
    expect(ingest.parkedIn(LANE_P1)).toBe(MAX_P1_HELD_PER_DEVICE);
    await drain();
    await drain();
    for (let seq = 1; seq <= MAX_P1_HELD_PER_DEVICE; seq++) expect(acked(flooder, seq)).toBe(true);
    expect(flooder.p1Queued + ingest.parkedIn(LANE_P1)).toBe(0);
  });

  it("a device kept over its share is DEVICE_MISBEHAVING (over its P1 share) after misbehavingAfter, cleared after clearAfter without", async () => {
    const { ingest, clock, counters, flooder, presser, send, acked, drain } = floodAndPress();
    const reports: Array<[string, Misbehaviour]> = [];
    const limiter = new DeviceRateLimiter(
      { enabled: true, models: {}, misbehavingAfter: 60_000, clearAfter: 300_000 },
      { misbehaving: (id, m) => reports.push([id, m]) },
    );
    gateIngest(ingest, limiter, clock);
    // Every 5 s the flooder comes back (its connection closed at the refusals) and sends again
    // what was not acknowledged, with new presses, 100 in all; a resident presses now and then.
    let next = 1;
    const round = async () => {
      const unacked = Array.from({ length: next - 1 }, (_, i) => i + 1).filter((seq) => !acked(flooder, seq));
      for (const seq of unacked) send(flooder, seq);
      for (let fresh = 100 - unacked.length; fresh > 0; fresh--) send(flooder, next++);
      await drain();
    };
    for (let t = 0; t < 60_000; t += 5_000) {
      await round();
      if (t % 20_000 === 0) send(presser, t / 20_000 + 1);
      clock.advance(5_000);
    }
    expect(counters.rejected("ec200", "p1-device-limit")).toBeGreaterThan(0);
    expect(reports).toEqual([]);
    await round(); // 60 s after the first refusal, still over
    expect(reports).toEqual([
      ["flood", { over: [OVER_P1_SHARE], dropped: 0, deferred: expect.any(Number), deferredAlerts: 0 }],
    ]);
    // The resident's presses were taken in at once all along: nothing of theirs is reported.
    for (let seq = 1; seq <= 3; seq++) expect(acked(presser, seq)).toBe(true);
    // It stops flooding: what it still holds is taken in, and clearAfter later the alert clears.
    for (let i = 0; i < 20; i++) {
      const unacked = Array.from({ length: next - 1 }, (_, k) => k + 1).filter((seq) => !acked(flooder, seq));
      if (unacked.length === 0) break;
      for (const seq of unacked.slice(0, MAX_P1_HELD_PER_DEVICE)) send(flooder, seq);
      await drain();
    }
    for (let seq = 1; seq < next; seq++) expect(acked(flooder, seq)).toBe(true);
    clock.advance(299_000);
    limiter.sweep(clock.monotonic());
    expect(reports).toHaveLength(1);
    clock.advance(1_000);
    limiter.sweep(clock.monotonic());
    expect(reports[1]).toEqual(["flood", { over: [], dropped: 0, deferred: 0, deferredAlerts: 0 }]);
  });
});

/**
 * Declared gas detectors behind a real pipeline whose consumer never runs (the rules never see
 * what is sent, as when the pipeline is behind); `lanes` lists the lane of every offer.
 */
function declaredGas(site: Record<string, unknown>) {
  const config = validateConfig({ site: { id: "s" }, ...site }, "test", {});
  const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
  const pipeline = new PriorityPipeline(
    { p1LaneSize: 8, alertLaneSize: 8, telemetryLaneSize: 8, telemetryBatch: 4 },
    () => {},
    () => {},
  );
  const lanes: LaneId[] = [];
  const offer = pipeline.offer.bind(pipeline);
  pipeline.offer = (lane, ...rest) => {
    lanes.push(lane);
    return offer(lane, ...rest);
  };
  const ingest = new MqttIngest(
    pipeline,
    new Counters(),
    new RateLimitedLog(pino({ level: "silent" })),
    new FakeClock(),
  );
  /** The lane `payload` was offered to, or "not offered". */
  const send = (id: string, payload: object) => {
    const before = lanes.length;
    ingest.uplink(
      registry.devices.get(id) as DeviceEntry,
      Buffer.from(JSON.stringify(payload)),
      undefined,
      () => {},
    );
    return lanes.length > before ? lanes.at(-1) : "not offered";
  };
  return { send };
}

describe("MqttIngest: a declared profile's threshold alarm", () => {
  it("lanes a reading by the device's own setting and what the rules hold: P1 beyond, the alert lane back", () => {
    const { send: sendRaw } = declaredGas({
      deviceProfiles: [
        {
          model: "acme-gas",
          transport: "mqtt",
          mqtt: { uplink: "acme/{id}/up", fields: [{ name: "gas", path: "gas", type: "number" }] },
          settings: { gasHigh: { default: 50 } },
          alarms: [
            {
              code: "GAS_HIGH",
              priority: 1,
              when: { point: "gas", above: { setting: "gasHigh" }, deadband: 5 },
            },
          ],
        },
      ],
      devices: [
        { id: "gas-1", model: "acme-gas", password: "x" },
        { id: "gas-2", model: "acme-gas", password: "x", settings: { gasHigh: 80 } },
      ],
    });
    const send = (id: string, gas: number) => sendRaw(id, { gas });
    expect(send("gas-1", 30)).toBe(LANE_TELEMETRY);
    expect(send("gas-1", 60)).toBe(LANE_P1);
    expect(send("gas-2", 60)).toBe(LANE_TELEMETRY); // its own limit, 80
    expect(send("gas-2", 81)).toBe(LANE_P1);
    expect(send("gas-1", 40)).toBeLessThanOrEqual(LANE_ALERT); // back: the clear
    expect(send("gas-1", 40)).toBe(LANE_TELEMETRY);
  });

  it("a re-sent duplicate does not move the lane's memory: the next clear still leaves telemetry", () => {
    const { send: sendRaw } = declaredGas({
      deviceProfiles: [
        {
          model: "acme-gas",
          transport: "mqtt",
          mqtt: {
            uplink: "acme/{id}/up",
            seq: "seq",
            fields: [{ name: "gas", path: "gas", type: "number" }],
          },
          alarms: [{ code: "GAS_HIGH", priority: 1, when: { point: "gas", above: 50, deadband: 5 } }],
        },
      ],
      devices: [{ id: "gas-1", model: "acme-gas", password: "x" }],
    });
    const send = (seq: number, gas: number) => sendRaw("gas-1", { seq, gas });
    expect(send(1, 60)).toBe(LANE_P1); // beyond: held
    expect(send(2, 40)).toBe(LANE_ALERT); // back across the deadband: the clear
    expect(send(3, 60)).toBe(LANE_P1); // beyond again
    // A late re-send of seq 2 (its PUBACK not yet out) is a duplicate: it must not count as a
    // reading, or it would mark the alarm back and the next clear would ride the telemetry lane.
    expect(send(2, 40)).toBe("not offered");
    expect(send(4, 42)).toBe(LANE_ALERT);
  });
});

describe("MqttIngest: one device's share of the alert lane's parking", () => {
  it("a device kept over it is DEVICE_MISBEHAVING (over its alert-lane share) whatever its model: a GD-2, which has no rate", () => {
    const config = validateConfig(
      { site: { id: "s" }, devices: [{ id: "k-1", model: "gd2", password: "x" }] },
      "test",
      {},
    );
    const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
    const gas = registry.devices.get("k-1") as DeviceEntry;
    // The alert lane stays full (the gateway far behind): the detector's replies park, then are left with it.
    const pipeline = {
      offer: (lane: LaneId) => (lane === LANE_ALERT ? "full" : "queued"),
      onSpace() {},
    } as unknown as PriorityPipeline;
    const counters = new Counters();
    const clock = new FakeClock();
    const ingest = new MqttIngest(pipeline, counters, new RateLimitedLog(pino({ level: "silent" })), clock);
    const reports: Array<[string, Misbehaviour]> = [];
    const limiter = new DeviceRateLimiter(
      { enabled: true, models: {}, misbehavingAfter: 60_000, clearAfter: 300_000 },
      { misbehaving: (id, m) => reports.push([id, m]) },
    );
    expect(limiter.rateOf("gd2")).toBeUndefined();
    gateIngest(ingest, limiter, clock);
    let seq = 0;
    const reply = () =>
      ingest.uplink(
        gas,
        Buffer.from(
          JSON.stringify({ t: "reply", seq: ++seq, ts: 1, id: `r${seq}`, cmd: "self_test", result: "ok" }),
        ),
        undefined,
        () => {},
      );
    // Every 5 s it comes back (its connection closed at the refusals) with 100 more replies.
    for (let t = 0; t < 60_000; t += 5_000) {
      for (let i = 0; i < 100; i++) reply();
      clock.advance(5_000);
    }
    expect(ingest.parkedIn(LANE_ALERT)).toBe(MAX_ALERT_PARKED_PER_DEVICE);
    expect(counters.rejected("gd2", "deferred-to-device")).toBe(12 * 100 - MAX_ALERT_PARKED_PER_DEVICE);
    expect(reports).toEqual([]);
    reply(); // 60 s after the first refusal, still over
    expect(reports).toEqual([
      [
        "k-1",
        {
          over: [OVER_ALERT_SHARE],
          dropped: 0,
          deferred: 0,
          deferredAlerts: 12 * 100 - MAX_ALERT_PARKED_PER_DEVICE + 1,
        },
      ],
    ]);
    // Nothing more left with it for clearAfter: the alert clears.
    clock.advance(300_000);
    limiter.sweep(clock.monotonic());
    expect(reports[1]).toEqual(["k-1", { over: [], dropped: 0, deferred: 0, deferredAlerts: 0 }]);
  });
});
