/**
 * The server under test (the baseline broker or the gateway, bench/server.ts)
 * in a child process of its own: started, sampled over IPC, stopped, and never
 * left behind whatever happens to the runner.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { STARTUP_NODE_FLAGS, startupEnv } from "../gateway/heap.js";
import type { LoadDevice } from "../sim/mqtt/load.js";
import type { ChildMessage, ParentMessage, ServerMode, ServerSample, StartCommand } from "./server.js";

export const SITE = "bench";
export const OPERATOR = { name: "bench-operator", password: "bench-operator-pass" };

const children = new Set<ChildProcess>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // Whatever happens to the runner, no child is left behind.
  process.on("exit", () => {
    for (const c of children) c.kill("SIGKILL");
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      for (const c of children) c.kill("SIGKILL");
      process.exit(130);
    });
  }
}

export interface ServerOptions {
  mode: ServerMode;
  devices: readonly LoadDevice[];
  registered: number;
  /** Directory for `node --cpu-prof` of the child, if profiling. */
  cpuProfDir?: string;
  logLevel?: StartCommand["logLevel"];
  /** Gateway mode: the journal on, in this directory. */
  dataDir?: string;
  journalWrites?: "auto" | "pool" | "loop";
  journalSync?: "batch" | "interval" | "always";
  /** Gateway mode: devices on the device listener (mqtt.deviceListener). */
  deviceListener?: boolean;
}

export class ServerProcess {
  private waiters: Array<{ ev: ChildMessage["ev"]; resolve: (m: ChildMessage) => void }> = [];
  private failure: Error | null = null;
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly registered: number,
    /** Where the subscriber connects (the device port, except in design worker-io). */
    readonly northPort: number = port,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  static async start(opts: ServerOptions): Promise<ServerProcess> {
    hookExit();
    const script = fileURLToPath(new URL("./server.js", import.meta.url));
    const execArgv = [
      // The gateway's own start-up flags (gateway/heap.ts), for the baseline broker too: same VM.
      ...STARTUP_NODE_FLAGS,
      ...(process.env.LINLI_BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? []),
      ...(opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
    ];
    const child = fork(script, [], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      execArgv,
      env: startupEnv(),
    });
    children.add(child);
    child.once("exit", () => children.delete(child));
    // A child that died mid-point: the IPC send that finds its pipe closed reports EPIPE here (an
    // unhandled "error" event would take the runner down); the exit handler records the failure.
    child.on("error", (err) => process.stderr.write(`bench server: ${err.message}\n`));
    const ready = await new Promise<{ port: number; northPort: number; registered: number }>(
      (resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("server did not start within 30 s")), 30_000);
        const onMessage = (m: ChildMessage) => {
          if (m.ev === "ready") {
            clearTimeout(timer);
            child.off("message", onMessage);
            resolve({ port: m.port, northPort: m.northPort ?? m.port, registered: m.registered });
          } else if (m.ev === "error") {
            clearTimeout(timer);
            reject(new Error(m.message));
          }
        };
        child.on("message", onMessage);
        child.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`server exited with ${code} before it was ready`));
        });
        const start: StartCommand = {
          cmd: "start",
          mode: opts.mode,
          devices: opts.devices.map((d) => ({ id: d.id, model: d.model, password: d.password })),
          registered: opts.registered,
          site: SITE,
          operator: OPERATOR,
          logLevel: opts.logLevel ?? "info",
          ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
          ...(opts.journalWrites === undefined ? {} : { journalWrites: opts.journalWrites }),
          ...(opts.journalSync === undefined ? {} : { journalSync: opts.journalSync }),
          ...(opts.deviceListener ? { deviceListener: true } : {}),
        };
        child.send(start);
      },
    ).catch((err: unknown) => {
      child.kill("SIGKILL");
      throw err;
    });
    const sp = new ServerProcess(child, ready.port, ready.registered, ready.northPort);
    child.on("message", (m: ChildMessage) => sp.onMessage(m));
    child.once("exit", (code) => {
      sp.failure ??= new Error(`server exited (${code})`);
      for (const w of sp.waiters.splice(0)) w.resolve({ ev: "error", message: sp.failure.message });
    });
    return sp;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get northUrl(): string {
    return `mqtt://127.0.0.1:${this.northPort}`;
  }

  tell(msg: ParentMessage): void {
    if (this.child.connected) this.child.send(msg);
  }

  /** Why the server exited before it was stopped (a crash under load), or null. */
  get crashed(): string | null {
    return this.stopping ? null : (this.failure?.message ?? null);
  }

  /**
   * The server's figures for the point; a server that died during it (the bare broker has, under
   * overload: a stack overflow in qlobber) gives zeros with `crashed` set, and the point fails.
   */
  async sample(): Promise<ServerSample> {
    if (this.crashed !== null) return crashedSample(this.crashed);
    const m = await this.request({ cmd: "sample" }, "sample", 10_000);
    if (m.ev === "error" && this.crashed !== null) return crashedSample(this.crashed);
    if (m.ev !== "sample") throw new Error(m.ev === "error" ? m.message : `unexpected ${m.ev}`);
    const { ev: _ev, ...sample } = m;
    return sample;
  }

  private stopping = false;

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode === null && this.child.connected) {
      this.child.send({ cmd: "stop" } satisfies ParentMessage);
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  private request(msg: ParentMessage, ev: ChildMessage["ev"], timeoutMs: number): Promise<ChildMessage> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<ChildMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${ev} from server in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        ev,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
      this.tell(msg);
    });
  }

  private onMessage(m: ChildMessage): void {
    if (m.ev === "error") {
      process.stderr.write(`bench server: ${m.message}\n`);
      return;
    }
    const i = this.waiters.findIndex((w) => w.ev === m.ev);
    if (i >= 0) this.waiters.splice(i, 1)[0]?.resolve(m);
  }
}

function crashedSample(why: string): ServerSample {
  return {
    crashed: why,
    cpuPct: 0,
    cpuWindowMs: 0,
    rssMb: 0,
    readyRssMb: 0,
    maxRssMb: 0,
    heapUsedMb: 0,
    loopPreemptedPerS: null,
    runqueueWaitPct: null,
    eventLoopP99Ms: 0,
    eventLoopMaxMs: 0,
    emitterQueueMax: 0,
    gc: { minor: 0, major: 0, maxPauseMs: 0, minorPauseMs: 0 },
    peakHeapTotalMb: 0,
    peakExternalMb: 0,
  };
}
