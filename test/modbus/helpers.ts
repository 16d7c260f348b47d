import { FakeClock } from "../../core/clock.js";
import { MemoryLine } from "../../protocols/links/memory.js";
import { type BusOptions, ModbusBus } from "../../protocols/modbus/bus.js";
import { Mfs8Panel } from "../../sim/modbus/mfs8.js";
import { RtuSlaveServer } from "../../sim/modbus/rtu-server.js";

/** Lets queued microtasks and I/O callbacks run. */
export const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Advances fake time 1 ms at a time, letting async work run, until p settles. */
export async function drive<T>(clock: FakeClock, p: Promise<T>, maxMs = 60_000): Promise<T> {
  let settled = false;
  let value: T | undefined;
  let error: unknown;
  p.then(
    (v) => {
      settled = true;
      value = v;
    },
    (e) => {
      settled = true;
      error = e;
    },
  );
  for (let t = 0; t <= maxMs && !settled; t++) {
    await flush();
    if (!settled) clock.advance(1);
  }
  await flush();
  if (!settled) throw new Error(`did not settle within ${maxMs} fake ms`);
  if (error !== undefined) throw error;
  return value as T;
}

/** Advances fake time by ms in 1 ms steps, letting async work run in between. */
export async function elapse(clock: FakeClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t++) {
    await flush();
    clock.advance(1);
  }
  await flush();
}

/** A bus on one end of an in-memory line and MFS-8 panels on the other, on fake time. */
export async function rtuRig(units: number[], busOptions: Partial<BusOptions> = {}) {
  const clock = new FakeClock();
  const line = new MemoryLine("rs485");
  const server = new RtuSlaveServer(line.b, { clock });
  const panels = new Map<number, Mfs8Panel>();
  for (const unit of units) {
    const p = new Mfs8Panel({ unit, clock, firmware: 0x0200 + unit });
    panels.set(unit, p);
    server.add(p);
  }
  await server.start();
  const bus = new ModbusBus({
    name: "rs485-1",
    link: line.a,
    mode: "rtu",
    clock,
    timeoutMs: 100,
    ...busOptions,
  });
  await bus.start();
  const panel = (unit: number) => {
    const p = panels.get(unit);
    if (!p) throw new Error(`no panel ${unit}`);
    return p;
  };
  return { clock, line, server, bus, panel };
}
