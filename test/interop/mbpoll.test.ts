import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../core/clock.js";
import { runSimCli, type SimHandle } from "../../sim/modbus/cli.js";
import { mbpoll } from "./mbpoll.js";

// A third-party master (mbpoll, libmodbus) reads the simulator's slaves and
// must get the datasheets' values. mbpoll numbers references from 1 by default.

describe("mbpoll reads the simulated MFS-8 panels over a socat pty (RTU 9600 8E1)", () => {
  let sim: SimHandle;
  let tty: string;
  beforeAll(async () => {
    sim = await runSimCli(["rtu", "--socat", "--units", "1,5", "--baud", "9600", "--parity", "even"]);
    tty = sim.gatewayPath!;
    // The datasheet's example: slave 5 with the smoke alarm, 2.50 %/m, 21.5 °C, 0.32 MPa, 5 of 5, 66 events.
    const p5 = sim.panels.get(5)!;
    p5.raiseSmoke(2.5);
    p5.silence();
    p5.setEventCounter(66);
  });
  afterAll(async () => {
    await sim.stop();
  });
  const rtu = ["-m", "rtu", "-b", "9600", "-P", "even", "-o", "2", "-1"];

  it("holding registers 0-13 of slave 5 carry the datasheet's values", async () => {
    const r = await mbpoll([...rtu, "-a", "5", "-t", "4", "-r", "1", "-c", "14", tty]);
    expect(r.code).toBe(0);
    const v = (ref: number) => r.values.get(ref);
    expect(v(1)).toBe(0x4d38); // model "M8"
    expect(v(2)).toBe(0x0203); // firmware 2.3
    expect(v(5)).toBe(0x0001); // status: smoke alarm
    expect(v(6)).toBe(250); // smoke 2.50 %/m
    expect(v(7)).toBe(215); // 21.5 °C
    expect(v(8)).toBe(0xd70a); // pressure, low word first
    expect(v(9)).toBe(0x3ea3);
    expect(v(10)).toBe(0x1f); // 5 of 5 extinguishers
    expect(v(11)).toBe(5);
    expect(v(12)).toBe(0);
    expect(v(14)).toBe(66); // event counter, low word
  });

  it("the pressure reads 0.32 MPa as a float with low word first (mbpoll's default word order)", async () => {
    const r = await mbpoll([...rtu, "-a", "5", "-t", "4:float", "-r", "8", "-c", "1", tty]);
    expect(r.values.get(8)).toBeCloseTo(0.32, 5);
  });

  it("the event counter reads 66 as a 32-bit integer with high word first (-B)", async () => {
    const r = await mbpoll([...rtu, "-a", "5", "-t", "4:int", "-B", "-r", "13", "-c", "1", tty]);
    expect(r.values.get(13)).toBe(66);
  });

  it("two panels share the line; a read outside 0-13 is refused with illegal data address", async () => {
    const both = await mbpoll([...rtu, "-a", "1,5", "-t", "4", "-r", "1", "-c", "1", tty]);
    expect(both.stdout.match(/\[1\]:\s+19768/g)).toHaveLength(2);
    const outside = await mbpoll([...rtu, "-a", "5", "-t", "4", "-r", "14", "-c", "2", tty]);
    expect(`${outside.stdout}${outside.stderr}`).toMatch(/Illegal data address/i);
  });

  it("writing coil 2 (test mode) through mbpoll sets status bit 15", async () => {
    const w = await mbpoll([...rtu, "-a", "1", "-t", "0", "-r", "3", tty, "1"]);
    expect(w.code).toBe(0);
    expect(sim.panels.get(1)!.status() & 0x8000).toBe(0x8000);
  });
});

describe("mbpoll reads the simulated GK-3 kiosk over Modbus TCP", () => {
  let sim: SimHandle;
  let port: number;
  beforeAll(async () => {
    sim = await runSimCli(["tcp", "--port", "0", "--count", "1"]);
    port = sim.ports[0]!;
    const k = sim.kiosks.get(port)!;
    k.openDoor();
    k.setPaper(7);
    k.setTemperature(-3.5);
    k.addTransactions(123456);
    k.setQueue(2);
  });
  afterAll(async () => {
    await sim.stop();
  });

  it("input registers 0-9 carry the datasheet's layout", async () => {
    const r = await mbpoll([
      "-m",
      "tcp",
      "-p",
      String(port),
      "-a",
      "1",
      "-t",
      "3",
      "-r",
      "1",
      "-c",
      "10",
      "-1",
      "127.0.0.1",
    ]);
    expect(r.code).toBe(0);
    expect(r.values.get(1)).toBe(2); // in service
    expect(r.stdout).toMatch(/\[2\]:\s+65501 \(-35\)/); // -3.5 °C, int16 ×0.1
    expect(r.values.get(4)).toBe(7); // paper %
    expect(r.values.get(5)).toBe(1); // door open
    expect(r.values.get(6)! * 65536 + r.values.get(7)!).toBe(123456); // transactions, high word first
    expect(r.values.get(10)).toBe(2); // queue
  });

  it("a command written to holding register 100 reaches the kiosk; unknown addresses are refused", async () => {
    const w = await mbpoll([
      "-m",
      "tcp",
      "-p",
      String(port),
      "-a",
      "1",
      "-t",
      "4",
      "-r",
      "101",
      "-1",
      "127.0.0.1",
      "2",
    ]);
    expect(w.code).toBe(0);
    expect(sim.kiosks.get(port)!.commands).toEqual([2]);
    const bad = await mbpoll([
      "-m",
      "tcp",
      "-p",
      String(port),
      "-a",
      "1",
      "-t",
      "3",
      "-r",
      "11",
      "-c",
      "1",
      "-1",
      "127.0.0.1",
    ]);
    expect(`${bad.stdout}${bad.stderr}`).toMatch(/Illegal data address/i);
  });
});

/** The frames libmodbus logs with mbpoll -v: sent as "[09][04]...", received as "<09><04>...". */
function frames(out: string): { sent: string[]; received: string[] } {
  const hexOf = (line: string, open: string) =>
    [...line.matchAll(new RegExp(`\\${open}([0-9A-Fa-f]{2})`, "g"))]
      .map((m) => m[1]!.toUpperCase())
      .join(" ");
  const lines = out.split("\n");
  return {
    sent: lines.filter((l) => /^(\[[0-9A-Fa-f]{2}\])+$/.test(l.trim())).map((l) => hexOf(l, "[")),
    received: lines.filter((l) => /^(<[0-9A-Fa-f]{2}>)+$/.test(l.trim())).map((l) => hexOf(l, "<")),
  };
}

describe("mbpoll reads the simulated LV-4 tank sensor over a socat pty (RTU 9600 8E1), frames byte for byte", () => {
  let sim: SimHandle;
  let tty: string;
  // A fake clock pins the uptime to the datasheet's 259,217 s while mbpoll reads it.
  const clock = new FakeClock();
  beforeAll(async () => {
    // An MFS-8 at unit 1 shares the line, as on the micro fire station's bus.
    sim = await runSimCli(["rtu", "--socat", "--units", "1", "--lv4-units", "9"], { clock });
    tty = sim.gatewayPath!;
    // The datasheet's example: 2350 mm, -3.5 °C, 42.3 m³, level low + heater, tank 4000 mm, counter 3.
    clock.advance(259_217_000);
    const t = sim.tanks.get(9)!;
    t.setLevel(2350);
    t.setTemperature(-3.5);
    t.setAlarmCounter(3);
  });
  afterAll(async () => {
    await sim.stop();
  });
  const rtu = ["-m", "rtu", "-b", "9600", "-P", "even", "-o", "2", "-1", "-v", "-a", "9"];

  it("input registers 0-11: the datasheet's request and 29-byte reply, and its values", async () => {
    const r = await mbpoll([...rtu, "-t", "3", "-r", "1", "-c", "12", tty]);
    expect(r.code).toBe(0);
    expect(frames(`${r.stdout}${r.stderr}`)).toEqual({
      sent: ["09 04 00 00 00 0C F1 47"],
      received: ["09 04 18 4C 34 01 05 09 2E FF DD 42 29 33 33 00 05 00 00 00 03 F4 91 0F A0 00 03 69 6E"],
    });
    const v = (ref: number) => r.values.get(ref);
    expect(v(1)).toBe(0x4c34); // model "L4"
    expect(v(2)).toBe(0x0105); // firmware 1.5
    expect(v(3)).toBe(2350); // level, mm
    expect(r.stdout).toMatch(/\[4\]:\s+65501 \(-35\)/); // -3.5 °C, int16 ×0.1
    expect(v(7)).toBe(0b101); // level low, heater on
    expect(v(8)).toBe(0); // no fault
    expect(v(9)! * 65536 + v(10)!).toBe(259_217); // uptime, high word first
    expect(v(11)).toBe(4000); // tank height
    expect(v(12)).toBe(3); // alarm counter
  });

  it("the volume reads 42.3 m³ as a float with high word first (-B)", async () => {
    const r = await mbpoll([...rtu, "-t", "3:float", "-B", "-r", "5", "-c", "1", tty]);
    expect(r.values.get(5)).toBeCloseTo(42.3, 4);
  });

  it("set-points: the datasheet's read, then its write of 3000 mm echoed back", async () => {
    const read = await mbpoll([...rtu, "-t", "4", "-r", "1", "-c", "2", tty]);
    expect(frames(`${read.stdout}${read.stderr}`)).toEqual({
      sent: ["09 03 00 00 00 02 C5 43"],
      received: ["09 03 04 09 60 0E D8 74 4B"],
    });
    expect([read.values.get(1), read.values.get(2)]).toEqual([2400, 3800]);
    const write = await mbpoll([...rtu, "-t", "4", "-r", "1", tty, "3000"]);
    expect(write.code).toBe(0);
    expect(frames(`${write.stdout}${write.stderr}`)).toEqual({
      sent: ["09 06 00 00 0B B8 8F C0"],
      received: ["09 06 00 00 0B B8 8F C0"],
    });
    expect(sim.tanks.get(9)!.setPoints()).toEqual({ low: 3000, high: 3800 });
  });

  it("self-test: the datasheet's coil write echoed back; status bit 4 is set", async () => {
    const r = await mbpoll([...rtu, "-t", "0", "-r", "1", tty, "1"]);
    expect(r.code).toBe(0);
    expect(frames(`${r.stdout}${r.stderr}`)).toEqual({
      sent: ["09 05 00 00 FF 00 8D 72"],
      received: ["09 05 00 00 FF 00 8D 72"],
    });
    expect(sim.tanks.get(9)!.status() & 0x10).toBe(0x10);
  });

  it("the datasheet's exception replies: illegal function (0x10), illegal data address (0x03 at 5)", async () => {
    const fn16 = await mbpoll([...rtu, "-t", "4", "-r", "1", tty, "3000", "3800"]);
    expect(frames(`${fn16.stdout}${fn16.stderr}`).received).toEqual(["09 90 01 0C 02"]);
    expect(`${fn16.stdout}${fn16.stderr}`).toMatch(/Illegal function/i);
    const at5 = await mbpoll([...rtu, "-t", "4", "-r", "6", "-c", "1", tty]);
    expect(frames(`${at5.stdout}${at5.stderr}`)).toEqual({
      sent: [expect.stringMatching(/^09 03 00 05 00 01/)],
      received: ["09 83 02 41 33"],
    });
    expect(`${at5.stdout}${at5.stderr}`).toMatch(/Illegal data address/i);
  });

  it("a set-point out of range is illegal data value (0x03) and changes nothing; a write beyond register 1 is 0x02", async () => {
    const before = sim.tanks.get(9)!.setPoints();
    // Low set-point range: 100 mm to the tank height (4000); 50 is under it.
    const low = await mbpoll([...rtu, "-t", "4", "-r", "1", tty, "50"]);
    expect(frames(`${low.stdout}${low.stderr}`).received).toEqual([expect.stringMatching(/^09 86 03 /)]);
    expect(`${low.stdout}${low.stderr}`).toMatch(/Illegal data value/i);
    // High set-point range: low + 100 to the tank height; 4001 is over it.
    const high = await mbpoll([...rtu, "-t", "4", "-r", "2", tty, "4001"]);
    expect(frames(`${high.stdout}${high.stderr}`).received).toEqual([expect.stringMatching(/^09 86 03 /)]);
    expect(sim.tanks.get(9)!.setPoints()).toEqual(before);
    const at2 = await mbpoll([...rtu, "-t", "4", "-r", "3", tty, "1000"]);
    expect(frames(`${at2.stdout}${at2.stderr}`).received).toEqual([expect.stringMatching(/^09 86 02 /)]);
    expect(`${at2.stdout}${at2.stderr}`).toMatch(/Illegal data address/i);
  });
});
