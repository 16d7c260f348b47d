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
import type { WriteBarrier } from "../northbound/written-first.js";
import type { DeviceEntry, HouseholdEntry, Registry } from "../registry.js";
import type { AwayRecord } from "../supervision.js";
import { alertRecord, packedAlertRecord } from "./alert-record.js";
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

/**
 * The device record in a press's pair record (since 2026-12-06): `[1, seen, link, seqs, model]`
 * (DEVICE_LAYOUT_V1). Read in either form by readDeviceRecord.
 */
export const DEVICE_LAYOUT_V1 = 1;

/**
 * A journaled device record in any form it was written in (a map, or DEVICE_LAYOUT_V1); the
 * fields are checked by the caller (recovery), as a map's always were.
 */
export function readDeviceRecord(v: unknown): Partial<DeviceRecord> | undefined {
  if (!Array.isArray(v)) return v as Partial<DeviceRecord> | undefined;
  if (v[0] !== DEVICE_LAYOUT_V1 || v.length !== 5) return {};
  return { seen: v[1], link: v[2], seqs: v[3], model: v[4] };
}

export interface HouseholdRecord {
  activity: number;
  /** When a reload started its welfare period (HouseholdEntry.welfareFrom); absent: never. */
  from?: number;
}

/**
 * `hold/<subject>/<CODE>`: an on-delay under way since `since` (gateway time, moved with the clock
 * as an escalation's due time is: gateway/moved-times.ts).
 */
export interface HoldRecord {
  since: number;
}

export interface RunningRecord {
  /** The gateway ran at this time (wall clock, ms): written every checkpointInterval and at a clean stop. */
  at: number;
  /**
   * Written by a clean stop as the last record before the journal is closed (synced), cleared by
   * the next start before anything is published: absent, the previous run ended in a crash or a
   * power cut, which may have lost published alert states (recovery skips their revs).
   */
  clean?: true;
}

/**
 * At most this many revs of one alert are published past its last record known durable (synced):
 * the next change beyond is synced on the calling thread before it is published. A start after a
 * crash or a power cut adds it to every restored alert's rev, so no rev published in the lost
 * window is ever used again for another state (docs/durability.md, docs/topics.md 0.13.4).
 */
export const REV_UNSYNCED_MAX = 16;

/** One open alert's revs: the last put, and the last known durable (for REV_UNSYNCED_MAX). */
interface RevTrack {
  durable: number;
  put: number;
  /** `putSeq` at the put: durable once a commit asked at or after it has answered. */
  seq: number;
}

/**
 * The alert-bearing message whose rules are running (StateRecorder.message): its seq is journaled
 * with the last alert state it changed, in one record.
 */
interface OpenMessage {
  device: DeviceEntry;
  seq: number;
  /** The alert state put last in this message, not yet handed to the store (flushed by any other record). */
  alert: Alert | null;
  /** A P1 publish asked for its records to be written at once (writeNow), held until the message ends. */
  urgent: boolean;
  /** afterWrite() callers held with the deferred state (at most the northbound sink's one registration). */
  waiting: Array<() => void>;
}

/**
 * Journals the gateway's state; also the northbound messages' write barrier (WrittenFirstSink): a
 * message waits for the records behind it, an alert state deferred to the end of its message (one
 * record per press) included.
 */
export class StateRecorder implements EngineRecorder, WriteBarrier {
  writes = 0;
  /** Alert changes synced on the calling thread because REV_UNSYNCED_MAX was reached. */
  revSyncs = 0;
  /** Per open alert (bounded by the open alerts; deleted when it closes). */
  private readonly revs = new Map<string, RevTrack>();
  private putSeq = 0;
  private durableSeq = 0;
  private commitAsked = false;
  /** The alert-bearing message whose rules are running (one at a time: rules are synchronous). */
  private open: OpenMessage | null = null;
  /** Records put in one message (bench/journal-press.ts: records per press). */
  pairs = 0;

  constructor(
    private readonly store: DurableStore,
    private readonly checkpointMs: number,
  ) {}

  // --- alert engine ---------------------------------------------------------------

  alert(a: Alert): void {
    this.writes++;
    const open = this.open;
    if (a.state !== "closed" && open !== null) {
      // Within a message's rules: held until the message ends, when it takes the seq with it
      // (messageDone), unless another record comes first. Its publish waits (writePending).
      if (open.alert !== a) this.flush();
      open.alert = a;
      return;
    }
    this.flush();
    if (a.state === "closed") {
      this.store.delete(KEY.alert(a.id));
      this.revs.delete(a.id);
      return;
    }
    // A map on disk (what versions before 2026-12-06 read), kept positional in memory. Not in
    // flush(): that one is within a message's rules, and a press pays for no second encoding.
    this.store.put(KEY.alert(a.id), alertRecord(a), packedAlertRecord(a));
    this.trackRev(a);
  }

  /** The alert state deferred by an open message, put now (another record must come after it). */
  private flush(): void {
    const a = this.open?.alert;
    if (a === undefined || a === null) return;
    (this.open as OpenMessage).alert = null;
    this.store.put(KEY.alert(a.id), alertRecord(a));
    this.trackRev(a);
  }

  /**
   * Keeps the published revs of an alert within REV_UNSYNCED_MAX of its last durable record: past
   * it (an alert changing that often within one fdatasync), this record is synced before it is
   * published. Without a record of its own here, the one before (restored, or none) is durable.
   */
  private trackRev(a: Alert): void {
    const seq = ++this.putSeq;
    let t = this.revs.get(a.id);
    if (t === undefined) {
      t = { durable: a.rev - 1, put: a.rev, seq };
      this.revs.set(a.id, t);
    } else {
      if (t.seq <= this.durableSeq) t.durable = t.put;
      t.put = a.rev;
      t.seq = seq;
    }
    if (a.rev - t.durable > REV_UNSYNCED_MAX) {
      this.revSyncs++;
      this.store.syncNow();
      this.durableSeq = seq;
      t.durable = a.rev;
      return;
    }
    this.askCommit();
  }

  /** One sync asked at a time: when it answers, every put before it is durable. */
  private askCommit(): void {
    if (this.commitAsked) return;
    this.commitAsked = true;
    const seq = this.putSeq;
    // Synced, not only written: under `interval` a commit answers at the write.
    this.store.afterSync(() => {
      this.commitAsked = false;
      if (seq > this.durableSeq) this.durableSeq = seq;
      if (this.putSeq > seq) this.askCommit();
    });
  }

  shelve(subjectId: string, code: AlertCode, shelve: ShelveRecord | null): void {
    this.writes++;
    this.flush();
    if (shelve === null) this.store.delete(KEY.shelve(subjectId, code));
    else this.store.put(KEY.shelve(subjectId, code), shelve);
  }

  /**
   * An on-delay started (its start) or ended (null): one small record per (device, code), twice
   * per on-delay. Checkpoints: nobody is answered on their strength (a door opening, which starts
   * its hold-open time, still waits for no sync), written in order with the rest (a crash of the
   * process loses none); a power cut can lose the last second's (docs/durability.md). The end comes
   * after what the message changed (an alert its completion raised): never lost without it.
   */
  hold(subjectId: string, code: AlertCode, since: number | null): void {
    if (since === null) {
      this.flush();
      this.store.deleteCheckpoint(KEY.hold(subjectId, code));
    } else this.store.putCheckpoint(KEY.hold(subjectId, code), { since } satisfies HoldRecord);
  }

  service(subject: AlertSubject, by: string | null, at: number, account: string | null = null): void {
    this.writes++;
    this.flush();
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
    this.flush();
    this.store.put(KEY.flood, flood);
  }

  // --- supervision ------------------------------------------------------------------

  readonly away = (householdId: string, away: AwayRecord | null): void => {
    this.writes++;
    this.flush();
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

  /**
   * An alert-bearing message's rules start (gateway/consume.ts): until messageDone(), the alert
   * state they put last is held, so that it and the message's seq go in one record (a pair) after
   * everything else the message changed. A press that raises or updates one alert writes one
   * record, not two (its state, then its seq): one encoding pass, one framing, one CRC, one write.
   * The order promised stays: the seq never reaches the disk without what its message changed (a
   * torn tail keeps the pair whole or not at all, and any other record of the message is put
   * before it); the alert state is written before it is published: its publish waits (P1: at the
   * end of the message's rules, microseconds later, with its write on this thread then).
   */
  message(device: DeviceEntry, seq: number): void {
    this.endMessage();
    this.open = { device, seq, alert: null, urgent: false, waiting: [] };
  }

  /**
   * The message's rules ran (after message()): its seq is journaled, with the alert state held (one
   * record) or after what it changed (alertMessage), and the publishes held for it are let go.
   */
  messageDone(changedState: boolean): void {
    const open = this.open;
    if (open === null) return;
    const a = open.alert;
    if (a === null) {
      this.endMessage();
      this.alertMessage(open.device, open.seq, changedState);
      return;
    }
    open.alert = null;
    const device = open.device;
    const seqs = (device.alertSeqs ??= []);
    if (seqs.length >= ALERT_SEQS_KEPT) seqs.shift();
    seqs.push(open.seq);
    this.writes++;
    this.pairs++;
    device.journaledSeen = device.lastSeen;
    device.journaledLink = device.link;
    // Positional layouts: no keys to encode (alert-record.ts, DEVICE_LAYOUT_V1).
    this.store.putPair(KEY.alert(a.id), packedAlertRecord(a), KEY.device(device.id), [
      DEVICE_LAYOUT_V1,
      device.lastSeen,
      device.link,
      device.alertSeqs,
      device.model,
    ]);
    this.trackRev(a);
    this.endMessage();
  }

  /**
   * Closes the open message (its rules threw: what they put is put, no seq, as before): held
   * records are put, then held publishes go (a P1 one written on this thread first).
   */
  endMessage(): void {
    const open = this.open;
    if (open === null) return;
    this.flush();
    this.open = null;
    if (open.urgent) this.store.writeNow();
    for (const done of open.waiting) this.store.afterWrite(done);
  }

  // --- the northbound write barrier (WrittenFirstSink) ---------------------------------

  get writePending(): boolean {
    return (this.open !== null && this.open.alert !== null) || this.store.writePending;
  }

  afterWrite(done: () => void): void {
    if (this.open !== null && this.open.alert !== null) this.open.waiting.push(done);
    else this.store.afterWrite(done);
  }

  writeNow(): void {
    if (this.open !== null && this.open.alert !== null) this.open.urgent = true;
    else this.store.writeNow();
  }

  activity(household: HouseholdEntry): void {
    if (household.lastActivity - household.journaledActivity < this.checkpointMs) return;
    this.writeHousehold(household, true);
  }

  /** The gateway is running at `at`: a checkpoint (every checkpointInterval; written at a clean stop). */
  running(at: number): void {
    this.flush();
    const record: RunningRecord = { at };
    this.store.putCheckpoint(KEY.running, record);
  }

  /**
   * Clean stop, the last record before the journal is closed (and synced): the next start knows
   * nothing published was lost. Records reach the file in order, so with it every record before it.
   */
  cleanStop(at: number): void {
    this.flush();
    const record: RunningRecord = { at, clean: true };
    this.store.put(KEY.running, record);
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
      if (h.lastActivity !== h.journaledActivity || h.welfareFrom > 0) this.writeHousehold(h, true);
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
    this.flush();
    device.journaledSeen = device.lastSeen;
    device.journaledLink = device.link;
    const record = this.deviceRecord(device);
    if (checkpoint) this.store.putCheckpoint(KEY.device(device.id), record);
    else this.store.put(KEY.device(device.id), record);
  }

  private deviceRecord(device: DeviceEntry): DeviceRecord {
    return { seen: device.lastSeen, link: device.link, seqs: device.alertSeqs ?? [], model: device.model };
  }

  /** A reload started the household's welfare period (welfareFrom): written now. */
  readonly welfareStarted = (household: HouseholdEntry): void => this.writeHousehold(household);

  private writeHousehold(household: HouseholdEntry, checkpoint = false): void {
    this.writes++;
    this.flush();
    household.journaledActivity = household.lastActivity;
    const record: HouseholdRecord = { activity: household.lastActivity };
    if (household.welfareFrom > 0) record.from = household.welfareFrom;
    if (checkpoint) this.store.putCheckpoint(KEY.household(household.id), record);
    else this.store.put(KEY.household(household.id), record);
  }

  /**
   * After a device's rules ran: the part of its rule state that decides alerts (`profile.durable`),
   * put when it changed (rare: a fault flag, an alarm level), as an ordinary record, so that the
   * PUBACK of the message that changed it waits for it as for an alert state. One record per
   * device, a few values: bounded by the configuration.
   */
  rules(device: DeviceEntry): void {
    const durable = device.profile.durable;
    if (durable === undefined) return;
    const last = device.journaledRule;
    if (last !== null ? durable.same(device.ruleState, last) : this.initial(device)) return;
    const values = durable.save(device.ruleState);
    device.journaledRule = values;
    this.writes++;
    this.flush();
    this.store.put(KEY.rule(device.id), [durable.version, device.model, ...values]);
  }

  /** Nothing journaled yet: a state still as initialState() made it needs no record. */
  private initial(device: DeviceEntry): boolean {
    const durable = device.profile.durable;
    if (durable === undefined) return true;
    device.journaledRule = durable.save(device.profile.initialState());
    return durable.same(device.ruleState, device.journaledRule);
  }

  /** A subject that left the configuration: nothing of it is kept. */
  forgetDevice(deviceId: string): void {
    this.flush();
    this.store.delete(KEY.device(deviceId));
    this.store.delete(KEY.rule(deviceId));
  }
}
