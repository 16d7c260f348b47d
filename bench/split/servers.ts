/**
 * MEASUREMENT HARNESS ONLY (npm run bench:cores): the main-thread side of the
 * designs bench/cores.ts compares, each started inside bench/server.ts's child:
 *
 *   inline           aedes + the stand-in pipeline (bench/split/stand-in.ts) in one
 *                    thread: decoded in authorizePublish, published northbound at once
 *   worker-pipeline  aedes in the main thread; each device uplink copied into a SAB ring
 *                    (P1 / telemetry); a worker drains, runs the stand-in pipeline and
 *                    writes northbound records into two rings the main thread publishes
 *                    through aedes (pipeline-worker.ts)
 *   worker-io        the device sockets in a worker (io-worker.ts: a minimal MQTT front
 *                    end) feeding the SAB rings; the main thread runs the stand-in
 *                    pipeline and publishes through aedes, whose listener (a second port)
 *                    only the subscriber uses
 *   worker-io-decode as worker-io, but the worker also runs the stand-in pipeline and sends
 *                    northbound records: the main thread only publishes them through aedes
 *   worker-relay     the device sockets stay in the main thread, which relays their bytes
 *                    into a SAB ring; a worker parses MQTT (relay-worker.ts), writes the
 *                    uplinks into the lane rings and sends the acks back through a ring for
 *                    the main thread to write; the main thread runs the stand-in pipeline
 *                    and publishes through aedes (one port for devices and subscribers
 *                    would be possible: the worker never owns a socket)
 *
 * Northbound: `north/<model>/<id>/up`, P1 QoS 1, telemetry QoS 0 (bench/harness.ts
 * subscribes to `north/+/+/up` for these modes and accounts by `seq`).
 */
import net from "node:net";
import { Worker } from "node:worker_threads";
import { Aedes, type PublishPacket } from "aedes";
import { Doorbell, drainByPriority, SpscRing } from "../../core/spsc-ring.js";
// The gateway's fix for aedes' per-client dedupe (moscajs/aedes #994): a QoS 1 publish overtaken
// by a later QoS 0 one is otherwise dropped.
import { restampOnEmit } from "../../gateway/broker/aedes-patches.js";
import { bufferOf, LaneWriter, pump } from "./lanes.js";
import { TAG_CLOSE, TAG_DATA, TAG_OPEN } from "./relay-tags.js";
import {
  LANE_P1,
  laneOf,
  type Northbound,
  P1_RING_BYTES,
  parseUplinkTopic,
  pipeline,
  readNorth,
  TELEMETRY_RING_BYTES,
  threadId,
  uplinkRecordLength,
  writeUplink,
} from "./stand-in.js";

export type SplitMode = "inline" | "worker-pipeline" | "worker-io" | "worker-io-decode" | "worker-relay";
export const SPLIT_MODES: readonly SplitMode[] = [
  "inline",
  "worker-pipeline",
  "worker-io",
  "worker-io-decode",
  "worker-relay",
];

export interface SplitRunning {
  /** Where the devices connect. */
  port: number;
  /** Where the subscriber connects (the aedes listener). */
  northPort: number;
  aedes: Aedes;
  /** Thread ids: the main thread and the worker (if any), for per-thread CPU. */
  threads: { main: number; worker: number | null };
  /** Records that waited for ring space (all rings). */
  held(): number;
  stop(): Promise<void>;
}

export async function listen(
  aedes: Aedes,
): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  // As bench/server.ts's baseline: the gateway's listener settings, no auth.
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return { server, sockets, port: (server.address() as net.AddressInfo).port };
}

async function closeAll(aedes: Aedes, server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => aedes.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await closed;
}

function publisher(aedes: Aedes): (topic: string, payload: Buffer, lane: number) => void {
  const noop = () => undefined;
  return (topic, payload, lane) =>
    aedes.publish(
      {
        cmd: "publish",
        topic,
        payload,
        qos: lane === LANE_P1 ? 1 : 0,
        retain: false,
        dup: false,
      } as PublishPacket,
      noop,
    );
}

/**
 * As the gateway (gateway.ts `telemetryMayFlow`, embedded.ts `congested`): telemetry is drained
 * into aedes only while its emitter is not queueing. Without it a burst drained from a ring
 * queues thousands of publishes in mqemitter, whose synchronous completions then recurse until
 * the stack overflows (seen at 60,000/s in design worker-io).
 */
function emitterIdle(aedes: Aedes): () => boolean {
  const mq = (aedes as unknown as { mq: { length: number } }).mq;
  return () => mq.length === 0;
}

/**
 * As the gateway (embedded.ts `skipUplinkForwarding`): a device uplink the pipeline took in
 * authorizePublish is not forwarded (nobody subscribes to device topics). Besides saving the
 * routing, it keeps mqemitter from completing subscriber-less emits synchronously one after the
 * other, which recurses through its whole queue under a backlog (stack overflow at 40,000/s).
 */
function skipUplinkForwarding(aedes: Aedes): void {
  const a = aedes as unknown as {
    publish(packet: PublishPacket, client: unknown, done?: (err?: Error) => void): void;
  };
  const publish = a.publish.bind(aedes);
  a.publish = (packet, client, done) => {
    if (client && typeof client !== "function" && DEVICE_UPLINK.test(packet.topic)) {
      done?.();
      return;
    }
    publish(packet, client, done);
  };
}

function makeRings(bell: Doorbell): SpscRing[] {
  return [
    SpscRing.create(P1_RING_BYTES, { doorbell: bell }),
    SpscRing.create(TELEMETRY_RING_BYTES, { doorbell: bell }),
  ];
}

function startWorker(
  file: string,
  workerData: unknown,
): Promise<{ worker: Worker; tid: number; port?: number; stop(): Promise<number> }> {
  const worker = new Worker(new URL(file, import.meta.url), { workerData });
  return new Promise((resolve, reject) => {
    worker.once("error", reject);
    worker.once("message", (m: { ev: string; tid: number; port?: number }) => {
      const stop = async () => {
        const held = new Promise<number>((r) => {
          worker.on("message", (s: { ev: string; held: number }) => s.ev === "stopped" && r(s.held));
          worker.once("exit", () => r(0));
        });
        worker.postMessage({ cmd: "stop" });
        const guard = setTimeout(() => void worker.terminate(), 3_000);
        const n = await held;
        await worker.terminate();
        clearTimeout(guard);
        return n;
      };
      resolve({ worker, tid: m.tid, ...(m.port === undefined ? {} : { port: m.port }), stop });
    });
  });
}

const DEVICE_UPLINK = /^devices\//;

export async function startSplit(mode: SplitMode, site: string): Promise<SplitRunning> {
  const aedes = await Aedes.createBroker({ heartbeatInterval: 60_000, connectTimeout: 10_000 });
  restampOnEmit(aedes);
  const publish = publisher(aedes);
  const { server, sockets, port } = await listen(aedes);
  const mainTid = threadId();
  const base = async () => closeAll(aedes, server, sockets);

  if (mode !== "worker-io") skipUplinkForwarding(aedes);

  if (mode === "inline") {
    let scratch = Buffer.allocUnsafe(4096);
    aedes.authorizePublish = (client, packet, cb) => {
      const t = client && DEVICE_UPLINK.test(packet.topic) ? parseUplinkTopic(packet.topic) : null;
      if (t) {
        const payload = packet.payload as Buffer;
        const len = uplinkRecordLength(t[1], payload);
        if (len > scratch.length) scratch = Buffer.allocUnsafe(len * 2);
        writeUplink(scratch, 0, t[0], t[1], payload);
        const n: Northbound | null = pipeline(scratch, 0, len, site);
        if (n) publish(n.topic, Buffer.from(n.payload), n.lane);
      }
      cb(null);
    };
    return {
      port,
      northPort: port,
      aedes,
      threads: { main: mainTid, worker: null },
      held: () => 0,
      stop: base,
    };
  }

  if (mode === "worker-pipeline") {
    const workerBell = new Doorbell();
    const mainBell = new Doorbell();
    const inRings = makeRings(workerBell);
    const outRings = makeRings(mainBell);
    const w = await startWorker("./pipeline-worker.js", {
      in: inRings.map((r) => r.handle()),
      out: outRings.map((r) => r.handle()),
      bell: workerBell.sab,
      site,
    });
    const writer = new LaneWriter(inRings);
    const north = pump(
      outRings,
      mainBell,
      (lane, buf, at, length) => {
        const n = readNorth(buf, at, length);
        publish(n.topic, n.payload, lane);
      },
      { afterPass: () => writer.flush(), mayFlow: emitterIdle(aedes) },
    );
    aedes.authorizePublish = (client, packet, cb) => {
      const t = client && DEVICE_UPLINK.test(packet.topic) ? parseUplinkTopic(packet.topic) : null;
      if (!t) {
        cb(null);
        return;
      }
      const payload = packet.payload as Buffer;
      // The PUBACK (aedes sends it when cb is called) waits for room in the ring.
      writer.offer(
        laneOf(payload),
        uplinkRecordLength(t[1], payload),
        (b, at) => writeUplink(b, at, t[0], t[1], payload),
        () => cb(null),
      );
    };
    let workerHeld = 0;
    return {
      port,
      northPort: port,
      aedes,
      threads: { main: mainTid, worker: w.tid },
      held: () => writer.heldCount + workerHeld,
      stop: async () => {
        workerHeld = await w.stop();
        await north.stop();
        await base();
      },
    };
  }

  if (mode === "worker-relay") return startRelay(aedes, publish, server, sockets, port, mainTid, site);

  // worker-io, worker-io-decode
  const decode = mode === "worker-io-decode";
  const mainBell = new Doorbell();
  const rings = makeRings(mainBell);
  const w = await startWorker("./io-worker.js", { out: rings.map((r) => r.handle()), decode, site });
  const north = pump(
    rings,
    mainBell,
    decode
      ? (lane, buf, at, length) => {
          const n = readNorth(buf, at, length);
          publish(n.topic, n.payload, lane);
        }
      : (_lane, buf, at, length) => {
          const n = pipeline(buf, at, length, site);
          if (n) publish(n.topic, Buffer.from(n.payload), n.lane);
        },
    { mayFlow: emitterIdle(aedes) },
  );
  let workerHeld = 0;
  return {
    port: w.port as number,
    northPort: port,
    aedes,
    threads: { main: mainTid, worker: w.tid },
    held: () => workerHeld,
    stop: async () => {
      workerHeld = await w.stop();
      await north.stop();
      await base();
    },
  };
}

/**
 * Bytes a socket sent that found the relay ring full, written in order once there is room.
 * Bounded: the socket is paused at its first held chunk, so at most one chunk (and its CLOSE)
 * per connection is held.
 */
interface HeldChunk {
  tag: number;
  id: number;
  chunk: Buffer | null;
}

async function startRelay(
  aedes: Aedes,
  publish: (topic: string, payload: Buffer, lane: number) => void,
  northServer: net.Server,
  northSockets: Set<net.Socket>,
  northPort: number,
  mainTid: number,
  site: string,
): Promise<SplitRunning> {
  const inBell = new Doorbell();
  const mainBell = new Doorbell();
  const input = SpscRing.create(1 << 22, { doorbell: inBell });
  const inBuf = bufferOf(input);
  const lanes = makeRings(mainBell);
  const acks = SpscRing.create(1 << 20, { doorbell: mainBell });
  const w = await startWorker("./relay-worker.js", {
    in: input.handle(),
    out: lanes.map((r) => r.handle()),
    acks: acks.handle(),
    bell: inBell.sab,
  });
  const devices = new Map<number, net.Socket>();
  const held: HeldChunk[] = [];
  const paused = new Set<net.Socket>();
  let next = 1;

  const tryRelay = (tag: number, id: number, chunk: Buffer | null): boolean => {
    const at = input.tryClaim(tag, 4 + (chunk?.length ?? 0));
    if (at < 0) return false;
    inBuf.writeUInt32LE(id, at);
    chunk?.copy(inBuf, at + 4);
    input.publish();
    return true;
  };
  const relay = (tag: number, id: number, chunk: Buffer | null, socket: net.Socket): void => {
    if (held.length === 0 && tryRelay(tag, id, chunk)) return;
    held.push({ tag, id, chunk });
    if (!socket.destroyed && !paused.has(socket)) {
      socket.pause();
      paused.add(socket);
    }
  };
  const flushHeld = (): boolean => {
    let i = 0;
    while (
      i < held.length &&
      tryRelay((held[i] as HeldChunk).tag, (held[i] as HeldChunk).id, (held[i] as HeldChunk).chunk)
    )
      i++;
    if (i > 0) held.splice(0, i);
    if (held.length === 0 && paused.size > 0) {
      for (const s of paused) s.resume();
      paused.clear();
    }
    return held.length === 0;
  };

  const server = net.createServer({ noDelay: true }, (socket) => {
    const id = next++;
    devices.set(id, socket);
    relay(TAG_OPEN, id, null, socket);
    socket.on("data", (chunk: Buffer) => relay(TAG_DATA, id, chunk, socket));
    socket.on("error", () => socket.destroy());
    socket.once("close", () => {
      devices.delete(id);
      paused.delete(socket);
      relay(TAG_CLOSE, id, null, socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });

  const laneBufs = lanes.map(bufferOf);
  const acksBuf = bufferOf(acks);
  const onAcks = (_tag: number, _b: Uint8Array, at: number, length: number) => {
    const socket = devices.get(acksBuf.readUInt32LE(at));
    // A copy: the ring's space is reused once this batch is drained.
    if (socket && !socket.destroyed) socket.write(Buffer.from(acksBuf.subarray(at + 4, at + length)));
  };
  const onLane = (lane: number, _tag: number, _b: Uint8Array, at: number, length: number) => {
    const n = pipeline(laneBufs[lane] as Buffer, at, length, site);
    if (n) publish(n.topic, Buffer.from(n.payload), n.lane);
  };
  const mayFlow = emitterIdle(aedes);
  const first = lanes[0] as SpscRing;
  const onFirst = (tag: number, b: Uint8Array, at: number, length: number) => onLane(0, tag, b, at, length);
  const isEmpty = () => acks.isEmpty() && lanes.every((r) => r.isEmpty());
  let running = true;
  const loop = async () => {
    while (running) {
      let n = acks.drain(Number.POSITIVE_INFINITY, onAcks);
      const flowing = mayFlow();
      n += flowing ? drainByPriority(lanes, 256, onLane) : first.drain(Number.POSITIVE_INFINITY, onFirst);
      const clear = flushHeld();
      if (n === 0 && clear && flowing) await mainBell.sleep(isEmpty, 20);
      else if (n === 0) await new Promise((r) => setTimeout(r, 1));
      else await new Promise((r) => setImmediate(r));
    }
  };
  const done = loop();
  let workerHeld = 0;
  return {
    port: (server.address() as net.AddressInfo).port,
    northPort,
    aedes,
    threads: { main: mainTid, worker: w.tid },
    held: () => workerHeld + held.length,
    stop: async () => {
      workerHeld = await w.stop();
      running = false;
      mainBell.ring();
      await done;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of devices.values()) s.destroy();
      await closed;
      await closeAll(aedes, northServer, northSockets);
    },
  };
}
