import type { Client } from "aedes";
import { describe, expect, it } from "vitest";
import {
  deliverToOperator,
  mayQueueReading,
  SlowSubscribers,
  SUBSCRIBER_BACKLOG_BYTES,
  SUBSCRIBER_MAX_BACKLOG_BYTES,
} from "./operator-delivery.js";

/** Enough of an aedes client for the wrappers: its deliver functions record what they were given. */
function fakeClient() {
  const delivered: string[] = [];
  const waited: unknown[] = [];
  const conn = {
    writableLength: 0,
    writableCorked: 0,
    destroyed: false,
    destroyedWith: null as Error | null,
    uncork() {},
    destroy(err: Error) {
      this.destroyed = true;
      this.destroyedWith = err;
    },
  };
  const client = {
    id: "ops-1",
    conn,
    deliverQoS(packet: { topic: string }, cb: () => void) {
      delivered.push(packet.topic);
      cb();
    },
    deliver0(packet: { topic: string }, cb: () => void) {
      delivered.push(packet.topic);
      cb();
    },
    waitForDrain(done: unknown) {
      waited.push(done);
    },
  };
  return { client, conn, delivered, waited };
}

function install(urgent: string[] = ["linli/s/alerts/p1/"]) {
  const told: string[] = [];
  const slow = new SlowSubscribers(
    (id, bytes) => told.push(`dropping ${id} ${bytes}`),
    (id, bytes) => told.push(`closed ${id} ${bytes}`),
  );
  const f = fakeClient();
  deliverToOperator(f.client as unknown as Client, urgent, slow, () => false);
  const c = f.client as unknown as {
    deliverQoS(p: { topic: string; qos: number }, cb: () => void): void;
    deliver0(p: { topic: string; qos: number }, cb: () => void): void;
    waitForDrain(done: (err: Error | null, client: unknown) => void): void;
  };
  return { ...f, c, slow, told };
}

const settle = () => new Promise((r) => setImmediate(r));

describe("deliveries to an operator's connection", () => {
  it("delivers everything while the connection keeps up", async () => {
    const t = install();
    let done = 0;
    t.conn.writableLength = SUBSCRIBER_BACKLOG_BYTES;
    t.c.deliver0({ topic: "linli/s/telemetry/ec200/p-1", qos: 0 }, () => done++);
    t.c.deliverQoS({ topic: "linli/s/alerts/p2/X/p-1", qos: 1 }, () => done++);
    await settle();
    expect(t.delivered).toEqual(["linli/s/telemetry/ec200/p-1", "linli/s/alerts/p2/X/p-1"]);
    expect(done).toBe(2);
    expect(t.slow.dropped).toBe(0);
  });

  it("drops QoS 0 past the backlog bound, counted and told once, and never QoS 1", async () => {
    const t = install();
    let done = 0;
    t.conn.writableLength = SUBSCRIBER_BACKLOG_BYTES + 1;
    for (let i = 0; i < 3; i++) t.c.deliver0({ topic: "linli/s/telemetry/ec200/p-1", qos: 0 }, () => done++);
    // A QoS 1 alert delivered to a QoS 0 subscription goes through deliver0: still delivered.
    t.c.deliver0({ topic: "linli/s/alerts/p3/LOW_BATTERY/p-1", qos: 1 }, () => done++);
    t.c.deliverQoS({ topic: "linli/s/alerts/events", qos: 1 }, () => done++);
    await settle();
    expect(t.delivered).toEqual(["linli/s/alerts/p3/LOW_BATTERY/p-1", "linli/s/alerts/events"]);
    expect(t.slow.dropped).toBe(3);
    // Every dropped delivery still completes (aedes' emitter slot is given back).
    expect(done).toBe(5);
    expect(t.told).toEqual([`dropping ops-1 ${SUBSCRIBER_BACKLOG_BYTES + 1}`]);
    // Caught up, then behind again: told again.
    t.conn.writableLength = 0;
    t.c.deliver0({ topic: "linli/s/telemetry/ec200/p-1", qos: 0 }, () => done++);
    t.conn.writableLength = SUBSCRIBER_BACKLOG_BYTES + 2;
    t.c.deliver0({ topic: "linli/s/telemetry/ec200/p-1", qos: 0 }, () => done++);
    expect(t.told).toHaveLength(2);
  });

  it("closes a connection past the hard bound, once, and delivers a P1 whatever the backlog", async () => {
    const t = install();
    t.conn.writableLength = SUBSCRIBER_MAX_BACKLOG_BYTES + 1;
    t.c.deliverQoS({ topic: "linli/s/alerts/p2/X/p-1", qos: 1 }, () => undefined);
    t.c.deliverQoS({ topic: "linli/s/alerts/p2/X/p-1", qos: 1 }, () => undefined);
    expect(t.conn.destroyed).toBe(true);
    expect(t.slow.disconnected).toBe(1);
    expect(t.told).toEqual([`closed ops-1 ${SUBSCRIBER_MAX_BACKLOG_BYTES + 1}`]);
    t.c.deliverQoS({ topic: "linli/s/alerts/p1/EMERGENCY_CALL/p-1", qos: 1 }, () => undefined);
    await settle();
    expect(t.delivered).toEqual(["linli/s/alerts/p1/EMERGENCY_CALL/p-1"]);
  });

  it("gives a delivery's slot back at once when the socket is full, keeping aedes' drain watch", async () => {
    const t = install();
    const done: unknown[] = [];
    t.c.waitForDrain((err, client) => done.push([err, client]));
    expect(done).toEqual([]);
    await settle();
    expect(done).toEqual([[null, t.client]]);
    // aedes' own wait was still asked for (its frozen-reader timeout), with a callback of its own.
    expect(t.waited).toHaveLength(1);
    expect(t.waited[0]).not.toBe(done);
  });

  it("starts aedes' frozen-reader watch when readings written past aedes begin to be dropped", () => {
    const t = install();
    const reader = t.client as unknown as Parameters<typeof mayQueueReading>[0];
    t.conn.writableLength = SUBSCRIBER_BACKLOG_BYTES - 100;
    expect(mayQueueReading(reader, 50, t.slow)).toBe(true);
    expect(t.waited).toHaveLength(0);
    expect(mayQueueReading(reader, 200, t.slow)).toBe(false);
    expect(mayQueueReading(reader, 200, t.slow)).toBe(false);
    expect(t.slow.dropped).toBe(2);
    // Once per stretch of dropping, and not at all while aedes' own watch runs.
    expect(t.waited).toHaveLength(1);
    t.conn.writableLength = 0;
    expect(mayQueueReading(reader, 0, t.slow)).toBe(true);
    (t.client as unknown as { _drainTimer: object })._drainTimer = {};
    t.conn.writableLength = SUBSCRIBER_BACKLOG_BYTES + 1;
    expect(mayQueueReading(reader, 0, t.slow)).toBe(false);
    expect(t.waited).toHaveLength(1);
  });
});
