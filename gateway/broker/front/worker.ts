/**
 * The device front end's worker thread: it owns the sockets of the device listener and speaks
 * MQTT with the devices (a v3.1.1 PUBLISH on the device's own topic read in place by
 * fast-publish.ts, every other packet by mqtt-packet's parser; mqtt-packet's generator), so that
 * the socket reads, the parsing and the PUBACK writes run on the machine's second core. What
 * needs the gateway's state stays in the main thread (device-front.ts): logins (passwords, bans,
 * client ids; the addresses banned in both login scopes are sent here, closed at accept),
 * subscriptions, and every uplink, which is handed over through two rings (alerts,
 * readings) without postMessage.
 *
 * The data flow: a socket's bytes go to its connection (connection.ts: the MQTT state machine),
 * whose uplinks go to the rings (uplink-writer.ts); the main thread's completions come back
 * (completions.ts) and release the PUBACKs. Here: the listener (plain or TLS), the bans closed at
 * accept, the main thread's messages, the login and keepalive deadlines, and stopping.
 *
 * Bounds and overflow policies:
 * - connections: maxConnections on the listener (beyond it Node closes new sockets at once);
 * - before login: connectTimeout, maxConnectSize per packet and four CONNECTs' worth of bytes
 *   (frames.ts, the rule of the operators' port: gateway/broker/limits.ts FrameGuard); the
 *   packets read while LOGGING_IN wait within those bytes;
 * - a packet still arriving: at most the connection's packet limit (the CONNECT's before login,
 *   the model's after), copied out of the socket read;
 * - QoS 1 uplinks waiting for their PUBACK: maxInflight per connection, beyond it the connection
 *   is closed unacknowledged (PubackQueue; the device re-sends, nothing is lost);
 * - the alert ring (every uplink not certainly telemetry, wills, closes): when it is full the
 *   record is held and the connection's socket is not read again until the ring has room (the
 *   kernel's socket buffer, then TCP, hold the device back): at most one socket read's packets
 *   are held per connection, and nothing is dropped;
 * - the telemetry ring (uplinks the model's `telemetryWhen` calls certainly telemetry, so that
 *   a device's readings never stand in front of its alerts): when it is full a connection's
 *   newest reading waits, one per connection, and a newer one replaces it (conflated: counted,
 *   and a QoS 1 one acknowledged, as the gateway acknowledges telemetry on arrival); the socket
 *   is read on, so an alert behind the readings still reaches its ring. A reading still waiting
 *   when its connection closes is dropped and counted the same way.
 */
// First: mqtt-packet must find the quiet `debug` (gateway/broker/quiet-debug.ts).
import "../quiet-debug.js";
import net from "node:net";
import type { SecureContextOptions, Server as TlsServer } from "node:tls";
import v8 from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import mqttPacket from "mqtt-packet";
import { SpscRing } from "../../../core/threads.js";
import type { TelemetryTest } from "../../../devices/threads.js";
import { gateConnections } from "../../accept-gate.js";
import { LISTEN_BACKLOG, onHandshakeFailure, TLS_HANDSHAKE, tlsServerOptionsOf } from "../tls-files.js";
import { AcceptBans } from "./accept-bans.js";
import { CompletionReader } from "./completions.js";
import {
  CLOSED,
  DeviceConnection,
  failedWithin,
  LIVE,
  startConnections,
  TICK_MS,
  tickNow,
} from "./connection.js";
import type { FromWorker, FrontWorkerData, TlsContents, ToWorker } from "./protocol.js";
import { TelemetryPeek } from "./telemetry-peek.js";
import { UplinkWriter } from "./uplink-writer.js";

// As in the main thread (embedded.ts): mqtt-packet's cache of 65,536 two-byte Buffers for the numbers
// it writes is ~6.5 MB of this thread's heap, built on the first packet generated.
mqttPacket.writeToStream.cacheNumbers = false;

const data = workerData as FrontWorkerData;
/** node:tls, loaded only for a TLS listener (half a megabyte of this thread's heap otherwise). */
const tls = data.tls === null ? null : await import("node:tls");
const port = parentPort;
if (!port) throw new Error("gateway/broker/front/worker.ts runs as a worker thread");
const uplinks = new UplinkWriter(
  SpscRing.attach(data.uplink),
  SpscRing.attach(data.telemetry),
  new BigInt64Array(data.counters),
  post,
);
/** Per model, its telemetryWhen as a classifier (null: every uplink may be an alert). */
const peeks = new Map<string, TelemetryPeek | null>();

const connections = new Map<number, DeviceConnection>();
/** Connections whose close handling is to throw once (tests only: the "failClose" message). */
const closeFaults = new Set<number>();
/** Addresses closed at accept, as aedes' listeners close them (accept-bans.ts). */
const acceptBans = new AcceptBans(undefined, data.maxAcceptBans);
let nextConnectionId = 1;
let stopping = false;

function post(m: FromWorker): void {
  port?.postMessage(m);
}

const completions = new CompletionReader(SpscRing.attach(data.completions), uplinks, connections);

startConnections({
  maxConnectSize: data.maxConnectSize,
  maxInflight: data.maxInflight,
  tls: tls !== null,
  post,
  uplinks,
  peeks,
  connections,
  closeFaults,
});

/**
 * Login deadlines and keepalives, for every connection in one pass. Times are whole ticks, so a
 * connection is closed one tick after its deadline at the earliest: never before it.
 */
const connectTimeoutTicks = Math.ceil(data.connectTimeout / TICK_MS);
const sweep = setInterval(() => {
  const now = tickNow();
  for (const c of connections.values()) {
    try {
      sweepOne(c, now);
    } catch (err) {
      failedWithin(c, err);
    }
  }
}, TICK_MS);

function sweepOne(c: DeviceConnection, now: number): void {
  if (c.state === LIVE) {
    if (c.keepaliveTicks > 0 && now - c.lastRead > c.keepaliveTicks + 1) {
      post({
        t: "rejected",
        conn: c.id,
        role: c.role,
        reason: "keepalive-timeout",
        detail: `${(c.keepaliveTicks * TICK_MS) / 1000} s of silence`,
      });
      c.abort();
    }
  } else if (c.state !== CLOSED && now - c.openedAt > connectTimeoutTicks + 1) {
    post({
      t: "rejected",
      conn: c.id,
      role: null,
      reason: "login-timeout",
      detail: `${data.connectTimeout} ms`,
    });
    c.graceful = true;
    c.socket.destroy();
  }
}

function closedAtAccept(socket: net.Socket): boolean {
  if (acceptBans.size === 0) return false;
  const address = socket.remoteAddress ?? "unknown";
  if (!acceptBans.banned(address)) return false;
  // Counted as aedes' listeners count it (connection-limits.ts accept).
  post({ t: "rejected", conn: null, role: null, reason: "address-banned", detail: address });
  socket.destroy();
  return true;
}

function accept(socket: net.Socket): void {
  if (stopping) {
    socket.destroy();
    return;
  }
  // Again after a TLS handshake: a ban that started during it.
  if (closedAtAccept(socket)) return;
  const id = nextConnectionId;
  nextConnectionId = nextConnectionId === 0xffffffff ? 1 : nextConnectionId + 1;
  connections.set(id, new DeviceConnection(id, socket));
}

function secureContextOf(t: TlsContents): SecureContextOptions {
  return {
    cert: Buffer.from(t.cert),
    key: Buffer.from(t.key),
    ...(t.ca === undefined ? {} : { ca: Buffer.from(t.ca) }),
    minVersion: t.minVersion,
  };
}

let server: net.Server;
if (data.tls !== null) {
  const secure = (tls as NonNullable<typeof tls>).createServer({
    ...tlsServerOptionsOf(secureContextOf(data.tls)),
    noDelay: true,
  });
  secure.on("secureConnection", accept);
  // A banned address is closed before its handshake costs this thread a key exchange and a signature.
  gateConnections(secure, (raw) => !closedAtAccept(raw));
  // A failed handshake concerns that socket only: counted and logged by the main thread.
  onHandshakeFailure(secure, (code, address) =>
    post({ t: "rejected", conn: null, role: null, reason: TLS_HANDSHAKE, detail: code, address }),
  );
  server = secure;
} else {
  server = net.createServer({ noDelay: true }, accept);
}
server.maxConnections = data.maxConnections;

port.on("message", (m: ToWorker) => {
  try {
    onMainMessage(m);
  } catch (err) {
    // A message about one connection fails that connection only; any other is reported.
    const c = "conn" in m ? connections.get(m.conn) : undefined;
    if (c !== undefined) failedWithin(c, err);
    else post({ t: "error", message: `${m.t}: ${err instanceof Error ? err.message : String(err)}` });
  }
});

function onMainMessage(m: ToWorker): void {
  switch (m.t) {
    case "model":
      peeks.set(
        m.model,
        m.telemetryWhen === null ? null : new TelemetryPeek(m.telemetryWhen as TelemetryTest[]),
      );
      return;
    case "login":
      connections.get(m.conn)?.loggedIn(m);
      return;
    case "suback": {
      const c = connections.get(m.conn);
      c?.write(
        mqttPacket.generate(
          { cmd: "suback", messageId: m.messageId, granted: m.granted },
          { protocolVersion: c.protocolVersion },
        ),
      );
      return;
    }
    case "deliver":
      connections.get(m.conn)?.deliver(m.topic, m.payload, m.qos);
      return;
    case "close":
      connections.get(m.conn)?.abort();
      return;
    case "refuse":
      connections.get(m.conn)?.refuseAfterPending();
      return;
    case "ban":
      acceptBans.ban(m.address, m.ms);
      return;
    case "failClose":
      if (connections.has(m.conn)) closeFaults.add(m.conn);
      return;
    case "tls":
      (server as TlsServer).setSecureContext(secureContextOf(m.tls));
      return;
    case "stop":
      stop();
      return;
    case "stats": {
      (globalThis as { gc?: () => void }).gc?.();
      if (m.snapshot !== undefined) v8.writeHeapSnapshot(m.snapshot);
      const h = v8.getHeapStatistics();
      post({
        t: "stats",
        stats: {
          heapUsed: h.used_heap_size,
          heapTotal: h.total_heap_size,
          sockets: connections.size,
          heldTotal: uplinks.heldTotal,
        },
      });
      return;
    }
  }
}

function stop(): void {
  stopping = true;
  completions.stop();
  clearInterval(sweep);
  uplinks.stop();
  server.close(() => {
    post({ t: "stopped" });
    port?.close();
  });
  for (const c of connections.values()) {
    c.graceful = true;
    c.socket.destroy();
  }
}

// Not listening (a port in use): the worker fails, and DeviceFrontEnd.start() with it.
const failToListen = (err: Error) => {
  throw err;
};
server.once("error", failToListen);
server.listen({ port: data.port, host: data.host, backlog: LISTEN_BACKLOG }, () => {
  server.off("error", failToListen);
  server.on("error", (err) => post({ t: "error", message: err.message }));
  post({ t: "ready", port: (server.address() as net.AddressInfo).port });
  void completions.run();
});
