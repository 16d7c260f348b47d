/**
 * Downlinks to MQTT devices that are not connected when they are sent. The EC-200 base station
 * and the GD-2 detector receive commands only on their downlink subscription, QoS 1 (datasheets,
 * "Link"), and neither is said to keep a persistent session: a message published while the
 * device is away reaches no one. Such a downlink waits here, per device, and is sent in order
 * as soon as the device's downlink subscription is live again (its next login on either
 * listener).
 *
 * Bound and overflow: at most MAX_PENDING_PER_DEVICE per device; a further one drops the oldest
 * (its sender is told, `downlink-dropped`): the newest order is the operator's latest intent.
 * Expiry: an entry not delivered within DOWNLINK_TTL_MS is dropped (`downlink-expired`), so a
 * stale command is not executed long after it was given. An entry with a `still` guard (an
 * automatic action tied to an open condition) has no time limit: it waits while the guard
 * holds and is withdrawn (`downlink-withdrawn`) once it does not. Senders count and report
 * what they are told (hooks); the totals are in stats().
 */

import type { DeviceEntry } from "../registry.js";

/** Pending downlinks per device: a device away for a day does not pile up commands. */
export const MAX_PENDING_PER_DEVICE = 8;
/** How long a downlink waits for its device (10 min): later, the situation it answered has moved on. */
export const DOWNLINK_TTL_MS = 10 * 60_000;

/** Why a pending downlink was not sent: the error its sender is told. */
export type DownlinkLoss = "downlink-expired" | "downlink-dropped" | "downlink-withdrawn";

export interface DownlinkHooks {
  /** Sent after waiting: `waitedMs` since it was queued. */
  delivered?(waitedMs: number): void;
  /** Not sent, and never will be. */
  lost?(why: DownlinkLoss): void;
  /** While true the downlink is still due; no time limit then (automatic actions). */
  still?(): boolean;
}

/** What became of a downlink handed over: sent now, queued for the device's next login, or no downlink topic. */
export type DownlinkSend = "sent" | "queued" | false;

interface Pending {
  payload: string;
  queuedAt: number;
  /** Infinity for a guarded entry. */
  expiresAt: number;
  hooks: DownlinkHooks;
}

export interface PendingDownlinkStats {
  /** Downlinks waiting now. */
  pending: number;
  queued: number;
  deliveredLate: number;
  expired: number;
  dropped: number;
  withdrawn: number;
}

export class PendingDownlinks {
  private readonly byTopic = new Map<string, Pending[]>();
  private readonly counts = { queued: 0, deliveredLate: 0, expired: 0, dropped: 0, withdrawn: 0 };

  constructor(
    /** Publishes on the topic (QoS 1, not retained). */
    private readonly publish: (topic: string, payload: string) => void,
    /** The device is connected and subscribed to this downlink topic (either listener). */
    private readonly live: (topic: string) => boolean,
    private readonly now: () => number,
    private readonly ttlMs = DOWNLINK_TTL_MS,
  ) {}

  send(device: DeviceEntry, message: object, hooks: DownlinkHooks = {}): DownlinkSend {
    const topic = device.downlinkTopic;
    if (topic === null) return false;
    const payload = JSON.stringify(message);
    const waiting = this.byTopic.get(topic);
    // Behind older pending ones, even if the device is back: in order.
    if (waiting === undefined && this.live(topic)) {
      this.publish(topic, payload);
      return "sent";
    }
    const now = this.now();
    const queue = waiting ?? [];
    if (waiting === undefined) this.byTopic.set(topic, queue);
    queue.push({
      payload,
      queuedAt: now,
      expiresAt: hooks.still ? Number.POSITIVE_INFINITY : now + this.ttlMs,
      hooks,
    });
    this.counts.queued++;
    if (queue.length > MAX_PENDING_PER_DEVICE) this.lose(queue.shift() as Pending, "downlink-dropped");
    if (this.live(topic)) this.ready(topic);
    return "queued";
  }

  /** The device's downlink subscription is live again: what waits for it is sent, oldest first. */
  ready(topic: string): void {
    const queue = this.byTopic.get(topic);
    if (queue === undefined) return;
    this.byTopic.delete(topic);
    const now = this.now();
    for (const p of queue) {
      const gone = this.gone(p, now);
      if (gone !== null) {
        this.lose(p, gone);
        continue;
      }
      this.publish(topic, p.payload);
      this.counts.deliveredLate++;
      p.hooks.delivered?.(now - p.queuedAt);
    }
  }

  /** Drops what expired or is no longer due (run periodically, so senders learn it in time). */
  sweep(): void {
    const now = this.now();
    for (const [topic, queue] of this.byTopic) {
      const keep = queue.filter((p) => {
        const gone = this.gone(p, now);
        if (gone !== null) this.lose(p, gone);
        return gone === null;
      });
      if (keep.length === 0) this.byTopic.delete(topic);
      else if (keep.length !== queue.length) this.byTopic.set(topic, keep);
    }
  }

  stats(): PendingDownlinkStats {
    let pending = 0;
    for (const q of this.byTopic.values()) pending += q.length;
    return { pending, ...this.counts };
  }

  private gone(p: Pending, now: number): DownlinkLoss | null {
    if (p.hooks.still) return p.hooks.still() ? null : "downlink-withdrawn";
    return now >= p.expiresAt ? "downlink-expired" : null;
  }

  private lose(p: Pending, why: DownlinkLoss): void {
    if (why === "downlink-expired") this.counts.expired++;
    else if (why === "downlink-dropped") this.counts.dropped++;
    else this.counts.withdrawn++;
    p.hooks.lost?.(why);
  }
}
