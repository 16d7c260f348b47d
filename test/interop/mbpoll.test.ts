import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
