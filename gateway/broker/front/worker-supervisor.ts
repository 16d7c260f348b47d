/**
 * The device listener's worker thread (worker.ts), seen from the main thread: spawned listening
 * with rings of its own (protocol.ts), and, when it dies (a bug: the worker catches every
 * connection's own failures), replaced by a fresh one with fresh rings on the same port, after a
 * backoff that doubles while it keeps dying (restart-backoff.ts). What the front end
 * (device-front.ts) does with a worker's rings, its messages and its death is told through
 * SupervisorEvents.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Doorbell, SpscRing } from "../../../core/threads.js";
import { withWorkerSemiSpace } from "../../heap.js";
import type { Logger } from "../../log.js";
import type { SocketLimits } from "../connection-limits.js";
import {
  COUNTER_WORDS,
  type FromWorker,
  type FrontWorkerData,
  type TlsContents,
  type ToWorker,
} from "./protocol.js";
import { RestartBackoff } from "./restart-backoff.js";

/**
 * 256 KiB: about 2,500 uplinks of a pendant's size. Alerts are a few in a hundred uplinks, so this
 * is seconds of them at any rate the gateway sustains. Full: the worker stops reading the sockets
 * whose records wait until there is room (nothing dropped).
 */
const ALERT_RING_BYTES = 1 << 18;
/**
 * 2 MiB: about 20,000 readings of a pendant's size, half a second at 40,000 msg/s. The ring carries
 * readings across to the main thread, which drains it a batch per turn of its event loop; it holds
 * what that drain leaves behind in a slow stretch (a GC, a burst of alerts), and in sustained
 * overload the backlog the lane does not take, so that the worker conflates only when the main
 * thread really is behind (512 KiB conflated 562 readings at
 * 30,000 msg/s with the main thread 67 % busy). Full: the worker conflates (one waiting reading
 * per connection).
 */
const TELEMETRY_RING_BYTES = 1 << 21;
/** 64 KiB: 8,192 completions. */
const COMPLETION_RING_BYTES = 1 << 16;
/** How long close() waits for the worker to close its sockets before it is terminated. */
const STOP_TIMEOUT_MS = 5000;

/** A worker listening, and the rings it was given. */
export interface Spawned {
  worker: Worker;
  port: number;
  uplink: SpscRing;
  telemetry: SpscRing;
  counters: SharedArrayBuffer;
  completions: SpscRing;
  /** Resolves when the worker's thread has ended (its sockets closed with it). */
  exited: Promise<void>;
}

/** What a worker is spawned with. */
export interface WorkerSettings {
  host: string;
  /** The port asked for at start (0: any); a restarted worker takes the one its predecessor had. */
  port: number;
  maxConnections: number;
  limits: SocketLimits;
  log: Logger;
}

/** What the front end does as workers come and go. */
export interface SupervisorEvents {
  /** A listening worker's rings, taken into service (at start and at every restart). */
  attach(w: Spawned): void;
  /** A message from the worker in service. */
  message(m: FromWorker): void;
  /** The worker in service died, and its connections with it (a restart follows). */
  died(): void;
  /** A restarted worker is in service: it is given again what the one before was told. */
  restarted(): void;
}

export class WorkerSupervisor {
  /** The worker in service: replaced when a worker that died is restarted. */
  worker!: Worker;
  private workerExited: Promise<void> = Promise.resolve();
  port = 0;
  failed: Error | null = null;
  /** Workers restarted after one died. */
  restarts = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarting: Promise<void> | null = null;
  private readonly backoff = new RestartBackoff();
  private stopping = false;

  private constructor(
    private readonly settings: WorkerSettings,
    /** The listener's TLS files as last read (start, reload): a restarted worker is given them. */
    public tls: TlsContents | null,
    private readonly events: SupervisorEvents,
  ) {}

  /** A worker listening; throws (the worker ended) if it cannot listen. */
  static async start(
    settings: WorkerSettings,
    tls: TlsContents | null,
    events: SupervisorEvents,
  ): Promise<WorkerSupervisor> {
    const s = new WorkerSupervisor(settings, tls, events);
    s.attach(await spawnWorker(settings, settings.port, tls));
    return s;
  }

  send(m: ToWorker): void {
    if (this.failed === null) this.worker.postMessage(m);
  }

  /** Takes a listening worker and its rings into service. */
  private attach(w: Spawned): void {
    const worker = w.worker;
    this.worker = worker;
    this.workerExited = w.exited;
    this.port = w.port;
    this.events.attach(w);
    worker.on("message", (m: FromWorker) => {
      if (worker === this.worker && this.failed === null) this.events.message(m);
    });
    worker.on("error", (err) => this.workerDown(worker, err));
    // Ended without an error event (terminated, process.exit in the worker): as dead.
    worker.on("exit", (code) => this.workerDown(worker, new Error(`worker exited with code ${code}`)));
  }

  /**
   * The worker died (a bug: every connection's own failures are caught in it), and with it every
   * device connection on this listener. The devices reconnect; the listener is restarted for them
   * after a backoff. Not listening meanwhile: /readyz says so.
   */
  private workerDown(worker: Worker, err: Error): void {
    if (worker !== this.worker || this.failed !== null || this.stopping) return;
    this.failed = err;
    this.events.died();
    this.backoff.died();
    this.settings.log.error(
      { err, listener: "devices", restartInMs: this.backoff.ms },
      "device listener worker failed; devices on it are disconnected, the listener restarts / 设备监听线程故障，设备连接已断开，监听即将重启",
    );
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.backoff.take();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restarting = this.restart().finally(() => {
        this.restarting = null;
      });
    }, delay);
  }

  /** A fresh worker and rings on the same port, given the models' classifiers and the TLS files again. */
  private async restart(): Promise<void> {
    // Its thread ended, its listening socket with it: the port is free again.
    await this.workerExited;
    let spawned: Spawned;
    try {
      spawned = await spawnWorker(this.settings, this.port, this.tls);
    } catch (err) {
      if (this.stopping) return;
      this.settings.log.error(
        { err, listener: "devices", restartInMs: this.backoff.ms },
        "device listener could not be restarted; trying again / 设备监听重启失败，稍后重试",
      );
      this.scheduleRestart();
      return;
    }
    if (this.stopping) {
      await spawned.worker.terminate();
      return;
    }
    this.attach(spawned);
    this.failed = null;
    this.backoff.up();
    this.restarts++;
    this.events.restarted();
    this.settings.log.warn(
      { listener: "devices", port: this.port, restarts: this.restarts },
      "device listener restarted; devices may reconnect / 设备监听已重启，设备可重新连接",
    );
  }

  /**
   * Stops the worker in service (it closes the listener and every device connection) and any
   * restart; `drained` runs once the worker has stopped or STOP_TIMEOUT_MS passed, before it is
   * terminated.
   */
  async stop(drained: () => Promise<void>): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    await this.restarting;
    if (this.failed === null) {
      const worker = this.worker;
      let timer: NodeJS.Timeout | undefined;
      let done = () => {};
      const onMessage = (m: FromWorker) => m.t === "stopped" && done();
      await new Promise<void>((resolve) => {
        done = resolve;
        worker.on("message", onMessage);
        worker.once("exit", done);
        timer = setTimeout(done, STOP_TIMEOUT_MS).unref();
        this.send({ t: "stop" });
      });
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("exit", done);
    }
    await drained();
    await this.worker.terminate();
  }
}

/**
 * The worker's script: beside this module once built; run from the TypeScript sources (vitest),
 * the built one in dist/ (`npm test` builds first).
 */
function workerScript(): URL {
  const here = new URL("./worker.js", import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL("../../../dist/gateway/broker/front/worker.js", import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`device listener: ${fileURLToPath(built)} is missing (npm run build)`);
}

/** A worker listening on `port` with rings of its own; throws (the worker ended) if it cannot listen. */
async function spawnWorker(
  settings: WorkerSettings,
  port: number,
  tls: TlsContents | null,
): Promise<Spawned> {
  // One doorbell for both uplink rings: the main thread sleeps only when both are empty.
  const bell = new Doorbell();
  const uplink = SpscRing.create(ALERT_RING_BYTES, { doorbell: bell });
  const telemetry = SpscRing.create(TELEMETRY_RING_BYTES, { doorbell: bell });
  const counters = new SharedArrayBuffer(COUNTER_WORDS * 8);
  const completions = SpscRing.create(COMPLETION_RING_BYTES, { doorbell: new Doorbell() });
  const limits = settings.limits.config;
  const data: FrontWorkerData = {
    host: settings.host,
    port,
    tls,
    maxConnections: settings.maxConnections,
    connectTimeout: limits.connectTimeout,
    maxConnectSize: limits.maxConnectSize,
    maxInflight: limits.maxInflight,
    maxAcceptBans: limits.login.maxTracked,
    uplink: uplink.handle(),
    telemetry: telemetry.handle(),
    completions: completions.handle(),
    counters,
  };
  let ready: Promise<number> = Promise.resolve(0);
  const worker = withWorkerSemiSpace(
    () => new Worker(workerScript(), { workerData: data, name: "linli-device-front" }),
    (w) =>
      (ready = new Promise<number>((resolve, reject) => {
        const failed = (err: Error) => reject(err);
        w.once("error", failed);
        w.once("exit", (code) => reject(new Error(`worker exited with code ${code} before listening`)));
        w.on("message", function first(m: FromWorker) {
          if (m.t !== "ready") return;
          w.off("message", first);
          w.off("error", failed);
          resolve(m.port);
        });
      })),
  );
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  const listening = await ready.catch(async (err: Error) => {
    await worker.terminate();
    throw err;
  });
  return { worker, port: listening, uplink, telemetry, counters, completions, exited };
}
