import { PassThrough, Writable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Client } from "aedes";
import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { DirectFanout, MAX_CACHED_TOPICS, publishFrame, topicMatches } from "./direct-fanout.js";
import { SlowSubscribers, SUBSCRIBER_BACKLOG_BYTES } from "./operator-delivery.js";

describe("topicMatches (MQTT 3.1.1 §4.7)", () => {
  const cases: [string, string, boolean][] = [
    ["sport/tennis/player1/#", "sport/tennis/player1", true],
    ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
    ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
    ["sport/#", "sport", true],
    ["#", "sport/tennis", true],
    ["#", "$SYS/x", false],
    ["+/monitor", "$SYS/monitor", false],
    ["sport/tennis/+", "sport/tennis/player1", true],
    ["sport/tennis/+", "sport/tennis/player1/ranking", false],
    ["sport/+", "sport", false],
    ["sport/+", "sport/", true],
    ["+/+", "/finance", true],
    ["/+", "/finance", true],
    ["+", "/finance", false],
    ["+", "finance", true],
    ["linli/s1/telemetry/+/pd-1", "linli/s1/telemetry/ec200/pd-1", true],
    ["linli/s1/telemetry/+/pd-1", "linli/s1/telemetry/ec200/pd-10", false],
    ["linli/s1/telemetry/ec200/pd-10", "linli/s1/telemetry/ec200/pd-1", false],
    ["linli/s1/alerts/#", "linli/s1/telemetry/ec200/pd-1", false],
    ["linli/s1/+/ec200/#", "linli/s1/telemetry/ec200/pd-1", true],
    ["linli/s1", "linli/s1/telemetry", false],
    ["linli/s1/telemetry", "linli/s1", false],
    ["a/b/c", "a/b/c", true],
    ["a//c", "a//c", true],
    ["a/+/c", "a//c", true],
    ["a/+/c", "a/b", false],
  ];
  it.each(cases)("%s against %s: %s", (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe("publishFrame", () => {
  it.each([0, 1, 100, 127, 128, 16_383, 16_384, 70_000])(
    "is the bytes mqtt-packet writes for a QoS 0 PUBLISH (v3.1.1 and v5), payload of %i bytes",
    (size) => {
      const topic = "linli/s1/telemetry/ec200/阿姨-1";
      const payload = "x".repeat(Math.max(0, size - 3)) + (size >= 3 ? "é" : "").slice(0, size);
      const prefix = prefixOf(topic);
      const packet = {
        cmd: "publish",
        topic,
        payload: Buffer.from(payload),
        qos: 0,
        retain: false,
        dup: false,
      };
      expect(publishFrame(prefix, payload, 0)).toEqual(
        mqttPacket.generate(packet as mqttPacket.IPublishPacket),
      );
      expect(publishFrame(prefix, payload, 1)).toEqual(
        mqttPacket.generate(packet as mqttPacket.IPublishPacket, { protocolVersion: 5 }),
      );
    },
  );
});

interface FakeClient {
  id: string;
  conn: PassThrough | Writable;
  closed: boolean;
  connected: boolean;
  version: number;
  subscriptions: Record<string, unknown>;
}

function client(id: string, filters: string[], version = 4): FakeClient {
  const conn = new PassThrough({ highWaterMark: 1 << 30 });
  const subscriptions: Record<string, unknown> = {};
  for (const f of filters) subscriptions[f] = { qos: 1 };
  return { id, conn, closed: false, connected: true, version, subscriptions };
}

function packets(c: FakeClient, protocolVersion = 4): mqttPacket.Packet[] {
  const out: mqttPacket.Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion });
  parser.on("packet", (p) => out.push(p));
  const conn = c.conn as PassThrough;
  for (let chunk = conn.read(); chunk !== null; chunk = conn.read()) parser.parse(chunk);
  return out;
}

const asClient = (c: FakeClient) => c as unknown as Client;
function prefixOf(topic: string): Buffer {
  const prefix = Buffer.alloc(2 + Buffer.byteLength(topic));
  prefix.writeUInt16BE(Buffer.byteLength(topic), 0);
  prefix.write(topic, 2);
  return prefix;
}
const slow = () =>
  new SlowSubscribers(
    () => undefined,
    () => undefined,
  );

describe("DirectFanout", () => {
  const topic = "linli/s1/telemetry/ec200/pd-1";

  it("writes one copy to each operator whose filters match, none to the others, at the turn's end", async () => {
    const fanout = new DirectFanout(slow());
    const all = client("console", ["linli/s1/#", "linli/s1/telemetry/+/pd-1"]);
    const one = client("dash", ["linli/s1/telemetry/ec200/pd-1"]);
    const other = client("alerts", ["linli/s1/alerts/#"]);
    const v5 = client("v5", ["linli/s1/telemetry/#"], 5);
    for (const c of [all, one, other, v5]) fanout.add(asClient(c));
    fanout.publish(topic, '{"a":1}');
    fanout.publish(topic, '{"a":2}');
    expect(packets(all)).toEqual([]);
    await nextTurn();
    for (const c of [all, one]) {
      const got = packets(c);
      expect(got.map((p) => (p as mqttPacket.IPublishPacket).payload.toString())).toEqual([
        '{"a":1}',
        '{"a":2}',
      ]);
      expect(got[0]).toMatchObject({ cmd: "publish", topic, qos: 0, retain: false });
    }
    expect(packets(v5, 5).map((p) => (p as mqttPacket.IPublishPacket).payload.toString())).toEqual([
      '{"a":1}',
      '{"a":2}',
    ]);
    expect(packets(other)).toEqual([]);
    expect(fanout.writes).toBe(6);
  });

  it("follows subscription changes, closes and departures", async () => {
    const fanout = new DirectFanout(slow());
    const c = client("console", ["linli/s1/alerts/#"]);
    fanout.add(asClient(c));
    fanout.publish(topic, "1");
    c.subscriptions["linli/s1/telemetry/#"] = { qos: 0 };
    fanout.changed(asClient(c));
    fanout.publish(topic, "2");
    await nextTurn();
    c.connected = false; // CONNACK not yet sent, or gone
    fanout.publish(topic, "3");
    c.connected = true;
    delete c.subscriptions["linli/s1/telemetry/#"];
    fanout.changed(asClient(c));
    fanout.publish(topic, "4");
    c.subscriptions["#"] = { qos: 0 };
    fanout.changed(asClient(c));
    fanout.publish(topic, "5"); // queued, then the connection closes before the turn ends
    fanout.remove(asClient(c));
    fanout.publish(topic, "6");
    await nextTurn();
    expect(packets(c).map((p) => (p as mqttPacket.IPublishPacket).payload.toString())).toEqual(["2"]);
  });

  it("drops readings to an operator too far behind, counting what it holds back too", async () => {
    const counted = slow();
    const fanout = new DirectFanout(counted);
    const c = client("frozen", ["linli/s1/#"]);
    // A reader that stopped: nothing written is ever taken.
    c.conn = new Writable({ highWaterMark: 1 << 30, write: () => undefined });
    fanout.add(asClient(c));
    c.conn.write(Buffer.alloc(SUBSCRIBER_BACKLOG_BYTES - 500));
    const reading = "r".repeat(600);
    fanout.publish(topic, reading); // within the bound
    fanout.publish(topic, reading); // the first one, queued this turn, takes it over
    expect(counted.dropped).toBe(1);
    await nextTurn();
    expect(c.conn.writableLength).toBe(
      SUBSCRIBER_BACKLOG_BYTES - 500 + publishFrame(prefixOf(topic), reading, 0).length,
    );
    fanout.publish(topic, reading);
    expect(counted.dropped).toBe(2);
    c.conn.destroy();
  });

  it("keeps its cache bounded", async () => {
    const fanout = new DirectFanout(slow());
    const c = client("console", ["linli/s1/#"]);
    fanout.add(asClient(c));
    for (let i = 0; i <= MAX_CACHED_TOPICS; i++) fanout.publish(`linli/s1/telemetry/m/d${i}`, "");
    expect((fanout as unknown as { cache: Map<string, unknown> }).cache.size).toBeLessThanOrEqual(
      MAX_CACHED_TOPICS,
    );
    expect(fanout.writes).toBe(MAX_CACHED_TOPICS + 1);
    await nextTurn();
  });
});
