/**
 * An operator console for the bench's gateway points: its own MQTT connection,
 * subscribed to the P1 alert topics only, on a thread of its own
 * (alert-console-worker.ts). Its receipts time a P1 as an operator sees it.
 *
 * The point's other subscriber takes everything (`linli/<site>/#`) and shares
 * the bench's event loop with the load generator. Beyond the gateway's ceiling
 * that subscriber falls behind the gateway's output, and a P1 on its connection
 * waits behind the readings in the kernel's buffers of that one TCP connection
 * (measured with `ss -tn`: megabytes in both directions); MQTT over one connection
 * is in order, and the gateway cannot reorder what the kernel holds.
 */
import { Worker } from "node:worker_threads";
import { Receipts } from "./accounting.js";
import type { AlertConsoleData } from "./alert-console-worker.js";

export class AlertConsole {
  private constructor(
    private readonly worker: Worker,
    private readonly count: Int32Array,
    readonly receipts: Receipts,
    /** The console thread's nice value (alert-console-worker.ts: raised when the bench may). */
    readonly nice: number,
  ) {}

  /** Connects and subscribes; resolves once the subscription is granted. */
  static async start(
    o: Pick<AlertConsoleData, "url" | "clientId" | "username" | "password" | "filter" | "deviceIds"> & {
      capacity: number;
      /** The caller's clock: epoch ms as `performance.timeOrigin + performance.now()`. */
      now: () => number;
    },
  ): Promise<AlertConsole> {
    const count = new SharedArrayBuffer(4);
    const dev = new SharedArrayBuffer(o.capacity * 4);
    const key = new SharedArrayBuffer(o.capacity * 8);
    const at = new SharedArrayBuffer(o.capacity * 8);
    const originHr = process.hrtime.bigint();
    const originWallMs = o.now();
    const { capacity: _, now: __, ...connection } = o;
    const data: AlertConsoleData = {
      ...connection,
      count,
      dev,
      key,
      at,
      originWallMs,
      originHr,
    };
    const worker = new Worker(new URL("./alert-console-worker.js", import.meta.url), {
      workerData: data,
      name: "bench-alert-console",
    });
    const receipts = Receipts.over(new Uint32Array(dev), new Float64Array(key), new Float64Array(at));
    const nice = await new Promise<number>((resolve, reject) => {
      const onExit = (code: number) =>
        reject(new Error(`alert console exited (${code}) before it subscribed`));
      worker.once("error", reject);
      worker.once("exit", onExit);
      worker.once("message", (m: { ev: string; message?: string; nice?: number }) => {
        worker.off("exit", onExit);
        if (m.ev === "ready") resolve(m.nice ?? 0);
        else reject(new Error(`alert console: ${m.message ?? m.ev}`));
      });
    });
    return new AlertConsole(worker, new Int32Array(count), receipts, nice);
  }

  /** Receipts written so far (read while the point drains). */
  get received(): number {
    return Atomics.load(this.count, 0);
  }

  /** Disconnects; afterwards `receipts` holds every receipt, and `overflow` what did not fit. */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private stopping: Promise<void> | undefined;

  private async stopOnce(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      this.worker.on("message", (m: { ev: string; n?: number; overflow?: number }) => {
        if (m.ev !== "stopped") return;
        this.receipts.n = m.n ?? 0;
        this.receipts.overflow = m.overflow ?? 0;
        resolve();
      });
      this.worker.once("exit", () => resolve());
    });
    this.worker.postMessage({ cmd: "stop" });
    const guard = setTimeout(() => void this.worker.terminate(), 3_000);
    await stopped;
    clearTimeout(guard);
    if (this.receipts.n === 0) this.receipts.n = this.received;
    await this.worker.terminate();
  }
}
