/**
 * What every scenario shares: the server under test in a child process, the
 * open-loop load (sim/mqtt/load.ts), one subscriber, and the accounting that
 * matches every message that came out against the one that went in.
 *
 * Process layout on the 2-core machine: the child (broker or gateway) has a
 * core to itself; this process runs the load generator and the subscriber,
 * so send and receive times come from the same clock
 * (`performance.timeOrigin + performance.now()`). Both speak MQTT through the
 * hand-written client of sim/mqtt/raw-link.ts: on mqtt.js they cost this process
 * more CPU per message than the broker under test, a core taken from the server
 * on a two-core machine. Gateway points also have an operator console on a
 * thread of its own (alert-console.ts).
 *
 * Message identity is (deviceId, seq):
 * - baseline: the subscriber sees the device payloads and reads `seq`;
 * - gateway telemetry carries `deviceTime` (the device's `ts`, epoch ms) but not
 *   `seq`. The generator stamps `ts = floor(send time)`, so each (deviceId, ts)
 *   names the few messages that one device sent within one millisecond; they are
 *   matched in seq order, a bucket receiving more than it was sent counts
 *   duplicates, fewer counts losses.
 * - gateway alerts: every press publishes the device's EMERGENCY_CALL alert
 *   with `count` + 1 (one open alert per device for the whole point, no operator
 *   acknowledges), so update `count = k` is the device's k-th press.
 * Latency is receive time minus the send time of the matched message, in
 * microseconds (hdr-histogram-js, 3 significant digits). Messages sent during
 * the warm-up are accounted for but left out of the histograms.
 *
 * Sections: the server child (server-process.ts), payload peeking (peek.ts),
 * latency histograms (latency.ts), machine load (machine-load.ts), the
 * accounting as pure functions (accounting.ts); this file runs one point.
 */

import { type LoadDevice, LoadGenerator, type LoadReport, loadDevices } from "../sim/mqtt/load.js";
import { RawLink } from "../sim/mqtt/raw-link.js";
import {
  type Accounting,
  accountAlerts,
  accountBaseline,
  accountTelemetry,
  nextPow2,
  otherCpuPct,
  Receipts,
  ratePerS,
  sendSpan,
  sendTimes,
  stealPct,
} from "./accounting.js";
import { AlertConsole } from "./alert-console.js";
import { Latency, type LatencySummary } from "./latency.js";
import { machineCpu, waitForQuiet } from "./machine-load.js";
import type { CommonOptions } from "./options.js";
import { PRESS, readDeviceTime, readSeq } from "./peek.js";
import type { ServerMode, ServerSample } from "./server.js";
import { OPERATOR, ServerProcess, SITE } from "./server-process.js";

// ---------------------------------------------------------------- one measured point

export interface PointOptions {
  scenario: "baseline" | "gateway" | "journal" | "journal-loop" | "overload";
  mode: ServerMode;
  rate: number;
  durationS: number;
  warmupS: number;
  connections: number;
  registered: number;
  alarmFraction: number;
  seed: number;
  cpuProfDir?: string;
  /** Wait before the point until other processes use less than this % of a core (bounded by quietWaitMs). */
  quietPct?: number;
  quietWaitMs?: number;
  /** Gateway mode: the journal on, in this directory (bench/journal.ts). */
  dataDir?: string;
  /** With dataDir: where the journal's write(2) runs (default the gateway's, "pool"). */
  journalWrites?: "auto" | "pool" | "loop";
  /** With dataDir: storage.sync (default "batch"). */
  journalSync?: "batch" | "interval" | "always";
  /** Gateway mode: devices on the device listener (mqtt.deviceListener). */
  deviceListener?: boolean;
}

/** A point of a scenario from the run's common options (the baseline registers no devices). */
export function pointOptions(
  scenario: PointOptions["scenario"],
  mode: ServerMode,
  rate: number,
  c: CommonOptions,
): PointOptions {
  return {
    scenario,
    mode,
    rate,
    durationS: c.durationS,
    warmupS: c.warmupS,
    connections: c.connections,
    registered: mode === "baseline" ? 0 : c.registered,
    alarmFraction: c.alarmFraction,
    seed: c.seed,
    quietPct: c.quietPct,
    ...(c.deviceListener && mode === "gateway" ? { deviceListener: true } : {}),
    // Profiles are of the gateway child only.
    ...(c.profileDir && mode === "gateway" ? { cpuProfDir: c.profileDir } : {}),
  };
}

export interface PointResult {
  scenario: PointOptions["scenario"];
  mode: ServerMode;
  offeredRate: number;
  durationS: number;
  connections: number;
  /** Distinct messages delivered / (last receipt - first send). */
  achievedRate: number;
  generator: Pick<LoadReport, "offered" | "sent" | "late" | "maxLagMs" | "skippedDisconnected" | "errors"> & {
    sendRate: number;
  };
  /**
   * baseline: every device message through the broker.
   * gateway: telemetry publishes (one per accepted device message); `conflated`
   * comes from the gateway's own lane counters, `unexplained` = lost - conflated.
   */
  messages: Accounting & { conflated: number; unexplainedLoss: number };
  /** EC-200 presses: baseline = the press messages forwarded; gateway = P1 alert updates. */
  alerts: Accounting;
  /**
   * Gateway mode: the P1 alert updates as an operator console received them, on
   * its own connection subscribed to the P1 alert topics only, on its own thread
   * (alert-console.ts). Null in baseline mode: the broker has no alert topics.
   */
  console: {
    alerts: Accounting;
    p1: LatencySummary;
    p1Histogram: string;
    /** The console thread's nice value: CONSOLE_NICE when the bench may raise it, else 0. */
    nice: number;
  } | null;
  latency: {
    /** baseline: all device messages; gateway: telemetry. */
    messages: LatencySummary;
    /** baseline: press messages; gateway: P1 EMERGENCY_CALL updates. */
    p1: LatencySummary;
    /** The P1 histogram itself (latency.ts encoded()), to pool repeated points of one kind. */
    p1Histogram: string;
  };
  server: ServerSample;
  receiptOverflow: number;
  /**
   * CPU of everything else on the machine during the load, % of one core
   * (machine busy time minus the bench runner and the server child). Above
   * ~20 % the figures of the point are disturbed.
   */
  otherCpuPct: number;
  /** CPU the hypervisor took from this machine during the load, % of one core (machine-load.ts). */
  stealPct: number;
  /** This process (load generator + subscriber) during the load, % of one core. */
  runnerCpuPct: number;
  /** The wait for a quiet machine before the point, and the other load when it started. */
  quiet: { waitedMs: number; otherPct: number };
  /** Wall time the point took, s. */
  elapsedS: number;
}

const now = (): number => performance.timeOrigin + performance.now();

interface TappedConn {
  device: LoadDevice;
  link: { publish: (...args: unknown[]) => unknown } | null;
  client: { publish: (...args: unknown[]) => unknown } | null;
}

/**
 * Records which seqs were presses, at the sender. LoadGenerator has no send
 * hook, so each connection's publish is wrapped (a cheap byte search; only the
 * 1 % presses are read further). The payload is the second argument of both
 * mqtt.js' and the raw link's publish.
 */
function tapPresses(gen: LoadGenerator, devIndex: Map<string, number>, presses: number[][]): void {
  const conns = (gen as unknown as { conns: TappedConn[] }).conns;
  if (!Array.isArray(conns) || conns.length === 0)
    throw new Error("LoadGenerator internals changed: no conns");
  for (const c of conns) {
    const list = presses[devIndex.get(c.device.id) ?? -1];
    if (!list) throw new Error(`unknown load device ${c.device.id}`);
    const sender = c.link ?? c.client;
    if (!sender) throw new Error("LoadGenerator internals changed: a connection without a sender");
    const original = sender.publish.bind(sender);
    sender.publish = (topic: unknown, payload: unknown, ...rest: unknown[]) => {
      if (Buffer.isBuffer(payload) && payload.indexOf(PRESS) !== -1) list.push(readSeq(payload));
      return original(topic, payload, ...rest);
    };
  }
}

/** The gateway and the floor (bench/floor.ts) publish on the gateway's topics, with its payload fields. */
function gatewayShaped(mode: ServerMode): boolean {
  return mode === "gateway" || mode === "floor";
}

/**
 * The point's subscriber of every topic, on the hand-written client (sim/mqtt/raw-link.ts):
 * it shares this process with the load generator, and mqtt.js' parser cost more than the broker.
 */
async function connectSubscriber(url: string, mode: ServerMode): Promise<RawLink> {
  const link = await RawLink.connect(url, {
    // Client ids belong to their owner (docs/security.md): an operator's start with its name.
    clientId: `${mode === "gateway" ? OPERATOR.name : "bench"}-subscriber-${process.pid}`,
    username: mode === "gateway" ? OPERATOR.name : "bench-subscriber",
    password: mode === "gateway" ? OPERATOR.password : "x",
  });
  // The split designs of bench:cores publish their normalised messages on north/<model>/<id>/up.
  const filter = gatewayShaped(mode)
    ? `linli/${SITE}/#`
    : mode === "baseline"
      ? "devices/+/+/up"
      : "north/+/+/up";
  const granted = await link.subscribe(filter);
  if (granted === 128) {
    link.destroy();
    throw new Error(`subscription to ${filter} refused`);
  }
  return link;
}

/** Runs one point: fresh server child, connect, offer load, drain, account. */
export async function runPoint(o: PointOptions): Promise<PointResult> {
  const quiet = await waitForQuiet(o.quietPct ?? 25, o.quietWaitMs ?? 20_000);
  const started = performance.now();
  const durationMs = o.durationS * 1000;
  const perConn = Math.ceil((o.rate * o.durationS) / o.connections) + 16;
  const loadOpts = {
    connections: o.connections,
    rate: o.rate,
    alarmFraction: o.alarmFraction,
    seed: o.seed,
    // Every send time of the point stays in the ring: accounting happens after the run.
    sendTimeRingSize: nextPow2(perConn),
    raw: true,
  };
  // The same table LoadGenerator builds, needed first: the gateway must know the devices.
  const devices = loadDevices({ brokerUrl: "", ...loadOpts });
  const server = await ServerProcess.start({
    mode: o.mode,
    devices,
    registered: o.mode === "gateway" ? o.registered : 0,
    ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}),
    ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }),
    ...(o.journalWrites === undefined ? {} : { journalWrites: o.journalWrites }),
    ...(o.journalSync === undefined ? {} : { journalSync: o.journalSync }),
    ...(o.deviceListener ? { deviceListener: true } : {}),
  });
  const gen = new LoadGenerator({ brokerUrl: server.url, ...loadOpts });
  let subscriber: RawLink | undefined;
  let alertConsole: AlertConsole | undefined;
  try {
    const devIndex = new Map<string, number>();
    for (const [i, d] of devices.entries()) devIndex.set(d.id, i);
    const presses: number[][] = devices.map(() => []);

    const expected = Math.round(o.rate * o.durationS);
    const messages = new Receipts(Math.ceil(expected * 1.25) + 1024);
    const alerts = new Receipts(Math.ceil(expected * o.alarmFraction * 3) + 1024);
    let lastReceipt = 0;

    subscriber = await connectSubscriber(server.northUrl, o.mode);
    if (gatewayShaped(o.mode)) {
      alertConsole = await AlertConsole.start({
        url: server.northUrl,
        // Client ids belong to their owner (docs/security.md): an operator's start with its name.
        clientId: `${OPERATOR.name}-console-${process.pid}`,
        username: OPERATOR.name,
        password: OPERATOR.password,
        filter: `linli/${SITE}/alerts/p1/#`,
        deviceIds: devices.map((d) => d.id),
        capacity: Math.ceil(expected * o.alarmFraction * 3) + 1024,
        now,
      });
    }
    const alertPrefix = `linli/${SITE}/alerts/p1/`;
    const telemetryPrefix = `linli/${SITE}/telemetry/`;
    subscriber.onPublish = (topic, payload) => {
      const at = now();
      if (!gatewayShaped(o.mode)) {
        // devices/<model>/<id>/up (split designs: north/<model>/<id>/up, carrying seq)
        const a = topic.indexOf("/", 8);
        const dev = devIndex.get(topic.slice(a + 1, topic.length - 3));
        if (dev === undefined) return;
        messages.push(dev, readSeq(payload), at);
        lastReceipt = at;
        return;
      }
      if (topic.startsWith(telemetryPrefix)) {
        const dev = devIndex.get(topic.slice(topic.lastIndexOf("/") + 1));
        if (dev === undefined) return;
        messages.push(dev, readDeviceTime(payload), at);
        lastReceipt = at;
      } else if (topic.startsWith(alertPrefix)) {
        if (payload.length === 0) return; // retained copy removed
        const dev = devIndex.get(topic.slice(topic.lastIndexOf("/") + 1));
        const view = JSON.parse(payload.toString("utf8")) as {
          code: string;
          count: number;
          transition: string;
        };
        if (
          dev === undefined ||
          view.code !== "EMERGENCY_CALL" ||
          (view.transition !== "raised" &&
            view.transition !== "repeated" &&
            view.transition !== "reactivated")
        ) {
          return;
        }
        alerts.push(dev, view.count, at);
        lastReceipt = at;
      }
    };

    await gen.connect();
    tapPresses(gen, devIndex, presses);

    server.tell({ cmd: "cpu-start" });
    const m0 = machineCpu();
    const own0 = process.cpuUsage();
    const w0 = performance.now();
    const report = await gen.run(durationMs, 10_000);
    server.tell({ cmd: "cpu-end" });
    const loadWall = performance.now() - w0;
    const m1 = machineCpu();
    const ownUse = process.cpuUsage(own0);
    const runnerCpuPct = ((ownUse.user + ownUse.system) / 1000 / loadWall) * 100;

    // Let the tail arrive: until everything sent came out, or nothing came for 1 s (max 20 s).
    const pressCount = presses.reduce((a, l) => a + l.length, 0);
    const drainUntil = performance.now() + 20_000;
    let seen = -1;
    let quietSince = performance.now();
    while (performance.now() < drainUntil) {
      const total = messages.n + alerts.n + (alertConsole?.received ?? 0);
      const wanted = report.sent + (gatewayShaped(o.mode) ? 2 * pressCount : 0);
      if (total >= wanted) break;
      if (total !== seen) {
        seen = total;
        quietSince = performance.now();
      } else if (performance.now() - quietSince > 1_000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const sample = await server.sample();
    await alertConsole?.stop();

    // ------------------------------------------------ accounting
    // ------------------------------------------------ accounting (accounting.ts)
    // The ring holds every send of the point.
    const walls = sendTimes(
      devices.map((d) => d.id),
      (id, seq) => gen.sendTime(id, seq),
    );
    const { first: firstSend, last: lastSend } = sendSpan(walls);
    const warmupEnd = firstSend + o.warmupS * 1000;
    const msgLat = new Latency();
    const p1Lat = new Latency();
    let msgAcc: Accounting;
    let alertAcc: Accounting;
    if (!gatewayShaped(o.mode)) {
      ({ messages: msgAcc, alerts: alertAcc } = accountBaseline(
        walls,
        presses,
        messages,
        warmupEnd,
        report.sent,
        msgLat,
        p1Lat,
      ));
    } else {
      msgAcc = accountTelemetry(walls, messages, warmupEnd, report.sent, msgLat);
      alertAcc = accountAlerts(walls, presses, alerts, warmupEnd, p1Lat);
    }
    let consoleResult: PointResult["console"] = null;
    if (alertConsole) {
      const consoleLat = new Latency();
      consoleResult = {
        alerts: accountAlerts(walls, presses, alertConsole.receipts, warmupEnd, consoleLat),
        p1: consoleLat.summary(),
        p1Histogram: consoleLat.encoded(),
        nice: alertConsole.nice,
      };
    }

    const conflated = sample.gateway?.telemetry.conflated ?? 0;
    return {
      scenario: o.scenario,
      mode: o.mode,
      offeredRate: o.rate,
      durationS: o.durationS,
      connections: o.connections,
      achievedRate: ratePerS(msgAcc.delivered, firstSend, lastReceipt),
      generator: {
        offered: report.offered,
        sent: report.sent,
        late: report.late,
        maxLagMs: report.maxLagMs,
        skippedDisconnected: report.skippedDisconnected,
        errors: report.errors,
        sendRate: ratePerS(report.sent, firstSend, lastSend),
      },
      messages: { ...msgAcc, conflated, unexplainedLoss: Math.max(0, msgAcc.lost - conflated) },
      alerts: alertAcc,
      console: consoleResult,
      latency: { messages: msgLat.summary(), p1: p1Lat.summary(), p1Histogram: p1Lat.encoded() },
      server: sample,
      receiptOverflow: messages.overflow + alerts.overflow + (alertConsole?.receipts.overflow ?? 0),
      otherCpuPct: otherCpuPct(
        m1.busyMs - m0.busyMs,
        m1.totalMs - m0.totalMs,
        loadWall,
        runnerCpuPct,
        sample.cpuPct,
      ),
      runnerCpuPct,
      stealPct: stealPct(m1.stealMs - m0.stealMs, loadWall),
      quiet,
      elapsedS: (performance.now() - started) / 1000,
    };
  } finally {
    if (subscriber) await subscriber.end();
    await alertConsole?.stop().catch(() => undefined);
    await gen.stop().catch(() => undefined);
    await server.stop();
  }
}
