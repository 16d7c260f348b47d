/**
 * A pendant flooding presses past its share of the P1 lane (gateway/ingest/mqtt-ingest.ts
 * MAX_P1_HELD_PER_DEVICE), on a raw socket, behaving as its datasheet says: what is not
 * acknowledged is sent again on a new connection, until all is. The order the gateway handled the
 * presses in comes from their telemetry: seq in battery (hundreds) and rssi (units).
 */
import net from "node:net";
import mqttPacket from "mqtt-packet";
import { pendantMsg, type TestClient } from "./harness.js";

/** p-1's press `seq`, QoS 1, its packet identifier the seq. */
function press(seq: number): Buffer {
  return mqttPacket.generate({
    cmd: "publish",
    topic: "devices/ec200/p-1/up",
    payload: Buffer.from(pendantMsg(seq, "press", { bat: Math.floor(seq / 100), rssi: -(seq % 100) - 1 })),
    qos: 1,
    messageId: seq,
    retain: false,
    dup: false,
  });
}

/** p-1 logged in on `port`: its socket, the PUBACKs it received, and its close. */
async function pendant(port: number, clientId: string) {
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
    }),
  );
  let acks = 0;
  await new Promise<void>((resolve) => {
    let first = true;
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

/** Sends again, on new connections, what is not acknowledged, until presses 1..n all are; the rounds taken. */
export async function sendUntilAcknowledged(
  port: number,
  clientId: string,
  n: number,
  acked: number,
): Promise<number> {
  let rounds = 0;
  for (; acked < n && rounds < 200; rounds++) {
    const p = await pendant(port, clientId);
    const rest = n - acked;
    p.s.write(Buffer.concat(Array.from({ length: rest }, (_, i) => press(acked + i + 1))));
    await Promise.race([
      p.closed,
      (async () => {
        while (p.acks() < rest) await new Promise((r) => setTimeout(r, 5));
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
): Promise<number> {
  let acked = 0;
  while (!stop()) {
    // The packet identifier is the seq.
    if (acked + perRound > 65_535) throw new Error("flooded past seq 65535 without being stopped");
    const p = await pendant(port, clientId);
    p.s.write(Buffer.concat(Array.from({ length: perRound }, (_, i) => press(acked + i + 1))));
    await Promise.race([
      p.closed,
      (async () => {
        while (p.acks() < perRound) await new Promise((r) => setTimeout(r, 5));
      })(),
    ]);
    acked += p.acks();
    p.s.destroy();
  }
  return acked;
}
