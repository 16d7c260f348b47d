import net from "node:net";
import { describe, expect, it, vi } from "vitest";
import { DeviceConnection, TICK_MS, tickNow } from "./connection.js";

describe("connections' ticks (keepalive, login deadline)", () => {
  it("are elapsed time: a step of the wall clock an hour forward is not an hour of silence", () => {
    const before = tickNow();
    const step = vi
      .spyOn(Date, "now")
      .mockImplementation(() => performance.timeOrigin + performance.now() + 3_600_000);
    try {
      expect(tickNow() - before).toBeLessThan(1000 / TICK_MS);
    } finally {
      step.mockRestore();
    }
  });
});

describe("DeviceConnection: what it keeps per socket (10,000 devices each on its own connection)", () => {
  it("its socket handlers are shared by every connection, the close handler without a `once` wrapper", () => {
    const a = new net.Socket();
    const b = new net.Socket();
    new DeviceConnection(1, a);
    new DeviceConnection(2, b);
    for (const event of ["data", "error", "close"]) {
      const [mine] = a.rawListeners(event);
      expect(mine).toBeTypeOf("function");
      // `once` puts a wrapper per socket in front of the handler: its state object and a bound
      // function, ~0.15 KB of the worker's heap per connection.
      expect({ event, wrapped: (mine as { listener?: unknown }).listener !== undefined }).toEqual({
        event,
        wrapped: false,
      });
      expect(b.rawListeners(event)[0]).toBe(mine);
    }
    for (const s of [a, b]) s.removeAllListeners();
  });
});
