/**
 * Writes the gateway's durable state to the journal as it changes: alerts
 * (every published or held change, before it is published), shelving, out of
 * service, away mode, flood, and per device the last-seen time, link state
 * and the seq numbers of its recent alert-bearing messages.
 *
 * Last-seen and last-activity times change with every message; they are
 * written at most once per `checkpointMs` per device (and at a clean stop),
 * so a restart after a crash resumes supervision from a time at most that
 * much earlier than the truth (docs/durability.md).
 */

import type { AlertCode } from "../../core/index.js";
import type { Alert, AlertSubject } from "../alerts/alert.js";
import type { EngineRecorder, FloodRecord, ShelveRecord } from "../alerts/engine.js";
import type { DeviceEntry, HouseholdEntry, Registry } from "../registry.js";
import type { AwayRecord } from "../supervision.js";
import { alertRecord } from "./alert-record.js";
import { KEY } from "./keys.js";
import type { DurableStore } from "./store.js";

/** Alert-bearing seq numbers kept per device: more than a pendant's re-send backlog (datasheet: 8). */
export const ALERT_SEQS_KEPT = 16;

export interface DeviceRecord {
  seen: number;
  link: DeviceEntry["link"];
  seqs: number[];
  /**
   * The model these seqs are of: a start whose site file names another model for the id (another
   * device, its own seqs) forgets the record. Absent in records written before it existed.
   */
  model?: string;
}

export interface HouseholdRecord {
  activity: number;
}

export interface RunningRecord {
  /** The gateway ran at this time (wall clock, ms): written every checkpointInterval and at a clean stop. */
  at: number;
}

export class StateRecorder implements EngineRecorder {
  writes = 0;

  constructor(
    private readonly store: DurableStore,
    private readonly checkpointMs: number,
  ) {}

  // --- alert engine ---------------------------------------------------------------

  alert(a: Alert): void {
    this.writes++;
    if (a.state === "closed") this.store.delete(KEY.alert(a.id));
    else this.store.put(KEY.alert(a.id), alertRecord(a));
  }

  shelve(subjectId: string, code: AlertCode, shelve: ShelveRecord | null): void {
    this.writes++;
    if (shelve === null) this.store.delete(KEY.shelve(subjectId, code));
    else this.store.put(KEY.shelve(subjectId, code), shelve);
  }

  service(subject: AlertSubject, by: string | null, at: number, account: string | null = null): void {
    this.writes++;
    if (by === null) this.store.delete(KEY.service(subject.id));
    else
      this.store.put(KEY.service(subject.id), {
        by,
        account,
        at,
        model: subject.model,
        household: subject.household,
      });
  }

  flood(flood: FloodRecord): void {
    this.writes++;
    this.store.put(KEY.flood, flood);
  }

  // --- supervision ------------------------------------------------------------------

  readonly away = (householdId: string, away: AwayRecord | null): void => {
    this.writes++;
    if (away === null) this.store.delete(KEY.away(householdId));
    else this.store.put(KEY.away(householdId), away);
  };

  /** Every accepted message (hot path): writes only when the checkpoint interval passed or the link changed. */
  seen(device: DeviceEntry): void {
    if (device.lastSeen - device.journaledSeen >= this.checkpointMs || device.link !== device.journaledLink)
      this.writeDevice(device, true);
  }

  /**
   * An alert-bearing message from an MQTT device, after its rules ran: its seq is kept so that a
   * re-send after a restart is known as a duplicate. `changedState`: the message changed an alert
   * (or other journaled state), whose records are already put; this one comes after them and the
   * commit the device's PUBACK waits for covers it. If it changed nothing (most door events), a
   * re-send would change nothing either: put as a checkpoint, and the PUBACK need not wait for an
   * fdatasync (2,000 msg/s bench: 115 syncs a second, almost all for door events, before).
   */
  alertMessage(device: DeviceEntry, seq: number, changedState: boolean): void {
    const seqs = (device.alertSeqs ??= []);
    if (seqs.length >= ALERT_SEQS_KEPT) seqs.shift();
    seqs.push(seq);
    this.writeDevice(device, !changedState);
  }

  activity(household: HouseholdEntry): void {
    if (household.lastActivity - household.journaledActivity < this.checkpointMs) return;
    this.writeHousehold(household, true);
  }

  /** The gateway is running at `at`: a checkpoint (every checkpointInterval; written at a clean stop). */
  running(at: number): void {
    const record: RunningRecord = { at };
    this.store.putCheckpoint(KEY.running, record);
  }

  /**
   * The wall clock stepped (gateway/clock-step.ts): every device's last-seen time and household's
   * last activity, moved, written now. Kept as they were, a crash before each was written again
   * brought back times off by the step: a clock set forward an hour made every device lost at the
   * restart, one set back held a welfare check as long.
   */
  clockStepped(registry: Registry): void {
    for (const d of registry.devices.values()) if (d.lastSeen !== d.journaledSeen) this.writeDevice(d, true);
    for (const h of registry.households.values())
      if (h.lastActivity !== h.journaledActivity) this.writeHousehold(h, true);
  }

  /** Clean stop: every time that moved since it was last written. */
  flushLiveness(registry: Registry): void {
    for (const d of registry.devices.values())
      if (d.lastSeen !== d.journaledSeen || d.link !== d.journaledLink) this.writeDevice(d);
    for (const h of registry.households.values())
      if (h.lastActivity !== h.journaledActivity) this.writeHousehold(h);
  }

  /**
   * `checkpoint`: no device or operator is answered on the strength of this record alone, so a
   * commit does not wait for its sync (putCheckpoint); a later record that is waited for covers it.
   */
  writeDevice(device: DeviceEntry, checkpoint = false): void {
    this.writes++;
    device.journaledSeen = device.lastSeen;
    device.journaledLink = device.link;
    const record: DeviceRecord = {
      seen: device.lastSeen,
      link: device.link,
      seqs: device.alertSeqs ?? [],
      model: device.model,
    };
    if (checkpoint) this.store.putCheckpoint(KEY.device(device.id), record);
    else this.store.put(KEY.device(device.id), record);
  }

  private writeHousehold(household: HouseholdEntry, checkpoint = false): void {
    this.writes++;
    household.journaledActivity = household.lastActivity;
    const record: HouseholdRecord = { activity: household.lastActivity };
    if (checkpoint) this.store.putCheckpoint(KEY.household(household.id), record);
    else this.store.put(KEY.household(household.id), record);
  }

  /** A subject that left the configuration: nothing of it is kept. */
  forgetDevice(deviceId: string): void {
    this.store.delete(KEY.device(deviceId));
  }
}
