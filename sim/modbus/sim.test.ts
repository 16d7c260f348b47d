import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { MemoryLine } from "../../protocols/links/memory.js";
import { simCrc16 } from "./crc.js";
import { GK3_STATE, Gk3Controller } from "./gk3.js";
import { MFS8_BIT, Mfs8Panel } from "./mfs8.js";
import { RtuSlaveServer } from "./rtu-server.js";

const hex = (s: string) => Uint8Array.from(s.split(/\s+/).map((h) => Number.parseInt(h, 16)));
const toHex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0").toUpperCase()).join(" ");
const withCrc = (s: string) => {
  const b = hex(s);
  const c = simCrc16(b, 0, b.length);
  return Uint8Array.from([...b, c & 0xff, c >>> 8]);
};
const flush = () => new Promise<void>((r) => setImmediate(r));

async function line(panels: Mfs8Panel[], options: ConstructorParameters<typeof RtuSlaveServer>[1] = {}) {
  const l = new MemoryLine();
  const server = new RtuSlaveServer(l.b, options);
  for (const p of panels) server.add(p);
  await server.start();
  await l.a.open();
  const got: number[] = [];
  l.a.on("data", (c) => got.push(...c));
  const ask = async (frame: Uint8Array) => {
    got.length = 0;
    l.a.write(frame);
    await flush();
    return toHex(Uint8Array.from(got));
  };
  return { l, server, got, ask };
}

describe("MFS-8 simulator on an RTU line, byte-exact per datasheet", () => {
  it("answers with the datasheet's 33-byte slave-5 reply", async () => {
    const clock = new FakeClock();
    const p = new Mfs8Panel({ unit: 5, clock, uptimeS: 86436 });
    p.raiseSmoke(2.5);
    p.silence(); // the example shows the sounder bit clear
    p.setEventCounter(66);
    const { ask } = await line([p], { clock });
    expect(await ask(withCrc("05 03 00 00 00 0E"))).toBe(
      "05 03 1C 4D 38 02 03 00 01 51 A4 00 01 00 FA 00 D7 D7 0A 3E A3 00 1F 00 05 00 00 00 00 00 42 00 CD",
    );
  });

  it("echoes the datasheet's silence command and gives the datasheet's exception frame", async () => {
    const p = new Mfs8Panel({ unit: 5 });
    p.raiseSmoke();
    const { ask } = await line([p]);
    expect(p.status() & (1 << MFS8_BIT.sounder)).not.toBe(0);
    expect(await ask(hex("05 05 00 00 FF 00 8D BE"))).toBe("05 05 00 00 FF 00 8D BE");
    expect(p.status() & (1 << MFS8_BIT.sounder)).toBe(0);
    expect(await ask(withCrc("05 03 00 0A 00 05"))).toBe("05 83 02 81 30");
  });

  it("a read outside registers 0-13 is exception 0x02 whatever the quantity (datasheet); none at all is 0x03", async () => {
    const { ask } = await line([new Mfs8Panel({ unit: 1 })]);
    expect(await ask(withCrc("01 03 00 00 00 7E"))).toMatch(/^01 83 02/); // 126 from 0
    expect(await ask(withCrc("01 03 00 00 00 0F"))).toMatch(/^01 83 02/); // 15 from 0
    expect(await ask(withCrc("01 03 00 00 00 00"))).toMatch(/^01 83 03/);
    expect(await ask(withCrc("01 03 00 00 00 0E"))).toMatch(/^01 03 1C/);
  });

  it("the event counter counts hydrant pressure alarms and their clearing (registers 12-13)", () => {
    const p = new Mfs8Panel({ unit: 1, pressureMpa: 0.32 });
    const events = () => {
      const r = p.registers();
      return ((r[12] as number) << 16) | (r[13] as number);
    };
    const before = events();
    p.setPressure(0.05);
    expect(p.status() & (1 << MFS8_BIT.pressureLow)).not.toBe(0);
    expect(events()).toBe(before + 1);
    p.setPressure(0.04); // still low: no change, no event
    expect(events()).toBe(before + 1);
    p.setPressure(0.3);
    expect(events()).toBe(before + 2);
  });

  it('a temperature over 57 °C is a heat alarm (status bit 1, "rate of rise or > 57 °C"), latched, sounding', () => {
    const p = new Mfs8Panel({ unit: 1 });
    p.setTemperature(57);
    expect(p.status() & (1 << MFS8_BIT.heat)).toBe(0);
    expect(p.registers()[6]).toBe(570);
    p.setTemperature(57.1);
    expect(p.status() & ((1 << MFS8_BIT.heat) | (1 << MFS8_BIT.sounder))).toBe(
      (1 << MFS8_BIT.heat) | (1 << MFS8_BIT.sounder),
    );
    expect(p.registers()[13]).toBe(1); // an alarm change: the event counter moved
    p.setTemperature(21.5);
    expect(p.status() & (1 << MFS8_BIT.heat)).not.toBe(0); // latched until coil 1
  });

  it("latches alarm bits until coil 1 resets the panel; coil 2 switches test mode (bit 15)", async () => {
    const p = new Mfs8Panel({ unit: 1 });
    const { ask } = await line([p]);
    p.raiseSmoke();
    p.pressCallPoint();
    p.clearAir();
    expect(p.status() & 0b111).toBe(0b101);
    await ask(withCrc("01 05 00 01 FF 00"));
    expect(p.status() & 0b111).toBe(0);
    await ask(withCrc("01 05 00 02 FF 00"));
    expect(p.status() & 0x8000).toBe(0x8000);
    await ask(withCrc("01 05 00 02 00 00"));
    expect(p.status() & 0x8000).toBe(0);
    expect(p.actions).toEqual({ silence: 0, reset: 1, testOn: 1, testOff: 1 });
  });

  it("exception 0x01 for functions it lacks (also ones of unknown length, ended by silence)", async () => {
    const { ask, got } = await line([new Mfs8Panel({ unit: 1 })]);
    expect(await ask(withCrc("01 04 00 00 00 01"))).toMatch(/^01 84 01/);
    await ask(withCrc("01 2B 0E 01 00"));
    await new Promise((r) => setTimeout(r, 20)); // the sim's end-of-frame silence
    expect(toHex(Uint8Array.from(got))).toMatch(/^01 AB 01/);
  });

  it("a fragment too short to name its length, then silence, is discarded: the next request is answered", async () => {
    // MB serial V1.02 §2.5.1.1: a frame ends on 3.5 characters of silence, an incomplete one is
    // dropped. A lone byte (a driver-enable glitch on RS-485) and a 5-byte start of a 0x10 write
    // (its byte count not yet seen) must not stay in front of the master's next request.
    const { ask, l, server } = await line([new Mfs8Panel({ unit: 1 })]);
    for (const fragment of ["00", "01 10 00 00 00", "01 03 00 00"]) {
      l.a.write(hex(fragment));
      await new Promise((r) => setTimeout(r, 20)); // longer than the sim's end-of-frame silence
      expect(await ask(withCrc("01 03 00 00 00 01"))).toMatch(/^01 03 02 4D 38/);
    }
    // Each fragment is a request the sim dropped: counted, as a gateway's bad framing must show
    // in `linli sim`'s malformed-requests line, not vanish.
    expect(server.stats).toMatchObject({ incompleteFrames: 3, crcErrors: 0, requests: 3 });
  });

  it("more bytes than any frame holds are dropped and counted once", async () => {
    const { ask, l, server } = await line([new Mfs8Panel({ unit: 1 })]);
    l.a.write(new Uint8Array(600).fill(0x41));
    await new Promise((r) => setTimeout(r, 20));
    expect(await ask(withCrc("01 03 00 00 00 01"))).toMatch(/^01 03 02 4D 38/);
    expect(server.stats.incompleteFrames).toBe(1);
  });

  it("several panels share the line; absent units and bad CRCs get no reply", async () => {
    const { ask, server } = await line([new Mfs8Panel({ unit: 1 }), new Mfs8Panel({ unit: 2 })]);
    expect(await ask(withCrc("01 03 00 00 00 01"))).toMatch(/^01 03 02 4D 38/);
    expect(await ask(withCrc("02 03 00 00 00 01"))).toMatch(/^02 03 02 4D 38/);
    expect(await ask(withCrc("03 03 00 00 00 01"))).toBe("");
    const bad = withCrc("01 03 00 00 00 01");
    bad[7] = (bad[7]! ^ 1) & 0xff;
    expect(await ask(bad)).toBe("");
    expect(server.stats).toMatchObject({ foreign: 1, crcErrors: 1 });
  });

  it("scripted faults: silent, exception, corrupt CRC, late", async () => {
    const clock = new FakeClock();
    const p = new Mfs8Panel({ unit: 1, clock });
    const { ask, got } = await line([p], { clock });
    p.faults.silent = true;
    expect(await ask(withCrc("01 03 00 00 00 01"))).toBe("");
    p.faults.silent = false;
    p.faults.exception = 6;
    expect(await ask(withCrc("01 03 00 00 00 01"))).toMatch(/^01 83 06/);
    p.faults.exception = undefined;
    p.faults.corruptCrc = 1;
    const corrupted = hex(await ask(withCrc("01 03 00 00 00 01")));
    const c = simCrc16(corrupted, 0, corrupted.length - 2);
    expect(corrupted[corrupted.length - 1]).not.toBe(c >>> 8);
    p.faults.lateMs = 300;
    expect(await ask(withCrc("01 03 00 00 00 01"))).toBe("");
    clock.advance(300);
    await flush();
    expect(toHex(Uint8Array.from(got))).toMatch(/^01 03 02 4D 38/);
  });

  it("malformed replies, each for the next N replies, byte-exact and counted", async () => {
    const clock = new FakeClock();
    const p = new Mfs8Panel({ unit: 1, clock });
    const { ask, got, server } = await line([p], { clock });
    const read = withCrc("01 03 00 00 00 01"); // one register: 01 03 02 4D 38 + CRC
    const good = await ask(read);
    expect(good).toMatch(/^01 03 02 4D 38 .. ..$/);
    p.faults.malformed.truncate = 1;
    expect(await ask(read)).toBe(good.slice(0, 3 * 3 - 1)); // 3 of 7 bytes
    expect(await ask(read)).toBe(good); // spent
    p.faults.malformed["trailing-garbage"] = 1;
    expect(await ask(read)).toBe(`${good} 00 FF 00`);
    p.faults.malformed["wrong-unit"] = 1;
    expect(await ask(read)).toBe(toHex(withCrc("02 03 02 4D 38")));
    p.faults.malformed["wrong-function"] = 2;
    expect(await ask(read)).toBe(toHex(withCrc("01 04 02 4D 38")));
    p.faults.exception = 2;
    expect(await ask(read)).toBe(toHex(withCrc("01 84 02"))); // the exception's function too
    p.faults.exception = undefined;
    p.faults.malformed["wrong-byte-count"] = 1;
    // A write's echo has no byte count: it passes and the fault stays armed for the next read.
    expect(await ask(hex("01 05 00 00 FF 00 8C 3A"))).toBe("01 05 00 00 FF 00 8C 3A");
    expect(await ask(withCrc("01 03 00 00 00 02"))).toBe(toHex(withCrc("01 03 02 4D 38")));
    p.faults.malformed.noise = 1;
    expect(await ask(read)).toBe(good); // the reply itself is sound ...
    clock.advance(20); // ... and the noise follows once the line has been silent
    await flush();
    expect(toHex(Uint8Array.from(got))).toBe(`${good} FF 00 00 FF 00 00`);
    expect(server.stats.malformed).toMatchObject({
      truncate: 1,
      "trailing-garbage": 1,
      "wrong-unit": 1,
      "wrong-function": 2,
      "wrong-byte-count": 1,
      noise: 1,
    });
    expect(Object.values(p.faults.malformed).every((n) => n === 0)).toBe(true);
  });

  it("a master flooding the line: at most maxPendingReplies replies wait, the rest counted busy", async () => {
    const clock = new FakeClock();
    const p = new Mfs8Panel({ unit: 1, clock });
    p.faults.lateMs = 1_000;
    const { l, server, got } = await line([p], { clock, maxPendingReplies: 8 });
    const read = withCrc("01 03 00 00 00 01");
    for (let i = 0; i < 1_000; i++) l.a.write(read);
    await flush();
    expect(server.stats).toMatchObject({ requests: 1_000, replies: 0, busy: 992 });
    clock.advance(1_000);
    await flush();
    expect(server.stats.replies).toBe(8);
    expect(got).toHaveLength(8 * 7);
    // Room again: the next request is answered.
    l.a.write(read);
    await flush();
    clock.advance(1_000);
    await flush();
    expect(server.stats).toMatchObject({ replies: 9, busy: 992 });
  });

  it("paces replies at the baud rate's wire time when asked", async () => {
    const clock = new FakeClock();
    const { ask, got } = await line([new Mfs8Panel({ unit: 1, clock })], {
      clock,
      pace: { baudRate: 9600, bitsPerChar: 11 },
    });
    expect(await ask(withCrc("01 03 00 00 00 0E"))).toBe("");
    clock.advance(50); // (8 + 33) bytes x 11 bits / 9600 baud = 47 ms, plus t3.5 of 4 ms
    await flush();
    expect(got).toHaveLength(0);
    clock.advance(2);
    await flush();
    expect(got).toHaveLength(33);
  });
});

describe("GK-3 simulator registers", () => {
  const read = (k: Gk3Controller, fn: number, addr: number, n: number) =>
    toHex(k.handle(Uint8Array.of(fn, addr >> 8, addr & 0xff, 0, n)));

  it("command register: write, reads back the command, 0 when done; maintenance is state 4", () => {
    const clock = new FakeClock();
    const k = new Gk3Controller({ clock, commandMs: 100, restartMs: 1000 });
    expect(toHex(k.handle(Uint8Array.of(0x06, 0, 100, 0, 2)))).toBe("06 00 64 00 02");
    expect(read(k, 3, 100, 1)).toBe("03 02 00 02");
    clock.advance(100);
    expect(read(k, 3, 100, 2)).toBe("03 04 00 00 00 0A");
    expect(k.getState()).toBe(GK3_STATE.maintenance);
    k.handle(Uint8Array.of(0x06, 0, 100, 0, 1));
    expect(k.getState()).toBe(GK3_STATE.booting);
    clock.advance(1000);
    expect(k.getState()).toBe(GK3_STATE.inService);
    expect(toHex(k.handle(Uint8Array.of(0x06, 0, 100, 0, 7)))).toBe("86 03");
  });

  it("input registers 0-9 and exceptions 0x01 / 0x02", () => {
    const k = new Gk3Controller({ clock: new FakeClock() });
    k.tilt();
    k.setQueue(4);
    expect(read(k, 4, 0, 10)).toBe("04 14 00 02 00 F5 01 C2 00 50 00 40 00 00 00 00 00 00 00 00 00 04");
    expect(read(k, 4, 9, 2)).toBe("84 02");
    expect(read(k, 3, 0, 1)).toBe("83 02");
    expect(toHex(k.handle(Uint8Array.of(0x05, 0, 0, 0xff, 0)))).toBe("85 01");
  });

  it("a request PDU of the wrong length is illegal data value (0x03), as the MFS-8 and LV-4 answer it", () => {
    const k = new Gk3Controller({ clock: new FakeClock() });
    expect(toHex(k.handle(Uint8Array.of(0x04, 0, 0, 0, 10, 0)))).toBe("84 03"); // a byte too many
    expect(toHex(k.handle(Uint8Array.of(0x03, 0, 100, 0)))).toBe("83 03"); // a byte short
    expect(toHex(k.handle(Uint8Array.of(0x06, 0, 101, 0, 30, 0)))).toBe("86 03");
    expect(k.holdingRegisters()).toEqual([0, 10]); // nothing written
    expect(toHex(k.handle(Uint8Array.of(0x06, 0, 101, 0, 30)))).toBe("06 00 65 00 1E");
  });

  it('transactions today (registers 5-6) reset at the controller\'s local midnight ("resets at midnight")', () => {
    // 23:59:50 in Beijing (UTC+8) is 15:59:50 UTC.
    const clock = new FakeClock(Date.UTC(2026, 0, 5, 15, 59, 50));
    const k = new Gk3Controller({ clock, utcOffsetMinutes: 480 });
    k.addTransactions(70_000); // over 16 bits: both words in use
    expect(read(k, 4, 5, 2)).toBe("04 04 00 01 11 70");
    clock.advance(9_000);
    k.addTransactions(2);
    expect(read(k, 4, 5, 2)).toBe("04 04 00 01 11 72");
    clock.advance(2_000); // 00:00:01 local: a new day
    expect(read(k, 4, 5, 2)).toBe("04 04 00 00 00 00");
    k.addTransactions(3);
    clock.advance(3_600_000);
    expect(read(k, 4, 5, 2)).toBe("04 04 00 00 00 03");
  });
});
