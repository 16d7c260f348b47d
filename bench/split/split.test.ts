import { existsSync } from "node:fs";
import { encode } from "cbor-x";
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { SpscRing } from "../../core/spsc-ring.js";
import { bufferOf, LaneWriter } from "./lanes.js";
import {
  LANE_P1,
  LANE_TELEMETRY,
  laneOf,
  northRecordLength,
  parseUplinkTopic,
  pipeline,
  readNorth,
  uplinkRecordLength,
  writeNorth,
  writeUplink,
} from "./stand-in.js";

function run(model: number, id: string, payload: Buffer) {
  const buf = Buffer.alloc(256);
  writeUplink(buf, 8, model, id, payload);
  return pipeline(buf, 8, uplinkRecordLength(id, payload), "s1");
}

describe("bench/split stand-in pipeline", () => {
  it("parses device topics", () => {
    expect(parseUplinkTopic("devices/ec200/ec200-0001/up")).toEqual([0, "ec200-0001"]);
    expect(parseUplinkTopic("devices/ds10/x/up")).toEqual([1, "x"]);
    expect(parseUplinkTopic("devices/zz/x/up")).toBeNull();
    expect(parseUplinkTopic("linli/x")).toBeNull();
  });

  it("decodes JSON and CBOR (uint64 ts as bigint), picks the lane, keeps seq", () => {
    const press = Buffer.from('{"t":"evt","seq":7,"ts":1764700000000,"evt":"press","bat":90,"rssi":-70}');
    expect(laneOf(press)).toBe(LANE_P1);
    const n = run(0, "p1", press);
    expect(n?.lane).toBe(LANE_P1);
    expect(n?.topic).toBe("north/ec200/p1/up");
    expect(JSON.parse(n?.payload ?? "")).toMatchObject({ seq: 7, deviceTime: 1764700000000, priority: "P1" });
    const hb = encode({ t: "hb", seq: 8, ts: 2n ** 40n, contact: "open", tamper: false, bat: 80 });
    expect(laneOf(hb)).toBe(LANE_TELEMETRY);
    const m = run(1, "d1", hb);
    expect(m?.lane).toBe(LANE_TELEMETRY);
    expect(JSON.parse(m?.payload ?? "")).toMatchObject({ seq: 8, deviceTime: 2 ** 40, contact: "open" });
    expect(run(0, "x", Buffer.from("{not json"))).toBeNull();
  });

  it("northbound records round-trip through a ring", () => {
    const r = SpscRing.create(1024);
    const n = { lane: 0, topic: "north/ec200/a/up", payload: '{"seq":1,"é":1}' };
    const at = r.tryClaim(0, northRecordLength(n));
    writeNorth(bufferOf(r), at, n);
    r.publish();
    r.drain(10, (_t, _b, o, l) => {
      const back = readNorth(bufferOf(r), o, l);
      expect(back.topic).toBe(n.topic);
      expect(back.payload.toString()).toBe(n.payload);
    });
  });

  it("LaneWriter holds records (and their completions) in order while a ring is full", () => {
    const rings = [SpscRing.create(64), SpscRing.create(64)];
    const w = new LaneWriter(rings);
    const done: number[] = [];
    for (let i = 0; i < 8; i++)
      w.offer(
        1,
        8,
        (b, at) => b.writeUInt32LE(i, at),
        () => done.push(i),
      );
    expect(done).toEqual([0, 1, 2, 3, 4]); // 12-byte records: 5 fit
    expect(w.holding).toBe(true);
    w.offer(
      0,
      8,
      (b, at) => b.writeUInt32LE(100, at),
      () => done.push(100),
    ); // the P1 lane has room
    expect(done.at(-1)).toBe(100);
    const got: number[] = [];
    rings[1]?.drain(3, (_t, b, o) => got.push(Buffer.from(b.buffer, b.byteOffset).readUInt32LE(o)));
    expect(w.flush()).toBe(true);
    rings[1]?.drain(10, (_t, b, o) => got.push(Buffer.from(b.buffer, b.byteOffset).readUInt32LE(o)));
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(done).toEqual([0, 1, 2, 3, 4, 100, 5, 6, 7]);
    expect(w.heldCount).toBe(3);
  });
});

// The designs with a worker need the built workers (dist/, `npm run build`; `npm test` builds first).
const built = new URL("../../dist/bench/split/servers.js", import.meta.url);
describe.runIf(existsSync(built))("bench/split designs end to end (built code)", () => {
  for (const mode of [
    "inline",
    "worker-pipeline",
    "worker-io",
    "worker-io-decode",
    "worker-relay",
  ] as const) {
    it(`${mode}: every P1 and telemetry message comes out, then everything stops`, async () => {
      const { startSplit } = (await import(built.href)) as typeof import("./servers.js");
      const s = await startSplit(mode, "s1");
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${s.northPort}`, { protocolVersion: 4 });
      const dev = await mqtt.connectAsync(`mqtt://127.0.0.1:${s.port}`, { protocolVersion: 4 });
      try {
        await sub.subscribeAsync("north/+/+/up", { qos: 1 });
        let p1 = 0;
        let tel = 0;
        sub.on("message", (_t, p) => (p.includes("EMERGENCY_CALL") ? p1++ : tel++));
        const sends: Promise<unknown>[] = [];
        for (let i = 1; i <= 500; i++) {
          const body =
            i % 10 === 0
              ? { t: "evt", seq: i, ts: 1, evt: "press", bat: 90, rssi: -70 }
              : { t: "hb", seq: i, ts: 1, bat: 90, rssi: -70 };
          sends.push(dev.publishAsync("devices/ec200/e1/up", JSON.stringify(body), { qos: 1 }));
        }
        await Promise.all(sends); // every QoS 1 uplink was acknowledged
        const until = Date.now() + 5_000;
        while (p1 + tel < 500 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        expect([p1, tel]).toEqual([50, 450]);
      } finally {
        await dev.endAsync();
        await sub.endAsync();
        await s.stop();
      }
    });
  }
});
