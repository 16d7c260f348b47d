/**
 * A serial device that vanishes while a read is in flight. Linux hangs the tty up
 * (an unplugged USB-RS485 adapter, or socat exiting for a pty): from then on read()
 * returns 0. @serialport/bindings-cpp retries a 0-byte read at once, forever, so
 * serialport emits neither `close` nor `error` (serialport/bindings-cpp#162). It only
 * notices the hangup when its poller is armed at that moment, which is the common
 * case; this test forces the other one instead of waiting for it to happen 1 run in
 * 20: libuv's thread pool is held busy while data arrives (so the port's read sits
 * queued), socat is killed, then the pool is released and the read meets a hung-up tty.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LinkCloseInfo } from "../../protocols/links/link.js";
import { SerialLink } from "../../protocols/links/serial.js";
import { openPtyPair, type PtyPair, socatMissingReason } from "./socat.js";

/**
 * Occupies every libuv pool thread with an open() of a FIFO that has no writer yet;
 * release() opens the writer end from the main thread (non-blocking: a reader is
 * already waiting), which lets every blocked open() return.
 */
function holdThreadPool(): { release(): Promise<void> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "linli-pool-"));
  const fifo = path.join(dir, "hold");
  const made = spawnSync("mkfifo", [fifo]);
  if (made.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`mkfifo failed: ${made.stderr}`);
  }
  // Node's pool is UV_THREADPOOL_SIZE threads (4 unless set); one blocked open() each.
  const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const readers: Promise<number>[] = [];
  for (let i = 0; i < threads; i++) {
    readers.push(
      new Promise((resolve, reject) => fs.open(fifo, "r", (e, fd) => (e ? reject(e) : resolve(fd)))),
    );
  }
  let released: Promise<void> | undefined;
  const release = async (): Promise<void> => {
    // The readers' open() calls may not have reached the kernel yet: until one has, a
    // non-blocking writer open fails with ENXIO, so retry (bounded) until it succeeds.
    let writer: number | undefined;
    for (let i = 0; writer === undefined; i++) {
      try {
        writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENXIO" || i > 10_000) throw err;
      }
    }
    try {
      for (const fd of await Promise.all(readers)) fs.closeSync(fd);
    } finally {
      fs.closeSync(writer);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  return {
    release() {
      released ??= release();
      return released;
    },
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const noSocat = socatMissingReason();
if (noSocat && process.env.CI) throw new Error(`serial vanish test needs socat in CI: ${noSocat}`);
if (noSocat) console.warn(`serial vanish test NOT RUN: ${noSocat}`);

describe.runIf(!noSocat)("serial link: a device that vanishes during a read", () => {
  let pty: PtyPair | undefined;
  let link: SerialLink | undefined;
  let pool: { release(): Promise<void> } | undefined;
  let farFd: number | undefined;
  afterEach(async () => {
    await pool?.release();
    if (farFd !== undefined) fs.closeSync(farFd);
    await link?.close();
    await pty?.kill();
    pool = link = pty = farFd = undefined;
  });

  it("is reported as a close that is not local, exactly once", async () => {
    pty = await openPtyPair();
    link = new SerialLink({ path: pty.a, baudRate: 9600 });
    const closes: LinkCloseInfo[] = [];
    let closed!: () => void;
    const closedOnce = new Promise<void>((r) => {
      closed = r;
    });
    link.on("close", (info) => {
      closes.push(info);
      closed();
    });
    await link.open();
    // The far end written from the main thread: no pool thread needed.
    farFd = fs.openSync(pty.b, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
    await sleep(100); // let the link's first read reach its poller (it sees EAGAIN on a quiet line)

    pool = holdThreadPool();
    fs.writeSync(farFd, Uint8Array.of(1, 2, 3));
    // socat relays the bytes, the link's poller fires and queues its read behind the held pool.
    await sleep(300);
    await pty.kill(); // the tty is hung up now; the queued read will return 0
    await pool.release();

    const outcome = await Promise.race([closedOnce.then(() => "closed"), sleep(5000).then(() => "silent")]);
    expect(outcome).toBe("closed");
    expect(closes).toHaveLength(1);
    expect(["remote", "error"]).toContain(closes[0]?.reason);
    expect(link.state).toBe("closed");
    // serialport's own close of the released port must not be reported a second time.
    await sleep(200);
    expect(closes).toHaveLength(1);
  });
});
