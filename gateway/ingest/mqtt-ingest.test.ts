/** Device uplink ingest: a re-send is never acknowledged before its original is kept. */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { validateConfig } from "../config/load.js";
import { RateLimitedLog } from "../log.js";
import { type Completion, type PipelineEntry, PriorityPipeline } from "../pipeline/lanes.js";
import { type DeviceEntry, Registry } from "../registry.js";
import { Counters } from "../stats.js";
import { MqttIngest } from "./mqtt-ingest.js";

function setup() {
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
    new RateLimitedLog(pino({ level: "silent" })),
    clock,
  );
  const press = (seq: number) =>
    Buffer.from(JSON.stringify({ t: "evt", evt: "press", seq, ts: 1_700_000_000, bat: 90, rssi: -60 }));
  const commitAll = () => {
    for (const [batch] of held.splice(0)) for (const done of batch) done(null);
  };
  return { ingest, device, press, processed, held, commitAll };
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
});
