/**
 * The bridge's outgoing store under mqtt.js's own use of it: mqtt.js closes the store it was given
 * at `end()` and, when the same client connects again (its reconnect while it still thinks itself
 * connected ends and reconnects; a loaded machine made that happen), goes on using that same
 * instance: it must take packets again.
 */
import net from "node:net";
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { ConnectionStore } from "./connection-store.js";

describe("ConnectionStore", () => {
  it("takes, gives back and deletes packets after mqtt.js closed it", () => {
    const store = new ConnectionStore(() => new mqtt.Store());
    const packet = {
      cmd: "publish" as const,
      topic: "t",
      payload: "x",
      qos: 1 as const,
      dup: false,
      retain: false,
      messageId: 7,
    };
    store.close(() => {});
    expect(() => store.put(packet, () => {})).not.toThrow();
    let got: unknown;
    store.get({ messageId: 7 } as never, (_err, p) => (got = p));
    expect(got).toEqual(packet);
    store.del({ messageId: 7 } as never, () => {});
    store.get({ messageId: 7 } as never, (err) => (got = err?.message));
    expect(got).toBe("missing packet");
  });

  it("a QoS 1 publish after mqtt.js ended and connected the same client is stored, not a TypeError", async () => {
    const store = new ConnectionStore(() => new mqtt.Store());
    // No broker: each connection attempt's socket closes at once; the publish waits in the store.
    const client = new mqtt.MqttClient(
      () => {
        const s = new net.Socket();
        process.nextTick(() => s.destroy());
        return s;
      },
      { outgoingStore: store, manualConnect: true, reconnectPeriod: 0 },
    );
    client.on("error", () => {});
    client.connect();
    await client.endAsync(true);
    client.connect();
    expect(() => client.publish("t", "x", { qos: 1 }, () => {})).not.toThrow();
    await client.endAsync(true);
  });
});
