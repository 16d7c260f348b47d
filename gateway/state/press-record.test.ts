/**
 * One record per press: the alert state a message's rules put last and the message's seq go in one
 * journal record (a pair), after anything else the message changed; the alert's publish waits for
 * that record to be written (a P1: written on the event loop at the end of the rules). A journal
 * written the way main wrote it before (the alert state, then the seq record) recovers the same.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decode, encode } from "cbor-x";
import { describe, expect, it } from "vitest";
import { journalScratch } from "../../test/support/journal-scratch.js";
import { Alert } from "../alerts/alert.js";
import { Journal } from "../journal/journal.js";
import { recordBounds } from "../journal/record.js";
import type { NorthboundSink } from "../northbound/sink.js";
import { WrittenFirstSink } from "../northbound/written-first.js";
import type { DeviceEntry } from "../registry.js";
import { alertRecord, packedAlertRecord, readAlertRecord } from "./alert-record.js";
import { readDeviceRecord, StateRecorder } from "./recorder.js";
import { MemoryStore } from "./store.js";

const { tempDir, open } = journalScratch("linli-press-record-");

function openJ(dir: string): Journal {
  const j = Journal.open({ dir });
  open.push(j);
  return j;
}

/** The fields alertRecord reads; enough for the recorder, which does not look inside. */
function fakeAlert(id: string, rev = 1, state = "active-unacknowledged"): Alert {
  return {
    id,
    code: "EMERGENCY_CALL",
    priority: 1,
    subject: { id: "p-1", model: "ec200", household: "hh-1" },
    raisedAt: 1_765_000_000_000,
    topic: `linli/s/alerts/p1/EMERGENCY_CALL/p-1`,
    state,
    updatedAt: 1_765_000_000_000,
    count: 1,
    causes: ["button pressed"],
    detail: { bat: 87 },
    rev,
    lastTransition: "raised",
  } as unknown as Alert;
}

function fakeDevice(): DeviceEntry {
  return {
    id: "p-1",
    model: "ec200",
    lastSeen: 1_765_000_000_000,
    link: "online",
    journaledSeen: 0,
    journaledLink: "unknown",
    alertSeqs: null,
  } as unknown as DeviceEntry;
}

const P1 = "linli/s/alerts/p1/EMERGENCY_CALL/p-1";

/** The northbound side: what went out, and how many records the journal had written by then. */
function sinkOn(j: Journal, recorder: StateRecorder) {
  const out: Array<{ topic: string; writtenRecords: number; pending: boolean }> = [];
  const inner: NorthboundSink = {
    publish: (topic) => out.push({ topic, writtenRecords: recordsOnDisk(j), pending: j.writePending }),
  };
  const sink = new WrittenFirstSink(inner, recorder, (t) => t.includes("/p1/"));
  return { out, sink };
}

let dirOf = new WeakMap<Journal, string>();
function recordsOnDisk(j: Journal): number {
  const dir = dirOf.get(j) as string;
  const seg = readdirSync(dir).find((f) => f.startsWith("seg-")) as string;
  return recordBounds(readFileSync(join(dir, seg))).length;
}

/** The gateway's consume step for an alert-bearing message, with `rules` in the middle. */
function press(recorder: StateRecorder, device: DeviceEntry, seq: number, rules: () => void): void {
  const before = recorder.writes;
  recorder.message(device, seq);
  rules();
  recorder.messageDone(recorder.writes !== before);
}

describe("one journal record per press", () => {
  it("a press that raises a P1 writes one record (its state and its seq); the P1 goes out once that record is written, not before", () => {
    const dir = tempDir();
    const j = openJ(dir);
    dirOf = new WeakMap([[j, dir]]);
    const recorder = new StateRecorder(j, 5000);
    const { out, sink } = sinkOn(j, recorder);
    const device = fakeDevice();
    const before = j.stats().records;
    let publishedDuringRules = -1;
    press(recorder, device, 1042, () => {
      const a = fakeAlert("a-1");
      recorder.alert(a); // the engine journals first ...
      sink.publish(P1, "{}", 1, true, true); // ... then publishes
      publishedDuringRules = out.length;
    });
    expect(publishedDuringRules).toBe(0); // held: its record is not written yet
    expect(out).toEqual([{ topic: P1, writtenRecords: 1, pending: false }]);
    expect(j.stats().records - before).toBe(1);
    expect(j.stats().urgentWrites).toBe(1);
    expect(recorder.pairs).toBe(1);
    j.close();
    const r = openJ(dir);
    expect(readAlertRecord(r.get("alert/a-1"))).toMatchObject({ id: "a-1", rev: 1 });
    expect(readDeviceRecord(r.get("dev/p-1"))).toEqual({
      seen: 1_765_000_000_000,
      link: "online",
      seqs: [1042],
      model: "ec200",
    });
  });

  it("the seq still comes after everything the message changed: another record after the alert state puts the state first, the seq last", () => {
    class Logged extends MemoryStore {
      readonly ops: string[] = [];
      override put(key: string, value: unknown): void {
        this.ops.push(`put ${key}`);
        super.put(key, value);
      }
      override putPair(k1: string, v1: unknown, k2: string, v2: unknown): void {
        this.ops.push(`pair ${k1} ${k2}`);
        super.putPair(k1, v1, k2, v2);
      }
      override putCheckpoint(key: string, value: unknown): void {
        this.ops.push(`checkpoint ${key}`);
        super.putCheckpoint(key, value);
      }
    }
    const store = new Logged();
    const recorder = new StateRecorder(store, 5000);
    const device = fakeDevice();
    // Another record after the state (a flood's state, a shelving): two records and the seq.
    press(recorder, device, 1, () => {
      recorder.alert(fakeAlert("a-1"));
      recorder.flood({ flooding: false, buckets: [] } as never);
    });
    expect(store.ops).toEqual(["put alert/a-1", "put flood", "put dev/p-1"]);
    // Two alert states: the first alone, the last with the seq.
    store.ops.length = 0;
    press(recorder, device, 2, () => {
      recorder.alert(fakeAlert("a-1", 2));
      recorder.alert(fakeAlert("a-2"));
    });
    expect(store.ops).toEqual(["put alert/a-1", "pair alert/a-2 dev/p-1"]);
    // The same alert changed twice by one message: its last state, with the seq.
    store.ops.length = 0;
    const a = fakeAlert("a-3");
    press(recorder, device, 3, () => {
      recorder.alert(a);
      (a as { rev: number }).rev = 2;
      recorder.alert(a);
    });
    expect(store.ops).toEqual(["pair alert/a-3 dev/p-1"]);
    expect(readAlertRecord(store.get("alert/a-3"))).toMatchObject({ rev: 2 });
    // A close (a delete) after the state: the state, the delete, then the seq.
    store.ops.length = 0;
    press(recorder, device, 4, () => {
      recorder.alert(fakeAlert("a-4"));
      recorder.alert(fakeAlert("a-1", 3, "closed"));
    });
    expect(store.ops).toEqual(["put alert/a-4", "put dev/p-1"]);
    expect(store.get("alert/a-1")).toBeUndefined();
    // A message that changed nothing: its seq as a checkpoint, as before.
    store.ops.length = 0;
    press(recorder, device, 5, () => {});
    expect(store.ops).toEqual(["checkpoint dev/p-1"]);
    expect(readDeviceRecord(store.get("dev/p-1"))).toMatchObject({ seqs: [1, 2, 3, 4, 5] });
  });

  it("rules that throw: the held state is put and its publish let go; no seq (as before)", () => {
    const dir = tempDir();
    const j = openJ(dir);
    dirOf = new WeakMap([[j, dir]]);
    const recorder = new StateRecorder(j, 5000);
    const { out, sink } = sinkOn(j, recorder);
    recorder.message(fakeDevice(), 7);
    recorder.alert(fakeAlert("a-1"));
    sink.publish(P1, "{}", 1, true, true);
    expect(out).toEqual([]);
    recorder.endMessage(); // consume's catch
    expect(out).toEqual([{ topic: P1, writtenRecords: 1, pending: false }]);
    expect(j.get("dev/p-1")).toBeUndefined();
    recorder.messageDone(true); // nothing open any more: nothing written
    expect(j.get("dev/p-1")).toBeUndefined();
  });

  it("a journal written as before (the alert state, then the seq record) and one written with the pair recover the same state", () => {
    const write = (pair: boolean): string => {
      const dir = tempDir();
      const j = openJ(dir);
      const recorder = new StateRecorder(j, 5000);
      const device = fakeDevice();
      for (let seq = 1; seq <= 20; seq++) {
        const a = fakeAlert(`a-${seq % 3}`, seq);
        if (pair) press(recorder, device, seq, () => recorder.alert(a));
        else {
          // The consume step before this change: the state put (and written) during the rules,
          // the seq record after them.
          recorder.alert(a);
          j.writeNow();
          recorder.alertMessage(device, seq, true);
        }
      }
      j.close();
      return dir;
    };
    const older = write(false);
    const newer = write(true);
    // Synced records (one per sync that moved the durable offset, and one at close) are not counted.
    const olderRecords = recordBounds(readFileSync(join(older, "seg-0000000000000001.log")), false).length;
    const newerRecords = recordBounds(readFileSync(join(newer, "seg-0000000000000001.log")), false).length;
    expect([olderRecords, newerRecords]).toEqual([40, 20]);
    const a = openJ(older);
    const b = openJ(newer);
    // As recovery reads them (gateway/state/recovery.ts): the map form main wrote, the positional
    // layouts of a pair.
    const state = (j: Journal) =>
      new Map(
        [...j.entries()].map(([k, v]) => [
          k,
          k.startsWith("alert/") ? readAlertRecord(v) : k.startsWith("dev/") ? readDeviceRecord(v) : v,
        ]),
      );
    expect([...a.entries()].every(([, v]) => !Array.isArray(v))).toBe(true); // main's form: maps
    expect([...b.entries()].every(([, v]) => Array.isArray(v))).toBe(true);
    expect(state(a)).toEqual(state(b));
    expect(state(b).get("dev/p-1")).toMatchObject({
      seqs: [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
    });
    expect(state(b).get("alert/a-2")).toEqual(structuredClone(alertRecord(fakeAlert("a-2", 20))));
    expect(a.recovery.damaged + b.recovery.damaged).toBe(0);
    expect([a.recovery.records, b.recovery.records]).toEqual([40, 20]);
  });

  it("the positional alert layout holds every field of an alert, read back as the map form holds it", () => {
    const a = new Alert(
      "a-9",
      "EMERGENCY_CALL",
      1,
      "s",
      { id: "p-1", model: "ec200", household: "hh-1" },
      1_765_000_000_000,
      "linli/s/alerts/p1/EMERGENCY_CALL/p-1",
      ["fall detected", "跌倒"],
      true,
      false,
      { bat: 12, note: "x" },
      null,
    );
    Object.assign(a, {
      state: "active-acknowledged",
      count: 3,
      ackedBy: "Zhou",
      ackedByAccount: "zhou",
      ackedAt: 1_765_000_100_000,
      ackNote: "在路上",
      escalationLevel: 2,
      escalationNextAt: 1_765_000_900_000,
      escalateAs: 1,
      holds: 4,
      rev: 7,
      unpublished: true,
    });
    const packed = decode(encode(packedAlertRecord(a)));
    const map = decode(encode(alertRecord(a)));
    expect(readAlertRecord(packed)).toEqual(map);
    expect(Object.keys(readAlertRecord(packed) as object)).toEqual(Object.keys(alertRecord(a)));
    expect(encode(packedAlertRecord(a)).length).toBeLessThan(encode(alertRecord(a)).length / 2);
    // Damage or an unknown layout is no record (skipped and counted by recovery).
    expect(readAlertRecord([2, ...(packed as unknown[]).slice(1)])).toBeNull();
    expect(readAlertRecord((packed as unknown[]).slice(0, -1))).toBeNull();
  });
});
