/**
 * Memory per device connection: the gateway (10,000 registered devices, the
 * journal off) in a child process of its own, and N idle device connections,
 * each authenticated with its own credentials, opened from this process.
 * (--storage: the journal on, in a temporary directory.) The child's memory is read (after two full GCs) before any connection and
 * after each step, so bytes per connection = growth / connections.
 *
 *   npm run bench:connections                         # 10,000 connections in steps of 2,500
 *   npm run bench:connections -- --connections 4000 --step 1000 --publish --json out.json
 *   npm run bench:connections -- --connections 10000 --step 5000 --publish --storage   # journal on
 *   npm run bench:connections -- --connections 10000 --step 10000 --publish --storage --realistic 30 --presses 10
 *   npm run bench:connections -- --connections 10000 --step 10000 --publish --storage --device-listener
 *   npm run bench:connections -- --connections 2000 --publish --snapshots /tmp/snap
 *   node dist/bench/heap-diff.js /tmp/snap/before.heapsnapshot /tmp/snap/after.heapsnapshot --per 2000
 *
 * Connections speak MQTT 3.1.1 over raw sockets (mqtt-packet), keep-alive 60 s
 * (PINGREQ every 30 s), so the client side stays small and the measured
 * process holds only what the gateway keeps per connection. `--publish`: each
 * device also sends one QoS 1 heartbeat (the datasheet's device messages
 * create the PUBACK queue and the device's state). `--device-listener`: the
 * devices connect to the gateway's device listener (mqtt.deviceListener, a
 * worker thread) instead of aedes; the operator of --realistic stays on aedes.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import mqttPacket from "mqtt-packet";
import { STARTUP_NODE_FLAGS, startupEnv } from "../gateway/heap.js";
import { encodeUplink } from "../sim/mqtt/codec.js";
import { type RealisticLoad, type RealisticLoadResult, runRealisticLoad } from "./connected-load.js";

import {
  deviceId,
  type FromChild,
  type Memory,
  OPERATOR,
  password,
  SITE,
  type ToChild,
} from "./connections-child.js";

// ---------------------------------------------------------------- parent: the devices

function request<T extends FromChild["ev"]>(
  c: ChildProcess,
  msg: ToChild,
  ev: T,
  timeoutMs = 60_000,
): Promise<Extract<FromChild, { ev: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${ev} from the gateway in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const on = (m: FromChild) => {
      if (m.ev !== ev) return;
      clearTimeout(timer);
      c.off("message", on);
      resolve(m as Extract<FromChild, { ev: T }>);
    };
    c.on("message", on);
    c.once("exit", (code) => reject(new Error(`gateway exited (${code})`)));
    c.send(msg);
  });
}

/** One device: CONNECT with its credentials, resolved on CONNACK 0 (optionally after one QoS 1 heartbeat's PUBACK). */
function connect(port: number, i: number, publish: boolean): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    parser.on("packet", (p) => {
      if (p.cmd === "connack") {
        if (p.returnCode !== 0) return fail(new Error(`${deviceId(i)}: CONNACK ${p.returnCode}`));
        if (!publish) return resolve(socket);
        // Datasheet EC-200 heartbeat (JSON firmware), as the load generator sends it.
        const payload = encodeUplink({ t: "hb", seq: 1, ts: Date.now(), bat: 90, rssi: -70 }, "json");
        socket.write(
          mqttPacket.generate({
            cmd: "publish",
            topic: `devices/ec200/${deviceId(i)}/up`,
            payload,
            qos: 1,
            messageId: 1,
            retain: false,
            dup: false,
          }),
        );
      } else if (p.cmd === "puback") {
        resolve(socket);
      }
    });
    socket.on("data", (b) => parser.parse(b));
    socket.once("error", fail);
    // Closed by the gateway before the answer (a limit, a refusal): fail rather than wait forever.
    socket.once("close", () => reject(new Error(`${deviceId(i)}: closed by the gateway`)));
    socket.once("connect", () =>
      socket.write(
        mqttPacket.generate({
          cmd: "connect",
          protocolId: "MQTT",
          protocolVersion: 4,
          clean: true,
          // The datasheet's client id `<model>-<deviceId>` (docs/security.md "Client ids").
          clientId: `ec200-${deviceId(i)}`,
          keepalive: 60,
          username: deviceId(i),
          password: Buffer.from(password(i)),
        }),
      ),
    );
  });
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

export interface ConnectionsOptions {
  /** Connections opened, one device each. */
  connections: number;
  /** Memory read after every `step` connections. */
  step: number;
  /** Devices registered (at least `connections`). */
  registered: number;
  /** Each device sends one QoS 1 heartbeat and waits for its PUBACK. */
  publish: boolean;
  /** Heap snapshots before the first and after the last connection, for bench/heap-diff.ts. */
  snapshots?: string;
  /** The journal on (a temporary directory, removed after), as a site runs by default. */
  storage?: boolean;
  /** Devices on the gateway's device listener (a worker thread) instead of aedes. */
  deviceListener?: boolean;
  /** After the last connection: heartbeats and presses at a site's rate, P1 timed (bench/connected-load.ts). */
  realistic?: RealisticLoad;
}

export type ConnectionsRow = Memory & { connections: number; bytesPerConn: number; heapPerConn: number };

export interface ConnectionsResult {
  registered: number;
  publish: boolean;
  storage: boolean;
  deviceListener: boolean;
  rows: ConnectionsRow[];
  /** The realistic load, and the memory read after it; null when not asked for. */
  realistic: (RealisticLoadResult & { after: Memory }) | null;
  connectSeconds: number;
}

/** Runs the measurement: the gateway in a child process, the connections from this one. */
export async function measureConnections(o: ConnectionsOptions): Promise<ConnectionsResult> {
  const total = o.connections;
  const step = o.step;
  const registered = Math.max(total, o.registered);
  const publish = o.publish;
  const snapshots = o.snapshots ?? "";
  const storageDir = o.storage === true ? mkdtempSync(path.join(os.tmpdir(), "linli-conn-")) : null;
  const script = fileURLToPath(new URL("./connections-child.js", import.meta.url));
  const gateway = fork(script, [], {
    // LINLI_BENCH_NODE_FLAGS: extra flags for the gateway's process, to measure heap settings (later flags win).
    execArgv: [
      ...STARTUP_NODE_FLAGS,
      "--expose-gc",
      ...(process.env.LINLI_BENCH_NODE_FLAGS ?? "").split(/\s+/).filter((f) => f.length > 0),
    ],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
    env: startupEnv(),
  });
  const sockets: net.Socket[] = [];
  // Keep-alive: every connection pings once every 30 s, each at its own moment (a 100 ms tick pings
  // 1/300 of them), as devices that connected at different times do. All 10,000 pinging in the
  // same tick (as before) put the presses behind them: P1 p99 35-46 ms, max 59-108 ms, against
  // 5.5 ms and 8-10 ms spread (--realistic 30, 3 runs each).
  const ping = mqttPacket.generate({ cmd: "pingreq" });
  let pingNext = 0;
  const pinger = setInterval(() => {
    const n = sockets.length;
    for (let k = Math.ceil(n / 300); k > 0 && n > 0; k--) {
      const s = sockets[pingNext++ % n];
      if (s !== undefined && !s.destroyed) s.write(ping);
    }
  }, 100);
  try {
    const deviceListener = o.deviceListener === true;
    const { port, opsPort } = await request(
      gateway,
      { cmd: "start", registered, storageDir, deviceListener },
      "ready",
    );
    // Warm-up: one device connects, publishes and leaves, so one-off costs (mqtt-packet's lazy caches,
    // compiled code) are not charged to the connections measured.
    (await connect(port, 0, true)).destroy();
    const snap = (name: string) => (snapshots ? { snapshot: `${snapshots}/${name}.heapsnapshot` } : {});
    const base = await request(gateway, { cmd: "sample", ...snap("before") }, "sample");
    const rows: ConnectionsRow[] = [];
    const row = (m: Memory, n: number) => ({
      ...m,
      connections: n,
      bytesPerConn: n > 0 ? ((m.rssMb - base.rssMb) * 1048576) / n : 0,
      heapPerConn: n > 0 ? ((m.heapUsedMb - base.heapUsedMb) * 1048576) / n : 0,
    });
    rows.push(row(base, 0));
    const t0 = performance.now();
    while (sockets.length < total) {
      const target = Math.min(total, sockets.length + step);
      // 200 handshakes in flight at a time: well within the listener's backlog.
      while (sockets.length < target) {
        const batch = Math.min(200, target - sockets.length);
        const from = sockets.length;
        sockets.push(
          ...(await Promise.all(Array.from({ length: batch }, (_, k) => connect(port, from + k, publish)))),
        );
      }
      const lastStep = sockets.length >= total;
      rows.push(
        row(
          await request(gateway, { cmd: "sample", ...(lastStep ? snap("after") : {}) }, "sample", 120_000),
          sockets.length,
        ),
      );
    }
    const connectSeconds = (performance.now() - t0) / 1000;
    let realistic: ConnectionsResult["realistic"] = null;
    if (o.realistic !== undefined) {
      const r = await runRealisticLoad(opsPort, SITE, OPERATOR, sockets, deviceId, o.realistic);
      realistic = { ...r, after: await request(gateway, { cmd: "sample" }, "sample", 120_000) };
    }
    return {
      registered,
      publish,
      storage: storageDir !== null,
      deviceListener,
      rows,
      realistic,
      connectSeconds,
    };
  } finally {
    clearInterval(pinger);
    for (const s of sockets) s.destroy();
    if (gateway.connected) {
      gateway.send({ cmd: "stop" } satisfies ToChild);
      const killer = setTimeout(() => gateway.kill("SIGKILL"), 10_000);
      await new Promise((r) => gateway.once("exit", r));
      clearTimeout(killer);
    }
    if (storageDir !== null) rmSync(storageDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const connections = Number(arg("connections", "10000"));
  const json = process.argv.includes("--json") ? arg("json", "") : "";
  const r = await measureConnections({
    connections,
    step: Number(arg("step", "2500")),
    registered: Number(arg("registered", "10000")),
    publish: process.argv.includes("--publish"),
    storage: process.argv.includes("--storage"),
    deviceListener: process.argv.includes("--device-listener"),
    ...(process.argv.includes("--realistic")
      ? {
          realistic: {
            seconds: Number(arg("realistic", "30")),
            pressesPerSecond: Number(arg("presses", "10")),
          },
        }
      : {}),
    ...(process.argv.includes("--snapshots") ? { snapshots: arg("snapshots", "") } : {}),
  });
  printConnections(r);
  if (json) writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
}

/** The table, as printed by `npm run bench:connections`. */
export function printConnections(
  r: ConnectionsResult,
  out: (s: string) => void = (s) => process.stdout.write(s),
): void {
  const { registered, publish, storage, deviceListener, rows } = r;
  const last = rows[rows.length - 1] as ConnectionsRow;
  out(
    `gateway, ${registered} devices registered, journal ${storage ? "on" : "off"}, ${deviceListener ? "devices on the device listener (worker thread), " : ""}${publish ? "one QoS 1 heartbeat each" : "idle"} connections\n` +
      `connections   RSS MB   heap MB   heap total MB   external MB   arrayBuffers MB   clients   RSS B/conn   heap B/conn\n`,
  );
  for (const x of rows)
    out(
      `${String(x.connections).padStart(11)}   ${x.rssMb.toFixed(1).padStart(6)}   ${x.heapUsedMb
        .toFixed(1)
        .padStart(7)}   ${x.heapTotalMb.toFixed(1).padStart(13)}   ${x.externalMb
        .toFixed(1)
        .padStart(
          11,
        )}   ${x.arrayBuffersMb.toFixed(1).padStart(15)}   ${String(x.clients).padStart(7)}   ${x.bytesPerConn
        .toFixed(0)
        .padStart(10)}   ${x.heapPerConn.toFixed(0).padStart(11)}\n`,
    );
  if (deviceListener)
    for (const x of rows)
      out(
        `worker heap at ${x.connections} connections: ${(x.workerHeapUsedMb ?? 0).toFixed(1)} MB used, ${(x.workerHeapTotalMb ?? 0).toFixed(1)} MB committed\n`,
      );
  out(
    `connected in ${r.connectSeconds.toFixed(1)} s; ${last.connections} connections: RSS ${last.rssMb.toFixed(1)} MB\n`,
  );
  const x = r.realistic;
  if (x === null) return;
  const ms = (v: number | null) => (v === null ? "-" : v.toFixed(2));
  out(
    `realistic load, ${x.seconds} s: ${x.heartbeats} heartbeats (one per device per minute), ${x.presses} presses, ` +
      `${x.alerts} alerts raised, ${x.missing} missing; P1 press to alert p50 ${ms(x.p1P50Ms)} ms, ` +
      `p99 ${ms(x.p1P99Ms)} ms, max ${ms(x.p1MaxMs)} ms; RSS after ${x.after.rssMb.toFixed(1)} MB\n`,
  );
}

// The command line; nothing when imported (bench/ceiling.ts).
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  await main();
