/**
 * Which devices' downlink subscriptions are live on aedes' listeners: a device connected and
 * subscribed to its own downlink topic (access.ts allows it no other). A downlink published
 * while its device is not here reaches no one (southbound/pending-downlinks.ts waits for
 * `ready`). A persistent session's subscription is restored at login without a "subscribe"
 * event: checked at "clientReady". The device's PUBACKs on that connection ("ack": aedes emits it
 * for every PUBACK, with the client; a clean session's has no packet) say its downlinks arrived,
 * in order (MQTT 3.1.1 §4.6): only the gateway publishes on a downlink topic.
 */

import type { Aedes, Client } from "aedes";
import type { Identity } from "./access.js";

export class DownlinkPresence {
  private readonly live = new Map<string, Client>();
  /** The device's downlink subscription became live (its topic). */
  onReady: (topic: string) => void = () => {};
  /** A connection of the device closed (what it did not acknowledge is sent again). */
  onClosed: (topic: string, client: Client) => void = () => {};
  /** The device acknowledged a downlink on this connection. */
  onAcked: (topic: string, client: Client) => void = () => {};

  constructor(aedes: Aedes, identities: WeakMap<Client, Identity>) {
    const topicOf = (client: Client): string | null => {
      const identity = identities.get(client);
      return identity?.kind === "device" ? identity.device.downlinkTopic : null;
    };
    const check = (client: Client) => {
      const topic = topicOf(client);
      if (topic === null || client.closed) return;
      if (subscription(client, topic) === undefined) return;
      this.live.set(topic, client);
      this.onReady(topic);
    };
    const drop = (client: Client) => {
      const topic = topicOf(client);
      if (topic !== null && this.live.get(topic) === client) this.live.delete(topic);
    };
    aedes.on("subscribe", (_subs, client) => check(client));
    aedes.on("clientReady", check);
    aedes.on("unsubscribe", (topics, client) => {
      const topic = topicOf(client);
      if (topic !== null && topics.includes(topic)) drop(client);
    });
    aedes.on("clientDisconnect", (client) => {
      drop(client);
      const topic = topicOf(client);
      if (topic !== null) this.onClosed(topic, client);
    });
    aedes.on("ack", (_packet, client) => {
      const topic = client ? topicOf(client) : null;
      if (topic !== null) this.onAcked(topic, client);
    });
  }

  has(topic: string): boolean {
    return this.live.has(topic);
  }

  /** The connection the device's downlink is live on. */
  client(topic: string): Client | undefined {
    return this.live.get(topic);
  }

  /**
   * A downlink written now is the gateway's to send again if no PUBACK comes: a clean session's
   * QoS 1 subscription. aedes downgrades a downlink to a QoS 0 one (no PUBACK comes), and delivers
   * a persistent session's unacknowledged ones again itself (§4.4): sent twice otherwise.
   */
  acks(topic: string): boolean {
    const client = this.live.get(topic);
    return client !== undefined && client.clean !== false && (subscription(client, topic)?.qos ?? 0) >= 1;
  }
}

function subscription(client: Client, topic: string): { qos?: number } | undefined {
  return (client as unknown as { subscriptions?: Record<string, { qos?: number }> }).subscriptions?.[topic];
}
