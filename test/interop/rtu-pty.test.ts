import { afterEach, describe, expect, it } from "vitest";
import { decodePointsFromBlocks, type PointSpec } from "../../devices/modbus-decode.js";
import { SerialLink } from "../../protocols/links/serial.js";
import { ModbusBus } from "../../protocols/modbus/bus.js";
import { ModbusPoller, type PollResult } from "../../protocols/modbus/poller.js";
import { modbusRead } from "../../protocols/modbus/read.js";
import { runSimCli, type SimHandle } from "../../sim/modbus/cli.js";

// The gateway's bus and poller against simulated MFS-8 panels on a real
// pseudo-terminal pair (socat): bytes arrive in arbitrary chunks, as on USB adapters.

const POINTS: PointSpec[] = [
  { name: "model", address: 0, type: "u16" },
  { name: "status", address: 4, type: "bitfield", bits: { smoke: 0, heat: 1, callPoint: 2, testMode: 15 } },
  { name: "smoke", address: 5, type: "u16", scale: 0.01 },
  { name: "temperature", address: 6, type: "i16", scale: 0.1 },
  { name: "pressure", address: 7, type: "f32", wordOrder: "CDAB" },
  { name: "events", address: 12, type: "u32", wordOrder: "ABCD" },
];
const LINE = { baudRate: 9600, parity: "even", stopBits: 1 } as const;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function rig(units: number[], pace = false) {
  const sim = await runSimCli(["rtu", "--socat", "--units", units.join(","), ...(pace ? ["--pace"] : [])]);
  cleanup.push(() => sim.stop());
  const bus = new ModbusBus({
    name: "rs485-1",
    link: new SerialLink({ path: sim.gatewayPath!, ...LINE }),
    mode: "rtu",
    baudRate: 9600,
    bitsPerChar: 11,
    timeoutMs: 150,
    retries: 0,
    backoff: { initialMs: 50, maxMs: 200 },
  });
  cleanup.push(() => bus.close());
  await bus.start();
  expect(bus.linkPhase).toBe("up");
  return { sim, bus };
}

async function pollFor(bus: ModbusBus, units: number[], ms: number, periodMs = 300): Promise<PollResult[]> {
  const results: PollResult[] = [];
  const poller = new ModbusPoller({
    bus,
    onResult: (r) => results.push(r),
    line: { settings: LINE, turnaroundMs: 5 },
  });
  for (const unit of units)
    poller.add({ id: `panel-${unit}`, unit, fn: 3, periodMs, ranges: [{ address: 0, count: 14 }] });
  poller.start();
  await new Promise((r) => setTimeout(r, ms));
  poller.stop();
  return results;
}

function sim5(sim: SimHandle) {
  const p = sim.panels.get(5)!;
  p.raiseSmoke(2.5);
  p.setEventCounter(66);
  return p;
}

describe("gateway bus polls simulated MFS-8 panels over a socat pty", () => {
  it("decodes the datasheet's values from every panel on the line", async () => {
    const { sim, bus } = await rig([1, 2, 5]);
    sim5(sim);
    const results = await pollFor(bus, [1, 2, 5], 1000);
    for (const unit of [1, 2, 5]) {
      const mine = results.filter((r) => r.device === `panel-${unit}`);
      expect(mine.length).toBeGreaterThanOrEqual(2);
      expect(mine.every((r) => r.ok)).toBe(true);
    }
    const last = results.filter((r) => r.device === "panel-5").at(-1)!;
    expect(last.blocks.map((b) => [b.address, b.words.length])).toEqual([[0, 14]]);
    const v = decodePointsFromBlocks(POINTS, last.blocks);
    expect(v).toMatchObject({ model: 0x4d38, smoke: 2.5, temperature: 21.5, pressure: 0.32, events: 66 });
    expect(v.status).toMatchObject({ smoke: true, heat: false });
    expect(bus.stats()).toMatchObject({ crcErrors: 0, timeouts: 0, transportErrors: 0 });
  });

  it("a dead panel times out while the others keep answering", async () => {
    const { sim, bus } = await rig([1, 2, 3]);
    sim.panels.get(2)!.faults.silent = true;
    const results = await pollFor(bus, [1, 2, 3], 1200);
    const dead = results.filter((r) => r.device === "panel-2");
    expect(dead.length).toBeGreaterThanOrEqual(2);
    expect(dead.every((r) => !r.ok && r.failure.kind === "timeout")).toBe(true);
    for (const id of ["panel-1", "panel-3"]) {
      const mine = results.filter((r) => r.device === id);
      expect(mine.length).toBeGreaterThanOrEqual(3);
      expect(mine.every((r) => r.ok)).toBe(true);
    }
  });

  it("commands reach the panel ahead of polls; a corrupted CRC is classified and the next read succeeds", async () => {
    const { sim, bus } = await rig([5]);
    const p = sim5(sim);
    const polls = [1, 2, 3].map(() => bus.request({ fn: 3, unit: 5, address: 0, count: 14 }));
    const reset = bus.request({ fn: 5, unit: 5, address: 1, value: true }, { priority: "command" });
    const [r] = await Promise.all([reset, ...polls]);
    expect(r.ok).toBe(true);
    expect(p.status() & 0b111).toBe(0);
    p.faults.corruptCrc = 1;
    const bad = await bus.request({ fn: 3, unit: 5, address: 0, count: 14 });
    expect(bad.ok ? "ok" : bad.failure.kind).toBe("crc");
    const good = await bus.request({ fn: 3, unit: 5, address: 0, count: 14 });
    expect(good.ok).toBe(true);
    expect(bus.stats().crcErrors).toBe(1);
  });

  it("replies paced at 9600 baud wire time still frame and decode", async () => {
    const { sim, bus } = await rig([5], true);
    sim5(sim);
    const r = await bus.request({ fn: 3, unit: 5, address: 0, count: 14 });
    expect(r.ok).toBe(true);
    if (r.ok) expect(decodePointsFromBlocks(POINTS, [{ address: 0, words: r.words! }]).pressure).toBe(0.32);
  });

  it("the pty vanishing (socat killed) settles pending requests and sends the bus into backoff", async () => {
    const { sim, bus } = await rig([1]);
    sim.panels.get(1)!.faults.silent = true; // keep a request in flight
    const inflight = bus.request({ fn: 3, unit: 1, address: 0, count: 14 }, { timeoutMs: 5000 });
    const queued = bus.request({ fn: 3, unit: 1, address: 0, count: 14 });
    await new Promise((r) => setTimeout(r, 20));
    await sim.stop();
    const results = await Promise.all([inflight, queued]);
    expect(results.map((r) => (r.ok ? "ok" : r.failure.kind))).toEqual(["transport", "transport"]);
    expect(bus.linkPhase).toBe("backoff");
    expect(bus.stats().transportErrors).toBe(1);
  });

  it("modbusRead reads a panel over the pty", async () => {
    // No bus of our own here: two readers on one pty would steal each other's bytes.
    const sim = await runSimCli(["rtu", "--socat", "--units", "7"]);
    cleanup.push(() => sim.stop());
    sim.panels.get(7)!.setFault(3);
    const r = await modbusRead({
      serial: { path: sim.gatewayPath!, ...LINE },
      unit: 7,
      fn: 3,
      address: 11,
      count: 1,
    });
    expect(Array.from(r.words)).toEqual([3]);
  });
});

describe("gateway bus reads a simulated LV-4 beside the MFS-8 panels over a socat pty", () => {
  // The sim's LV-4 table is its own; these are the datasheet's, as an integrator would type them.
  const LV4_POINTS: PointSpec[] = [
    { name: "model", address: 0, type: "u16" },
    { name: "level", address: 2, type: "u16" },
    { name: "temperature", address: 3, type: "i16", scale: 0.1 },
    { name: "volume", address: 4, type: "f32", wordOrder: "ABCD" },
    {
      name: "status",
      address: 6,
      type: "bitfield",
      bits: { low: 0, high: 1, heater: 2, fault: 3, selfTest: 4 },
    },
    { name: "uptime", address: 8, type: "u32", wordOrder: "ABCD" },
    { name: "tankHeight", address: 10, type: "u16" },
  ];

  it("fn 4 input registers decode to the datasheet's values; set-point write and self-test coil land", async () => {
    const sim = await runSimCli(["rtu", "--socat", "--units", "1", "--lv4-units", "9"]);
    cleanup.push(() => sim.stop());
    const t = sim.tanks.get(9)!;
    t.setLevel(2350);
    t.setTemperature(-3.5);
    const bus = new ModbusBus({
      name: "rs485-1",
      link: new SerialLink({ path: sim.gatewayPath!, ...LINE }),
      mode: "rtu",
      baudRate: 9600,
      bitsPerChar: 11,
      timeoutMs: 150,
      retries: 0,
    });
    cleanup.push(() => bus.close());
    await bus.start();
    const r = await bus.request({ fn: 4, unit: 9, address: 0, count: 12 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const v = decodePointsFromBlocks(LV4_POINTS, [{ address: 0, words: r.words! }]);
    expect(v).toMatchObject({ model: 0x4c34, level: 2350, temperature: -3.5, tankHeight: 4000 });
    expect(v.volume as number).toBeCloseTo(42.3, 4);
    expect(v.status).toMatchObject({ low: true, heater: true, fault: false, selfTest: false });
    const w = await bus.request({ fn: 6, unit: 9, address: 0, value: 3000 });
    expect(w.ok).toBe(true);
    expect(t.setPoints().low).toBe(3000);
    const bad = await bus.request({ fn: 6, unit: 9, address: 1, value: 5000 });
    expect(bad.ok ? "ok" : bad.failure).toMatchObject({ kind: "exception", code: 3 });
    const c = await bus.request({ fn: 5, unit: 9, address: 0, value: true }, { priority: "command" });
    expect(c.ok).toBe(true);
    expect(t.selfTestRunning).toBe(true);
    const p = await bus.request({ fn: 3, unit: 1, address: 0, count: 1 });
    expect(p.ok && Array.from(p.words!)).toEqual([0x4d38]);
  });
});
