/**
 * MEASUREMENT HARNESS ONLY (npm run bench:cores): the stand-in pipeline the
 * split designs of bench/cores.ts run, and the record formats of the rings
 * between their threads. Not the gateway's pipeline: it has the gateway's
 * per-message shape (decode JSON or CBOR, a rule, a normalised message out),
 * not its features (registry, auth, alert engine, journal).
 *
 * Ring records (core/spsc-ring.ts):
 *   uplink (device side -> pipeline):  u8 model (0 ec200, 1 ds10) | u8 id length | id (latin1) | payload
 *   northbound (pipeline -> broker):   u8 topic length | topic (latin1) | payload (JSON)
 * The tag of a record is its lane: 0 P1, 1 telemetry.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { decode } from "cbor-x";

export const LANE_P1 = 0;
export const LANE_TELEMETRY = 1;
export const MODELS = ["ec200", "ds10"] as const;
/** Ring sizes of the split designs: 1 MiB per telemetry lane, 256 KiB per P1 lane. */
export const TELEMETRY_RING_BYTES = 1 << 20;
export const P1_RING_BYTES = 1 << 18;

const PRESS = Buffer.from("press");
const TOPIC_PREFIX = "devices/";

/**
 * The lane of a device uplink, from a byte search (no decode): an EC-200 press is P1. The
 * I/O side must choose the lane before the pipeline decodes, so it can only peek.
 */
export function laneOf(payload: Uint8Array): number {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.length).indexOf(PRESS) >= 0
    ? LANE_P1
    : LANE_TELEMETRY;
}

/** `devices/<model>/<id>/up` -> [model index, id], or null. */
export function parseUplinkTopic(topic: string): [number, string] | null {
  if (!topic.startsWith(TOPIC_PREFIX) || !topic.endsWith("/up")) return null;
  const slash = topic.indexOf("/", TOPIC_PREFIX.length);
  if (slash < 0) return null;
  const model = MODELS.indexOf(topic.slice(TOPIC_PREFIX.length, slash) as (typeof MODELS)[number]);
  if (model < 0) return null;
  return [model, topic.slice(slash + 1, topic.length - 3)];
}

/** Bytes of an uplink record. */
export function uplinkRecordLength(id: string, payload: Uint8Array): number {
  return 2 + id.length + payload.length;
}

/** Writes an uplink record at `at` in `buf` (a Buffer over the ring's data area). */
export function writeUplink(buf: Buffer, at: number, model: number, id: string, payload: Uint8Array): void {
  buf[at] = model;
  buf[at + 1] = id.length;
  buf.write(id, at + 2, "latin1");
  buf.set(payload, at + 2 + id.length);
}

interface Uplink {
  t?: string;
  seq?: number;
  /** CBOR may carry the uint64 epoch ms as a bigint (devices/fields.ts does the same). */
  ts?: number | bigint;
  evt?: string;
  bat?: number;
  rssi?: number;
  contact?: string;
  tamper?: boolean;
}

/** What the pipeline hands on: the northbound topic and payload, and its lane. */
export interface Northbound {
  lane: number;
  topic: string;
  payload: string;
}

/**
 * The stand-in pipeline for one uplink record: decode (JSON or CBOR), a rule (press or
 * tamper: P1; low battery: flagged), a normalised JSON message carrying `seq` (the bench
 * subscriber's identity) on `north/<model>/<id>/up`.
 */
export function pipeline(buf: Buffer, at: number, length: number, site: string): Northbound | null {
  const model = MODELS[buf[at] as number];
  const idLen = buf[at + 1] as number;
  const id = buf.toString("latin1", at + 2, at + 2 + idLen);
  const p0 = at + 2 + idLen;
  const end = at + length;
  let u: Uplink;
  try {
    u =
      buf[p0] === 0x7b
        ? (JSON.parse(buf.toString("utf8", p0, end)) as Uplink)
        : (decode(buf.subarray(p0, end)) as Uplink);
  } catch {
    return null;
  }
  if (model === undefined || typeof u.seq !== "number") return null;
  const p1 = u.evt === "press" || u.tamper === true;
  const out = {
    site,
    device: id,
    model,
    seq: u.seq,
    deviceTime: typeof u.ts === "bigint" ? Number(u.ts) : u.ts,
    kind: p1 ? "EMERGENCY_CALL" : u.t === "state" ? "state" : "heartbeat",
    priority: p1 ? "P1" : "telemetry",
    battery: u.bat,
    lowBattery: (u.bat ?? 100) < 20,
    ...(u.contact === undefined ? {} : { contact: u.contact }),
    ...(u.rssi === undefined ? {} : { rssi: u.rssi }),
  };
  return {
    lane: p1 ? LANE_P1 : LANE_TELEMETRY,
    topic: `north/${model}/${id}/up`,
    payload: JSON.stringify(out),
  };
}

/** Bytes of a northbound record. */
export function northRecordLength(n: Northbound): number {
  return 1 + n.topic.length + Buffer.byteLength(n.payload);
}

export function writeNorth(buf: Buffer, at: number, n: Northbound): void {
  buf[at] = n.topic.length;
  buf.write(n.topic, at + 1, "latin1");
  buf.write(n.payload, at + 1 + n.topic.length, "utf8");
}

/** A northbound record read back: topic, and a copy of the payload (the broker keeps it). */
export function readNorth(buf: Buffer, at: number, length: number): { topic: string; payload: Buffer } {
  const tl = buf[at] as number;
  const topic = buf.toString("latin1", at + 1, at + 1 + tl);
  const payload = Buffer.allocUnsafe(length - 1 - tl);
  buf.copy(payload, 0, at + 1 + tl, at + length);
  return { topic, payload };
}

/** This thread's id (Linux: /proc/thread-self -> <pid>/task/<tid>), or -1. */
export function threadId(): number {
  try {
    return Number(readlinkSync("/proc/thread-self").split("/").pop());
  } catch {
    return -1;
  }
}

/** CPU time of thread `tid` of this process, ms (Linux /proc, 10 ms ticks), or -1. */
export function threadCpuMs(tid: number): number {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return -1;
  }
}
