/**
 * Real processes for the crash suite: the built gateway (`dist/cli/linli.js`, as
 * a service unit would run it) and Debian's mosquitto. Every child is spawned
 * detached (its own process group) and killed by that group's id, never by
 * name; `killAllSpawned()` in an afterAll leaves nothing behind when a test fails.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createWriteStream, existsSync, type WriteStream, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { STARTUP_NODE_FLAGS, startupEnv } from "../../../gateway/heap.js";

import { freePort } from "../../support/free-port.js";

export { freePort };

export const CLI = "dist/cli/linli.js";
/** The flags and environment the README and the unit start `node dist/cli/linli.js` with (gateway/heap.ts). */
const NODE_FLAGS = STARTUP_NODE_FLAGS;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until it holds (true) or `maxMs` passed (false). */
export async function waitUntil(cond: () => boolean, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await portAccepts(port))) {
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Whether this build's `linli start` takes `--data-dir` (the journal). */
export function cliHasDataDir(): boolean {
  const help = execFileSync(process.execPath, [CLI, "start", "--help"], { encoding: "utf8" });
  return help.includes("--data-dir");
}

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm run test:crash does)`);
}

const spawned = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** SIGKILLs every process group this module spawned that is still running, and waits for them. */
export async function killAllSpawned(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of spawned) {
    if (child.exitCode === null && child.signalCode === null) {
      waits.push(new Promise((r) => child.once("close", r)));
      killGroup(child, "SIGKILL");
    }
  }
  await Promise.race([Promise.all(waits), sleep(10_000)]);
  spawned.clear();
}

export interface LogLine {
  /** Which gateway process (0 = first start, n = after the n-th restart). */
  gen: number;
  stream: "stdout" | "stderr";
  text: string;
  /** Parsed pino line, or null when the line is not JSON. */
  json: Record<string, unknown> | null;
}

/**
 * The last lines of every gateway process of a test, for the failure report. With
 * LINLI_CRASH_LOGS=<dir> every line also goes to <dir>/<name>.log (for digging into a finding).
 */
export class LogTail {
  private readonly lines: string[] = [];
  private readonly file: WriteStream | null;
  constructor(
    name: string,
    private readonly keep = 200,
  ) {
    const dir = process.env.LINLI_CRASH_LOGS;
    this.file = dir ? createWriteStream(join(dir, `${name}.log`), { flags: "w" }) : null;
  }
  add(line: LogLine): void {
    const text = `[gw#${line.gen} ${line.stream}] ${line.text}`;
    this.lines.push(text);
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
    this.file?.write(`${text}\n`);
  }
  /** Writes a harness note into the log file (kills, restarts), so the file reads as a timeline. */
  note(text: string): void {
    this.file?.write(`[harness ${Date.now()}] ${text}\n`);
  }
  close(): Promise<void> {
    const f = this.file;
    return f ? new Promise((r) => f.end(() => r())) : Promise.resolve();
  }
  last(n = 50): string[] {
    return this.lines.slice(-n);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Local time the process was seen gone (its pipes closed). */
  at: number;
}

export interface GatewaySpawn {
  gen: number;
  configFile: string;
  mqttPort: number;
  /** Passed as --data-dir when the CLI has it (null: the current build has no journal). */
  dataDir: string | null;
  onLine?: (line: LogLine) => void;
}

/** One `linli start` process. */
export class GatewayProcess {
  readonly child: ChildProcess;
  readonly spawnedAt = Date.now();
  /** Gateway time of its "gateway started" log line. */
  startedAt: number | null = null;
  exit: Exit | null = null;
  readonly closed: Promise<Exit>;
  private startedWaiters: Array<() => void> = [];

  constructor(readonly opts: GatewaySpawn) {
    const args = [
      ...NODE_FLAGS,
      CLI,
      "start",
      "--config",
      opts.configFile,
      "--mqtt-port",
      String(opts.mqttPort),
      "--log-format",
      "json",
    ];
    if (opts.dataDir !== null) args.push("--data-dir", opts.dataDir);
    this.child = spawn(process.execPath, args, {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: startupEnv(),
    });
    spawned.add(this.child);
    this.closed = new Promise((resolve) => {
      this.child.once("close", (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        spawned.delete(this.child);
        for (const w of this.startedWaiters) w();
        resolve(this.exit);
      });
    });
    for (const stream of ["stdout", "stderr"] as const) {
      const rl = createInterface({ input: this.child[stream]! });
      rl.on("line", (text) => this.line(stream, text));
    }
  }

  private line(stream: "stdout" | "stderr", text: string): void {
    let json: Record<string, unknown> | null = null;
    if (text.startsWith("{")) {
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = null;
      }
    }
    if (json?.msg === "gateway started" && this.startedAt === null) {
      this.startedAt = typeof json.time === "number" ? json.time : Date.now();
      for (const w of this.startedWaiters) w();
    }
    this.opts.onLine?.({ gen: this.opts.gen, stream, text, json });
  }

  /** Waits for the "gateway started" line; throws if the process exits first or it takes too long. */
  async ready(timeoutMs = 30_000): Promise<void> {
    if (this.startedAt === null && this.exit === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.startedWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (this.startedAt !== null) return;
    if (this.exit) {
      throw new Error(
        `gateway #${this.opts.gen} exited before it started (code ${this.exit.code}, signal ${this.exit.signal})`,
      );
    }
    throw new Error(`gateway #${this.opts.gen} did not log "gateway started" within ${timeoutMs} ms`);
  }

  /**
   * Sends `signal` to the process group and waits until it is gone. A process that
   * outlives `graceMs` is SIGKILLed and `forced` is true (a SIGTERM that hangs is a finding).
   */
  async stop(signal: NodeJS.Signals, graceMs = 15_000): Promise<Exit & { forced: boolean }> {
    killGroup(this.child, signal);
    const timer = sleep(graceMs).then(() => null);
    const exit = await Promise.race([this.closed, timer]);
    if (exit) return { ...exit, forced: false };
    killGroup(this.child, "SIGKILL");
    return { ...(await this.closed), forced: true };
  }
}

/** Debian's mosquitto, or whatever `mosquitto` is on the PATH. */
export function mosquittoPath(): string | null {
  if (existsSync("/usr/sbin/mosquitto")) return "/usr/sbin/mosquitto";
  try {
    return execFileSync("sh", ["-c", "command -v mosquitto"], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/** A real mosquitto on 127.0.0.1:port, anonymous, no persistence (a restart forgets everything). */
export class MosquittoProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly closed: Promise<void>,
  ) {}

  static async start(dir: string, port: number): Promise<MosquittoProcess> {
    const bin = mosquittoPath();
    if (!bin) throw new Error("mosquitto is not installed (apt-get install mosquitto)");
    const conf = join(dir, `mosquitto-${port}.conf`);
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    const child = spawn(bin, ["-c", conf], { detached: true, stdio: "ignore" });
    spawned.add(child);
    const closed = new Promise<void>((resolve) =>
      child.once("close", () => {
        spawned.delete(child);
        resolve();
      }),
    );
    const m = new MosquittoProcess(child, port, closed);
    try {
      await waitForPort(port, 10_000);
    } catch (err) {
      await m.stop();
      throw err;
    }
    return m;
  }

  async stop(): Promise<void> {
    killGroup(this.child, "SIGKILL");
    await this.closed;
  }
}

/** A site the crash tests run `linli start` on: its config file, MQTT port and data directory. */
export interface GatewaySite {
  configFile: string;
  mqttPort: number;
  /** null when this build has no --data-dir (every restart starts empty). */
  dataDir: string | null;
  /** Starts gateway process `gen` (0 = first start) and waits until it serves (30 s at most). */
  start(gen: number): Promise<GatewayProcess>;
}

export interface GatewaySiteOptions {
  /** Test directory: the config file and the data directory go in it. */
  dir: string;
  site: string;
  operator: { name: string; password: string };
  /** Registered as ec200 pendants. */
  pendants: ReadonlyArray<{ id: string; password: string }>;
  /** Further top-level config sections (alerts, northbound, ...). */
  config?: Record<string, unknown>;
  onLine: (line: LogLine) => void;
}

/** Writes the site's config (JSON is YAML), picks a port, and returns how to start gateways on it. */
export async function gatewaySite(o: GatewaySiteOptions): Promise<GatewaySite> {
  const configFile = join(o.dir, "site.yaml");
  writeFileSync(
    configFile,
    JSON.stringify({
      site: { id: o.site },
      mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
      operators: [o.operator],
      devices: o.pendants.map((s) => ({ id: s.id, model: "ec200", password: s.password })),
      metrics: { enabled: false },
      log: { level: "info", format: "json" },
      ...o.config,
    }),
  );
  const mqttPort = await freePort();
  const dataDir = cliHasDataDir() ? join(o.dir, "data") : null;
  return {
    configFile,
    mqttPort,
    dataDir,
    start: async (gen) => {
      const gw = new GatewayProcess({ gen, configFile, mqttPort, dataDir, onLine: o.onLine });
      await gw.ready(30_000);
      return gw;
    },
  };
}
