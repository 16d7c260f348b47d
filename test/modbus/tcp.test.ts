import { createRequire } from "node:module";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { gk3 } from "../../devices/gk3.js";
import { formatInterpretations } from "../../devices/modbus-decode.js";
import { TcpLink } from "../../protocols/links/tcp.js";
import { ModbusBus } from "../../protocols/modbus/bus.js";
import { ModbusReadError, modbusRead } from "../../protocols/modbus/read.js";
import { GK3_STATE, Gk3Controller } from "../../sim/modbus/gk3.js";
import { ModbusTcpSlaveServer } from "../../sim/modbus/tcp-server.js";

// modbus-serial is CommonJS whose typings claim an ES default export; require() gets the class itself.
const ModbusRTU = createRequire(import.meta.url)("modbus-serial") as typeof import("modbus-serial").default;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function kiosk(options: { idleTimeoutMs?: number; port?: number; commandMs?: number } = {}) {
  const { commandMs = 50, ...serverOptions } = options;
  const gk3 = new Gk3Controller({ commandMs, restartMs: 100 });
  const server = new ModbusTcpSlaveServer(gk3, serverOptions);
  const port = await server.start();
  cleanup.push(async () => {
    gk3.dispose();
    await server.stop();
  });
  return { gk3, server, port };
}

function tcpBus(port: number, extra: Partial<ConstructorParameters<typeof ModbusBus>[0]> = {}) {
  const bus = new ModbusBus({
    name: `kiosk@${port}`,
    link: new TcpLink({ host: "127.0.0.1", port }),
    mode: "tcp",
    timeoutMs: 200,
    retries: 0,
    backoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  });
  cleanup.push(() => bus.close());
  return bus;
}

describe("TCP bus against the GK-3 simulator on 127.0.0.1", () => {
  it("reads the input registers per the datasheet", async () => {
    const { gk3, port } = await kiosk();
    gk3.setTemperature(-5.5);
    gk3.setPaper(7);
    gk3.openDoor();
    gk3.addTransactions(70000);
    const bus = tcpBus(port);
    await bus.start();
    const r = await bus.request({ fn: 4, unit: 1, address: 0, count: 10 });
    if (!r.ok || !r.words) throw new Error("read failed");
    const w = Array.from(r.words);
    expect(w[0]).toBe(GK3_STATE.inService);
    expect(w[1]).toBe(0x10000 - 55); // int16 -5.5 °C ×0.1
    expect(w[3]).toBe(7);
    expect(w[4]).toBe(0b1);
    expect((w[5]! << 16) | w[6]!).toBe(70000);
  });

  it("writes the command register: reads back the command, then 0 when done; maintenance is state 4", async () => {
    // The command runs 2 s: the read-back below must land while it runs, also on a loaded machine
    // (with 50 ms it read 0 one run in a few under load).
    const { port } = await kiosk({ commandMs: 2000 });
    const bus = tcpBus(port);
    await bus.start();
    const w = await bus.request({ fn: 6, unit: 1, address: 100, value: 2 }, { priority: "command" });
    expect(w.ok).toBe(true);
    const during = await bus.request({ fn: 3, unit: 1, address: 100, count: 2 });
    expect(during.ok && Array.from(during.words!)).toEqual([2, 10]);
    const end = Date.now() + 15_000;
    let state = -1;
    while (state !== GK3_STATE.maintenance && Date.now() < end) {
      const r = await bus.request({ fn: 4, unit: 1, address: 0, count: 1 });
      if (r.ok && r.words) state = r.words[0]!;
      await sleep(10);
    }
    expect(state).toBe(GK3_STATE.maintenance);
    const after = await bus.request({ fn: 3, unit: 1, address: 100, count: 1 });
    expect(after.ok && after.words?.[0]).toBe(0);
    const bad = await bus.request({ fn: 6, unit: 1, address: 100, value: 9 });
    expect(bad.ok ? "ok" : bad.failure).toEqual({ kind: "exception", code: 3, name: "ILLEGAL_DATA_VALUE" });
  });

  it("returns the controller's exceptions: unknown function 0x01, bad address 0x02", async () => {
    const { port } = await kiosk();
    const bus = tcpBus(port);
    await bus.start();
    const coil = await bus.request({ fn: 5, unit: 1, address: 0, value: true });
    expect(coil.ok ? "ok" : coil.failure).toEqual({ kind: "exception", code: 1, name: "ILLEGAL_FUNCTION" });
    const addr = await bus.request({ fn: 4, unit: 1, address: 8, count: 5 });
    expect(addr.ok ? "ok" : addr.failure).toEqual({
      kind: "exception",
      code: 2,
      name: "ILLEGAL_DATA_ADDRESS",
    });
  });

  it("discards a late reply by its MBAP transaction id and counts it", async () => {
    const { gk3, port } = await kiosk();
    const bus = tcpBus(port);
    await bus.start();
    gk3.faults.lateMs = 400;
    const first = await bus.request({ fn: 4, unit: 1, address: 0, count: 10 });
    expect(first.ok ? "ok" : first.failure.kind).toBe("timeout");
    gk3.faults.lateMs = 0;
    gk3.setQueue(42);
    // Answered in order: the late reply comes first, then this one (allow for the wait).
    const second = await bus.request({ fn: 4, unit: 1, address: 9, count: 1 }, { timeoutMs: 2000 });
    expect(second.ok && second.words?.[0]).toBe(42);
    expect(bus.stats().discarded).toBe(1);
  });

  it("a kiosk that goes away: requests fail as transport errors, the bus reconnects when it is back", async () => {
    const k = await kiosk();
    const bus = tcpBus(k.port);
    await bus.start();
    expect((await bus.request({ fn: 4, unit: 1, address: 0, count: 1 })).ok).toBe(true);
    await k.server.stop();
    await until(() => bus.linkPhase !== "up");
    const down = await bus.request({ fn: 4, unit: 1, address: 0, count: 1 });
    expect(down.ok ? "ok" : down.failure.kind).toBe("transport");
    await sleep(100); // a few refused reconnects on backoff
    await kiosk({ port: k.port });
    await until(() => bus.linkPhase === "up");
    expect((await bus.request({ fn: 4, unit: 1, address: 0, count: 1 })).ok).toBe(true);
    expect(bus.stats().reconnects).toBe(1);
  });

  it("accepts at most 2 connections and closes idle ones", async () => {
    const { server, port } = await kiosk({ idleTimeoutMs: 150 });
    const links = [0, 1, 2].map(() => new TcpLink({ host: "127.0.0.1", port }));
    cleanup.push(async () => {
      for (const l of links) await l.close();
    });
    const closes: string[] = [];
    for (const [i, l] of links.entries()) l.on("close", (c) => closes.push(`${i}:${c.reason}`));
    await links[0]!.open();
    await links[1]!.open();
    await until(() => server.connectionCount === 2);
    await links[2]!.open();
    await until(() => closes.includes("2:remote"));
    expect(server.stats.refused).toBe(1);
    await until(() => closes.length === 3);
    expect(server.stats.idleClosed).toBe(2);
  });

  it("a kiosk polled less often than its idle close stays served: the link is replaced quietly, never lost", async () => {
    // Scaled down: the controller closes a connection idle for 600 ms (datasheet: 120 s), polled
    // every 700 ms. The bus is told 400 ms, so it replaces the link at 360 ms: a margin wide
    // enough for a loaded machine (both timers run in this one process).
    const { server, port } = await kiosk({ idleTimeoutMs: 600 });
    const events: string[] = [];
    const bus = tcpBus(port, { peerIdleCloseMs: 400, onLinkEvent: (e) => events.push(e.kind) });
    await bus.start();
    const results: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await bus.request({ fn: 4, unit: 1, address: 0, count: 1 });
      results.push(r.ok ? "ok" : r.failure.kind);
      await sleep(700);
    }
    expect(results).toEqual(["ok", "ok", "ok", "ok"]);
    expect(bus.stats()).toMatchObject({ transportErrors: 0, reconnects: 0 });
    expect(events).toEqual([]);
    // The gateway closed each idle link first: the controller never had to.
    expect(server.stats.idleClosed).toBe(0);
    expect(server.stats.connections).toBeGreaterThanOrEqual(4);
    expect(gk3.peerIdleCloseMs).toBe(120_000);
  });

  it("modbusRead: one read over TCP, and the exception by name", async () => {
    const { gk3, port } = await kiosk();
    gk3.setQueue(3);
    const r = await modbusRead({ tcp: { host: "127.0.0.1", port }, unit: 1, fn: 4, address: 9, count: 1 });
    expect(Array.from(r.words)).toEqual([3]);
    expect(formatInterpretations(r.words, r.address)).toMatch(/^\s*9\s+0x0003\s+3\s+3/m);
    const err = await modbusRead({
      tcp: { host: "127.0.0.1", port },
      unit: 1,
      fn: 4,
      address: 20,
      count: 1,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusReadError);
    expect((err as ModbusReadError).failure).toEqual({
      kind: "exception",
      code: 2,
      name: "ILLEGAL_DATA_ADDRESS",
    });
    expect((err as Error).message).toMatch(/ILLEGAL_DATA_ADDRESS/);
    await expect(
      modbusRead({ tcp: { host: "127.0.0.1", port: 1 }, unit: 1, fn: 4, address: 0, count: 1 }),
    ).rejects.toThrow();
  });

  it("an independent master (modbus-serial) reads the same registers from the simulator", async () => {
    const { gk3, port } = await kiosk();
    gk3.setHumidity(55.5);
    const client = new ModbusRTU();
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          client.close(() => resolve());
        }),
    );
    await client.connectTCP("127.0.0.1", { port });
    client.setID(1);
    client.setTimeout(1000);
    const r = await client.readInputRegisters(0, 10);
    expect(r.data.slice(0, 3)).toEqual([GK3_STATE.inService, 245, 555]);
  });
});

describe("TCP bus against malformed MBAP replies (the simulator's faults)", () => {
  // A reply that came but answers nothing asked is not silence: the timeout says it heard one
  // (before, on TCP, another transaction id or unit id read as "no reply").
  it.each([
    ["wrong-transaction", "mismatched"],
    ["wrong-protocol", "mismatched"],
    ["wrong-unit", "mismatched"],
    ["wrong-function", "mismatched"],
    ["wrong-length", "mismatched"],
    ["truncate", "incomplete"],
  ] as const)("%s: a timeout that heard %s; the next request is answered", async (kind, heard) => {
    const { gk3, server, port } = await kiosk();
    const bus = tcpBus(port);
    await bus.start();
    gk3.faults.malformed[kind] = 1;
    const r = await bus.request({ fn: 4, unit: 1, address: 9, count: 1 });
    expect(r).toMatchObject({ ok: false, failure: { kind: "timeout", attempts: 1, heard } });
    expect(server.stats.malformed[kind]).toBe(1);
    gk3.setQueue(3);
    const next = await bus.request({ fn: 4, unit: 1, address: 9, count: 1 });
    expect(next.ok && Array.from(next.words ?? [])).toEqual([3]);
    expect(bus.stats()).toMatchObject({ timeouts: 1, framingErrors: 0, reconnects: 0 });
    expect(bus.stats().discarded).toBeGreaterThanOrEqual(1);
  });

  it("trailing-garbage: the reply is used, the bytes after it discarded before the next request", async () => {
    const { gk3, port } = await kiosk();
    const bus = tcpBus(port);
    await bus.start();
    gk3.faults.malformed["trailing-garbage"] = 1;
    gk3.setQueue(4);
    const r = await bus.request({ fn: 4, unit: 1, address: 9, count: 1 });
    expect(r.ok && Array.from(r.words ?? [])).toEqual([4]);
    const next = await bus.request({ fn: 4, unit: 1, address: 9, count: 1 });
    expect(next.ok).toBe(true);
    expect(bus.stats()).toMatchObject({ discarded: 1, discardedBytes: 3, timeouts: 0, framingErrors: 0 });
  });
});

/**
 * A controller whose MBAP headers delimit nothing (a length field of 0 or past 254): a raw socket
 * on loopback answers each request with what `reply` makes of it (the simulator's faults keep
 * their headers delimited).
 */
describe("TCP bus against MBAP headers that delimit nothing", () => {
  const good = (req: Buffer) => Buffer.from([req[0]!, req[1]!, 0, 0, 0, 5, req[6]!, 0x04, 2, 0x00, 0x2a]);
  const unframeable = (req: Buffer) => Buffer.from([req[0]!, req[1]!, 0, 0, 0xff, 0xff, req[6]!, 0x04]);

  async function rawKiosk(reply: (req: Buffer, n: number) => Buffer) {
    const sockets = new Set<net.Socket>();
    let connections = 0;
    let n = 0;
    const server = net.createServer((s) => {
      connections++;
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
      // Requests are 12 bytes (fn 4) and come one at a time: each chunk is one.
      s.on("data", (req) => s.write(reply(req, ++n)));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanup.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });
    return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
  }
  const read = { fn: 4 as const, unit: 1, address: 9, count: 1 };

  it("one such reply now and then: the stream resynchronises on the next header, the link is kept", async () => {
    // Every third reply delimits nothing.
    const k = await rawKiosk((req, n) => (n % 3 === 0 ? unframeable(req) : good(req)));
    const bus = tcpBus(k.port);
    await bus.start();
    const results = [];
    for (let i = 0; i < 9; i++) results.push(await bus.request(read));
    for (const [i, r] of results.entries()) {
      if (i % 3 === 2)
        expect(r, `request ${i + 1}`).toMatchObject({
          ok: false,
          failure: { kind: "timeout", heard: "mismatched" },
        });
      else expect(r.ok && Array.from(r.words ?? []), `request ${i + 1}`).toEqual([42]);
    }
    expect(bus.stats()).toMatchObject({
      framingErrors: 3,
      reconnects: 0,
      transportErrors: 0,
      linkState: "up",
    });
    expect(k.connections()).toBe(1);
  });

  it("with a retry, such a reply costs no poll at all", async () => {
    const k = await rawKiosk((req, n) => (n % 2 === 1 ? unframeable(req) : good(req)));
    const bus = tcpBus(k.port, { retries: 1 });
    await bus.start();
    for (let i = 0; i < 4; i++) {
      const r = await bus.request(read);
      expect(r.ok && Array.from(r.words ?? [])).toEqual([42]);
    }
    expect(bus.stats()).toMatchObject({ framingErrors: 4, retries: 4, reconnects: 0 });
    expect(k.connections()).toBe(1);
  });

  it("two in a row, none well framed between: the stream is lost, the request fails and the link is reopened", async () => {
    let garbage = true;
    const k = await rawKiosk((req) => (garbage ? unframeable(req) : good(req)));
    const bus = tcpBus(k.port, { retries: 1 });
    await bus.start();
    const r = await bus.request(read);
    expect(r).toMatchObject({ ok: false, failure: { kind: "framing", attempts: 2 } });
    garbage = false;
    await until(() => bus.linkPhase === "up" && bus.stats().reconnects === 1);
    const next = await bus.request(read);
    expect(next.ok).toBe(true);
    expect(bus.stats().framingErrors).toBe(2);
    expect(k.connections()).toBe(2);
  });
});
