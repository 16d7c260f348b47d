/**
 * MEASUREMENT HARNESS ONLY (bench/cores.ts design "worker-io"): the device TCP
 * sockets in a worker thread, behind a minimal MQTT 3.1.1 front end (mqtt-packet's
 * parser): CONNECT -> CONNACK (no authentication), PUBLISH -> the uplink ring of
 * its lane (P1 or telemetry, by a byte peek), PUBACK for QoS 1 once the record is in
 * the ring (held while the ring is full: the device's in-flight window is the
 * back-pressure), SUBSCRIBE -> SUBACK (nothing is ever delivered), PINGREQ ->
 * PINGRESP, DISCONNECT. The acks of one socket read go out in one write.
 * With `decode` (design "worker-io-decode") the worker also runs the stand-in pipeline and
 * writes northbound records (lane chosen by the decoded message, no peek).
 * None of the gateway's connection features (see docs/performance.md).
 * Stops on {cmd: "stop"}: closes the listener and every socket.
 */
import net from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import mqttPacket from "mqtt-packet";
import { SpscRing, type SpscRingHandle } from "../../core/spsc-ring.js";
import { LaneWriter } from "./lanes.js";
import { answerPacket, type MiniConnection } from "./mini-mqtt.js";
import {
  laneOf,
  northRecordLength,
  pipeline,
  threadId,
  uplinkRecordLength,
  writeNorth,
  writeUplink,
} from "./stand-in.js";

interface Data {
  out: SpscRingHandle[];
  /** Run the stand-in pipeline here and write northbound records. */
  decode: boolean;
  site: string;
}

const d = workerData as Data;
const writer = new LaneWriter(d.out.map((h) => SpscRing.attach(h)));
const sockets = new Set<net.Socket>();
let scratch = Buffer.allocUnsafe(4096);
let retry: NodeJS.Timeout | null = null;

/** Held records retried every ms until the pipeline made room. */
function scheduleRetry(): void {
  if (retry) return;
  retry = setTimeout(() => {
    retry = null;
    if (!writer.flush()) scheduleRetry();
  }, 1);
}

const server = net.createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.once("close", () => sockets.delete(socket));
  socket.on("error", () => socket.destroy());
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let out: Buffer[] = [];
  parser.on("error", () => socket.destroy());
  const connection: MiniConnection = {
    reply: (bytes) => out.push(bytes),
    uplink: (model, id, payload, ack) => {
      let now = true;
      const done = ack
        ? () => {
            if (now) out.push(ack);
            else if (!socket.destroyed) socket.write(ack);
          }
        : null;
      const length = uplinkRecordLength(id, payload);
      if (d.decode) {
        if (length > scratch.length) scratch = Buffer.allocUnsafe(length * 2);
        writeUplink(scratch, 0, model, id, payload);
        const n = pipeline(scratch, 0, length, d.site);
        if (n) writer.offer(n.lane, northRecordLength(n), (b, at) => writeNorth(b, at, n), done);
        else done?.();
      } else {
        writer.offer(laneOf(payload), length, (b, at) => writeUplink(b, at, model, id, payload), done);
      }
      now = false;
      if (writer.holding) scheduleRetry();
    },
    disconnect: () => socket.end(),
  };
  parser.on("packet", (packet) => answerPacket(packet, connection));
  socket.on("data", (chunk: Buffer) => {
    parser.parse(chunk);
    if (out.length > 0) {
      socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
      out = [];
    }
  });
});

const port = parentPort;
if (!port) throw new Error("io-worker runs as a worker thread");
port.on("message", (m: { cmd: string }) => {
  if (m.cmd !== "stop") return;
  if (retry) clearTimeout(retry);
  for (const s of sockets) s.destroy();
  server.close(() => {
    port.postMessage({ ev: "stopped", held: writer.heldCount });
    port.close();
  });
});
server.listen(0, "127.0.0.1", () => {
  port.postMessage({ ev: "ready", tid: threadId(), port: (server.address() as net.AddressInfo).port });
});
