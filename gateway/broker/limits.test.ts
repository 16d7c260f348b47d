import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { deviceMaxPacket, FrameGuard } from "./limits.js";

/** A socket whose reads return the chunks given, as aedes' nextBatch reads them. */
function fakeSocket(chunks: Buffer[]) {
  const s = new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  }) as unknown as Socket;
  let destroyed = false;
  s.read = (() => chunks.shift() ?? null) as Socket["read"];
  s.destroy = (() => {
    destroyed = true;
    return s;
  }) as Socket["destroy"];
  return { s, destroyed: () => destroyed };
}

/** A fixed header: type nibble, then the remaining length as MQTT's varint. */
function header(type: number, length: number): Buffer {
  const out = [type << 4];
  let x = length;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    out.push(b);
  } while (x > 0);
  return Buffer.from(out);
}

describe("FrameGuard", () => {
  it("refuses a CONNECT announcing more than the limit from its header, before the body", () => {
    const { s, destroyed } = fakeSocket([header(1, 10 * 1024 * 1024)]);
    const refused: string[] = [];
    new FrameGuard(s, 1024, (r) => refused.push(r));
    expect(s.read()).toBeNull();
    expect(destroyed()).toBe(true);
    expect(refused).toEqual(["connect-too-large"]);
  });

  it("refuses an oversized length as soon as its first bytes exceed the limit", () => {
    // Only two of its four length bytes have arrived, already worth 16,383.
    const h = header(1, 200 * 1024 * 1024 + 0x3fff).subarray(0, 3);
    const { s, destroyed } = fakeSocket([h]);
    new FrameGuard(s, 1024, () => {});
    expect(s.read()).toBeNull();
    expect(destroyed()).toBe(true);
  });

  it("passes a small CONNECT and, after login, packets up to the role's limit split across reads", () => {
    const connect = Buffer.concat([header(1, 30), Buffer.alloc(30)]);
    const publish = Buffer.concat([header(3, 600), Buffer.alloc(600)]);
    const chunks = [connect, publish.subarray(0, 1), publish.subarray(1, 100), publish.subarray(100)];
    const { s, destroyed } = fakeSocket([...chunks]);
    const g = new FrameGuard(s, 1024, () => {});
    expect(s.read()).toBe(chunks[0]);
    g.setLimit(700, "ec200");
    for (const c of chunks.slice(1)) expect(s.read()).toBe(c);
    expect(destroyed()).toBe(false);
  });

  it("after login refuses a publish over the role's limit", () => {
    const connect = Buffer.concat([header(1, 30), Buffer.alloc(30)]);
    const { s, destroyed } = fakeSocket([connect, header(3, 10 * 1024 * 1024)]);
    const refused: string[] = [];
    const g = new FrameGuard(s, 1024, (r) => refused.push(r));
    s.read();
    g.setLimit(deviceMaxPacket("ec200", "p1", 512), "ec200");
    expect(s.read()).toBeNull();
    expect(destroyed()).toBe(true);
    expect(refused).toEqual(["packet-too-large"]);
  });

  it("refuses a first packet that is not a CONNECT, a 5-byte length, and floods before login", () => {
    const a = fakeSocket([header(3, 10)]);
    const ra: string[] = [];
    new FrameGuard(a.s, 1024, (r) => ra.push(r));
    a.s.read();
    expect(ra).toEqual(["not-connect"]);

    const b = fakeSocket([Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])]);
    const rb: string[] = [];
    new FrameGuard(b.s, 1 << 30, (r) => rb.push(r));
    b.s.read();
    expect(rb).toEqual(["malformed-header"]);

    // Many small packets pipelined before login: bounded too.
    const pings = Buffer.concat([Buffer.concat([header(1, 10), Buffer.alloc(10)]), Buffer.alloc(8000, 0xc0)]);
    const c = fakeSocket([pings]);
    const rc: string[] = [];
    new FrameGuard(c.s, 1024, (r) => rc.push(r));
    expect(c.s.read()).toBeNull();
    expect(rc).toEqual(["connect-too-large"]);
  });

  it("refuses a SUBSCRIBE or UNSUBSCRIBE without a topic filter or with packet identifier 0, read across reads", () => {
    const connect = Buffer.concat([header(1, 30), Buffer.alloc(30)]);
    const refusedOn = (packet: Buffer, at: number) => {
      const { s, destroyed } = fakeSocket([connect, packet.subarray(0, at), packet.subarray(at)]);
      const refused: string[] = [];
      const g = new FrameGuard(s, 1024, (r, _n, _l, _g, detail) => refused.push(`${r}: ${detail}`));
      s.read();
      g.setLimit(700, "operator");
      while (!destroyed() && s.read() !== null);
      return refused;
    };
    const filter = Buffer.from([0x00, 0x03, 0x61, 0x2f, 0x62]); // "a/b"
    const subscribe = (id: number) =>
      Buffer.concat([Buffer.from([0x82, 2 + 5 + 1, id >> 8, id & 0xff]), filter, Buffer.from([0x01])]);
    const unsubscribe = (id: number) =>
      Buffer.concat([Buffer.from([0xa2, 2 + 5, id >> 8, id & 0xff]), filter]);
    // Split between the packet identifier's two bytes, and just after its fixed header.
    expect(refusedOn(subscribe(0), 3)).toEqual(["malformed-packet: SUBSCRIBE with packet identifier 0"]);
    expect(refusedOn(unsubscribe(0), 2)).toEqual(["malformed-packet: UNSUBSCRIBE with packet identifier 0"]);
    expect(refusedOn(Buffer.from([0x82, 0x02, 0x00, 0x01]), 1)).toEqual([
      "malformed-packet: SUBSCRIBE without a topic filter",
    ]);
    expect(refusedOn(Buffer.from([0xa2, 0x02, 0x00, 0x01]), 4)).toEqual([
      "malformed-packet: UNSUBSCRIBE without a topic filter",
    ]);
    // Packet identifiers 256 (high byte only) and 1 (low byte only) pass, and the packets after them are read.
    const ping = Buffer.from([0xc0, 0x00]);
    expect(refusedOn(Buffer.concat([subscribe(256), unsubscribe(1), ping]), 3)).toEqual([]);
    expect(refusedOn(Buffer.concat([unsubscribe(1), subscribe(256), subscribe(0)]), 12)).toEqual([
      "malformed-packet: SUBSCRIBE with packet identifier 0",
    ]);
  });

  it("a device's limit is its payload limit plus its uplink topic", () => {
    expect(deviceMaxPacket("ec200", "p1", 512)).toBe(2 + "devices/ec200/p1/up".length + 2 + 128 + 512);
  });
});
