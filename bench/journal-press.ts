/**
 * What the journal costs a press on the main thread, by count (docs/performance.md, "One record
 * per press"): a `Journal` on the OS temp dir driven by the gateway's `StateRecorder` and
 * `WrittenFirstSink` as the consume step drives them for an EC-200 press that updates its
 * EMERGENCY_CALL (the alert state, the P1's publish, the device's seq, the PUBACK's commit).
 * Two ways, alternated in one process: "two" (the consume step before 2026-12-06: the alert state
 * put and written during the rules, the seq record after them) and "pair" (one record).
 *
 *   npm run bench:journal-press -- [--presses 300] [--hot 5000] [--rounds 3]
 *
 * Per way and round: records, bytes appended and fdatasyncs per press (presses 5 ms apart, each
 * awaiting nothing but the timer: syncs coalesce as the disk allows); then, hot (no await), CPU
 * microseconds per press on the main thread (the press's synchronous part, writeNow()'s write(2)
 * included), and in a second hot run the JS heap bytes allocated per press (V8's sampling heap
 * profiler, every 64 bytes, collected objects included: heapUsed deltas undercount the young
 * generation; array buffers, cbor-x's output and the framing's pool slabs, are not counted).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Alert } from "../gateway/alerts/alert.js";
import { nodeFs } from "../gateway/journal/fs.js";
import { Journal } from "../gateway/journal/journal.js";
import type { NorthboundSink } from "../gateway/northbound/sink.js";
import { WrittenFirstSink } from "../gateway/northbound/written-first.js";
import type { DeviceEntry } from "../gateway/registry.js";
import { StateRecorder } from "../gateway/state/recorder.js";

type Way = "two" | "pair";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const PRESSES = arg("presses", 300);
const HOT = arg("hot", 5000);
const ROUNDS = arg("rounds", 3);
const P1 = "linli/demo/alerts/p1/EMERGENCY_CALL/pendant-0042";
const gc = (globalThis as { gc?: () => void }).gc;

/** An open EMERGENCY_CALL with every field the journal keeps (alert-record.ts), as a press updates it. */
function alert(): Alert {
  return {
    id: "a-00000123-ab12",
    code: "EMERGENCY_CALL",
    priority: 1,
    subject: { id: "pendant-0042", model: "ec200", household: "hh-0042" },
    raisedAt: 1_765_000_000_123,
    topic: P1,
    state: "active-unacknowledged",
    updatedAt: 1_765_000_000_123,
    count: 1,
    causes: ["button pressed"],
    cancelledByResident: false,
    ackedBy: null,
    ackedByAccount: null,
    ackedAt: null,
    ackNote: null,
    clearedAt: null,
    urgent: true,
    test: false,
    detail: { bat: 87, rssi: -71 },
    windowUntil: 1_765_000_120_123,
    suppressedFor: null,
    shelvedBy: null,
    shelvedByAccount: null,
    shelvedAt: null,
    shelvedUntil: null,
    shelveReason: null,
    outOfServiceBy: null,
    outOfServiceByAccount: null,
    chattering: false,
    holds: 0,
    announced: true,
    unackSince: 1_765_000_000_123,
    escalationLevel: 0,
    escalationNextAt: 1_765_000_300_123,
    escalateAs: null,
    lastIsa: "UNACK",
    rev: 1,
    lastTransition: "raised",
    unpublished: false,
  } as unknown as Alert;
}

function device(): DeviceEntry {
  return {
    id: "pendant-0042",
    model: "ec200",
    lastSeen: 1_765_000_000_123,
    link: "online",
    journaledSeen: 0,
    journaledLink: "unknown",
    alertSeqs: null,
  } as unknown as DeviceEntry;
}

interface Rig {
  j: Journal;
  dir: string;
  press: () => void;
  acked: () => number;
}

/** Writes that do nothing (no syscall): the journal's own CPU per press, without the kernel's share. */
const noWrites = {
  ...nodeFs,
  writeSync: (_fd: number, _b: Uint8Array, _o: number, len: number) => len,
  write: (
    _fd: number,
    _b: Uint8Array,
    _o: number,
    len: number,
    _p: number,
    cb: (err: NodeJS.ErrnoException | null, n: number) => void,
  ) => queueMicrotask(() => cb(null, len)),
};

function rig(way: Way, fs = nodeFs): Rig {
  const dir = mkdtempSync(join(tmpdir(), "linli-journal-press-"));
  const j = Journal.open({ dir, fs });
  const recorder = new StateRecorder(j, 5000);
  const inner: NorthboundSink = { publish: () => {} };
  // The barrier the gateway used before (the journal) and now (the recorder).
  const sink = new WrittenFirstSink(inner, way === "pair" ? recorder : j, (t) => t.includes("/p1/"));
  const a = alert();
  const d = device();
  let seq = 0;
  let acked = 0;
  const ack = (): void => {
    acked++;
  };
  const press = (): void => {
    seq++;
    const mutable = a as unknown as { rev: number; count: number; updatedAt: number };
    mutable.rev++;
    mutable.count++;
    mutable.updatedAt++;
    (d as { lastSeen: number }).lastSeen++;
    if (way === "pair") {
      const before = recorder.writes;
      recorder.message(d, seq);
      recorder.alert(a);
      sink.publish(P1, "{}", 1, true, true);
      recorder.messageDone(recorder.writes !== before);
    } else {
      const before = recorder.writes;
      recorder.alert(a);
      sink.publish(P1, "{}", 1, true, true);
      recorder.alertMessage(d, seq, recorder.writes !== before);
    }
    j.commit(ack); // the PUBACK
  };
  return { j, dir, press, acked: () => acked };
}

function done(r: Rig): void {
  r.j.close();
  rmSync(r.dir, { recursive: true, force: true });
}

async function paced(way: Way): Promise<string> {
  const r = rig(way);
  const s0 = r.j.stats();
  const b0 = r.j.stats().bytesOnDisk;
  for (let i = 0; i < PRESSES; i++) {
    r.press();
    await sleep(5);
  }
  while (r.acked() < PRESSES) await sleep(5);
  const s1 = r.j.stats();
  const out =
    `records/press ${((s1.records - s0.records) / PRESSES).toFixed(2)}, ` +
    `bytes/press ${((s1.bytesOnDisk - b0) / PRESSES).toFixed(0)}, ` +
    `fdatasyncs/press ${((s1.syncs - s0.syncs) / PRESSES).toFixed(2)}`;
  done(r);
  return out;
}

/** V8's sampling heap profiler: bytes allocated on the JS heap (collected objects included). */
function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))),
  );
}

interface SamplingNode {
  selfSize: number;
  children: SamplingNode[];
}

function allocated(node: SamplingNode): number {
  return node.selfSize + node.children.reduce((n, c) => n + allocated(c), 0);
}

async function hot(way: Way, session: Session): Promise<string> {
  const r = rig(way);
  for (let i = 0; i < 2000; i++) r.press(); // warm
  await r.j.sync();
  gc?.();
  // CPU: a run of its own (the profiler's sampling costs time).
  const c0 = process.cpuUsage();
  for (let i = 0; i < HOT; i++) r.press();
  const c1 = process.cpuUsage(c0);
  await r.j.sync();
  gc?.();
  await post(session, "HeapProfiler.startSampling", {
    samplingInterval: 64,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < HOT; i++) r.press();
  const { profile } = await post<{ profile: { head: SamplingNode } }>(session, "HeapProfiler.stopSampling");
  await r.j.sync();
  done(r);
  // The same without the write(2) syscalls (a file system that writes nothing).
  const q = rig(way, noWrites);
  for (let i = 0; i < 2000; i++) q.press();
  await q.j.sync();
  gc?.();
  const c2 = process.cpuUsage();
  for (let i = 0; i < HOT; i++) q.press();
  const c3 = process.cpuUsage(c2);
  await q.j.sync();
  done(q);
  return (
    `JS heap allocated B/press ${(allocated(profile.head) / HOT).toFixed(0)}, ` +
    `CPU us/press ${((c1.user + c1.system) / HOT).toFixed(2)} ` +
    `(without the write(2): ${((c3.user + c3.system) / HOT).toFixed(2)})`
  );
}

async function main(): Promise<void> {
  if (gc === undefined) console.log("(no --expose-gc: heap figures include earlier garbage)");
  console.log(
    `journal per press: ${PRESSES} paced presses 5 ms apart, ${HOT} hot, ${ROUNDS} rounds alternated`,
  );
  const session = new Session();
  session.connect();
  await post(session, "HeapProfiler.enable");
  for (let round = 1; round <= ROUNDS; round++) {
    for (const way of ["two", "pair"] as Way[]) {
      console.log(`round ${round} ${way.padEnd(4)}: ${await paced(way)}; ${await hot(way, session)}`);
    }
  }
  session.disconnect();
}

await main();
