/**
 * What a refused TLS connection costs the main thread (docs/security.md "Limits"): a host opens
 * TLS connections in a loop from one address, beyond the address's connection rate. Before the
 * gate at accept (gateway/accept-gate.ts) each one was handshaken, then refused; now it is closed
 * before the handshake. The MQTT TLS listener (transports.ts) with the broker's SocketLimits, the
 * rate set so that every connection after the first is refused.
 *
 *   npm run build && node dist/bench/tls-refusal.js [--connections N] [--key ec|rsa] [--port P] [--rounds R]
 *
 * Each round runs the listener without the gate (the old path), then with it, in turn; the
 * clients run in a child process, so the CPU counted (process.cpuUsage) is the listener's. Counts
 * (handshakes done, refusals) do not depend on the machine's load; the CPU per refusal does.
 *
 * Measured 2026-12-06, 1,000 connections a round, shared 2-core box at load average 22:
 *   P-256 key   without the gate 1,000 handshakes, 798-960 us of CPU per connection (3 rounds);
 *               with it 1 handshake (the one admitted), 116-148 us (accept, count, close)
 *   RSA 2048    without 1,000 handshakes, 1,157-1,207 us; with 1 handshake, 210-216 us
 */
import { execFileSync, fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SocketLimits } from "../gateway/broker/connection-limits.js";
import { Listener } from "../gateway/broker/transports.js";
import { DEFAULT_LIMITS } from "../gateway/config/limits.js";
import { createLogger } from "../gateway/log.js";
import { Counters } from "../gateway/stats.js";

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "2000" },
    key: { type: "string", default: "ec" },
    port: { type: "string", default: "24310" },
    rounds: { type: "string", default: "3" },
    child: { type: "string" },
    ca: { type: "string" },
  },
});

/** The client side: N TLS connections, 32 at a time; prints how many completed a handshake. */
async function client(port: number, n: number, ca: Buffer): Promise<void> {
  let next = 0;
  let secure = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      // The server closes it: before its handshake, or after (refused then; the one admitted
      // connection is let go after a second).
      const s = tlsConnect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
        secure++;
      });
      s.setTimeout(1_000, () => s.destroy());
      s.on("error", () => {});
      s.on("close", () => resolve());
    });
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        next++;
        await one();
      }
    }),
  );
  process.send?.({ secure });
}

function makeCert(dir: string, kind: string): void {
  const key =
    kind === "rsa" ? ["-newkey", "rsa:2048"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      ...key,
      "-nodes",
      "-days",
      "1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
}

interface Result {
  gate: boolean;
  connections: number;
  handshakesServer: number;
  handshakesClient: number;
  refused: number;
  cpuMs: number;
  wallMs: number;
}

async function round(gate: boolean, dir: string, port: number, n: number): Promise<Result> {
  const counters = new Counters();
  const limits = new SocketLimits(
    // One connection from the address, then none for the run: every other one is refused.
    { ...DEFAULT_LIMITS, login: { ...DEFAULT_LIMITS.login, attemptsPerSecond: 0.001, attemptBurst: 1 } },
    counters,
    createLogger({ level: "silent" }),
  );
  let handshakes = 0;
  const listener = await Listener.open(
    { host: "127.0.0.1", port, tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } },
    20_000,
    (c) => {
      handshakes++;
      limits.accept(c.socket, () => c.socket.destroy());
    },
    () => {},
    () => {},
    gate ? limits.admitTcp : undefined,
  );
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const child = fork(
    fileURLToPath(import.meta.url),
    ["--child", String(port), "--ca", join(dir, "cert.pem")],
    {
      execArgv: [],
      env: { ...process.env, LINLI_TLS_REFUSAL_N: String(n) },
    },
  );
  const secure = await new Promise<number>((resolve, reject) => {
    child.once("message", (m: { secure: number }) => resolve(m.secure));
    child.once("error", reject);
  });
  await new Promise((r) => child.once("exit", r));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  limits.close();
  listener.destroyConnections();
  await listener.close();
  return {
    gate,
    connections: n,
    handshakesServer: handshakes,
    handshakesClient: secure,
    refused: counters.rejected("connection", "address-rate-limited"),
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
  };
}

if (values.child !== undefined) {
  await client(
    Number(values.child),
    Number(process.env.LINLI_TLS_REFUSAL_N),
    readFileSync(values.ca as string),
  );
} else {
  const dir = mkdtempSync(join(tmpdir(), "linli-tls-refusal-"));
  try {
    makeCert(dir, values.key);
    const n = Number(values.connections);
    for (let r = 0; r < Number(values.rounds); r++)
      for (const gate of [false, true]) {
        const res = await round(gate, dir, Number(values.port), n);
        console.log(
          JSON.stringify({
            ...res,
            key: values.key,
            cpuUsPerConnection: Math.round((res.cpuMs * 1000) / n),
          }),
        );
      }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
