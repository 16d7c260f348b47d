/**
 * The attacker of test/hostile/load.test.ts, in a process of its own so its
 * thousands of sockets do not load the test's event loop (which measures the
 * pendant's press -> alert latency). Raw TCP and hand-made MQTT packets: an
 * attacker does not use a well-behaved client library.
 *
 *   node attacker.mjs <json>   {port, wrongPasswords, bigConnects, idle, username}
 *
 * Prints one JSON line of results and exits.
 */
import net from "node:net";

const opts = JSON.parse(process.argv[2]);
const HOST = "127.0.0.1";

function str(s) {
  const b = Buffer.from(s, "utf8");
  const out = Buffer.alloc(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** MQTT 3.1.1 CONNECT with username and password, clean session, keepalive 60 s. */
function connectPacket(clientId, username, password) {
  const body = Buffer.concat([
    str("MQTT"),
    Buffer.from([4, 0xc2, 0, 60]),
    str(clientId),
    str(username),
    str(password),
  ]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One login attempt: "connack-<rc>", or "closed" when the server closed without answering. */
function attempt(localAddress, i) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port: opts.port, localAddress });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(r);
    };
    s.on("connect", () => s.write(connectPacket(`x-${i}`, opts.username, `wrong-${i}`)));
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf[0] === 0x20) finish(`connack-${buf[3]}`);
    });
    s.on("error", () => finish("closed"));
    s.on("close", () => finish("closed"));
    setTimeout(() => finish("timeout"), 10_000).unref();
  });
}

async function wrongPasswords(n, localAddress) {
  const results = {};
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < n) {
      const r = await attempt(localAddress, next++);
      results[r] = (results[r] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  return { results, seconds: (performance.now() - started) / 1000 };
}

/** A CONNECT announcing `announced` bytes, then as much of its body as the server will take. */
function bigConnect(localAddress, announced) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port: opts.port, localAddress });
    const t0 = performance.now();
    let written = 0;
    let closed = false;
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    s.on("connect", async () => {
      s.write(Buffer.concat([Buffer.from([0x10]), varint(announced)]));
      while (!closed && written < announced) {
        if (!s.write(chunk)) await new Promise((r) => s.once("drain", r).once("close", r));
        written += chunk.length;
        await sleep(0);
      }
    });
    s.on("error", () => {});
    s.on("close", () => {
      closed = true;
      resolve({ closedAfterMs: performance.now() - t0, written });
    });
    setTimeout(() => s.destroy(), 20_000).unref();
  });
}

/** Idle sockets: opened, never a byte sent; how long until the server closed each. */
async function idle(n, addresses) {
  const lifetimes = [];
  const sockets = [];
  for (let i = 0; i < n; i++) {
    const localAddress = addresses[i % addresses.length];
    sockets.push(
      new Promise((resolve) => {
        const s = net.connect({ host: HOST, port: opts.port, localAddress });
        const t0 = performance.now();
        s.on("error", () => {});
        s.on("close", () => {
          lifetimes.push(performance.now() - t0);
          resolve();
        });
        setTimeout(() => s.destroy(), 30_000).unref();
      }),
    );
    if (i % 100 === 99) await sleep(5);
  }
  await Promise.all(sockets);
  lifetimes.sort((a, b) => a - b);
  return {
    opened: n,
    closedAtOnce: lifetimes.filter((ms) => ms < 1000).length,
    maxLifetimeMs: lifetimes[lifetimes.length - 1] ?? 0,
  };
}

const [wrong, big, idles] = await Promise.all([
  wrongPasswords(opts.wrongPasswords, "127.0.0.2"),
  Promise.all(Array.from({ length: opts.bigConnects }, () => bigConnect("127.0.0.3", 10 * 1024 * 1024))),
  idle(
    opts.idle,
    Array.from({ length: 20 }, (_, i) => `127.0.1.${i + 1}`),
  ),
]);
process.stdout.write(
  `${JSON.stringify({
    wrongPasswords: wrong,
    bigConnects: {
      count: big.length,
      maxClosedAfterMs: Math.max(0, ...big.map((b) => b.closedAfterMs)),
      maxWritten: Math.max(0, ...big.map((b) => b.written)),
    },
    idle: idles,
  })}\n`,
);
