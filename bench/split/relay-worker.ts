/**
 * MEASUREMENT HARNESS ONLY (bench/cores.ts design "worker-relay"): the MQTT work of the
 * device connections in a worker thread while their sockets stay in the main thread.
 * The main thread relays each socket's bytes into the `in` ring (records: OPEN, DATA,
 * CLOSE, each with the connection's number first); this worker keeps an mqtt-packet
 * parser per connection and, as io-worker.ts does, answers CONNECT, PUBLISH (the uplink
 * record into the lane ring of its lane, then the PUBACK), SUBSCRIBE, PINGREQ. What it
 * would write to a socket goes back to the main thread as one ACKS record per
 * connection per drained batch, which the main thread writes.
 *
 * Why: a worker cannot take over a socket (Node has no handle passing between threads),
 * so a front end that owns the device sockets needs a port of its own; relayed bytes
 * keep one port, TLS and WebSocket in the main thread.
 * Stops on {cmd: "stop"}.
 */
import { parentPort, workerData } from "node:worker_threads";
import mqttPacket from "mqtt-packet";
import { Doorbell, SpscRing, type SpscRingHandle } from "../../core/spsc-ring.js";
import { bufferOf, LaneWriter } from "./lanes.js";
import { answerPacket, type MiniConnection } from "./mini-mqtt.js";
import { TAG_ACKS, TAG_CLOSE, TAG_DATA, TAG_OPEN } from "./relay-tags.js";
import { laneOf, threadId, uplinkRecordLength, writeUplink } from "./stand-in.js";

interface Data {
  in: SpscRingHandle;
  /** Lanes (P1, telemetry) and the ACKS ring, all to the main thread. */
  out: SpscRingHandle[];
  acks: SpscRingHandle;
  bell: SharedArrayBuffer;
}

interface HeldAck {
  id: number;
  bytes: Buffer;
}

interface Conn {
  id: number;
  parser: ReturnType<typeof mqttPacket.parser>;
  /** What to send back, gathered over one drained batch. */
  out: Buffer[];
}

const port = parentPort;
if (!port) throw new Error("relay-worker runs as a worker thread");
const d = workerData as Data;
const input = SpscRing.attach(d.in);
const inBuf = bufferOf(input);
const acks = SpscRing.attach(d.acks);
const acksBuf = bufferOf(acks);
const bell = new Doorbell(d.bell);
const writer = new LaneWriter(d.out.map((h) => SpscRing.attach(h)));
const conns = new Map<number, Conn>();
const dirty = new Set<Conn>();
/**
 * ACKS records that found the ring full, sent in order once there is room. Bounded: while anything
 * is held (here or in the lane writer) no more input is drained, so at most one drained batch of
 * input (256 records) is held; the input ring then fills and the main thread pauses the sockets.
 */
const heldAcks: HeldAck[] = [];
let running = true;

const open = (id: number): void => {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const c: Conn = { id, parser, out: [] };
  parser.on("error", () => undefined);
  const reply = (bytes: Buffer) => {
    c.out.push(bytes);
    dirty.add(c);
  };
  const connection: MiniConnection = {
    reply,
    uplink: (model, devId, payload, ack) =>
      writer.offer(
        laneOf(payload),
        uplinkRecordLength(devId, payload),
        (b, at) => writeUplink(b, at, model, devId, payload),
        ack ? () => reply(ack) : null,
      ),
  };
  parser.on("packet", (packet) => answerPacket(packet, connection));
  conns.set(id, c);
};

/** Writes one ACKS record (published with the batch); false when the ring is full. */
const tryAcks = (id: number, bytes: Buffer): boolean => {
  const at = acks.tryClaim(TAG_ACKS, 4 + bytes.length);
  if (at < 0) return false;
  acksBuf.writeUInt32LE(id, at);
  bytes.copy(acksBuf, at + 4);
  return true;
};

const sendAcks = (id: number, bytes: Buffer): void => {
  if (heldAcks.length > 0 || !tryAcks(id, bytes)) heldAcks.push({ id, bytes });
};

const flushHeld = (): void => {
  let i = 0;
  for (; i < heldAcks.length; i++) {
    const h = heldAcks[i] as HeldAck;
    if (!tryAcks(h.id, h.bytes)) break;
  }
  if (i > 0) heldAcks.splice(0, i);
};

const onRecord = (tag: number, _b: Uint8Array, at: number, length: number): void => {
  const id = inBuf.readUInt32LE(at);
  if (tag === TAG_OPEN) open(id);
  else if (tag === TAG_CLOSE) {
    const c = conns.get(id);
    if (c) dirty.delete(c);
    conns.delete(id);
  } else if (tag === TAG_DATA) {
    // The view is valid only during the callback; mqtt-packet keeps what it has not parsed yet.
    conns.get(id)?.parser.parse(Buffer.from(inBuf.subarray(at + 4, at + length)));
  }
};

const loop = async () => {
  while (running) {
    writer.flush();
    flushHeld();
    const n = writer.holding || heldAcks.length > 0 ? 0 : input.drain(256, onRecord);
    for (const c of dirty) {
      sendAcks(c.id, c.out.length === 1 ? (c.out[0] as Buffer) : Buffer.concat(c.out));
      c.out = [];
    }
    dirty.clear();
    acks.publish();
    if (n === 0 && !writer.holding && heldAcks.length === 0) await bell.sleep(() => input.isEmpty(), 20);
    else if (n === 0) await new Promise((r) => setTimeout(r, 1));
    else await new Promise((r) => setImmediate(r));
  }
};
const done = loop();

port.on("message", (m: { cmd: string }) => {
  if (m.cmd !== "stop") return;
  running = false;
  bell.ring();
  void done.then(() => {
    port.postMessage({ ev: "stopped", held: writer.heldCount });
    port.close();
  });
});
port.postMessage({ ev: "ready", tid: threadId() });
