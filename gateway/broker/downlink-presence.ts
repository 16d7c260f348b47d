/**
 * Which devices' downlink subscriptions are live on aedes' listeners: a device connected and
 * subscribed to its own downlink topic (access.ts allows it no other). A downlink published
 * while its device is not here reaches no one (southbound/pending-downlinks.ts waits for
 * `ready`). A persistent session's subscription is restored at login without a "subscribe"
 * event: checked at "clientReady".
 */

import type { Aedes, Client } from "aedes";
import type { Identity } from "./access.js";

export class DownlinkPresence {
  private readonly live = new Map<string, Client>();
  /** The device's downlink subscription became live (its topic). */
  onReady: (topic: string) => void = () => {};

  constructor(aedes: Aedes, identities: WeakMap<Client, Identity>) {
    const topicOf = (client: Client): string | null => {
      const identity = identities.get(client);
      return identity?.kind === "device" ? identity.device.downlinkTopic : null;
    };
    const check = (client: Client) => {
      const topic = topicOf(client);
      if (topic === null || client.closed) return;
      const subscribed = (client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions;
      if (subscribed?.[topic] === undefined) return;
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
    aedes.on("clientDisconnect", drop);
  }

  has(topic: string): boolean {
    return this.live.has(topic);
  }
}
