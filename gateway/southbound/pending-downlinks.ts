/**
 * Downlinks to MQTT devices until they are known to have arrived. The EC-200 base station and
 * the GD-2 detector receive commands only on their downlink subscription, QoS 1 (datasheets,
 * "Link"), and neither is said to keep a persistent session: a message published while the
 * device is away reaches no one, and one written on a connection that drops before the device's
 * PUBACK is not delivered again by anybody (no session, MQTT 3.1.1 §4.4). Such a downlink waits
 * here, per device, and is sent in order as soon as the device's downlink subscription is live
 * again (its next login on either listener); one written on a QoS 1 subscription stays here until
 * its PUBACK, and is sent again at the next login if the connection went first.
 *
 * Bound and overflow: at most MAX_PENDING_PER_DEVICE per device (waiting or unacknowledged); a
 * further one drops the oldest (its sender is told, `downlink-dropped`): the newest order is the
 * operator's latest intent. Expiry: an entry not delivered within DOWNLINK_TTL_MS is dropped
 * (`downlink-expired`), so a stale command is not executed long after it was given. That is time
 * waited: a step of the wall clock moves its times with it (shiftTimes, gateway/clock-step.ts), as
 * it moves an alert's next escalation, so a clock set forward an hour does not expire it at once,
 * nor does one set back keep it an hour longer. An entry with
 * a `still` guard (an automatic action tied to an open condition) has no time limit: it waits
 * while the guard holds and is withdrawn (`downlink-withdrawn`) once it does not. A device a
 * reload removes takes its entries with it (`device-removed`: removed()); one whose downlink a
 * reload or a restart changed ends them too (`device-changed`: changedDownlink below), since they
 * were made for another topic or encoding. A device a start finds gone from the site (removed
 * while the gateway was down) ends them `device-removed` as a reload's removal does. Senders count
 * and report what they are told (hooks); the totals are in stats().
 *
 * Journaled (docs/durability.md, `down/<device>`): a device's entries in one record, rewritten at
 * each change and deleted when none is left, so a restart sends them at the device's next login
 * with what is left of their life (hooks are made again from each entry's `origin`).
 */

import { commandOf } from "../../devices/index.js";
import type { DeviceEntry } from "../registry.js";
import { KEY, PREFIX } from "../state/keys.js";
import type { DurableStore } from "../state/store.js";

/** Pending downlinks per device: a device away for a day does not pile up commands. */
export const MAX_PENDING_PER_DEVICE = 8;
/** How long a downlink waits for its device (10 min): later, the situation it answered has moved on. */
export const DOWNLINK_TTL_MS = 10 * 60_000;

/** Why a pending downlink was not sent: the error its sender is told. */
export type DownlinkLoss =
  | "downlink-expired"
  | "downlink-dropped"
  | "downlink-withdrawn"
  | "device-removed"
  | "device-changed";

/**
 * The device a journaled downlink is for, as its sender's hooks name it: the configured entry, or
 * what the record kept of one a start finds gone from the site (its model null in a record
 * written before 0.13.50).
 */
export interface DownlinkDevice {
  id: string;
  model: string | null;
}

/** Who sent a downlink, as its journal record keeps it: enough to tell the sender again after a restart. */
export type DownlinkOrigin =
  | {
      kind: "operator" | "automatic";
      command: string;
      /** The id the device answers with. */
      id: string;
      by: string;
      account?: string;
    }
  /** The EC-200's `ack_call` of an operator's acknowledgement. */
  | { kind: "ack"; alertId: string };

export interface DownlinkHooks {
  /**
   * Sent after waiting: `waitedMs` since it was queued; `resent`: it had been written on a
   * connection that closed before the device's PUBACK, and is written again.
   */
  delivered?(waitedMs: number, resent: boolean): void;
  /** Not sent, and never will be. */
  lost?(why: DownlinkLoss): void;
  /** While true the downlink is still due; no time limit then (automatic actions). */
  still?(): boolean;
  /** Kept in the journal; without it the entry is not (it would have no one to tell after a restart). */
  origin?: DownlinkOrigin;
}

/** What became of a downlink handed over: sent now, queued for the device's next login, or no downlink topic. */
export type DownlinkSend = "sent" | "queued" | false;

interface Pending {
  deviceId: string;
  /** The device's model when it was queued (journaled: a start with another model ends it). */
  model: string;
  payload: string;
  queuedAt: number;
  /** Infinity for a guarded entry. */
  expiresAt: number;
  hooks: DownlinkHooks;
  /** The connection it was written on, its PUBACK not yet seen; null: not written (or that one closed). */
  conn: unknown;
  /** Written once before on a connection that closed without its PUBACK. */
  resend: boolean;
}

/** The journal's form of one entry: `[payload, queuedAt, expiresAt or null (guarded), origin, written]`. */
type EntryRecord = [string, number, number | null, DownlinkOrigin, boolean];

export interface PendingDownlinkStats {
  /** Downlinks waiting now (for a login or for their PUBACK). */
  pending: number;
  queued: number;
  deliveredLate: number;
  /** Written on a connection that closed before the device's PUBACK, and written again. */
  resent: number;
  expired: number;
  dropped: number;
  withdrawn: number;
  /** Waiting for a device a reload removed, or a start found gone from the site. */
  removed: number;
  /** Waiting for a device whose downlink a reload or a start changed (changedDownlink). */
  changed: number;
}

export interface DownlinkLink {
  /** Publishes on the topic (QoS 1, not retained). */
  publish(topic: string, payload: string): void;
  /** The device is connected and subscribed to this downlink topic (either listener). */
  live(topic: string): boolean;
  /** That connection (compared by identity with the ones acked() and closed() name). */
  connection(topic: string): unknown;
  /** Its live subscription is QoS 1: the device's PUBACK will say a downlink arrived. */
  acks(topic: string): boolean;
}

export class PendingDownlinks {
  private readonly byTopic = new Map<string, Pending[]>();
  private readonly counts = {
    queued: 0,
    deliveredLate: 0,
    resent: 0,
    expired: 0,
    dropped: 0,
    withdrawn: 0,
    removed: 0,
    changed: 0,
  };

  constructor(
    private readonly link: DownlinkLink,
    private readonly now: () => number,
    private readonly store: DurableStore | null = null,
    private readonly ttlMs = DOWNLINK_TTL_MS,
  ) {}

  send(device: DeviceEntry, message: object, hooks: DownlinkHooks = {}): DownlinkSend {
    const topic = device.downlinkTopic;
    if (topic === null) return false;
    const payload = JSON.stringify(message);
    const queue = this.byTopic.get(topic);
    const now = this.now();
    const entry: Pending = {
      deviceId: device.id,
      model: device.model,
      payload,
      queuedAt: now,
      expiresAt: hooks.still ? Number.POSITIVE_INFINITY : now + this.ttlMs,
      hooks,
      conn: null,
      resend: false,
    };
    // Behind older waiting ones, even if the device is back: in order.
    if (this.link.live(topic) && !(queue?.some((p) => p.conn === null) ?? false)) {
      this.link.publish(topic, payload);
      // Kept until its PUBACK: a connection that closes first gets it again at the next login.
      if (this.link.acks(topic)) this.add(topic, queue, entry, this.link.connection(topic));
      return "sent";
    }
    this.add(topic, queue, entry, null);
    this.counts.queued++;
    if (this.link.live(topic)) this.ready(topic);
    return "queued";
  }

  private add(topic: string, existing: Pending[] | undefined, entry: Pending, conn: unknown): void {
    entry.conn = conn;
    const queue = existing ?? [];
    if (existing === undefined) this.byTopic.set(topic, queue);
    queue.push(entry);
    if (queue.length > MAX_PENDING_PER_DEVICE) this.lose(queue.shift() as Pending, "downlink-dropped");
    this.record(topic);
  }

  /** The device's downlink subscription is live again: what waits for it is sent, oldest first. */
  ready(topic: string): void {
    const queue = this.byTopic.get(topic);
    if (queue === undefined) return;
    const now = this.now();
    const acks = this.link.acks(topic);
    const conn = this.link.connection(topic);
    const keep: Pending[] = [];
    for (const p of queue) {
      if (p.conn !== null) {
        keep.push(p);
        continue;
      }
      const gone = this.gone(p, now);
      if (gone !== null) {
        this.lose(p, gone);
        continue;
      }
      this.link.publish(topic, p.payload);
      this.counts.deliveredLate++;
      if (p.resend) this.counts.resent++;
      p.hooks.delivered?.(now - p.queuedAt, p.resend);
      p.conn = conn;
      if (acks) keep.push(p);
    }
    this.replace(topic, keep);
  }

  /** The device's PUBACK on `conn`: the oldest downlink written to it arrived (§4.6: in order). */
  acked(topic: string, conn: unknown): void {
    const queue = this.byTopic.get(topic);
    const i = queue?.findIndex((p) => p.conn !== null && p.conn === conn) ?? -1;
    if (queue === undefined || i < 0) return;
    queue.splice(i, 1);
    this.replace(topic, queue);
  }

  /**
   * A connection of the device closed: what was written to it and not acknowledged waits for the
   * next login (or the connection live now: the caller's ready()), to be written again.
   */
  closed(topic: string, conn: unknown): void {
    const queue = this.byTopic.get(topic);
    if (queue === undefined) return;
    let changed = false;
    for (const p of queue)
      if (p.conn !== null && p.conn === conn) {
        p.conn = null;
        p.resend = true;
        changed = true;
      }
    if (changed) this.record(topic);
  }

  /**
   * An automatic command of this name to the device has not reached it yet: waiting for its next
   * login, or to be written again there (the alert text says so: devices/gd2.ts).
   */
  waiting(device: DeviceEntry, command: string): boolean {
    const queue = device.downlinkTopic === null ? undefined : this.byTopic.get(device.downlinkTopic);
    return (
      queue?.some(
        (p) => p.conn === null && p.hooks.origin?.kind === "automatic" && p.hooks.origin.command === command,
      ) ?? false
    );
  }

  /**
   * A reload removed the device (`device-removed`), or gave it another model (`device-changed`:
   * its downlink topic and command encoding are the new profile's): what waits for it is never
   * sent, its senders are told, its journal record goes. One written and not yet acknowledged
   * goes without a word: its sender was told it was sent, and whether it arrived nobody can know
   * now. `device` is the entry as it was (its old topic). Its number of entries told.
   */
  removed(device: DeviceEntry, why: "device-removed" | "device-changed" = "device-removed"): number {
    const topic = device.downlinkTopic;
    if (topic === null) return 0;
    const queue = this.byTopic.get(topic) ?? [];
    let told = 0;
    for (const p of queue)
      if (p.conn === null) {
        this.lose(p, why);
        told++;
      }
    this.replace(topic, []);
    return told;
  }

  /**
   * The wall clock stepped by `ms` while running (gateway/clock-step.ts, when the timer wheel
   * adopts the step): each entry's queued and expiry times move with it, journaled, so that it
   * waits DOWNLINK_TTL_MS of elapsed time, and a restart after the step reads the moved times.
   */
  shiftTimes(ms: number): void {
    for (const [topic, queue] of this.byTopic) {
      for (const p of queue) {
        p.queuedAt += ms;
        // A guarded entry has no end to move (Infinity).
        if (Number.isFinite(p.expiresAt)) p.expiresAt += ms;
      }
      this.record(topic, queue);
    }
  }

  /** Drops what expired or is no longer due (run periodically, so senders learn it in time). */
  sweep(): void {
    const now = this.now();
    for (const [topic, queue] of this.byTopic) {
      const keep = queue.filter((p) => {
        // Written on a connection still open: its PUBACK (or its close) decides, not the clock.
        if (p.conn !== null) return true;
        const gone = this.gone(p, now);
        if (gone !== null) this.lose(p, gone);
        return gone === null;
      });
      if (keep.length !== queue.length) this.replace(topic, keep);
    }
  }

  /**
   * At start: what the journal kept, each entry's hooks made again from its origin (`revive`). A
   * device the site no longer has (removed from the file while the gateway was down) ends them
   * `device-removed` as a reload's removal does (removed()): its senders told from what the record
   * kept (the device's id and model, each entry's origin), logged through `removed`, the record
   * deleted. One whose downlink changed while the gateway was down (changedDownlink: its
   * topic, its model, or its command's encoding) ends them `device-changed`, its senders told,
   * logged through `changed`. Entries written before the restart wait to be written again.
   * A life longer than DOWNLINK_TTL_MS from now (a clock set back) is cut to it. What expired
   * while the gateway was down is reported at the next sweep, as any expiry.
   */
  restore(
    deviceOf: (id: string) => DeviceEntry | undefined,
    revive: (device: DownlinkDevice, origin: DownlinkOrigin) => DownlinkHooks,
    removed: (deviceId: string, entries: number) => void = () => {},
    changed: (deviceId: string, entries: number) => void = () => {},
  ): void {
    if (this.store === null) return;
    const now = this.now();
    for (const [key, value] of [...this.store.entries(PREFIX.downlinks)]) {
      const deviceId = key.slice(PREFIX.downlinks.length);
      const device = deviceOf(deviceId);
      const rec = value as { topic?: unknown; model?: unknown; entries?: unknown } | null;
      const topic = device?.downlinkTopic ?? null;
      const entries = (Array.isArray(rec?.entries) ? (rec.entries as EntryRecord[]) : [])
        .slice(-MAX_PENDING_PER_DEVICE)
        .filter((e) => Array.isArray(e) && typeof e[0] === "string" && typeof e[1] === "number");
      if (device === undefined) {
        // All waited (none is on a connection now): each told, as a reload's removal tells them.
        const gone: DownlinkDevice = {
          id: deviceId,
          model: typeof rec?.model === "string" ? rec.model : null,
        };
        for (const e of entries) this.lose({ hooks: revive(gone, e[3]) }, "device-removed");
        removed(deviceId, entries.length);
        this.store.delete(key);
        continue;
      }
      // A record before 0.13.50 has no model: its topic and payloads decide.
      const model = typeof rec?.model === "string" ? rec.model : device.model;
      const queue: Pending[] = [];
      let ended = 0;
      for (const [payload, queuedAt, expiresAt, origin, written] of entries) {
        const hooks = revive(device, origin);
        const p: Pending = {
          deviceId,
          model,
          payload,
          queuedAt,
          expiresAt:
            expiresAt === null || hooks.still
              ? Number.POSITIVE_INFINITY
              : Math.min(expiresAt, now + this.ttlMs),
          hooks,
          conn: null,
          resend: written === true,
        };
        if (changedDownlink(device, rec?.topic, p)) {
          this.lose(p, "device-changed");
          ended++;
        } else queue.push(p);
      }
      if (ended > 0) changed(deviceId, ended);
      if (topic === null || queue.length === 0) {
        this.store.delete(key);
        continue;
      }
      this.recorded.set(topic, deviceId);
      this.replace(topic, queue);
      // A device that logged in while the broker was starting: no login will come to send them.
      if (this.link.live(topic)) this.ready(topic);
    }
  }

  stats(): PendingDownlinkStats {
    let pending = 0;
    for (const q of this.byTopic.values()) pending += q.length;
    return { pending, ...this.counts };
  }

  private replace(topic: string, queue: Pending[]): void {
    if (queue.length === 0) this.byTopic.delete(topic);
    else this.byTopic.set(topic, queue);
    this.record(topic, queue);
  }

  /** The device's record: rewritten whole (at most MAX_PENDING_PER_DEVICE entries), deleted when empty. */
  private record(topic: string, queue = this.byTopic.get(topic) ?? []): void {
    if (this.store === null) return;
    const kept = queue.filter((p) => p.hooks.origin !== undefined);
    if (kept.length === 0) {
      const deviceId = this.recorded.get(topic);
      if (deviceId === undefined) return;
      this.recorded.delete(topic);
      this.store.delete(KEY.downlinks(deviceId));
      return;
    }
    const deviceId = (kept[0] as Pending).deviceId;
    this.recorded.set(topic, deviceId);
    this.store.put(KEY.downlinks(deviceId), {
      topic,
      model: (kept[0] as Pending).model,
      entries: kept.map(
        (p): EntryRecord => [
          p.payload,
          p.queuedAt,
          Number.isFinite(p.expiresAt) ? p.expiresAt : null,
          p.hooks.origin as DownlinkOrigin,
          p.conn !== null || p.resend,
        ],
      ),
    });
  }

  /**
   * Topics whose device has a record in the journal, and that device: an emptied queue deletes
   * it, once. Only while a record exists: bounded by the devices with downlinks waiting.
   */
  private readonly recorded = new Map<string, string>();

  private gone(p: Pending, now: number): DownlinkLoss | null {
    if (p.hooks.still) return p.hooks.still() ? null : "downlink-withdrawn";
    return now >= p.expiresAt ? "downlink-expired" : null;
  }

  private lose(p: Pick<Pending, "hooks">, why: DownlinkLoss): void {
    if (why === "downlink-expired") this.counts.expired++;
    else if (why === "downlink-dropped") this.counts.dropped++;
    else if (why === "device-removed") this.counts.removed++;
    else if (why === "device-changed") this.counts.changed++;
    else this.counts.withdrawn++;
    p.hooks.lost?.(why);
  }
}

/**
 * Whether an entry queued for `topic` is no longer what the device, as configured now, would be
 * sent (docs/reload.md "Commands waiting for a device"): its downlink topic is another, or its
 * model is another (the command was checked against and encoded by the old model's profile), or
 * its profile now encodes the command differently (a YAML profile's `commands` edited), or no
 * longer has it. An `ack_call` is built by the EC-200's own code (no YAML profile has one): its
 * topic and model decide.
 */
export function changedDownlink(
  device: DeviceEntry,
  topic: unknown,
  p: Pick<Pending, "model" | "payload" | "hooks">,
): boolean {
  if (device.downlinkTopic !== topic || device.model !== p.model) return true;
  const origin = p.hooks.origin;
  if (origin === undefined || origin.kind === "ack" || device.profile.transport !== "mqtt") return false;
  const command = commandOf(device.profile, origin.command);
  return command === undefined || JSON.stringify(command.message(origin.id)) !== p.payload;
}
