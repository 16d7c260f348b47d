/**
 * A realistic load on devices that each hold their own connection (bench/connections.ts): every
 * device sends a heartbeat once a minute, spread evenly over the minute (10,000 devices: ~167 a
 * second), and `pressesPerSecond` pendants press their button, each a different device. One
 * operator, subscribed to the P1 alert topics as a console is, times every press from its
 * PUBLISH to its EMERGENCY_CALL "raised" (docs/topics.md).
 *
 * Payloads are the EC-200 datasheet's (JSON firmware), QoS 1 as its uplink topic is. The issue's
 * "a heartbeat each per minute" is 5x the datasheet's default interval (300 s): the busier case.
 */
import type net from "node:net";
import mqttPacket from "mqtt-packet";
import { encodeUplink } from "../sim/mqtt/codec.js";
import { createDeviceClient, endClient } from "../sim/mqtt/link.js";
import { Latency } from "./latency.js";

export interface RealisticLoad {
  /** Seconds of load. */
  seconds: number;
  /** Button presses a second, each by a device that has not pressed yet. */
  pressesPerSecond: number;
}

export interface RealisticLoadResult {
  seconds: number;
  heartbeats: number;
  presses: number;
  /** Presses whose alert arrived. */
  alerts: number;
  /** Presses with no alert within the drain time (5 s after the load). */
  missing: number;
  p1P50Ms: number | null;
  p1P99Ms: number | null;
  p1MaxMs: number | null;
}

export interface OperatorLogin {
  name: string;
  password: string;
}

/** Sends the load on `sockets` (socket i is device `deviceId(i)`, already connected) and times the alerts. */
export async function runRealisticLoad(
  port: number,
  site: string,
  operator: OperatorLogin,
  sockets: readonly net.Socket[],
  deviceId: (i: number) => string,
  load: RealisticLoad,
): Promise<RealisticLoadResult> {
  const n = sockets.length;
  const pressTotal = Math.floor(load.seconds * load.pressesPerSecond);
  if (pressTotal > n) throw new RangeError(`${pressTotal} presses need as many devices, only ${n} connected`);
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set(deviceId(i), i);
  // Each device's next seq: 1 went with the heartbeat sent at connection.
  const seq = new Uint32Array(n).fill(2);
  const pressedAt = new Float64Array(n).fill(Number.NaN);
  const latency = new Latency();
  let alerts = 0;

  // As the pipeline bench's console connects (bench/alert-console.ts): an operator's own connection.
  const operatorClient = createDeviceClient(`mqtt://127.0.0.1:${port}`, {
    // Client ids belong to their owner (docs/security.md): an operator's start with its name.
    clientId: `${operator.name}-connected-load-${process.pid}`,
    username: operator.name,
    password: operator.password,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      operatorClient.once("connect", () => resolve());
      operatorClient.once("error", reject);
    });
    const filter = `linli/${site}/alerts/p1/#`;
    await operatorClient.subscribeAsync(filter, { qos: 1 }).then((granted) => {
      if (granted[0]?.qos === 128) throw new Error(`subscription to ${filter} refused`);
    });
    operatorClient.on("message", (topic, payload) => {
      const at = performance.now();
      if (payload.length === 0) return; // a retained alert removed
      const i = index.get(topic.slice(topic.lastIndexOf("/") + 1));
      if (i === undefined || Number.isNaN(pressedAt[i] as number)) return;
      const view = JSON.parse(payload.toString("utf8")) as { code: string; transition: string };
      if (view.code !== "EMERGENCY_CALL" || view.transition !== "raised") return;
      latency.record(at - (pressedAt[i] as number));
      alerts++;
      pressedAt[i] = Number.NaN;
    });

    const send = (i: number, fields: Record<string, unknown>): void => {
      const s = sockets[i];
      if (s === undefined || s.destroyed) return;
      const id = (seq[i] as number) % 65_535 || 65_535;
      s.write(
        mqttPacket.generate({
          cmd: "publish",
          topic: `devices/ec200/${deviceId(i)}/up`,
          payload: encodeUplink({ ...fields, seq: seq[i] as number, ts: Date.now() }, "json"),
          qos: 1,
          messageId: id,
          retain: false,
          dup: false,
        }),
      );
      seq[i] = (seq[i] as number) + 1;
    };

    // Presses spread over the devices, each a different one: a stride prime to n (7,919 is prime).
    const stride = n % 7_919 === 0 ? 1 : 7_919;
    let heartbeats = 0;
    let presses = 0;
    const t0 = performance.now();
    const endAt = t0 + load.seconds * 1000;
    // A 10 ms tick sends what is due: ~2 heartbeats and a press every few ticks.
    for (let now = t0; now < endAt; now = performance.now()) {
      const elapsedS = (now - t0) / 1000;
      for (const due = Math.floor((elapsedS * n) / 60); heartbeats < due; heartbeats++)
        send(heartbeats % n, { t: "hb", bat: 90, rssi: -70 });
      for (
        const due = Math.min(pressTotal, Math.floor(elapsedS * load.pressesPerSecond));
        presses < due;
        presses++
      ) {
        const i = (presses * stride) % n;
        pressedAt[i] = performance.now();
        send(i, { t: "evt", evt: "press", bat: 90, rssi: -70 });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    // The last alerts: up to 5 s.
    const drainUntil = performance.now() + 5_000;
    while (alerts < presses && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));

    const summary = latency.summary();
    return {
      seconds: load.seconds,
      heartbeats,
      presses,
      alerts,
      missing: presses - alerts,
      p1P50Ms: alerts === 0 ? null : summary.p50Ms,
      p1P99Ms: alerts === 0 ? null : summary.p99Ms,
      p1MaxMs: alerts === 0 ? null : summary.maxMs,
    };
  } finally {
    await endClient(operatorClient);
  }
}
