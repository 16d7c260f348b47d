/**
 * A pendant flooding presses past its share of the P1 lane, or holding its whole share when a
 * QoS 0 press comes (gateway/ingest/mqtt-ingest.ts
 * MAX_P1_HELD_PER_DEVICE), on a raw socket, behaving as its datasheet says: what is not
 * acknowledged is sent again on a new connection, until all is. The order the gateway handled the
 * presses in comes from their telemetry: seq in battery (hundreds) and rssi (units).
 */
import net from "node:net";
import mqttPacket from "mqtt-packet";
import type { Gateway } from "../../gateway/gateway.js";
import { MAX_P1_HELD_PER_DEVICE } from "../../gateway/ingest/mqtt-ingest.js";
import { pendantMsg, sleep, type TestClient } from "./harness.js";

/**
 * p-1's event `seq`, or its heartbeat (evt null: a reading, the device listener's telemetry ring)
 * (QoS 1: its packet identifier the seq), its seq in its telemetry.
 */
function event(seq: number, evt: string | null, qos: 0 | 1 = 1): Buffer {
  return mqttPacket.generate({
    cmd: "publish",
    topic: "devices/ec200/p-1/up",
    payload: Buffer.from(pendantMsg(seq, evt, { bat: Math.floor(seq / 100), rssi: -(seq % 100) - 1 })),
    qos,
    messageId: qos === 1 ? seq : undefined,
    retain: false,
    dup: false,
  });
}

/** p-1's press `seq`, QoS 1, its packet identifier the seq. */
export function press(seq: number): Buffer {
  return event(seq, "press");
}

/** p-1 logged in on `port` (with `will` if given): its socket, the PUBACKs it received, and its close. */
export async function pendant(port: number, clientId: string, will?: { payload: Buffer }) {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  const closed = new Promise<void>((r) => s.once("close", () => r()));
  s.write(
    mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: true,
      clientId,
      keepalive: 60,
      username: "p-1",
      password: Buffer.from("pw-p1"),
      ...(will
        ? { will: { topic: "devices/ec200/p-1/up", payload: will.payload, qos: 1, retain: false } }
        : {}),
    }),
  );
  let acks = 0;
  await new Promise<void>((resolve, reject) => {
    let first = true;
    // Refused before its CONNACK (the address's login rate, a ban): said, not waited for forever.
    s.once("close", () => {
      if (first) reject(new Error(`${clientId}: connection closed before its CONNACK`));
    });
    s.on("data", (chunk: Buffer) => {
      if (first) {
        first = false;
        resolve();
        chunk = chunk.subarray(4); // the CONNACK
      }
      acks += chunk.length / 4;
    });
  });
  return { s, closed, acks: () => acks };
}

/** The seqs of p-1's presses in the order the gateway handled them. */
export function handledPresses(ops: TestClient): number[] {
  return ops.on("/telemetry/ec200/p-1").map((m) => {
    const metrics = m.json().metrics as Record<string, { value: number }>;
    return (metrics.battery?.value ?? 0) * 100 - (metrics.rssi?.value ?? 0) - 1;
  });
}

/**
 * Sends presses 1..n at once on a fresh connection; `whileWritten` runs right after the write
 * (a stall of the main thread, another device's press). Resolves when the gateway has closed the
 * connection, with the presses it acknowledged there (PUBACKs come in order: 1..acked).
 */
export async function firstFlood(
  port: number,
  clientId: string,
  n: number,
  whileWritten: () => void,
): Promise<number> {
  const p = await pendant(port, clientId);
  p.s.write(Buffer.concat(Array.from({ length: n }, (_, i) => press(i + 1))));
  whileWritten();
  await p.closed;
  return p.acks();
}

/** Low-battery events (alert lane) keptThenRefusedQos0 sends after the presses of its P1 share. */
const KEPT_LOW_BATTERY = 20;
/** The QoS 1 messages keptThenRefusedQos0 sends: more than a device's seq window (32). */
export const KEPT_QOS1 = MAX_P1_HELD_PER_DEVICE + KEPT_LOW_BATTERY;

/** keptThenRefusedQos0's QoS 1 message `seq`: presses up to its P1 share, low-battery events after. */
export function keptMessage(seq: number): Buffer {
  return seq <= MAX_P1_HELD_PER_DEVICE ? press(seq) : event(seq, "low_battery");
}

/** A heartbeat (seq 1), then keptMessage's messages one seq later: KEPT_QOS1 + 1 of them. */
export function readingThenKeptMessage(seq: number): Buffer {
  if (seq === 1) return event(1, null);
  return seq - 1 <= MAX_P1_HELD_PER_DEVICE ? press(seq) : event(seq, "low_battery");
}

/**
 * Sends, at once on a fresh connection, presses 1..32 (its whole P1 share) and low-battery events
 * (alert lane) up to KEPT_QOS1 at QoS 1, all kept, then a press at QoS 0, left with the pendant
 * (its share used up). Resolves when the gateway has closed the connection, with the messages it
 * acknowledged there (in order: 1..acked). `message` and `n`: other QoS 1 messages before it.
 */
export function keptThenRefusedQos0(
  port: number,
  clientId: string,
  whileWritten: () => void,
  message: (seq: number) => Buffer = keptMessage,
  n = KEPT_QOS1,
): Promise<number> {
  return keptThenRefused(port, clientId, event(n + 1, "press", 0), whileWritten, message, n);
}

/** p-1's press `seq` at QoS 1 on p-2's uplink topic: refused by the publish rule. */
export function pressOnAnotherTopic(seq: number): Buffer {
  return mqttPacket.generate({
    cmd: "publish",
    topic: "devices/ec200/p-2/up",
    payload: Buffer.from(pendantMsg(seq, "press")),
    qos: 1,
    messageId: seq,
    retain: false,
    dup: false,
  });
}

/**
 * Sends, at once on a fresh connection, `message` 1..n at QoS 1 (by default keptMessage's, all
 * kept), then `last`, which the gateway refuses. Resolves when the gateway has closed the
 * connection, with the messages it acknowledged there (in order: 1..acked).
 */
export async function keptThenRefused(
  port: number,
  clientId: string,
  last: Buffer,
  whileWritten: () => void,
  message: (seq: number) => Buffer = keptMessage,
  n = KEPT_QOS1,
): Promise<number> {
  const p = await pendant(port, clientId);
  const kept = Array.from({ length: n }, (_, i) => message(i + 1));
  p.s.write(Buffer.concat([...kept, last]));
  whileWritten();
  const closed = await Promise.race([p.closed.then(() => true), sleep(5000).then(() => false)]);
  p.s.destroy();
  if (!closed) throw new Error("the last message was not refused: the connection stayed open");
  return p.acks();
}

/**
 * Sends again, on new connections, what is not acknowledged, until messages 1..n all are (presses,
 * or `message`); the rounds taken.
 */
export async function sendUntilAcknowledged(
  port: number,
  clientId: string,
  n: number,
  acked: number,
  message: (seq: number) => Buffer = press,
): Promise<number> {
  let rounds = 0;
  for (; acked < n && rounds < 200; rounds++) {
    const p = await pendant(port, clientId);
    const rest = n - acked;
    p.s.write(Buffer.concat(Array.from({ length: rest }, (_, i) => message(acked + i + 1))));
    let closed = false;
    await Promise.race([
      p.closed.then(() => {
        closed = true;
      }),
      (async () => {
        while (!closed && p.acks() < rest) await new Promise((r) => setTimeout(r, 5));
      })(),
    ]);
    acked += p.acks();
    p.s.destroy();
  }
  if (acked < n) throw new Error(`${n - acked} presses still unacknowledged after ${rounds} connections`);
  return rounds;
}

/**
 * A pendant that keeps flooding: on a new connection each round, it sends again what is not
 * acknowledged and new presses, `perRound` in all, until `stop()` says so (asked between rounds);
 * the presses acknowledged.
 */
export async function floodUntil(
  port: number,
  clientId: string,
  perRound: number,
  stop: () => boolean,
  /** Between a round's close and the next connection, as a device reconnects (not at loopback speed). */
  pauseMs = 0,
): Promise<number> {
  let acked = 0;
  for (let round = 0; !stop(); round++) {
    if (round > 0 && pauseMs > 0) await sleep(pauseMs);
    // The packet identifier is the seq.
    if (acked + perRound > 65_535) throw new Error("flooded past seq 65535 without being stopped");
    const p = await pendant(port, clientId);
    p.s.write(Buffer.concat(Array.from({ length: perRound }, (_, i) => press(acked + i + 1))));
    let closed = false;
    await Promise.race([
      p.closed.then(() => {
        closed = true;
      }),
      (async () => {
        // Ends with the connection too, not only once every press is acknowledged.
        while (!closed && p.acks() < perRound) await new Promise((r) => setTimeout(r, 5));
      })(),
    ]);
    acked += p.acks();
    p.s.destroy();
  }
  return acked;
}

/**
 * As a reload removing p-1 would, right after the gateway took in its first `n` uplinks: its
 * next one is refused by the publish rule on the main thread.
 */
export function removeAfterTakenIn(gw: Gateway, n: number): void {
  const device = gw.registry.devices.get("p-1");
  if (device === undefined) throw new Error("no p-1");
  const uplink = gw.ingest.uplink.bind(gw.ingest);
  let taken = 0;
  gw.ingest.uplink = (d, payload, contentType, done) => {
    uplink(d, payload, contentType, done);
    if (d === device && ++taken === n) device.removed = true;
  };
}

/** Waits (up to 3 s) until the operator has seen presses 1..n handled, and returns them in handling order. */
export async function handledInOrder(ops: TestClient, n: number): Promise<number[]> {
  const until = Date.now() + 3000;
  while (handledPresses(ops).length < n && Date.now() < until) await sleep(10);
  return handledPresses(ops);
}

/**
 * Waits until the readings of `count` presses reached the operator (late on a loaded machine), then
 * a pause in which a reading past them (what the tests look for) would arrive too.
 */
export async function untilHandled(ops: TestClient, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (handledPresses(ops).length < count && Date.now() < deadline) await sleep(20);
  await sleep(200);
}
