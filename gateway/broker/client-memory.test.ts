import net, { type AddressInfo } from "node:net";
import { Aedes, type Client } from "aedes";
import mqttPacket from "mqtt-packet";
import { afterEach, describe, expect, it } from "vitest";
import {
  compactClient,
  compactClientEvents,
  fastNullObject,
  LazyIdSet,
  shareClientListeners,
} from "./client-memory.js";

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** An aedes broker whose clients get the trims of client-memory.ts, as embedded.ts does. */
async function broker() {
  const aedes = await Aedes.createBroker();
  const clients: Client[] = [];
  const shared: boolean[] = [];
  aedes.on("clientReady", (client) => process.nextTick(compactClientEvents, client));
  const server = net.createServer((socket) => {
    const client = aedes.handle(socket) as unknown as Client;
    shared.push(shareClientListeners(client));
    compactClient(client);
    clients.push(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanup.push(async () => {
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { aedes, port: (server.address() as AddressInfo).port, clients, shared };
}

/** A raw MQTT 3.1.1 connection: resolves once CONNACK arrives. */
async function connect(port: number, clientId: string, extra: Partial<mqttPacket.IConnectPacket> = {}) {
  const socket = net.connect({ port, host: "127.0.0.1" });
  cleanup.push(() => {
    socket.destroy();
  });
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: mqttPacket.Packet[] = [];
  socket.on("data", (b) => parser.parse(b));
  parser.on("packet", (p) => packets.push(p));
  socket.on("error", () => {});
  await new Promise((r) => socket.once("connect", r));
  socket.write(
    mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: true,
      clientId,
      keepalive: 60,
      ...extra,
    }),
  );
  await until(() => packets.some((p) => p.cmd === "connack"));
  return { socket, packets };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const names = (e: NodeJS.EventEmitter, ev: string) => e.listeners(ev).map((f) => f.name);

describe("client-memory: aedes' per-client listeners shared", () => {
  it("replaces aedes' bound listeners and finished() with shared functions (aedes 1.2.0)", async () => {
    const b = await broker();
    await connect(b.port, "c1");
    expect(b.shared).toEqual([true]);
    const conn = (b.clients[0] as unknown as { conn: net.Socket }).conn;
    for (const ev of ["error", "end", "close", "finish"])
      expect(names(conn, ev).filter((n) => n.startsWith("bound ") || n.startsWith("on"))).toEqual(
        ev === "end" ? ["onReadableStreamEnd"] : [],
      );
    expect(names(conn, "end")).toContain("closeClient");
    expect(names(conn, "close")).toEqual(["closeClient"]);
    expect(names(conn, "error")).toEqual(["forwardError"]);
  });

  it("a client whose peer ends the connection is closed and unregistered", async () => {
    const b = await broker();
    const c = await connect(b.port, "c-end");
    const gone = new Promise((r) => b.aedes.once("clientDisconnect", r));
    c.socket.end();
    await gone;
    await until(() => (b.clients[0] as unknown as { closed: boolean }).closed);
    expect(Object.keys((b.aedes as unknown as { clients: object }).clients)).toEqual([]);
  });

  it("a connection reset closes the client", async () => {
    const b = await broker();
    const c = await connect(b.port, "c-reset");
    const gone = new Promise((r) => b.aedes.once("clientDisconnect", r));
    c.socket.resetAndDestroy();
    await gone;
    expect((b.clients[0] as unknown as { closed: boolean }).closed).toBe(true);
  });

  it("a malformed packet (a parser error) closes the client with a client error", async () => {
    const b = await broker();
    const c = await connect(b.port, "c-bad");
    const err = new Promise<Error>((r) => b.aedes.once("clientError", (_c, e) => r(e)));
    const closed = new Promise((r) => c.socket.once("close", r));
    // A PUBLISH with reserved QoS 3 in its flags (MQTT 3.1.1 §3.3.1.2: malformed).
    c.socket.write(Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]));
    expect((await err).message).toMatch(/qos|invalid/i);
    await closed;
    expect((b.clients[0] as unknown as { closed: boolean }).closed).toBe(true);
  });

  it("keep-alive still closes a silent client after 1.5x its interval (MQTT 3.1.1 §3.1.2.10)", async () => {
    const b = await broker();
    const t0 = Date.now();
    const gone = new Promise((r) => b.aedes.once("keepaliveTimeout", r));
    const c = await connect(b.port, "c-silent", { keepalive: 1 });
    const closed = new Promise((r) => c.socket.once("close", r));
    await gone;
    await closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect((b.clients[0] as unknown as { closed: boolean }).closed).toBe(true);
  });

  it("a connection lost without DISCONNECT publishes the client's will", async () => {
    const b = await broker();
    const watcher = await connect(b.port, "c-watch");
    watcher.socket.write(
      mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "wills/#", qos: 0 }] }),
    );
    await until(() => watcher.packets.some((p) => p.cmd === "suback"));
    const c = await connect(b.port, "c-will", {
      will: { topic: "wills/c", payload: Buffer.from("gone"), qos: 0, retain: false },
    });
    c.socket.resetAndDestroy();
    await until(() => watcher.packets.some((p) => p.cmd === "publish" && p.topic === "wills/c"));
  });

  it("subscriptions and events still work through the fast objects", async () => {
    const b = await broker();
    const c = await connect(b.port, "c-sub");
    await new Promise((r) => setTimeout(r, 20));
    c.socket.write(
      mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "t/#", qos: 0 }] }),
    );
    await until(() => c.packets.some((p) => p.cmd === "suback"));
    b.aedes.publish(
      { cmd: "publish", topic: "t/x", payload: Buffer.from("hi"), qos: 0, retain: false, dup: false },
      () => {},
    );
    await until(() => c.packets.some((p) => p.cmd === "publish"));
    const client = b.clients[0] as unknown as { subscriptions: Record<string, unknown>; _events: object };
    expect(Object.keys(client.subscriptions)).toEqual(["t/#"]);
    expect(Object.getPrototypeOf(Object.getPrototypeOf(client._events))).toBeNull();
  });
});

describe("fastNullObject", () => {
  it("reads inherited names back as absent, like a null-prototype object", () => {
    const o = fastNullObject({ a: 1, [Symbol.for("s")]: 2 });
    expect(o.a).toBe(1);
    expect(o[Symbol.for("s")]).toBe(2);
    for (const k of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      expect(o[k]).toBeUndefined();
      expect(k in o).toBe(false);
    }
    const proto = "__proto__"; // as aedes' keys come from the wire: an own property, not the prototype
    o[proto] = 5;
    expect(Object.keys(o)).toEqual(["a", "__proto__"]);
    expect(o[proto]).toBe(5);
    expect(Object.getPrototypeOf(Object.getPrototypeOf(o))).toBeNull();
  });
});

describe("LazyIdSet", () => {
  it("has, size, add, delete as a Set", () => {
    const s = new LazyIdSet();
    expect(s.size).toBe(0);
    expect(s.has(1)).toBe(false);
    expect(s.delete(1)).toBe(false);
    s.add(1).add(2).add(1);
    expect(s.size).toBe(2);
    expect(s.has(2)).toBe(true);
    expect(s.delete(2)).toBe(true);
    expect(s.size).toBe(1);
  });
});
