/**
 * The upstream bridge's queues without a broker: mqtt.js's publish is stubbed and the bridge is
 * made ready by hand, so congestion is exactly `maxInflight` unacknowledged QoS 1 messages.
 */
import { describe, expect, it } from "vitest";
import { createLogger } from "../log.js";
import { MemoryStore } from "../state/store.js";
import { UpstreamBridge, type UpstreamOptions } from "./upstream.js";

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
  });

  it("while down: QoS 1 dropped (counted) with its journal key, never throws", () => {
    const store = new MemoryStore();
    const t = bridge({ backlog: 0, store });
    expect(() => t.b.publish(`${P}alerts/events`, "e1", 1, false)).not.toThrow();
    expect(t.b.stats()).toMatchObject({ backlog: 0, backlogDropped: 1 });
    expect([...store.entries("up/")]).toEqual([]);
    t.connect();
    expect(t.sent).toEqual([]);
  });
});
