import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Gk3Controller } from "./gk3.js";
import { ModbusTcpSlaveServer } from "./tcp-server.js";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** MBAP read of input register 9 (the queue) with transaction id `tid`. */
function readQueue(tid: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(6, 4);
  b.set([1, 0x04, 0x00, 0x09, 0x00, 0x01], 6);
  return b;
}

describe("GK-3 over Modbus TCP: a master that pipelines requests to a slow kiosk", () => {
  it("holds at most maxQueuedRequests unanswered per connection, pauses reading, answers all in order", async () => {
    const kiosk = new Gk3Controller();
    kiosk.faults.lateMs = 2;
    const server = new ModbusTcpSlaveServer(kiosk, { maxQueuedRequests: 8 });
    const port = await server.start();
    cleanup.push(
      () => server.stop(),
      () => kiosk.dispose(),
    );

    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => socket.destroy());
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const N = 300;
    let highWater = 0;
    const sample = () => {
      highWater = Math.max(highWater, server.stats.requests - server.stats.replies);
    };
    const watch = setInterval(sample, 1);
    cleanup.push(() => clearInterval(watch));
    const tids: number[] = [];
    let rx = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => {
        sample();
        rx = Buffer.concat([rx, chunk]);
        while (rx.length >= 11) {
          tids.push(rx.readUInt16BE(0));
          rx = rx.subarray(11); // MBAP 7 + fn, byte count, one word
        }
        if (tids.length === N) resolve();
      });
    });
    // All at once, as a pipelining master does: the kiosk must not take them all in.
    socket.write(Buffer.concat(Array.from({ length: N }, (_, i) => readQueue(i + 1))));
    await done;
    sample();
    expect(tids).toEqual(Array.from({ length: N }, (_, i) => i + 1)); // none dropped, none reordered
    expect(highWater).toBeLessThanOrEqual(8);
    expect(server.stats.stalls).toBeGreaterThanOrEqual(1);
    expect(server.stats.requests).toBe(N);
  });

  it("stops cleanly while a connection is stalled", async () => {
    const kiosk = new Gk3Controller();
    kiosk.faults.lateMs = 60_000;
    const server = new ModbusTcpSlaveServer(kiosk, { maxQueuedRequests: 2 });
    const port = await server.start();
    cleanup.push(() => kiosk.dispose());
    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => socket.destroy());
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.on("error", () => {});
    socket.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => readQueue(i + 1))));
    const until = Date.now() + 5_000;
    while (server.stats.stalls === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(server.stats).toMatchObject({ requests: 2, replies: 0, stalls: 1 });
    await server.stop();
    await closed;
  });
});

describe("GK-3 over Modbus TCP: malformed replies, armed per reply", () => {
  /** One request, the bytes that come back within 100 ms. */
  async function exchange(port: number, request: Buffer): Promise<Buffer> {
    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => socket.destroy());
    await new Promise<void>((r) => socket.once("connect", () => r()));
    let rx = Buffer.alloc(0);
    socket.on("data", (c: Buffer) => {
      rx = Buffer.concat([rx, c]);
    });
    socket.write(request);
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    return rx;
  }

  it.each([
    // [fault, what the reply to a one-register read (tid 7) looks like]
    ["none", "0007 0000 0005 01 04 02 0000"],
    ["wrong-transaction", "0008 0000 0005 01 04 02 0000"],
    ["wrong-protocol", "0007 0001 0005 01 04 02 0000"],
    ["wrong-length", "0007 0000 0004 01 04 02 0000"],
    ["truncate", "0007 0000 00"],
    ["trailing-garbage", "0007 0000 0005 01 04 02 0000 00ff00"],
    ["wrong-unit", "0007 0000 0005 02 04 02 0000"],
    ["wrong-function", "0007 0000 0005 01 03 02 0000"],
    ["wrong-byte-count", "0007 0000 0003 01 04 00"],
  ] as const)("%s", async (kind, hex) => {
    const kiosk = new Gk3Controller();
    const server = new ModbusTcpSlaveServer(kiosk);
    const port = await server.start();
    cleanup.push(
      () => server.stop(),
      () => kiosk.dispose(),
    );
    if (kind !== "none") kiosk.faults.malformed[kind] = 1;
    const reply = await exchange(port, readQueue(7));
    expect(reply.toString("hex")).toBe(hex.replaceAll(" ", ""));
    if (kind !== "none") {
      expect(kiosk.faults.malformed[kind]).toBe(0);
      expect(server.stats.malformed[kind]).toBe(1);
      // Spent: the next reply is well-formed again.
      expect((await exchange(port, readQueue(7))).toString("hex")).toBe("00070000000501040200" + "00");
    }
  });
});

describe("GK-3 over Modbus TCP: a malformed request header", () => {
  it("is discarded and counted; the connection stays open and the next request is answered", async () => {
    const kiosk = new Gk3Controller();
    const server = new ModbusTcpSlaveServer(kiosk);
    const port = await server.start();
    cleanup.push(
      () => server.stop(),
      () => kiosk.dispose(),
    );
    const socket = net.connect(port, "127.0.0.1");
    cleanup.push(() => socket.destroy());
    await new Promise<void>((r) => socket.once("connect", () => r()));
    let closed = false;
    socket.on("close", () => {
      closed = true;
    });
    socket.on("error", () => {});
    let rx = Buffer.alloc(0);
    socket.on("data", (c: Buffer) => {
      rx = Buffer.concat([rx, c]);
    });
    /** Waits until `n` bytes came (replies to a one-register read are 11 bytes each). */
    const received = async (n: number) => {
      const until = Date.now() + 2_000;
      while (rx.length < n && !closed && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    };
    // A frame with protocol id 1 is delimited by its length: skipped whole, the request after it
    // in the same write answered.
    const foreign = readQueue(5);
    foreign.writeUInt16BE(1, 2);
    socket.write(Buffer.concat([foreign, readQueue(6)]));
    await received(11);
    expect(rx.readUInt16BE(0)).toBe(6);
    expect(server.stats.foreignProtocol).toBe(1);
    // A length that delimits nothing (0): what is held is dropped, the next request resyncs.
    const unframed = readQueue(7);
    unframed.writeUInt16BE(0, 4);
    socket.write(unframed);
    const until = Date.now() + 2_000;
    while (server.stats.framingErrors === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(server.stats.framingErrors).toBe(1);
    socket.write(readQueue(8));
    await received(22);
    expect(closed).toBe(false);
    expect(rx.subarray(11).toString("hex")).toBe("00080000000501040200" + "00");
    expect(server.stats).toMatchObject({ connections: 1, requests: 2, replies: 2 });
    expect(server.connectionCount).toBe(1);
  });
});
