import { describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { MemoryLine } from "../../protocols/links/memory.js";
import { seededRandom } from "../mqtt/random.js";
import { simCrc16 } from "./crc.js";
import { LV4_BIT, LV4_FAULT, Lv4Sensor } from "./lv4.js";
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

async function line(sensor: Lv4Sensor, clock: FakeClock) {
  const l = new MemoryLine();
  const server = new RtuSlaveServer(l.b, { clock });
  server.add(sensor);
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
  return { ask, got, server };
}

// The datasheet's example state: slave 9, 2350 mm, -3.5 °C, 42.3 m³, low + heater, uptime 259,217 s, counter 3.
function datasheetSensor(clock: FakeClock): Lv4Sensor {
  const s = new Lv4Sensor({ unit: 9, clock, uptimeS: 259_217, levelMm: 2350, temperatureC: -3.5 });
  s.setAlarmCounter(3);
  return s;
}

describe("LV-4 simulator on an RTU line, byte-exact per datasheet", () => {
  it("the example frames carry their CRCs (low byte first)", () => {
    for (const f of [
      "09 04 00 00 00 0C F1 47",
      "09 04 18 4C 34 01 05 09 2E FF DD 42 29 33 33 00 05 00 00 00 03 F4 91 0F A0 00 03 69 6E",
      "09 03 00 00 00 02 C5 43",
      "09 03 04 09 60 0E D8 74 4B",
      "09 06 00 00 0B B8 8F C0",
      "09 05 00 00 FF 00 8D 72",
      "09 90 01 0C 02",
      "09 83 02 41 33",
    ]) {
      const b = hex(f);
      expect(toHex(withCrc(toHex(b.subarray(0, b.length - 2))))).toBe(f);
    }
  });

  it("answers the datasheet's read of all 12 input registers with its 29-byte reply", async () => {
    const clock = new FakeClock();
    const { ask } = await line(datasheetSensor(clock), clock);
    expect(await ask(hex("09 04 00 00 00 0C F1 47"))).toBe(
      "09 04 18 4C 34 01 05 09 2E FF DD 42 29 33 33 00 05 00 00 00 03 F4 91 0F A0 00 03 69 6E",
    );
  });

  it("set-points: the datasheet's read, write (echoed) and read back", async () => {
    const clock = new FakeClock();
    const s = datasheetSensor(clock);
    const { ask } = await line(s, clock);
    expect(await ask(hex("09 03 00 00 00 02 C5 43"))).toBe("09 03 04 09 60 0E D8 74 4B");
    expect(await ask(hex("09 06 00 00 0B B8 8F C0"))).toBe("09 06 00 00 0B B8 8F C0");
    expect(s.setPoints()).toEqual({ low: 3000, high: 3800 });
    expect(await ask(withCrc("09 03 00 00 00 01"))).toMatch(/^09 03 02 0B B8/);
  });

  it("a read beyond the listed registers is exception 0x02 whatever the quantity (datasheet)", async () => {
    const s = new Lv4Sensor({ unit: 9 });
    expect(toHex(s.handle(hex("04 00 00 00 7E")))).toBe("84 02");
    expect(toHex(s.handle(hex("03 00 00 00 7E")))).toBe("83 02");
    expect(toHex(s.handle(hex("04 00 00 00 00")))).toBe("84 03");
  });

  it("set-points out of range are exception 0x03 and change nothing", async () => {
    const clock = new FakeClock();
    const s = datasheetSensor(clock);
    const { ask } = await line(s, clock);
    expect(await ask(withCrc("09 06 00 00 00 63"))).toMatch(/^09 86 03/); // low 99 < 100
    expect(await ask(withCrc("09 06 00 01 0F A1"))).toMatch(/^09 86 03/); // high 4001 > tank
    expect(await ask(withCrc("09 06 00 01 09 C3"))).toMatch(/^09 86 03/); // high 2499 < low + 100
    expect(await ask(withCrc("09 06 00 00 0E 75"))).toMatch(/^09 86 03/); // low 3701: high 3800 < low + 100
    expect(await ask(withCrc("09 06 00 02 00 64"))).toMatch(/^09 86 02/); // no register 2
    expect(s.setPoints()).toEqual({ low: 2400, high: 3800 });
  });

  it("self-test on coil 0 (echoed): status bit 4 and unreal readings for up to 10 s, then it clears itself", async () => {
    const clock = new FakeClock();
    const s = datasheetSensor(clock);
    const { ask } = await line(s, clock);
    expect(await ask(hex("09 05 00 00 FF 00 8D 72"))).toBe("09 05 00 00 FF 00 8D 72");
    expect(s.status() & (1 << LV4_BIT.selfTest)).not.toBe(0);
    clock.advance(5_000);
    expect(s.inputRegisters()[2]).toBe(2000); // half-way through the cell's range, not the water
    clock.advance(5_000);
    expect(s.status() & (1 << LV4_BIT.selfTest)).toBe(0);
    expect(s.inputRegisters()[2]).toBe(2350);
    expect(await ask(withCrc("09 05 00 01 FF 00"))).toMatch(/^09 85 02/);
    expect(await ask(withCrc("09 05 00 00 12 34"))).toMatch(/^09 85 03/);
  });

  it("the datasheet's exception replies: illegal function (0x10) and illegal data address (0x03 at 5)", async () => {
    const clock = new FakeClock();
    const { ask } = await line(datasheetSensor(clock), clock);
    expect(await ask(withCrc("09 10 00 00 00 01 02 0B B8"))).toBe("09 90 01 0C 02");
    expect(await ask(withCrc("09 03 00 05 00 01"))).toBe("09 83 02 41 33");
    expect(await ask(withCrc("09 04 00 0B 00 02"))).toMatch(/^09 84 02/);
    expect(await ask(withCrc("09 01 00 00 00 01"))).toMatch(/^09 81 01/);
    expect(await ask(withCrc("09 04 00 00 00 00"))).toMatch(/^09 84 03/);
  });

  it("answers within its turnaround (at most the datasheet's 80 ms)", async () => {
    const clock = new FakeClock();
    const s = new Lv4Sensor({ unit: 9, clock, turnaroundMs: 60 });
    const { ask, got } = await line(s, clock);
    expect(await ask(withCrc("09 04 00 00 00 01"))).toBe("");
    clock.advance(60);
    await flush();
    expect(toHex(Uint8Array.from(got))).toMatch(/^09 04 02 4C 34/);
    expect(() => new Lv4Sensor({ unit: 9, turnaroundMs: 81 })).toThrow(RangeError);
  });
});

describe("LV-4 behaviour", () => {
  const bit = (s: Lv4Sensor, b: number) => (s.status() & (1 << b)) !== 0;

  it("drawn down at 30 mm/s, then refilled: bit 0 follows the low set-point, counted on each change", () => {
    const clock = new FakeClock();
    const s = new Lv4Sensor({ unit: 1, clock, levelMm: 2500 });
    s.drawDown();
    clock.advance(3_000);
    expect(s.getLevel()).toBe(2410);
    expect(bit(s, LV4_BIT.low)).toBe(false);
    clock.advance(1_000);
    expect(s.getLevel()).toBe(2380);
    expect(bit(s, LV4_BIT.low)).toBe(true);
    expect(s.inputRegisters()[11]).toBe(1);
    s.refill(30, 2500);
    clock.advance(10_000);
    expect(s.getLevel()).toBe(2500);
    expect(bit(s, LV4_BIT.low)).toBe(false);
    expect(s.inputRegisters()[11]).toBe(2);
    s.setLevel(3900); // overflow risk: bit 1
    expect(bit(s, LV4_BIT.high)).toBe(true);
    s.setFault(LV4_FAULT.temperatureProbe);
    expect(s.inputRegisters().slice(6, 8)).toEqual([(1 << 1) | (1 << 3), 3]);
    expect(s.inputRegisters()[11]).toBe(4);
    s.dispose();
  });

  it("a winter night: the water cools, the heater switches on at 4 °C and holds it near 4-5 °C", () => {
    const clock = new FakeClock();
    const s = new Lv4Sensor({ unit: 1, clock, temperatureC: 4.5 });
    expect(s.heaterOn).toBe(false);
    s.winterNight(0.1, 0.3);
    clock.advance(5 * 60_000);
    expect(s.heaterOn).toBe(true);
    expect(bit(s, LV4_BIT.heater)).toBe(true);
    clock.advance(3 * 3_600_000);
    expect(s.getTemperature()).toBeGreaterThanOrEqual(3.9);
    expect(s.getTemperature()).toBeLessThanOrEqual(5.1);
    s.dispose();
  });

  it("a failing cell: the level jumps to 0 or 65535 for single reads only", () => {
    const clock = new FakeClock();
    const s = new Lv4Sensor({ unit: 1, clock, levelMm: 3000 });
    s.glitch(0);
    s.glitch(0xffff);
    const read = () => s.handle(Uint8Array.of(0x04, 0, 2, 0, 1));
    expect(toHex(read())).toBe("04 02 00 00");
    expect(toHex(read())).toBe("04 02 FF FF");
    expect(toHex(read())).toBe("04 02 0B B8");
    s.failingCell(0.5, seededRandom(7));
    const levels = Array.from({ length: 40 }, () => {
      const r = read();
      return (r[2]! << 8) | r[3]!;
    });
    expect(new Set(levels.filter((l) => l !== 3000)).size).toBeGreaterThan(0);
    expect(levels.every((l) => l === 3000 || l === 0 || l === 0xffff)).toBe(true);
    expect(bit(s, LV4_BIT.low)).toBe(false); // the sensor's own comparison is not fooled
  });
});
