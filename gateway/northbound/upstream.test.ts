/**
 * The upstream bridge's queues without a broker: mqtt.js's publish is stubbed and the bridge is
 * made ready by hand, so congestion is exactly `maxInflight` unacknowledged QoS 1 messages.
 */
import { describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { MemoryStore } from "../state/store.js";
import { MAX_REFUSALS, UpstreamBridge, type UpstreamOptions } from "./upstream.js";

const P = "linli/s1/";

interface Sent {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

function bridge(opts: Partial<UpstreamOptions> = {}) {
  const b = new UpstreamBridge(
    {
      url: "mqtt://127.0.0.1:1",
      site: "s1",
      clientId: "t",
      backlog: 10_000,
      reconnectInitialMs: 1000,
      reconnectMaxMs: 60_000,
      keepaliveS: 30,
      ...opts,
    },
    createLogger({ level: "silent" }),
    () => {},
  );
  const sent: Sent[] = [];
  const pubacks: Array<(err?: Error) => void> = [];
  const inner = b as unknown as {
    ready: boolean;
    client: { publish: unknown; connected: boolean };
    onConnect: () => void;
  };
  inner.client.publish = (
    topic: string,
    payload: string,
    o: { qos: number; retain: boolean },
    cb: (err?: Error) => void,
  ) => {
    sent.push({ topic, payload, qos: o.qos, retain: o.retain });
    if (o.qos === 1) pubacks.push(cb);
  };
  return {
    b,
    sent,
    /** Upstream acknowledges the oldest `n` QoS 1 messages in flight. */
    puback(n = pubacks.length) {
      for (const cb of pubacks.splice(0, n)) cb();
    },
    ready() {
      inner.ready = true;
    },
    /** The connection closes (mqtt.js's `close`); callbacks of what was in flight never run again. */
    close() {
      pubacks.length = 0;
      (b as unknown as { onClose: () => void }).onClose();
    },
    down() {
      inner.ready = false;
    },
    /** What onConnect does after its subscriptions: queue the mirror, flush. */
    connect() {
      const c = b as unknown as { startReconcile: () => void; client: { subscribe: unknown } };
      c.startReconcile = () => {};
      c.client.subscribe = () => {};
      inner.onConnect();
    },
  };
}

describe("upstream bridge: backlog 0", () => {
  it("sends QoS 1 while keeping up, drops (counted) what it cannot keep, never throws", () => {
    const store = new MemoryStore();
    const t = bridge({ backlog: 0, store, maxInflight: 2 });
    t.ready();
    expect(() => t.b.publish(`${P}alerts/events`, "e1", 1, false)).not.toThrow();
    expect(t.sent.map((s) => s.payload)).toEqual(["e1"]);
    t.b.publish(`${P}alerts/events`, "e2", 1, false);
    // Congested (2 in flight): nothing can be kept, the message is dropped with its journal key.
    expect(() => t.b.publish(`${P}alerts/events`, "e3", 1, false)).not.toThrow();
    expect(t.sent.map((s) => s.payload)).toEqual(["e1", "e2"]);
    expect(t.b.stats().backlogDropped).toBe(1);
    t.puback();
    expect([...store.entries("up/")]).toEqual([]);
    // A P1 escalation is kept and sent whatever the backlog setting.
    t.b.publish(`${P}alerts/events`, "e4", 1, false);
    t.b.publish(`${P}alerts/events`, "e5", 1, false);
    t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d1`, "x1", 1, false);
    expect(t.sent.at(-1)?.payload).toBe("x1");
    expect(t.b.stats().backlogDropped).toBe(1);
  });

  it("while down: non-P1 QoS 1 dropped (counted), P1 kept and sent at connect", () => {
    const store = new MemoryStore();
    const t = bridge({ backlog: 0, store });
    expect(() => t.b.publish(`${P}alerts/events`, "e1", 1, false)).not.toThrow();
    t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d1`, "x1", 1, false);
    expect(t.b.stats()).toMatchObject({ backlog: 1, backlogDropped: 1 });
    expect([...store.entries("up/")].map(([, v]) => v)).toEqual([
      [`${P}escalations/p1/EMERGENCY_CALL/d1`, "x1"],
    ]);
    t.connect();
    expect(t.sent.map((s) => s.payload)).toEqual(["x1"]);
  });
});

describe("upstream bridge: P1 first, never dropped by the backlog", () => {
  it("while congested: P1 goes at once, the backlog drops only non-P1 and flushes in order", () => {
    const store = new MemoryStore();
    const t = bridge({ backlog: 3, store, maxInflight: 1 });
    t.ready();
    t.b.publish(`${P}alerts/events`, "e0", 1, false);
    // One in flight: congested from here. A storm of P3 events overflows the backlog.
    for (let i = 1; i <= 10; i++) t.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    t.b.publish(`${P}alerts/p3/DOOR_OPEN/d1`, "state-p3", 1, true);
    t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d9`, "esc", 1, false);
    t.b.publish(`${P}alerts/p1/EMERGENCY_CALL/d9`, "state-p1", 1, true);
    t.b.publish(`${P}events/d11`, "p3-11", 1, false);
    // The P1 messages waited behind nothing.
    expect(t.sent.map((s) => s.payload)).toEqual(["e0", "esc", "state-p1"]);
    // The P3 storm lost its oldest (counted); no P1 in the count.
    expect(t.b.stats()).toMatchObject({ backlog: 3, backlogDropped: 8 });
    for (let i = 0; i < 20; i++) t.puback(1);
    expect(t.sent.map((s) => s.payload)).toEqual([
      "e0",
      "esc",
      "state-p1",
      "p3-9",
      "p3-10",
      "state-p3",
      "p3-11",
    ]);
    expect([...store.entries("up/")]).toEqual([]);
  });

  it("while down: P1 never dropped, sent first at connect, then the rest in publish order", () => {
    const store = new MemoryStore();
    const t = bridge({ backlog: 2, store });
    t.b.publish(`${P}events/d1`, "p3-1", 1, false);
    t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d9`, "esc-1", 1, false);
    t.b.publish(`${P}alerts/p3/DOOR_OPEN/d1`, "state-p3", 1, true);
    for (let i = 2; i <= 6; i++) t.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    t.b.publish(`${P}alerts/p1/EMERGENCY_CALL/d9`, "state-p1", 1, true);
    t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d9`, "esc-2", 1, false);
    expect(t.b.stats()).toMatchObject({ backlog: 4, backlogDropped: 4 });
    t.connect();
    expect(t.sent.map((s) => s.payload)).toEqual(["esc-1", "state-p1", "esc-2", "state-p3", "p3-5", "p3-6"]);
  });

  it("a long outage: P1 lines beyond their bound lose the oldest (counted, journal key gone); P1 states stay", () => {
    const store = new MemoryStore();
    const t = bridge({ backlog: 10, store, urgentBacklog: 3 });
    t.b.publish(`${P}alerts/p1/EMERGENCY_CALL/d9`, "state-p1", 1, true);
    // Nobody answers: the alert escalates again and again while the uplink stays down.
    for (let i = 1; i <= 5; i++) t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d9`, `esc-${i}`, 1, false);
    expect(t.b.stats()).toMatchObject({ backlog: 3, backlogDropped: 2 });
    expect([...store.entries("up/")].map(([, v]) => (v as string[])[1])).toEqual(["esc-3", "esc-4", "esc-5"]);
    t.connect();
    expect(t.sent.map((s) => s.payload)).toEqual(["state-p1", "esc-3", "esc-4", "esc-5"]);
  });

  it("after a restart: journaled P1 messages are not dropped by a smaller backlog", () => {
    const store = new MemoryStore();
    const first = bridge({ backlog: 10, store });
    first.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d9`, "esc", 1, false);
    for (let i = 1; i <= 5; i++) first.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    const t = bridge({ backlog: 1, store });
    expect(t.b.stats()).toMatchObject({ backlog: 2, backlogDropped: 4 });
    t.connect();
    expect(t.sent.map((s) => s.payload)).toEqual(["esc", "p3-5"]);
  });
});

describe("upstream bridge: a P1 alert's line on alerts/events is P1", () => {
  const line = (alertId: string, rev: number, priority: number) =>
    JSON.stringify({ eventId: `${alertId}:${rev}`, alertId, priority, at: 1000 + rev });

  it("while congested: survives a P3 storm that overflows the backlog and goes first; a P3 line is dropped", () => {
    const store = new MemoryStore();
    const t = bridge({ backlog: 3, store, maxInflight: 1 });
    t.ready();
    t.b.publish(`${P}alerts/events`, line("a3", 1, 3), 1, false);
    // Congested from here: the P1 raise waits behind the storm only if it is treated as P3.
    for (let i = 1; i <= 10; i++) t.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    t.b.publish(`${P}alerts/events`, line("a3", 2, 3), 1, false);
    t.b.publish(`${P}alerts/events`, line("a1", 1, 1), 1, false, true);
    for (let i = 11; i <= 20; i++) t.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    expect(t.sent.map((s) => s.payload)).toEqual([line("a3", 1, 3), line("a1", 1, 1)]);
    // The P3 alert's second line went with the storm (counted); the P1 line is not in the count.
    expect(t.b.stats()).toMatchObject({ backlog: 3, backlogDropped: 18 });
    for (let i = 0; i < 10; i++) t.puback(1);
    expect(t.sent.map((s) => s.payload)).toEqual([
      line("a3", 1, 3),
      line("a1", 1, 1),
      "p3-18",
      "p3-19",
      "p3-20",
    ]);
    expect([...store.entries("up/")]).toEqual([]);
  });

  it("while down, and after a restart: kept whatever the backlog, sent first at connect", () => {
    const store = new MemoryStore();
    const first = bridge({ backlog: 10, store });
    first.b.publish(`${P}alerts/events`, line("a3", 1, 3), 1, false);
    first.b.publish(`${P}alerts/events`, line("a1", 1, 1), 1, false, true);
    for (let i = 1; i <= 5; i++) first.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    first.b.publish(`${P}alerts/events`, line("a1", 2, 1), 1, false, true);
    // The journal says which lines were P1: a restart with a smaller backlog keeps them.
    const t = bridge({ backlog: 1, store });
    expect(t.b.stats()).toMatchObject({ backlog: 3, backlogDropped: 5 });
    t.connect();
    expect(t.sent.map((s) => s.payload)).toEqual([line("a1", 1, 1), line("a1", 2, 1), "p3-5"]);
  });
});

describe("upstream bridge: a close with messages in flight", () => {
  it("the bridge sends them again itself at connect (same payloads), P1 first, then in publish order", () => {
    const store = new MemoryStore();
    const t = bridge({ store, maxInflight: 3 });
    t.ready();
    for (let i = 1; i <= 5; i++) t.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    t.b.publish(`${P}alerts/p3/DOOR_OPEN/d1`, "state-p3", 1, true);
    expect(t.sent.map((s) => s.payload)).toEqual(["p3-1", "p3-2", "p3-3"]);
    t.close();
    expect(t.b.stats()).toMatchObject({ inflight: 0, backlog: 5, backlogDropped: 0, refused: 0 });
    t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d9`, "esc", 1, false);
    t.sent.length = 0;
    t.connect();
    // The oldest at the close is a suspect (it may be what upstream refused): alone, after P1.
    expect(t.sent.map((s) => s.payload)).toEqual(["esc"]);
    t.puback();
    expect(t.sent.map((s) => s.payload)).toEqual(["esc", "p3-1"]);
    for (let i = 0; i < 4; i++) t.puback();
    expect(t.sent.map((s) => s.payload)).toEqual(["esc", "p3-1", "p3-2", "p3-3", "p3-4", "p3-5", "state-p3"]);
    expect([...store.entries("up/")]).toEqual([]);
  });

  it(`the oldest unacknowledged at a close goes alone; ${MAX_REFUSALS} closes with it alone set it aside (counted, journal key gone)`, () => {
    const store = new MemoryStore();
    const t = bridge({ store });
    t.ready();
    t.b.publish(`${P}escalations/p1/EMERGENCY_CALL/d9`, "too-big", 1, false);
    t.b.publish(`${P}events/d1`, "p3-1", 1, false);
    t.close(); // both in flight: "too-big" is a suspect, not yet counted against
    for (let i = 0; i < MAX_REFUSALS; i++) {
      expect(t.b.stats().refused).toBe(0);
      t.sent.length = 0;
      t.connect();
      // Alone: nothing else goes until its PUBACK (or the close).
      expect(t.sent.map((s) => s.payload)).toEqual(["too-big"]);
      t.b.publish(`${P}events/d2`, `p3-2-${i}`, 1, false);
      expect(t.sent.map((s) => s.payload)).toEqual(["too-big"]);
      t.close();
    }
    expect(t.b.stats()).toMatchObject({ refused: 1 });
    expect([...store.entries("up/")].map(([, v]) => (v as string[])[1])).toEqual([
      "p3-1",
      ...Array.from({ length: MAX_REFUSALS }, (_, i) => `p3-2-${i}`),
    ]);
    t.sent.length = 0;
    t.connect();
    expect(t.sent.map((s) => s.payload)).toEqual([
      "p3-1",
      ...Array.from({ length: MAX_REFUSALS }, (_, i) => `p3-2-${i}`),
    ]);
  });

  it("a suspect that upstream acknowledges when alone was innocent: the rest follows at once", () => {
    const store = new MemoryStore();
    const t = bridge({ store });
    t.ready();
    for (let i = 1; i <= 3; i++) t.b.publish(`${P}events/d${i}`, `p3-${i}`, 1, false);
    t.close();
    t.sent.length = 0;
    t.connect();
    expect(t.sent.map((s) => s.payload)).toEqual(["p3-1"]);
    t.puback(1);
    expect(t.sent.map((s) => s.payload)).toEqual(["p3-1", "p3-2", "p3-3"]);
    t.puback();
    expect(t.b.stats()).toMatchObject({ refused: 0, inflight: 0, backlog: 0 });
    expect([...store.entries("up/")]).toEqual([]);
  });

  it("a retained state refused the same way leaves the mirror (counted); a newer state of its topic is sent", () => {
    const store = new MemoryStore();
    const t = bridge({ store });
    t.ready();
    const topic = `${P}alerts/p1/EMERGENCY_CALL/d9`;
    t.b.publish(topic, "too-big", 1, true);
    for (let i = 1; i < MAX_REFUSALS; i++) {
      t.close();
      t.connect();
    }
    t.close();
    expect(t.b.stats()).toMatchObject({ refused: 1 });
    expect([...t.b.retainedTopics()]).toEqual([]);
    expect([...store.entries("upr/")]).toEqual([]);
    t.sent.length = 0;
    t.connect();
    expect(t.sent).toEqual([]);
    t.b.publish(topic, "state-2", 1, true);
    expect(t.sent.map((s) => s.payload)).toEqual(["state-2"]);
  });
});
