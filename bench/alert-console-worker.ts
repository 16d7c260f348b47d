/**
 * The operator console of a gateway point, on a thread of its own (alert-console.ts).
 *
 * It subscribes to the P1 alert topics only, as a console on a site does, and
 * writes each EMERGENCY_CALL update it receives (device index, `count`, receive
 * time) into shared arrays that the bench reads after the point. It runs on
 * its own thread because the bench's main thread also runs the load generator
 * at up to ~70,000 msg/s: a console sharing that event loop would time the
 * generator's backlog, not the gateway.
 *
 * Receive times are on the bench's clock: the main thread hands over one pair
 * (its epoch ms, process.hrtime) taken at the same instant, and this thread
 * adds the monotonic time elapsed since (the same CLOCK_MONOTONIC in every thread).
 *
 * Its thread asks for a higher scheduling priority (nice CONSOLE_NICE; Linux keeps a nice value
 * per thread). The console stands for an operator's screen on another machine, but here it shares
 * two cores with the generator, the subscriber and the gateway, and past the gateway's ceiling they
 * want more than two cores: a receipt could then be stamped when the thread next got a core, not when
 * the alert arrived. It reads about one message in a hundred, so the priority costs the others
 * nothing measurable. Without the privilege (CAP_SYS_NICE) it runs at the default, and the point
 * says so (`console.nice`).
 */
import os from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { createDeviceClient } from "../sim/mqtt/link.js";

export interface AlertConsoleData {
  url: string;
  clientId: string;
  username: string;
  password: string;
  filter: string;
  deviceIds: string[];
  /** Shared: [0] receipts written (Atomics). */
  count: SharedArrayBuffer;
  dev: SharedArrayBuffer;
  key: SharedArrayBuffer;
  at: SharedArrayBuffer;
  originWallMs: number;
  originHr: bigint;
}

export const CONSOLE_NICE = -10;

const d = workerData as AlertConsoleData;
let nice: number;
try {
  os.setPriority(CONSOLE_NICE); // this thread only (pid 0 = the calling thread on Linux)
  nice = os.getPriority();
} catch {
  nice = os.getPriority();
}
const port = parentPort;
if (!port) throw new Error("alert-console-worker runs as a worker thread");

const count = new Int32Array(d.count);
const dev = new Uint32Array(d.dev);
const key = new Float64Array(d.key);
const at = new Float64Array(d.at);
const devIndex = new Map<string, number>();
for (const [i, id] of d.deviceIds.entries()) devIndex.set(id, i);
let n = 0;
let overflow = 0;

const now = (): number => d.originWallMs + Number(process.hrtime.bigint() - d.originHr) / 1e6;

const client = createDeviceClient(d.url, {
  clientId: d.clientId,
  username: d.username,
  password: d.password,
  protocolVersion: 4,
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: 10_000,
});
client.on("error", (err) => port.postMessage({ ev: "error", message: err.message }));
client.on("message", (topic, payload) => {
  const t = now();
  if (payload.length === 0) return; // retained copy removed
  const i = devIndex.get(topic.slice(topic.lastIndexOf("/") + 1));
  if (i === undefined) return;
  const view = JSON.parse(payload.toString("utf8")) as { code: string; count: number; transition: string };
  if (
    view.code !== "EMERGENCY_CALL" ||
    (view.transition !== "raised" && view.transition !== "repeated" && view.transition !== "reactivated")
  ) {
    return;
  }
  if (n >= dev.length) {
    overflow++;
    return;
  }
  dev[n] = i;
  key[n] = view.count;
  at[n] = t;
  n++;
  Atomics.store(count, 0, n);
});
client.once("connect", () => {
  client.subscribe(d.filter, { qos: 1 }, (err, granted) => {
    if (err || granted?.[0]?.qos === 128) {
      port.postMessage({ ev: "error", message: `subscription to ${d.filter} refused` });
    } else {
      port.postMessage({ ev: "ready", nice });
    }
  });
});
port.on("message", (m: { cmd: string }) => {
  if (m.cmd !== "stop") return;
  client.end(false, {}, () => {
    port.postMessage({ ev: "stopped", n, overflow });
    port.close();
  });
});
