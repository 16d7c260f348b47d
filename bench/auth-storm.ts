/**
 * A reconnect storm against hashed passwords (docs/security.md "Verification
 * under a reconnect storm"): N pendants, each with its own scrypt hash, open
 * their connections at once; then all go and come back (the verified cache is
 * warm). Reports the time until every CONNACK, the refusals, and how long the
 * gateway's event loop was held (monitorEventLoopDelay: scrypt must run on the
 * pool, never on the loop).
 *
 *   npm run build && node dist/bench/auth-storm.js [--devices N] [--cost LOG2N (0: plain text)]
 *
 * The clients run in a child process (raw CONNECT packets, no MQTT library)
 * so that their work and file descriptors are not the broker's.
 *
 * Measured 2026-12-02, 10,000 pendants, shared 2-core box at load average 20 (docs/security.md):
 *   plain text        cold 10.2 s, all accepted; loop delay p99 112 ms, max 1.6 s
 *   scrypt cost 10    cold 62.8 s, 4,898 accepted, 5,102 auth-busy (queue full); p99 108 ms, max 2.7 s
 *                     again 43.6 s, 9,522 accepted (4,898 from the cache); p99 131 ms, max 1.5 s
 * The stalls are as long without any scrypt: the connection burst itself, not hashing.
 */
import { fork } from "node:child_process";
import { connect, type Socket } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { AccessPolicy } from "../gateway/broker/access.js";
import { hashPassword, PasswordVerifier } from "../gateway/broker/credentials.js";
import { EmbeddedBroker } from "../gateway/broker/embedded.js";
import { validateConfig } from "../gateway/config/load.js";
import { createLogger, RateLimitedLog } from "../gateway/log.js";
import { Registry } from "../gateway/registry.js";
import { Counters } from "../gateway/stats.js";

const str = (s: string) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

/** An MQTT 3.1.1 CONNECT with clean session, username and password. */
function connectPacket(clientId: string, username: string, password: string): Buffer {
  const variable = Buffer.concat([str("MQTT"), Buffer.from([4, 0xc2, 0, 60])]);
  const body = Buffer.concat([variable, str(clientId), str(username), str(password)]);
  const len: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    len.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x10, ...len]), body]);
}

type Round = { ms: number; codes: Record<string, number> };

/** Child: opens every connection at once, counts CONNACK return codes, closes all on request. */
function clients(port: number, n: number): void {
  let sockets: Socket[] = [];
  const storm = () => {
    const t0 = performance.now();
    const codes: Record<string, number> = {};
    let answered = 0;
    for (let i = 0; i < n; i++) {
      const id = `p${i}`;
      const s = connect(port, "127.0.0.1");
      s.setNoDelay(true);
      s.on("error", () => {});
      const done = (code: string) => {
        codes[code] = (codes[code] ?? 0) + 1;
        if (++answered === n) process.send?.({ ms: performance.now() - t0, codes } satisfies Round);
      };
      let got = false;
      s.once("data", (d: Buffer) => {
        got = true;
        done(d[0] === 0x20 ? `rc${d[3]}` : "other");
      });
      s.once("close", () => {
        if (!got) done("closed");
      });
      s.write(connectPacket(`ec200-${id}`, id, `secret-${i}`));
      sockets.push(s);
    }
  };
  process.on("message", (m: string) => {
    if (m === "storm") storm();
    if (m === "close") {
      for (const s of sockets) s.destroy();
      sockets = [];
      setTimeout(() => process.send?.("closed"), 500);
    }
    if (m === "exit") process.exit(0);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { devices: { type: "string", default: "10000" }, cost: { type: "string", default: "10" } },
  });
  const n = Number(values.devices);
  const cost = Number(values.cost);
  const t0 = performance.now();
  const devices = [];
  for (let i = 0; i < n; i += 256) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(256, n - i) }, (_, k) =>
        // --cost 0: plain-text passwords, to tell the connection burst's own cost from scrypt's.
        (cost === 0
          ? Promise.resolve(`secret-${i + k}`)
          : hashPassword(`secret-${i + k}`, { log2N: cost })
        ).then((password) => ({
          id: `p${i + k}`,
          model: "ec200" as const,
          password,
        })),
      ),
    );
    devices.push(...batch);
  }
  process.stderr.write(
    `${n} hashes at cost ${cost} made in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  const config = validateConfig({ site: { id: "s1" }, devices, storage: { enabled: false } });
  const log = createLogger({ level: "silent" });
  const verifier = new PasswordVerifier();
  const broker = await EmbeddedBroker.start({
    listeners: [{ host: "127.0.0.1", port: 0 }],
    maxConnections: n + 100,
    policy: new AccessPolicy(
      "s1",
      new Registry(config, { onLost: () => {}, onWelfareDue: () => {} }),
      verifier,
    ),
    handlers: { uplink: (_d, _p, _c, done) => done(null), operator: () => {} },
    counters: new Counters(),
    log,
    rateLog: new RateLimitedLog(log),
  });
  const port = broker.addresses()[0]?.port as number;
  const child = fork(fileURLToPath(import.meta.url), ["--child", String(port), String(n)]);
  const next = () => new Promise<unknown>((resolve) => child.once("message", resolve));
  for (const round of ["cold cache (after a restart)", "warm cache (after a network blip)"]) {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    const before = { ...verifier.stats };
    delay.enable();
    child.send("storm");
    const r = (await next()) as Round;
    delay.disable();
    process.stdout.write(
      `${round}: ${n} pendants, cost ${cost}: all answered in ${(r.ms / 1000).toFixed(1)} s, ` +
        `CONNACKs ${JSON.stringify(r.codes)}, scrypt ${verifier.stats.scrypt - before.scrypt}, ` +
        `cache hits ${verifier.stats.cacheHits - before.cacheHits}, busy ${verifier.stats.busy - before.busy}; ` +
        `event loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms, max ${(delay.max / 1e6).toFixed(0)} ms\n`,
    );
    child.send("close");
    await next();
  }
  child.send("exit");
  await broker.close();
}

if (process.argv[2] === "--child") clients(Number(process.argv[3]), Number(process.argv[4]));
else
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
